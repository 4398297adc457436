"""Training arrays for the retriever: frozen text features per description and padded object tokens per scene.

The text backbone is frozen in base training, so each description's backbone embedding is computed once
and cached on disk; training then touches only the projection head and the scene encoder.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config import SceneEncoderConfig
from ..encoders.scene import LabelBank, SceneBatch, collate_scenes, scene_objects
from ..io import atomic_write
from ..scenes.dataset import SceneDataset


@dataclass
class TrainArrays:
    text_feats: np.ndarray  # (T, text_dim) backbone embeddings of the descriptions
    text_scene: np.ndarray  # (T,) row of each description's scene in the scene arrays
    label_emb: np.ndarray  # (S, N, text_dim)
    geom: np.ndarray  # (S, N, 9)
    mask: np.ndarray  # (S, N) bool
    points: Optional[np.ndarray]  # (S, N, P, 6) or None
    scene_ids: list[str]
    text_slot: Optional[np.ndarray] = None  # (T,) slot of the object each text names in its scene row, -1: none

    def scene_batch(self, rows, device: torch.device | str = "cpu") -> SceneBatch:
        """The scenes at `rows` as a SceneBatch on `device` (the scene encoder's)."""
        rows = np.asarray(rows)
        pts = None if self.points is None else torch.from_numpy(self.points[rows])
        batch = SceneBatch(torch.from_numpy(self.label_emb[rows]), torch.from_numpy(self.geom[rows]),
                           torch.from_numpy(self.mask[rows]), pts)
        return scene_batch_to(batch, device)

    def save(self, path: str | Path) -> None:
        extra = {} if self.points is None else {"points": self.points}
        if self.text_slot is not None:
            extra["text_slot"] = self.text_slot
        np.savez(path, text_feats=self.text_feats, text_scene=self.text_scene, label_emb=self.label_emb,
                 geom=self.geom, mask=self.mask, scene_ids=np.array(self.scene_ids), **extra)

    @classmethod
    def load(cls, path: str | Path) -> "TrainArrays":
        z = np.load(path, allow_pickle=False)
        return cls(z["text_feats"], z["text_scene"], z["label_emb"], z["geom"], z["mask"],
                   z["points"] if "points" in z else None, [str(s) for s in z["scene_ids"]],
                   z["text_slot"] if "text_slot" in z else None)


def scene_batch_to(batch: SceneBatch, device: torch.device | str) -> SceneBatch:
    """A SceneBatch (e.g. from collate_scenes, always on the CPU) with every tensor on `device`."""
    return SceneBatch(batch.label_emb.to(device), batch.geom.to(device), batch.mask.to(device),
                      None if batch.points is None else batch.points.to(device))


def cached_text_features(texts: list[str], embed, model_key: str, cache_dir: Optional[Path]) -> np.ndarray:
    """embed(texts) with an on-disk cache keyed by the model and the exact texts."""
    if cache_dir is None:
        return embed(texts)
    key = hashlib.sha256(json.dumps([model_key, texts]).encode()).hexdigest()[:20]
    path = Path(cache_dir) / f"text-feats-{key}.npy"
    if path.exists():
        return np.load(path)
    feats = embed(texts)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to a path
            np.save(f, feats)

    atomic_write(path, write)
    return feats


def build_train_arrays(ds: SceneDataset, text_encoder, bank: LabelBank, cfg: SceneEncoderConfig,
                       sources=("scanrefer", "nr3d", "sr3d"), cache_dir: Optional[Path] = None,
                       progress: bool = True) -> TrainArrays:
    descs = [d for d in ds.descriptions if d.source in sources]
    if not descs:
        raise ValueError(f"no training descriptions from sources {list(sources)}")
    scene_ids = sorted(ds.scenes)
    row = {sid: i for i, sid in enumerate(scene_ids)}
    feats = cached_text_features([d.text for d in descs],
                                 lambda t: text_encoder.embed_backbone(t, progress=progress),
                                 str(getattr(text_encoder, "model_key", "text")), cache_dir)
    batch = collate_scenes([ds.scenes[s] for s in scene_ids], bank, cfg)
    # collate_scenes puts scene_objects(...) in slots 0..n-1: the slot of the object a description names
    slot_of = {sid: {o.object_id: j for j, o in enumerate(scene_objects(ds.scenes[sid], cfg.max_objects))}
               for sid in scene_ids}
    return TrainArrays(np.asarray(feats, np.float32), np.array([row[d.scene_id] for d in descs]),
                       batch.label_emb.numpy(), batch.geom.numpy(), batch.mask.numpy(),
                       None if batch.points is None else batch.points.numpy(), scene_ids,
                       np.array([slot_of[d.scene_id].get(d.object_id, -1) for d in descs], np.int64))
