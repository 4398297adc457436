"""Building an encoded gallery (`ideal.store`) in shards: the work unit of `jobs/encode_scenes.py`, which
spreads shards over Ray Data actors, and of `ideal.build.ensure_gallery`, which runs them in one process.

A shard is a slice of the sorted scene ids. Its outputs are written whole or not at all: the scene and memory
tables under OUT/shards/tables/part-i/, and each encoding's embeddings under OUT/shards/NAME/part-i.parquet; a
late-interaction encoding (a scene scored by its best object) also its object vectors, part-i.objects.parquet,
written before part-i.parquet, and the shard is done when both are there.
`plan_shards` records what made them (plan.json), so a re-run skips exactly the finished outputs and adding an
encoding to a gallery encodes only that. `finish_gallery` merges the shards into G. Pure, Ray-free.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import checkpoints
from ..io import atomic_write
from ..scenes import labelmap, parquet, scannet
from ..scenes.dataset import attach_descriptions, build_memories, read_descriptions
from ..scenes.types import FormatError, SceneMemory
from ..dialog.knowledge import scene_knowledge
from ..store import (KNOWLEDGE_SCHEMA, SUMMARIES_SCHEMA, knowledge_tables, memories_table, write_encoding,
                     write_tables)
from .embeddings import read_embeddings, write_embeddings
from .objects import ObjectVectors, read_objects, write_objects

PLAN_FILE = "plan.json"
TABLES = "tables"


class Source:
    """Where a gallery's scenes and descriptions come from (JSON-able, so Ray Data actors can rebuild it):
    ScanNet scan folders (`scannet_dir`, labels mapped with `label_map`) or a scenes parquet file, plus the
    ScanRefer / Nr3D / Sr3D files whose descriptions become the queries and the fine memories. The gallery is
    `scene_ids` if given, else the scenes the description files refer to, else every scene found."""

    def __init__(self, scannet_dir: Optional[str] = None, label_map: Optional[str] = None,
                 scenes_parquet: Optional[str] = None, scanrefer: Optional[str] = None, nr3d: Optional[str] = None,
                 sr3d: Optional[str] = None, scene_ids: Optional[list[str]] = None):
        if (scannet_dir is None) == (scenes_parquet is None):
            raise ValueError("give exactly one of scannet_dir and scenes_parquet")
        if scenes_parquet and label_map:
            raise ValueError("a scenes parquet file holds mapped labels already: give it without a label map")
        absolute = lambda p: str(Path(p).resolve()) if p else None  # noqa: E731
        self.scannet_dir, self.label_map, self.scenes_parquet = map(absolute, (scannet_dir, label_map, scenes_parquet))
        self.scanrefer, self.nr3d, self.sr3d = map(absolute, (scanrefer, nr3d, sr3d))
        self.scene_ids = sorted(scene_ids) if scene_ids is not None else None  # a subset of the scans (a split)

    def to_dict(self) -> dict:
        return dict(vars(self))

    def list_scene_ids(self) -> list[str]:
        if self.scenes_parquet:
            found = parquet.list_scene_ids(self.scenes_parquet)
        else:
            found = sorted(scannet.list_scans(self.scannet_dir))
        if self.scene_ids is None and not (self.scanrefer or self.nr3d or self.sr3d):
            return found
        if self.scene_ids is None:  # the scenes the description files refer to, as ideal.scenes.load reads them
            on_disk, wanted = set(found), set()
            for path, where, d in read_descriptions(self.scanrefer, self.nr3d, self.sr3d):
                if d.scene_id not in on_disk:
                    raise FormatError(path, where, f"scene {d.scene_id} is not in "
                                      f"{self.scenes_parquet or self.scannet_dir}")
                wanted.add(d.scene_id)
            return sorted(wanted)
        missing = sorted(set(self.scene_ids) - set(found))
        if missing:
            raise ValueError(f"scene(s) {missing[:5]} not found in {self.scenes_parquet or self.scannet_dir}")
        return list(self.scene_ids)

    def fingerprint(self) -> dict:
        """What the tables depend on: the paths, and the description files' and label map's bytes."""
        out = self.to_dict()
        if out["scene_ids"] is not None:
            out["scene_ids"] = hashlib.sha256("\n".join(out["scene_ids"]).encode()).hexdigest()
        for key in ("label_map", "scanrefer", "nr3d", "sr3d"):
            if out[key]:
                out[key + "_sha256"] = hashlib.sha256(Path(out[key]).read_bytes()).hexdigest()
        return out


class ShardEncoder:
    """Reads shards of scenes and writes their tables and encodings; the retrievers are loaded once.

    encodings: {name: checkpoint} (a checkpoint folder, a shipped name, or "labels")."""

    def __init__(self, source: dict, encodings: dict[str, str], text_encoder=None):
        from .. import build

        self.source = Source(**source)
        text = text_encoder or build.text_encoder()
        self.retrievers = {name: build.retriever(ckpt, text) for name, ckpt in encodings.items()}
        self.label_map = (labelmap.read_label_map(self.source.label_map, to_column="category")
                          if self.source.label_map else None)
        self.descriptions = read_descriptions(self.source.scanrefer, self.source.nr3d, self.source.sr3d)
        # point samples only for a scene encoder that uses them (mesh sampling is most of a scan's read)
        self.points_per_object = max([_points_per_object(r) for r in self.retrievers.values()] + [0])

    def read(self, scene_ids: list[str]):
        if self.source.scenes_parquet:  # in the order asked for (the file's order may be any)
            path = self.source.scenes_parquet
            by_id = {s.scene_id: s for s in parquet.read_scenes(path, scene_ids=list(scene_ids))}
            scenes = [by_id[i] for i in scene_ids]
            if self.points_per_object:
                bare = [s.scene_id for s in scenes if any(o.points is None for o in s.objects)]
                if bare:
                    raise ValueError(f"{path}: the checkpoint's scene encoder uses points, but scene(s) {bare[:5]} "
                                     "have objects without points (write_scenes(..., with_points=True))")
            return scenes
        return list(scannet.read_scans(self.source.scannet_dir, scene_ids=list(scene_ids), label_map=self.label_map,
                                       points_per_object=self.points_per_object))

    def encode(self, scene_ids: list[str], tables: Optional[str], encodings: dict[str, str]) -> int:
        """Read `scene_ids`; write their tables to the folder `tables` (if given) and each named encoding to its
        path. Every output appears whole or not at all, and one already there is kept (Ray runs a task again when
        its node is lost, also one that had written its outputs). Returns the number of scenes."""
        tables = tables if tables and not Path(tables).exists() else None
        encodings = {name: path for name, path in encodings.items()
                     if not shard_done(Path(path), self.retrievers[name].late_interaction)}
        if not tables and not encodings:
            return len(scene_ids)
        scenes = self.read(scene_ids)
        if tables:
            by_id = {s.scene_id: s for s in scenes}
            memories = build_memories(by_id, attach_descriptions(self.descriptions, by_id))
            tmp = Path(tables).with_name(Path(tables).name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            parquet.write_scenes(scenes, tmp / "scenes.parquet", with_points=False)
            pq.write_table(memories_table([memories[s.scene_id] for s in scenes]), tmp / "memories.parquet")
            knowledge, summaries = knowledge_tables(*scene_knowledge(scenes))
            pq.write_table(knowledge, tmp / "knowledge.parquet")
            pq.write_table(summaries, tmp / "summaries.parquet")
            try:
                tmp.replace(tables)
            except OSError:  # another attempt wrote it meanwhile: keep that one
                if not Path(tables).is_dir():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        ids = [s.scene_id for s in scenes]
        for name, path in encodings.items():
            retriever = self.retrievers[name]
            if retriever.late_interaction:
                objects = retriever.encode_objects(scenes)
                atomic_write(objects_path(path), lambda tmp: write_objects(tmp, ids, objects))
                vectors = objects.pooled()  # what encode_scenes gives, without encoding the scenes again
            else:
                vectors = np.asarray(retriever.encode_scenes(scenes), np.float32)
            # last: a shard whose embeddings file is there has all its files (see shard_done)
            atomic_write(path, lambda tmp: write_embeddings(tmp, ids, vectors))
        return len(scenes)


def objects_path(path: str | Path) -> Path:
    """The object vectors file of the encoding shard `path` (part-i.parquet -> part-i.objects.parquet)."""
    path = Path(path)
    return path.with_name(path.stem + ".objects.parquet")


def shard_done(path: Path, objects: bool) -> bool:
    """Whether the encoding shard `path` is written: its embeddings and, for object vectors, those too."""
    return path.exists() and (not objects or objects_path(path).exists())


def scores_objects(checkpoint) -> bool:
    """Whether a checkpoint's retriever scores scenes by their best object (its config's scene_encoder.output is
    "objects"), read off its config.json without loading the model."""
    target = checkpoints.resolve(checkpoint)
    if target == checkpoints.LABELS:
        return False
    path = Path(target) / "config.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise FormatError(path, "", f"not a retriever config ({e})") from None
    section = cfg.get("scene_encoder") if isinstance(cfg, dict) else None
    return isinstance(section, dict) and section.get("output") == "objects"


def _plan_scores_objects(folder: Path) -> bool:
    """Whether the encoding shards in `folder` are of object vectors, as their plan.json records."""
    plan = folder / PLAN_FILE
    return plan.is_file() and json.loads(plan.read_text()).get("scoring") == "objects"


def _points_per_object(retriever) -> int:
    se = retriever.cfg.scene_encoder if hasattr(retriever, "cfg") else None
    return se.points_per_object if se is not None and se.use_points else 0


def plan_shards(out_dir: str | Path, shards: list[list[str]], **what) -> list[Path]:
    """The shard outputs of `shards` under out_dir (part-00000 ...), after checking that finished ones there
    belong to the same plan: the same scenes in the same shards, made from the same inputs (`what`). Written
    on first use; a different plan for the same folder is refused, naming what differs."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256("\n".join("\t".join(s) for s in shards).encode()).hexdigest()
    plan = {**{k: v if isinstance(v, (dict, list)) else str(v) for k, v in what.items()}, "shards": len(shards),
            "scenes": sum(map(len, shards)), "shard_ids_sha256": digest}
    path = out_dir / PLAN_FILE
    if not path.is_file() and any(out_dir.glob("part-*")):
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
        atomic_write(path, json.dumps(plan, indent=1) + "\n")
    return [out_dir / f"part-{i:05d}" for i in range(len(shards))]


