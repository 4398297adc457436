"""Scene encoder: a small transformer over object tokens, giving one vector per scene or one per object.

A token = label embedding (the text encoder's embedding of the object's label, so unseen labels work:
open vocabulary) + MLP(centre, size, colour) [+ a tiny PointNet over the object's points]. No positional
encoding: a scene is a set of objects, and the encoder is invariant to their order.

With `relation_bias`, every attention head adds a learned function of the pair's geometry (offsets, distance,
gap between the boxes) to its logits, so an object's vector can say which objects are next to, on or under it.

Outputs (`output`):
- "scene": attention pooling over the objects, one L2-normalised vector per scene;
- "objects": every object's vector in the context of its room (object-in-context), L2-normalised; a scene is
  scored by its best object (late interaction, `ideal.retrieval.objects`).
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
PAIR_DIM = 9  # pairwise geometry features of `pair_features`
OUTPUTS = ("scene", "objects")


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


def pair_features(geom: torch.Tensor) -> torch.Tensor:
    """(B, N, 9) tokens' geometry -> (B, N, N, PAIR_DIM) features of each ordered pair (i, j): |dx|, |dy|, dz of
    the centres, horizontal distance, the gaps between the boxes along x, y, z and overall, and how far j's
    bottom is above i's top ("on", "above"). |dx|, |dy|: rooms have no canonical orientation."""
    c, size = geom[..., :3], geom[..., 3:6]
    d = c[:, None, :, :] - c[:, :, None, :]  # (B, N, N, 3): j's centre minus i's
    half = (size[:, None, :, :] + size[:, :, None, :]) / 2
    gap = (d.abs() - half).clamp(min=0)
    top_i = (c[..., 2] + size[..., 2] / 2)[:, :, None]
    bottom_j = (c[..., 2] - size[..., 2] / 2)[:, None, :]
    return torch.cat([d[..., :2].abs(), d[..., 2:], d[..., :2].norm(dim=-1, keepdim=True), gap,
                      gap.norm(dim=-1, keepdim=True), (bottom_j - top_i)[..., None]], dim=-1)


def _biased_layer(layer: nn.TransformerEncoderLayer, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A pre-norm `TransformerEncoderLayer` (its own parameters) whose attention logits get `bias` (B, heads, N, N).
    Written out because torch's fused inference path returns NaN for per-head float masks."""
    attn = layer.self_attn
    b, n, w = x.shape
    q, k, v = (t.view(b, n, attn.num_heads, w // attn.num_heads).transpose(1, 2)
               for t in nn.functional.linear(layer.norm1(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, -1))
    o = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                                   dropout_p=attn.dropout if layer.training else 0.0)
    x = x + layer.dropout1(attn.out_proj(o.transpose(1, 2).reshape(b, n, w)))
    return x + layer.dropout2(layer.linear2(layer.dropout(layer.activation(layer.linear1(layer.norm2(x))))))


class SceneEncoder(nn.Module):
    def __init__(self, cfg: SceneEncoderConfig, text_dim: int = 384, out_dim: int = 384):
        super().__init__()
        if cfg.output not in OUTPUTS:
            raise ValueError(f"scene_encoder.output must be one of {OUTPUTS}, got {cfg.output!r}")
        self.cfg = cfg
        w = cfg.width
        self.label_proj = nn.Linear(text_dim, w)
        self.geom_mlp = nn.Sequential(nn.Linear(GEOM_DIM, w), nn.GELU(), nn.Linear(w, w))
        self.pointnet = PointNet(w) if cfg.use_points else None
        layer = nn.TransformerEncoderLayer(w, cfg.heads, cfg.ffn, cfg.dropout, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(w)
        self.pair_mlp = (nn.Sequential(nn.Linear(PAIR_DIM, 32), nn.GELU(), nn.Linear(32, cfg.heads))
                         if cfg.relation_bias else None)
        if cfg.output == "scene":
            self.pool_query = nn.Parameter(torch.randn(w) / w**0.5)
            self.pool_key = nn.Linear(w, w)
        self.out = nn.Linear(w, out_dim)

    @property
    def object_level(self) -> bool:
        return self.cfg.output == "objects"

    def contextual(self, batch: SceneBatch) -> torch.Tensor:
        """(B, N, width) every token after the transformer (padded tokens are defined but meaningless)."""
        h = self.label_proj(batch.label_emb) + self.geom_mlp(batch.geom)
        if self.pointnet is not None and batch.points is not None:
            h = h + self.pointnet(batch.points)
        if self.pair_mlp is None:
            return self.norm(self.blocks(h, src_key_padding_mask=~batch.mask))
        bias = self.pair_mlp(pair_features(batch.geom)).permute(0, 3, 1, 2)  # (B, heads, N, N)
        bias = bias.masked_fill(~batch.mask[:, None, None, :], float("-inf"))  # padded keys are never attended
        for layer in self.blocks.layers:
            h = _biased_layer(layer, h, bias)
        return self.norm(h)

    def objects(self, batch: SceneBatch) -> torch.Tensor:
        """(B, N, out_dim) L2-normalised object-in-context vectors (read them where batch.mask is True)."""
        return nn.functional.normalize(self.out(self.contextual(batch)), dim=-1)

    def forward(self, batch: SceneBatch) -> torch.Tensor:
        """(B, out_dim) L2-normalised scene embeddings ("scene"), or (B, N, out_dim) object vectors ("objects")."""
        if self.object_level:
            return self.objects(batch)
        h = self.contextual(batch)
        # Attention pooling: one learned query attends over the real objects.
        scores = self.pool_key(h) @ self.pool_query / h.shape[-1] ** 0.5
        weights = scores.masked_fill(~batch.mask, float("-inf")).softmax(dim=1)
        pooled = (weights.unsqueeze(-1) * h).sum(dim=1)
        return nn.functional.normalize(self.out(pooled), dim=-1)
