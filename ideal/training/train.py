"""Train the base retriever (scene encoder + text projection head) with symmetric InfoNCE.

Plain PyTorch: `fit` runs in one process, or on every worker of a Ray Train `TorchTrainer` (jobs/train.py),
which passes its rank/world size, a `prepare` (DDP wrap) and a `report` callback. The only distributed
piece is `gather_with_grad` (see distributed.py), used exactly as open_clip does: every rank gathers all
embeddings of the global batch with gradient and computes the same global loss.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from ..config import Config
from ..retrieval.model import RetrievalModel, load_model
from .data import TrainArrays
from .distributed import gather_with_grad
from .losses import iat_loss, info_nce, object_nce

WARMUP_FRACTION = 0.05


def epoch_order(text_scene: np.ndarray, seed: int, epoch: int, texts_per_scene: int = 1) -> np.ndarray:
    """The order of the texts in an epoch, seeded by epoch. texts_per_scene = 1: a plain permutation; k > 1: the
    texts of each scene, shuffled, in runs of up to k, the runs shuffled, so a batch of B texts holds about B/k
    scenes (encoding scenes is most of a step's cost; a scene's k texts are each other's positives)."""
    rng = np.random.default_rng([seed, epoch])
    n = len(text_scene)
    if texts_per_scene <= 1:
        return rng.permutation(n)
    perm = rng.permutation(n)
    by_scene = perm[np.argsort(text_scene[perm], kind="stable")]  # each scene's texts together, shuffled within
    starts = np.flatnonzero(np.r_[True, np.diff(text_scene[by_scene]) != 0])
    runs = [run for a, b in zip(starts, np.r_[starts[1:], n]) for run in np.array_split(
        by_scene[a:b], -(-(b - a) // texts_per_scene))]
    return np.concatenate([runs[i] for i in rng.permutation(len(runs))])


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1,
                  order: Optional[np.ndarray] = None) -> list[np.ndarray]:
    """This rank's share of each global batch; the same order on every rank (seeded by epoch). order: the
    epoch's text order (`epoch_order`), default a permutation of the n texts."""
    perm = np.random.default_rng([seed, epoch]).permutation(n) if order is None else order
    out = []
    for start in range(0, n, batch_size):
        chunk = perm[start:start + batch_size]
        if len(chunk) < max(2, world):
            continue
        out.append(chunk[rank::world])
    return out


def lr_at(step: int, total: int, base: float) -> float:
    """Linear warm-up then cosine decay, a pure function of the step (so a resumed run matches)."""
    warm = max(1, int(total * WARMUP_FRACTION))
    if step < warm:
        return base * (step + 1) / warm
    return base * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def base_objective(temperature: float, object_weight: float = 0.0):
    """The base retriever's loss over (texts, scenes, text scene ids, scene ids, object mask, text slots):
    InfoNCE between descriptions and scenes, plus `object_weight` × the object-level InfoNCE (each description
    against every object of the batch, positive the object it names) when scenes are object vectors."""

    def loss(text, scene, text_ids, scene_ids, mask=None, slots=None):
        out = info_nce(text, scene, text_ids, scene_ids, temperature, mask)
        if object_weight and mask is not None and slots is not None:
            out = out + object_weight * object_nce(text, scene, mask, text_ids, slots, scene_ids, temperature)
        return out

    return loss


def iat_objective(lam: float, gamma: float, temperature: float):
    """IAT's L = λ·L_dis + (1−λ)·L_div as a loss over (texts, scenes, text scene ids, scene ids, object mask)."""

    def loss(text, scene, text_ids, scene_ids, mask=None, slots=None):
        # y: every row of the text's scene is a positive (gathered across workers a scene can appear twice)
        targets = text_ids[:, None] == scene_ids[None, :]
        return iat_loss(text, scene, targets, text_ids, lam, gamma, temperature, mask)[0]

    return loss


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters live (a DDP wrapper's too): its batches must go there."""
    return next(model.parameters()).device


def train_step(model, optimizer, arrays: TrainArrays, idx: np.ndarray, temperature: float, lr: float,
               world: int = 1, objective=None) -> float:
    """One optimisation step on the texts `idx`; returns the (global) loss. objective(text, scene, text_ids,
    scene_ids, mask, slots) defaults to the base retriever's InfoNCE; mask (U, N) is the real objects when the
    scenes are object vectors (U, N, d), slots the objects the texts name. The batch goes to the model's device,
    wherever `prepare` put it."""
    device = model_device(model)
    rows = np.unique(arrays.text_scene[idx])
    text_feats = torch.from_numpy(arrays.text_feats[idx]).to(device)
    batch = arrays.scene_batch(rows, device)
    text, scene = model(text_feats, batch)
    mask = batch.mask if scene.dim() == 3 else None
    text_ids = torch.from_numpy(arrays.text_scene[idx]).long().to(device)
    scene_ids = torch.from_numpy(rows).long().to(device)
    slots = None if arrays.text_slot is None else torch.from_numpy(arrays.text_slot[idx]).long().to(device)
    if world > 1:  # every rank scores the global batch (object tensors are padded alike: same N on every rank)
        if mask is not None:
            mask = gather_with_grad(mask.float(), scene_ids)[0].bool()
        if slots is not None:
            slots = gather_with_grad(slots, text_ids)[0]
        text, text_ids = gather_with_grad(text, text_ids)
        scene, scene_ids = gather_with_grad(scene, scene_ids)
    loss = (objective or base_objective(temperature))(text, scene, text_ids, scene_ids, mask, slots)
    for g in optimizer.param_groups:
        g["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@dataclass
class TrainState:
    epoch: int  # last finished epoch, -1 before the first
    history: list


def save_checkpoint(path: str | Path, model: nn.Module, optimizer, cfg: Config, state: TrainState) -> Path:
    """A checkpoint folder: model.safetensors + config.json (all a retriever needs) + optimizer.pt + state.json."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    module = getattr(model, "module", model)  # unwrap DDP
    save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, path / "model.safetensors")
    # the dialog section is how a retriever is used, not what it is: left out so checkpoints outlive its knobs
    (path / "config.json").write_text(json.dumps({k: v for k, v in cfg.to_dict().items() if k != "dialog"}, indent=1) + "\n")
    if optimizer is not None:
        torch.save(optimizer.state_dict(), path / "optimizer.pt")
    (path / "state.json").write_text(json.dumps({"epoch": state.epoch, "history": state.history}, indent=1) + "\n")
    return path


def fit(cfg: Config, arrays: TrainArrays, resume_from: Optional[str | Path] = None, rank: int = 0, world: int = 1,
        prepare: Callable[[nn.Module], nn.Module] = lambda m: m,
        report: Optional[Callable[[dict, nn.Module, object, TrainState], None]] = None,
        ckpt_dir: Optional[str | Path] = None, stop_after_epoch: Optional[int] = None,
        progress: bool = True, stage: str = "base", init_from: Optional[str | Path] = None
        ) -> tuple[nn.Module, TrainState]:
    """Train for the stage's epochs; checkpoint after every epoch (to ckpt_dir, or through `report`).

    stage: "base" (InfoNCE on descriptions, cfg.train) or "iat" (L_dis + L_div on interaction texts, cfg.iat,
    starting from the weights in `init_from`; cfg.iat.tune says which parameters move).
    resume_from: a checkpoint folder; training continues after its epoch and ends where an uninterrupted
    run would (batches, learning rate and dropout are all functions of seed and epoch).
    """
    if stage not in ("base", "iat"):
        raise ValueError(f"stage must be 'base' or 'iat', got {stage!r}")
    tc = cfg.train if stage == "base" else cfg.iat
    objective = (base_objective(tc.temperature, tc.object_loss) if stage == "base"
                 else iat_objective(tc.lam, tc.gamma, tc.temperature))
    torch.manual_seed(tc.seed)
    model = RetrievalModel(cfg, arrays.text_feats.shape[1])
    if stage == "iat":
        if init_from is None:
            raise ValueError("IAT starts from a trained retriever: pass init_from (a checkpoint folder)")
        model.load_state_dict(load_file(Path(init_from) / "model.safetensors"))
        if tc.tune == "head":
            model.scene_encoder.requires_grad_(False)
        elif tc.tune != "all":
            raise ValueError(f"iat.tune must be 'head' or 'all', got {tc.tune!r}")
    if resume_from is not None:
        resume_from = Path(resume_from)
        model.load_state_dict(load_file(resume_from / "model.safetensors"))
    # The optimizer is built on the prepared model: moving a model to a device may replace its parameters,
    # and loading its state there puts the state beside them (torch loads it onto each parameter's device).
    model = prepare(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    state = TrainState(-1, [])
    if resume_from is not None:
        optimizer.load_state_dict(torch.load(resume_from / "optimizer.pt", map_location="cpu", weights_only=True))
        saved = json.loads((resume_from / "state.json").read_text())
        state = TrainState(saved["epoch"], saved["history"])
    global_batch = max(1, tc.batch_size)
    group = tc.texts_per_scene if stage == "base" else 1  # IAT: a plain permutation of its texts

    def batches_of(epoch: int, rank: int = 0, world: int = 1) -> list[np.ndarray]:
        order = epoch_order(arrays.text_scene, tc.seed, epoch, group)
        return epoch_batches(len(arrays.text_feats), global_batch, tc.seed, epoch, rank, world, order)

    steps_per_epoch = len(batches_of(0))
    total = steps_per_epoch * tc.epochs
    for epoch in range(state.epoch + 1, tc.epochs):
        torch.manual_seed(tc.seed * 100_003 + epoch)  # dropout masks depend on the epoch only
        model.train()
        if stage == "iat" and tc.tune == "head":  # a frozen scene encoder stays deterministic
            getattr(model, "module", model).scene_encoder.eval()
        batches = batches_of(epoch, rank, world)
        losses = []
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{tc.epochs}", disable=not progress or rank != 0, leave=False)
        for i, idx in enumerate(bar):
            lr = lr_at(epoch * steps_per_epoch + i, total, tc.lr)
            losses.append(train_step(model, optimizer, arrays, idx, tc.temperature, lr, world, objective))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        metrics = {"epoch": epoch, "loss": float(np.mean(losses))}
        state = TrainState(epoch, state.history + [metrics])
        if progress and rank == 0:
            print(f"epoch {epoch + 1}/{tc.epochs}  loss {metrics['loss']:.4f}", flush=True)
        if report is not None:
            report(metrics, model, optimizer, state)
        elif ckpt_dir is not None and rank == 0:
            save_checkpoint(Path(ckpt_dir) / f"epoch-{epoch:04d}", model, optimizer, cfg, state)
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            break
    return getattr(model, "module", model), state


def latest_checkpoint(ckpt_dir: str | Path) -> Optional[Path]:
    found = sorted(Path(ckpt_dir).glob("epoch-*/state.json")) if Path(ckpt_dir).is_dir() else []
    return found[-1].parent if found else None


__all__ = ["RetrievalModel", "TrainState", "base_objective", "epoch_batches", "epoch_order", "fit", "iat_objective", "latest_checkpoint", "load_model",
           "lr_at", "model_device", "save_checkpoint", "train_step"]