def gallery_plan(out: str | Path, source: Source, encodings: dict[str, str], shard_size: int
                 ) -> tuple[list[list[str]], list[Path], dict[str, list[Path]]]:
    """(shards of scene ids, table shard folders, {encoding: embedding shard files}) of a gallery build."""
    if shard_size < 1:
        raise ValueError(f"shard size must be >= 1, got {shard_size}")
    ids = source.list_scene_ids()
    if not ids:
        raise ValueError(f"no scenes found in {source.scenes_parquet or source.scannet_dir}")
    shards = [ids[i:i + shard_size] for i in range(0, len(ids), shard_size)]
    shard_root = Path(out) / "shards"
    tables = plan_shards(shard_root / TABLES, shards, source=source.fingerprint())
    embedded = {}
    for name, ckpt in encodings.items():
        if name == TABLES:
            raise ValueError(f"an encoding may not be named {TABLES!r}")
        # only object-vector plans name their scoring: older plans of pooled encodings stay valid
        scoring = {"scoring": "objects"} if scores_objects(ckpt) else {}
        parts = plan_shards(shard_root / name, shards, source=source.fingerprint(), checkpoint=str(ckpt),
                            checkpoint_sha256=checkpoints.digest(ckpt), **scoring)
        embedded[name] = [p.with_suffix(".parquet") for p in parts]
    return shards, tables, embedded


