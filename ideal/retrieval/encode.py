"""Scene encoding in shards: scenes in (ScanNet scan folders or a scenes parquet file), one embeddings
parquet per shard out (the work unit of `jobs/encode_scenes.py`, which spreads shards over Ray Data actors).
Pure, Ray-free, idempotent per shard; `plan_shards` makes a re-run skip exactly the finished shards."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

import numpy as np

from ..scenes import labelmap, parquet, scannet
from .embeddings import read_embeddings, write_embeddings

PLAN_FILE = "plan.json"


class ShardEncoder:
    """Holds the retriever (loaded once) and encodes shards of scenes to parquet.

    Scenes come from `scannet_dir` (scan folders, labels mapped with `label_map`) or `scenes_parquet`
    (the one-row-per-object scene table of `ideal.scenes.parquet`)."""

    def __init__(self, weights: str, scannet_dir: Optional[str] = None, label_map: Optional[str] = None,
                 retriever: str = "trained", scenes_parquet: Optional[str] = None):
        from ..encoders.text import TextEncoder
        from .retriever import BagOfLabelsRetriever, TrainedRetriever

        if (scannet_dir is None) == (scenes_parquet is None):
            raise ValueError("give exactly one of scannet_dir and scenes_parquet")
        text = TextEncoder()
        self.retriever = (BagOfLabelsRetriever(text) if retriever == "labels"
                          else TrainedRetriever.from_checkpoint(weights, text))
        self.scannet_dir = Path(scannet_dir) if scannet_dir else None
        self.scenes_parquet = scenes_parquet
        self.label_map = labelmap.read_label_map(label_map, to_column="category") if label_map else None
        se = getattr(getattr(self.retriever, "cfg", None), "scene_encoder", None)
        # read point samples only for a scene encoder that uses them (mesh sampling is most of a scan's read)
        self.points_per_object = se.points_per_object if se is not None and se.use_points else 0

    def read(self, scene_ids: list[str]):
        if self.scenes_parquet:  # in the order asked for (the file's order may be any)
            by_id = {s.scene_id: s for s in parquet.read_scenes(self.scenes_parquet, scene_ids=list(scene_ids))}
            scenes = [by_id[i] for i in scene_ids]
            if self.points_per_object:
                bare = [s.scene_id for s in scenes if any(o.points is None for o in s.objects)]
                if bare:
                    raise ValueError(f"{self.scenes_parquet}: the checkpoint's scene encoder uses points, but scene(s) "
                                     f"{bare[:5]} have objects without points (write_scenes(..., with_points=True))")
            return scenes
        return list(scannet.read_scans(self.scannet_dir, scene_ids=list(scene_ids), label_map=self.label_map,
                                       points_per_object=self.points_per_object))

    def encode(self, scene_ids: list[str], out_path: str | Path) -> int:
        """Encode `scene_ids` into `out_path` (written whole or not at all); returns the number of scenes."""
        out_path = Path(out_path)
        scenes = self.read(scene_ids)
        vectors = self.retriever.encode_scenes(scenes)
        tmp = out_path.with_name(out_path.name + ".tmp")
        write_embeddings(tmp, [s.scene_id for s in scenes], np.asarray(vectors, np.float32))
        tmp.replace(out_path)
        return len(scenes)


def shard_paths(out_dir: str | Path, n_shards: int) -> list[Path]:
    return [Path(out_dir) / f"part-{i:05d}.parquet" for i in range(n_shards)]


def files_digest(folder: str | Path) -> str:
    """sha256 over a checkpoint folder's files (names and bytes): weights retrained in place are new weights."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(folder).iterdir() if p.is_file()):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def plan_shards(out_dir: str | Path, shards: list[list[str]], **what) -> list[Path]:
    """The shard files of `shards` under out_dir, after checking that finished shards there belong to the same
    plan: the same scenes in the same shards, encoded from the same source with the same weights (`what`).
    Written on first use; a different plan for the same folder is refused, naming what differs."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256("\n".join("\t".join(s) for s in shards).encode()).hexdigest()
    plan = {**{k: str(v) for k, v in what.items()}, "shards": len(shards), "scenes": sum(map(len, shards)),
            "shard_ids_sha256": digest}
    path = out_dir / PLAN_FILE
    if not path.is_file() and any(out_dir.glob("part-*.parquet")):
        raise ValueError(f"{out_dir}: holds shards but no {PLAN_FILE}, so what encoded them is unknown; "
                         "use another --out or delete the folder")
    if path.is_file():
        old = json.loads(path.read_text())
        differ = sorted(k for k in set(old) | set(plan) if old.get(k) != plan.get(k))
        if differ:
            raise ValueError(f"{path}: this folder holds shards of another encoding (differs in {', '.join(differ)}:"
                             f" {', '.join(f'{k} {old.get(k)!r} -> {plan.get(k)!r}' for k in differ)}); "
                             "use another --out or delete the folder")
    else:
        tmp = path.with_name(PLAN_FILE + ".tmp")
        tmp.write_text(json.dumps(plan, indent=1) + "\n")
        tmp.replace(path)
    return shard_paths(out_dir, len(shards))


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
