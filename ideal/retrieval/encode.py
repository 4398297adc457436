"""Scene encoding in shards: scans in, one embeddings parquet per shard out (the work unit of
`jobs/encode_scenes.py`, which spreads shards over Ray Data actors). Pure, Ray-free, idempotent per shard."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..scenes import labelmap, scannet
from .embeddings import read_embeddings, write_embeddings


class ShardEncoder:
    """Holds the retriever (loaded once) and encodes shards of scans to parquet."""

    def __init__(self, weights: str, scannet_dir: str, label_map: Optional[str] = None, retriever: str = "trained"):
        from ..encoders.text import TextEncoder
        from .retriever import BagOfLabelsRetriever, TrainedRetriever

        text = TextEncoder()
        self.retriever = (BagOfLabelsRetriever(text) if retriever == "labels"
                          else TrainedRetriever.from_checkpoint(weights, text))
        self.scannet_dir = Path(scannet_dir)
        self.label_map = labelmap.read_label_map(label_map, to_column="category") if label_map else None

    def encode(self, scene_ids: list[str], out_path: str | Path) -> int:
        """Encode `scene_ids` into `out_path` (written whole or not at all); returns the number of scenes."""
        out_path = Path(out_path)
        scenes = list(scannet.read_scans(self.scannet_dir, scene_ids=list(scene_ids), label_map=self.label_map,
                                         points_per_object=0))
        vectors = self.retriever.encode_scenes(scenes)
        tmp = out_path.with_name(out_path.name + ".tmp")
        write_embeddings(tmp, [s.scene_id for s in scenes], np.asarray(vectors, np.float32))
        tmp.replace(out_path)
        return len(scenes)


def shard_paths(out_dir: str | Path, n_shards: int) -> list[Path]:
    return [Path(out_dir) / f"part-{i:05d}.parquet" for i in range(n_shards)]


def merge_shards(paths: list[Path]) -> tuple[list[str], np.ndarray]:
    """All shards' (ids, vectors) in shard order; a repeated scene id is an error."""
    ids, vecs = [], []
    for p in paths:
        i, v = read_embeddings(p)
        ids += i
        vecs.append(v)
    if len(set(ids)) != len(ids):
        raise ValueError("a scene appears in more than one shard")
    return ids, np.concatenate(vecs) if vecs else np.zeros((0, 0), np.float32)