def pending_work(shards, tables, embedded) -> list[dict]:
    """One row per shard with something left to write (the rows Ray Data hands the actors)."""
    rows = []
    objects = {name: bool(paths) and _plan_scores_objects(paths[0].parent) for name, paths in embedded.items()}
    for i, ids in enumerate(shards):
        todo = {name: str(paths[i]) for name, paths in embedded.items() if not shard_done(paths[i], objects[name])}
        table = None if tables[i].exists() else str(tables[i])
        if todo or table:
            rows.append({"scene_ids": list(ids), "tables": table, "encodings": todo})
    return rows


def _knowledge_of_shard(table_dir: Path) -> tuple[pa.Table, pa.Table]:
    """A table shard's knowledge and summaries tables (computed here for a shard written without them)."""
    files = [table_dir / "knowledge.parquet", table_dir / "summaries.parquet"]
    if not all(f.is_file() for f in files):
        return knowledge_tables(*scene_knowledge(parquet.read_scenes(table_dir / "scenes.parquet")))
    return pq.read_table(files[0], schema=KNOWLEDGE_SCHEMA), pq.read_table(files[1], schema=SUMMARIES_SCHEMA)


def merge_embeddings(paths: list[Path]) -> tuple[list[str], np.ndarray]:
    """All shards' (ids, vectors) in shard order; a repeated scene id is an error."""
    ids, vecs = [], []
    for p in paths:
        i, v = read_embeddings(p)
        ids += i
        vecs.append(v)
    if len(set(ids)) != len(ids):
        raise ValueError("a scene appears in more than one shard")
    return ids, np.concatenate(vecs) if vecs else np.zeros((0, 0), np.float32)


