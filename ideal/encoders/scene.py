"""Scene encoder: a small transformer over object tokens, attention-pooled to one vector per scene.

A token = label embedding (the text encoder's embedding of the object's label, so unseen labels work:
open vocabulary) + MLP(centre, size, colour) [+ a tiny PointNet over the object's points]. No positional
encoding: a scene is a set of objects, and the encoder is invariant to their order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ..config import SceneEncoderConfig
from ..scenes.types import STRUCTURE_LABELS, Scene

GEOM_DIM = 9  # centre (relative to the room centre), size, rgb


@dataclass
class SceneBatch:
    """Padded object tokens of B scenes with at most N objects each."""

    label_emb: torch.Tensor  # (B, N, text_dim)
    geom: torch.Tensor  # (B, N, 9)
    mask: torch.Tensor  # (B, N) bool, True = a real object
    points: Optional[torch.Tensor] = None  # (B, N, P, 6), centred and scaled per object


class LabelBank:
    """Label string -> frozen text embedding, computed once per label (batch-first, cached)."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray], vectors: Optional[dict[str, np.ndarray]] = None):
        self.embed = embed
        self.vectors: dict[str, np.ndarray] = dict(vectors or {})

    def ensure(self, labels) -> None:
        new = sorted({lb for lb in labels if lb not in self.vectors})
        if new:
            for lb, v in zip(new, self.embed(new)):
                self.vectors[lb] = np.asarray(v, np.float32)

    def __getitem__(self, label: str) -> np.ndarray:
        return self.vectors[label]


def scene_objects(scene: Scene, max_objects: int):
    """The objects the encoder sees: everything but walls/floor/ceiling, at most max_objects (largest first)."""
    objs = [o for o in scene.objects if o.label not in STRUCTURE_LABELS]
    if len(objs) > max_objects:
        objs = sorted(objs, key=lambda o: -float(np.prod(o.size)))[:max_objects]
        objs.sort(key=lambda o: o.object_id)
    return objs


def _room_centre(scene: Scene) -> np.ndarray:
    lo = np.min([o.bbox_min for o in scene.objects], axis=0)
    hi = np.max([o.bbox_max for o in scene.objects], axis=0)
    centre = (lo + hi) / 2
    centre[2] = lo[2]  # heights stay measured from the floor
    return centre


def collate_scenes(scenes: list[Scene], bank: LabelBank, cfg: SceneEncoderConfig) -> SceneBatch:
    """Turn scenes into a padded SceneBatch (label embeddings from `bank`, computing unseen labels)."""
    per_scene = [scene_objects(s, cfg.max_objects) for s in scenes]
    bank.ensure(o.label for objs in per_scene for o in objs)
    n = max(1, max(len(objs) for objs in per_scene))
    text_dim = len(next(iter(bank.vectors.values()))) if bank.vectors else 0
    label_emb = np.zeros((len(scenes), n, text_dim), np.float32)
    geom = np.zeros((len(scenes), n, GEOM_DIM), np.float32)
    mask = np.zeros((len(scenes), n), bool)
    pts = np.zeros((len(scenes), n, cfg.points_per_object, 6), np.float32) if cfg.use_points else None
    for i, (scene, objs) in enumerate(zip(scenes, per_scene)):
        if not objs:
            mask[i, 0] = True  # an empty room still gets one (all-zero) token, so pooling is defined
            continue
        centre = _room_centre(scene)
        for j, o in enumerate(objs):
            label_emb[i, j] = bank[o.label]
            geom[i, j] = np.concatenate([np.asarray(o.center) - centre, o.size, o.color_rgb])
            mask[i, j] = True
            if pts is not None and o.points is not None and len(o.points):
                p = o.points[np.linspace(0, len(o.points) - 1, cfg.points_per_object).astype(int)]
                scale = np.maximum(np.asarray(o.size), 1e-3)
                pts[i, j, :, :3] = (p[:, :3] - np.asarray(o.center)) / scale
                pts[i, j, :, 3:] = p[:, 3:]
    return SceneBatch(torch.from_numpy(label_emb), torch.from_numpy(geom), torch.from_numpy(mask),
                      None if pts is None else torch.from_numpy(pts))


class PointNet(nn.Module):
    """Shared MLP over an object's points, max-pooled: one feature per object."""

    def __init__(self, width: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(6, 64), nn.GELU(), nn.Linear(64, width))

    def forward(self, points: torch.Tensor) -> torch.Tensor:  # (B, N, P, 6) -> (B, N, width)
        return self.mlp(points).amax(dim=2)


class SceneEncoder(nn.Module):
    def __init__(self, cfg: SceneEncoderConfig, text_dim: int = 384, out_dim: int = 384):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.label_proj = nn.Linear(text_dim, w)
        self.geom_mlp = nn.Sequential(nn.Linear(GEOM_DIM, w), nn.GELU(), nn.Linear(w, w))
        self.pointnet = PointNet(w) if cfg.use_points else None
        layer = nn.TransformerEncoderLayer(w, cfg.heads, cfg.ffn, cfg.dropout, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(w)
        self.pool_query = nn.Parameter(torch.randn(w) / w**0.5)
        self.pool_key = nn.Linear(w, w)
        self.out = nn.Linear(w, out_dim)

    def forward(self, batch: SceneBatch) -> torch.Tensor:
        """(B, out_dim) L2-normalised scene embeddings."""
        h = self.label_proj(batch.label_emb) + self.geom_mlp(batch.geom)
        if self.pointnet is not None and batch.points is not None:
            h = h + self.pointnet(batch.points)
        h = self.norm(self.blocks(h, src_key_padding_mask=~batch.mask))
        # Attention pooling: one learned query attends over the real objects.
        scores = self.pool_key(h) @ self.pool_query / h.shape[-1] ** 0.5
        weights = scores.masked_fill(~batch.mask, float("-inf")).softmax(dim=1)
        pooled = (weights.unsqueeze(-1) * h).sum(dim=1)
        return nn.functional.normalize(self.out(pooled), dim=-1)
