"""An encoded gallery directory: what evaluation and serving start from, so neither reads a scan or re-encodes.

    G/gallery.json            manifest: format, scenes, where scenes and descriptions came from, encodings
    G/scenes.parquet          one row per object (`ideal.scenes.parquet`'s schema; points left out)
    G/descriptions.parquet    desc_id, scene_id, object_id, object_name, text, source
    G/memories.parquet        scene_id, position, sentence: each scene's fine memory, in order
    G/knowledge.parquet       scene_id, aspect, value: what the questioner reads off each scene's 3D data
                              (`ideal.dialog.knowledge.scene_values`)
    G/summaries.parquet       scene_id, position, sentence: each scene's `scene_summary`, in order
    G/encodings/NAME/embeddings.parquet   one row per scene (`ideal.retrieval.embeddings`), scene-id order
    G/encodings/NAME/index.faiss          `SceneIndex` over them (flat, or IVF for large galleries)
    G/encodings/NAME/knn.parquet          scene_id, mean_knn_distance: the router's density ρ, for `density_k`
  and, for a late-interaction retriever (a scene scored by its best object, `ideal.retrieval.objects`):
    G/encodings/NAME/objects.parquet      scene_id, object_id, embedding: every scene's object vectors, grouped
                                          by scene in scene-id order (embeddings.parquet then holds their pooled
                                          means, which only the router's density reads)
    G/encodings/NAME/objects.faiss        `ObjectIndex` over the object vectors (flat, or IVF for large galleries)

The manifest's entry of an encoding records its `scoring`: "objects" (late interaction) or "scene".

An encoding is one retriever's scene embeddings, named after its checkpoint ("base", "iat", "labels", ...) and
found by the checkpoint's digest, so evaluating with other weights than a gallery holds is an error, not a
silent mismatch. `jobs/encode_scenes.py` writes G with Ray Data; `ideal.build.ensure_gallery` in-process.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import checkpoints
from .io import atomic_write
from .scenes import parquet as scene_parquet
from .scenes.dataset import SceneDataset
from .scenes.types import Description, FormatError, Scene, SceneMemory

FORMAT = "ideal.gallery/2"  # /2: late-interaction encodings (object vectors and their index)
MANIFEST = "gallery.json"
DESCRIPTIONS_SCHEMA = pa.schema([
    pa.field("desc_id", pa.string(), nullable=False), pa.field("scene_id", pa.string(), nullable=False),
    pa.field("object_id", pa.int32(), nullable=False), pa.field("object_name", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False), pa.field("source", pa.string(), nullable=False)])
MEMORIES_SCHEMA = pa.schema([
    pa.field("scene_id", pa.string(), nullable=False), pa.field("position", pa.int32(), nullable=False),
    pa.field("sentence", pa.string(), nullable=False)])
KNOWLEDGE_SCHEMA = pa.schema([
    pa.field("scene_id", pa.string(), nullable=False), pa.field("aspect", pa.string(), nullable=False),
    pa.field("value", pa.string(), nullable=False)])
SUMMARIES_SCHEMA = MEMORIES_SCHEMA
KNN_SCHEMA = pa.schema([pa.field("scene_id", pa.string(), nullable=False),
                        pa.field("mean_knn_distance", pa.float64(), nullable=False)])


def _write_parquet(path: Path, table: pa.Table) -> None:
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def _read_parquet(path: Path, schema: pa.Schema) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise FormatError(path, "", f"not a readable parquet file: {e}") from None
    missing = [n for n in schema.names if n not in table.column_names]
    if missing:
        raise FormatError(path, "schema", f"missing column(s) {missing}; found {table.column_names}")
    try:
        table = table.select(schema.names).cast(pa.schema([f.with_nullable(True) for f in schema]))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as e:
        raise FormatError(path, "schema", f"columns do not match {schema.names}: {e}") from None
    for name in schema.names:
        col = table.column(name)
        if col.null_count:
            row = next(i for i, v in enumerate(col.to_pylist()) if v is None)
            raise FormatError(path, f"row {row}", f"'{name}' is null")
    return table


def descriptions_table(descs: list[Description]) -> pa.Table:
    cols = {n: [getattr(d, n) for d in descs] for n in DESCRIPTIONS_SCHEMA.names}
    return pa.Table.from_pydict(cols, schema=DESCRIPTIONS_SCHEMA)


def memories_table(memories: list[SceneMemory]) -> pa.Table:
    rows = [(m.scene_id, i, s) for m in memories for i, s in enumerate(m.fine)]
    return pa.Table.from_arrays([pa.array([r[j] for r in rows], f.type) for j, f in enumerate(MEMORIES_SCHEMA)],
                                schema=MEMORIES_SCHEMA)


def knowledge_tables(ids: list[str], values: list[dict[str, str]], summaries: list[tuple[str, ...]]
                     ) -> tuple[pa.Table, pa.Table]:
    """The knowledge and summaries tables of scenes (see `ideal.dialog.knowledge.scene_knowledge`)."""
    rows = [(sid, a, v) for sid, vals in zip(ids, values) for a, v in vals.items()]
    knowledge = pa.Table.from_arrays([pa.array([r[j] for r in rows], pa.string()) for j in range(3)],
                                     schema=KNOWLEDGE_SCHEMA)
    sums = [(sid, i, sentence) for sid, sents in zip(ids, summaries) for i, sentence in enumerate(sents)]
    summary = pa.Table.from_arrays([pa.array([r[j] for r in sums], f.type) for j, f in enumerate(SUMMARIES_SCHEMA)],
                                   schema=SUMMARIES_SCHEMA)
    return knowledge, summary


def write_tables(out: str | Path, scenes: list[Scene], descriptions: list[Description],
                 memories: list[SceneMemory], source: dict, knowledge: Optional[tuple] = None) -> None:
    """The scene, description, memory and knowledge tables of G and its manifest (no encodings yet).
    knowledge: (knowledge table, summaries table) of the scenes if already made, else made here."""
    from .dialog.knowledge import scene_knowledge

    out = Path(out)
    scenes = sorted(scenes, key=lambda s: s.scene_id)
    _write_parquet(out / "scenes.parquet", scene_parquet.scenes_to_table(scenes, with_points=False))
    _write_parquet(out / "descriptions.parquet", descriptions_table(descriptions))
    _write_parquet(out / "memories.parquet", memories_table(sorted(memories, key=lambda m: m.scene_id)))
    knowledge = knowledge or knowledge_tables(*scene_knowledge(scenes))
    _write_parquet(out / "knowledge.parquet", knowledge[0])
    _write_parquet(out / "summaries.parquet", knowledge[1])
    old = {}
    if (out / MANIFEST).is_file():
        old = _load_manifest(out / MANIFEST)
        # an older format is being rebuilt: its scenes must match, its encodings are written again
        old = {"scene_ids": old.get("scene_ids"), "encodings": {}} if _older(old) else read_manifest(out)
    ids = [s.scene_id for s in scenes]
    if old and old.get("scene_ids") != ids:
        raise ValueError(f"{out}: holds a gallery of other scenes; use another folder or delete it")
    manifest = {"format": FORMAT, "scenes": len(ids), "source": source, "scene_ids": ids,
                "encodings": old.get("encodings", {})}
    atomic_write(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")


def write_encoding(out: str | Path, name: str, checkpoint: str, ids: list[str], vectors: np.ndarray,
                   mean_knn_distance: np.ndarray, density_k: int, index, objects=None, object_index=None) -> None:
    """One retriever's embeddings, density and index into G (after `write_tables`; same scenes, same order); for a
    late-interaction retriever also its object vectors (an ObjectVectors) and their ObjectIndex."""
    from .retrieval.embeddings import write_embeddings
    from .retrieval.objects import write_objects

    out = Path(out)
    manifest = read_manifest(out)
    if list(ids) != manifest["scene_ids"]:
        raise ValueError(f"{out}: encoding {name!r} is of other scenes than the gallery's tables")
    if (objects is None) != (object_index is None):
        raise ValueError(f"encoding {name!r}: object vectors and their index go together")
    if object_index is not None and object_index.ids != list(ids):
        raise ValueError(f"encoding {name!r}: the object index is of other scenes than the gallery's tables")
    where = out / "encodings" / name
    where.mkdir(parents=True, exist_ok=True)
    atomic_write(where / "embeddings.parquet", lambda tmp: write_embeddings(tmp, ids, vectors))
    _write_parquet(where / "knn.parquet", pa.Table.from_arrays(
        [pa.array(ids, pa.string()), pa.array(np.asarray(mean_knn_distance, np.float64))], schema=KNN_SCHEMA))
    index.save(where / "index.faiss")
    entry = {"checkpoint": str(checkpoint), "sha256": checkpoints.digest(checkpoint),
             "dim": int(np.asarray(vectors).shape[1]), "density_k": int(density_k), "index": index.kind,
             "scoring": "scene"}
    if objects is not None:
        atomic_write(where / "objects.parquet", lambda tmp: write_objects(tmp, ids, objects))
        object_index.save(where / "objects.faiss")
        entry.update(scoring="objects", object_index=object_index.kind, objects=int(len(objects.vectors)))
    manifest["encodings"][name] = entry
    atomic_write(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")


def rebuild_command(path: Path, source: dict) -> str:
    """The command that writes the gallery `path` again from the `source` its manifest records."""
    if source.get("scene_ids") is not None:  # a split of the synthetic benchmark
        return f"python jobs/encode_scenes.py --split {{train,dev,val}} --out {path}"
    flags = [f"--{key.replace('_', '-')} {source[key]}" for key in
             ("scannet_dir", "label_map", "scenes_parquet", "scanrefer", "nr3d", "sr3d") if source.get(key)]
    return " ".join(["python jobs/encode_scenes.py", *(flags or ["..."]), f"--out {path}"])


def _load_manifest(f: Path) -> dict:
    if not f.is_file():
        raise FormatError(f, "", "missing: not an encoded gallery (write one with jobs/encode_scenes.py --out)")
    try:
        manifest = json.loads(f.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f, "", f"not JSON ({e})") from None
    if not isinstance(manifest, dict):
        raise FormatError(f, "", "not a JSON object")
    return manifest


def _older(manifest: dict) -> bool:
    fmt = manifest.get("format")
    return isinstance(fmt, str) and fmt.startswith("ideal.gallery/") and fmt != FORMAT


def read_manifest(path: str | Path) -> dict:
    f = Path(path) / MANIFEST
    manifest = _load_manifest(f)
    if _older(manifest):
        source = manifest.get("source") if isinstance(manifest.get("source"), dict) else {}
        raise FormatError(f, "format", f"written by an older version ({manifest['format']}; this one reads "
                          f"{FORMAT}): rebuild it with {rebuild_command(Path(path), source)}, or delete it (the "
                          "default gallery is rebuilt on next use)")
    if manifest.get("format") != FORMAT:
        raise FormatError(f, "format", f"expected {FORMAT!r}")
    for key, typ in (("scene_ids", list), ("encodings", dict), ("source", dict)):
        if not isinstance(manifest.get(key), typ):
            raise FormatError(f, key, f"missing or not a {typ.__name__}")
    return manifest


class GalleryDir:
    """A gallery directory opened for reading (see the module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path).resolve()
        self.manifest = read_manifest(self.path)
        self.ids: list[str] = list(self.manifest["scene_ids"])

    def __repr__(self) -> str:
        return f"GalleryDir({self.path}, {len(self.ids)} scenes, encodings {sorted(self.manifest['encodings'])})"

    def scenes(self) -> list[Scene]:
        scenes = scene_parquet.read_scenes(self.path / "scenes.parquet")
        if sorted(s.scene_id for s in scenes) != self.ids:
            raise FormatError(self.path / "scenes.parquet", "scene_id", f"does not hold the {len(self.ids)} scenes "
                              f"{MANIFEST} lists")
        return sorted(scenes, key=lambda s: s.scene_id)

    def descriptions(self) -> list[Description]:
        path = self.path / "descriptions.parquet"
        cols = _read_parquet(path, DESCRIPTIONS_SCHEMA).to_pydict()
        known = set(self.ids)
        out = []
        for row, values in enumerate(zip(*(cols[n] for n in DESCRIPTIONS_SCHEMA.names))):
            d = Description(*values)
            if d.scene_id not in known:
                raise FormatError(path, f"row {row}", f"scene {d.scene_id} is not in the gallery")
            out.append(d)
        return out

    def memories(self) -> dict[str, SceneMemory]:
        path = self.path / "memories.parquet"
        cols = _read_parquet(path, MEMORIES_SCHEMA).to_pydict()
        fine: dict[str, list[tuple[int, str]]] = {sid: [] for sid in self.ids}
        for row, (sid, pos, sentence) in enumerate(zip(cols["scene_id"], cols["position"], cols["sentence"])):
            if sid not in fine:
                raise FormatError(path, f"row {row}", f"scene {sid} is not in the gallery")
            fine[sid].append((pos, sentence))
        return {sid: SceneMemory(sid, [s for _, s in sorted(items)]) for sid, items in fine.items()}

    def knowledge(self):
        """What the questioner reads off the scenes' 3D data (a SceneKnowledge), as the encode job stored it; a
        gallery written before it was stored gets it computed from its scenes."""
        from .dialog.knowledge import SceneKnowledge

        path, spath = self.path / "knowledge.parquet", self.path / "summaries.parquet"
        if not (path.is_file() and spath.is_file()):
            return SceneKnowledge(self.scenes())
        row = {sid: i for i, sid in enumerate(self.ids)}
        values: list[dict[str, str]] = [{} for _ in self.ids]
        cols = _read_parquet(path, KNOWLEDGE_SCHEMA).to_pydict()
        for r, (sid, aspect, value) in enumerate(zip(cols["scene_id"], cols["aspect"], cols["value"])):
            i = row.get(sid)
            if i is None:
                raise FormatError(path, f"row {r}", f"scene {sid} is not in the gallery")
            values[i][aspect] = value
        summaries: list[list[tuple[int, str]]] = [[] for _ in self.ids]
        cols = _read_parquet(spath, SUMMARIES_SCHEMA).to_pydict()
        for r, (sid, pos, sentence) in enumerate(zip(cols["scene_id"], cols["position"], cols["sentence"])):
            i = row.get(sid)
            if i is None:
                raise FormatError(spath, f"row {r}", f"scene {sid} is not in the gallery")
            summaries[i].append((pos, sentence))
        return SceneKnowledge.from_values(self.ids, values, [tuple(s for _, s in sorted(x)) for x in summaries])

    def dataset(self, queries: Optional[list[Description]] = None) -> SceneDataset:
        """Scenes, descriptions (G's, or `queries` read elsewhere) and memories, as `ideal.scenes.load` gives."""
        scenes = {s.scene_id: s for s in self.scenes()}
        return SceneDataset(scenes, self.descriptions() if queries is None else queries, self.memories())

    def encoding_name(self, checkpoint) -> str:
        """The encoding made with `checkpoint` (found by its digest); an error saying how to add it if none."""
        sha = checkpoints.digest(checkpoint)
        for name, enc in self.manifest["encodings"].items():
            if enc.get("sha256") == sha:
                return name
        have = ", ".join(f"{n} ({e.get('checkpoint')})" for n, e in self.manifest["encodings"].items()) or "none"
        raise ValueError(f"{self.path}: no encoding made with {checkpoint} (encodings: {have}); add it with "
                         f"python jobs/encode_scenes.py ... --weights {checkpoint} --out {self.path}")

    def embeddings(self, name: str) -> np.ndarray:
        from .retrieval.embeddings import read_embeddings

        path = self.path / "encodings" / name / "embeddings.parquet"
        ids, vectors = read_embeddings(path)
        if ids != self.ids:
            raise FormatError(path, "scene_id", f"rows are not the gallery's {len(self.ids)} scenes in order")
        return vectors

    def mean_knn_distance(self, name: str) -> tuple[int, np.ndarray]:
        """(k, each scene's mean distance to its k nearest other scenes) of an encoding."""
        path = self.path / "encodings" / name / "knn.parquet"
        cols = _read_parquet(path, KNN_SCHEMA).to_pydict()
        if cols["scene_id"] != self.ids:
            raise FormatError(path, "scene_id", f"rows are not the gallery's {len(self.ids)} scenes in order")
        return int(self.manifest["encodings"][name]["density_k"]), np.asarray(cols["mean_knn_distance"], np.float64)

    def index(self, name: str):
        from .retrieval.index import SceneIndex

        index = SceneIndex.load(self.path / "encodings" / name / "index.faiss")
        if index.ids != self.ids:
            raise FormatError(self.path / "encodings" / name / "index.faiss.meta.json", "ids",
                              "not the gallery's scenes in order")
        return index

    def scores_objects(self, name: str) -> bool:
        """True for a late-interaction encoding (a scene scored by its best object vector)."""
        return self.manifest["encodings"][name].get("scoring") == "objects"

    def objects(self, name: str):
        """A late-interaction encoding's object vectors (an `ObjectVectors` of the gallery's scenes in order);
        None for an encoding of pooled scene vectors."""
        from .retrieval.objects import read_objects

        if not self.scores_objects(name):
            return None
        return read_objects(self.path / "encodings" / name / "objects.parquet", self.ids,
                            int(self.manifest["encodings"][name]["dim"]))

    def object_index(self, name: str):
        """A late-interaction encoding's `ObjectIndex`; None for an encoding of pooled scene vectors."""
        from .retrieval.index import ObjectIndex

        if not self.scores_objects(name):
            return None
        path = self.path / "encodings" / name / "objects.faiss"
        index = ObjectIndex.load(path)
        if index.ids != self.ids:
            raise FormatError(f"{path}.meta.json", "ids", "not the gallery's scenes in order")
        return index