def merge_objects(paths: list[Path], dim: int) -> ObjectVectors:
    """All shards' object vectors in shard order (each shard's scenes as its embeddings file lists them)."""
    return ObjectVectors.concatenate([read_objects(objects_path(p), read_embeddings(p)[0], dim) for p in paths])


def finish_gallery(out: str | Path, source: Source, tables: list[Path], embedded: dict[str, list[Path]],
                   encodings: dict[str, str], density_k: int, index_kind: str = "auto", ivf_threshold: int = 50_000
                   ) -> None:
    """Merge finished shards into the gallery directory `out` (see `ideal.store`). Every encoding gets a SceneIndex
    over its (pooled) scene vectors, which the router's density uses; a late-interaction one also an ObjectIndex
    over its object vectors. Both are flat below `ivf_threshold` scenes (`ideal.config.IndexConfig`)."""
    from ..dialog.router import mean_knn_distance
    from .index import ObjectIndex, SceneIndex

    scenes = [s for t in tables for s in parquet.read_scenes(t / "scenes.parquet")]
    memory_rows = pa.concat_tables([pq.read_table(t / "memories.parquet") for t in tables]).to_pydict()
    fine: dict[str, list[str]] = {s.scene_id: [] for s in scenes}
    for sid, sentence in zip(memory_rows["scene_id"], memory_rows["sentence"]):  # rows are in position order
        fine[sid].append(sentence)
    by_id = {s.scene_id: s for s in scenes}
    descriptions = attach_descriptions(read_descriptions(source.scanrefer, source.nr3d, source.sr3d), by_id)
    parts = [_knowledge_of_shard(t) for t in tables]
    knowledge = tuple(pa.concat_tables([part[i] for part in parts]) for i in range(2))
    write_tables(out, scenes, descriptions, [SceneMemory(sid, f) for sid, f in fine.items()], source.to_dict(),
                 knowledge)
    for name, paths in embedded.items():
        ids, vectors = merge_embeddings(paths)
        order = np.argsort(ids, kind="stable")
        ids, vectors = [ids[i] for i in order], vectors[order]
        index = SceneIndex.build(ids, vectors, kind=index_kind, ivf_threshold=ivf_threshold)
        objects = object_index = None
        if paths and _plan_scores_objects(paths[0].parent):
            objects = merge_objects(paths, vectors.shape[1]).take(order)
            object_index = ObjectIndex.build(ids, objects, kind=index_kind, ivf_threshold=ivf_threshold)
        write_encoding(out, name, str(encodings[name]), ids, vectors, mean_knn_distance(vectors, density_k, index),
                       density_k, index, objects, object_index)
