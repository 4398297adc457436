"""Object vectors of a gallery and late-interaction scoring: a scene scores as its best object.

A description names ONE object in its room; an object-level retriever embeds every object in the context of its
room (`ideal.encoders.scene.SceneEncoder` with output="objects") and scores

    score(t, scene) = max_{o ∈ objects(scene)} t · o

`ObjectVectors` holds the (O, d) vectors of S scenes back to back, scene i owning rows offsets[i]:offsets[i+1]
(at least one each: a room without objects gets one all-zero vector, which scores 0).

On disk (an encoded gallery's G/encodings/NAME/objects.parquet) one row per object vector:

    scene_id:  string                      not null; rows grouped by scene, scenes in the gallery's order
    object_id: int32                       not null (-1: an empty room's zero row)
    embedding: fixed_size_list<float32>[d] not null, finite
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..scenes.types import FormatError
from .embeddings import EMBEDDING, SCENE_ID, embedding_schema, is_string, read_vectors, text_column

OBJECT_ID = "object_id"
SIMS_PER_CHUNK = 1 << 24  # text-object similarities computed at once by `ObjectVectors.scores` (64 MB)


@dataclass
class ObjectVectors:
    vectors: np.ndarray  # (O, d) float32, L2-normalised rows (a room without objects: one zero row)
    offsets: np.ndarray  # (S + 1,) int64, non-decreasing by at least 1: scene i is rows offsets[i]:offsets[i + 1]
    object_ids: np.ndarray  # (O,) int32: each row's object id in its scene (-1 for an empty room's zero row)

    def __post_init__(self):
        self.vectors = np.ascontiguousarray(self.vectors, np.float32)
        self.offsets = np.asarray(self.offsets, np.int64)
        self.object_ids = np.asarray(self.object_ids, np.int32)
        if self.vectors.ndim != 2:
            raise ValueError(f"object vectors must be (O, d), got shape {self.vectors.shape}")
        if self.offsets.ndim != 1 or len(self.offsets) < 1 or self.offsets[0] != 0 \
                or self.offsets[-1] != len(self.vectors):
            raise ValueError(f"offsets must run from 0 to the {len(self.vectors)} rows, got {self.offsets[:3]}...")
        if np.any(np.diff(self.offsets) < 1):
            raise ValueError(f"scene {int(np.flatnonzero(np.diff(self.offsets) < 1)[0])} has no object rows")
        if self.object_ids.shape != (len(self.vectors),):
            raise ValueError(f"{len(self.object_ids)} object ids for {len(self.vectors)} rows")

    def __len__(self) -> int:
        """The number of scenes."""
        return len(self.offsets) - 1

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def scene_of_row(self) -> np.ndarray:
        """(O,) the scene (0..S-1) of every object row."""
        return np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.offsets))

    def scores(self, text_emb: np.ndarray, scenes: Optional[np.ndarray] = None) -> np.ndarray:
        """(B, S) late-interaction scores max_o t·o of every text against every scene, or (B, len(scenes)) against
        the scenes at the (sorted or not) indices `scenes`."""
        t = np.asarray(text_emb, np.float32)
        sub = self if scenes is None else self.take(scenes)
        if len(sub) == 0 or len(t) == 0:
            return np.zeros((len(t), len(sub)), np.float32)
        out = np.empty((len(t), len(sub)), np.float32)
        step = max(1, SIMS_PER_CHUNK // len(sub.vectors))  # texts at a time: (step, O) similarities in memory
        for i in range(0, len(t), step):
            out[i:i + step] = np.maximum.reduceat(t[i:i + step] @ sub.vectors.T, sub.offsets[:-1], axis=1)
        return out

    def take(self, scenes) -> "ObjectVectors":
        """The object vectors of the scenes at `scenes`, in that order."""
        scenes = np.asarray(scenes, np.int64)
        starts, counts = self.offsets[scenes], np.diff(self.offsets)[scenes]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        rows = np.arange(offsets[-1]) + np.repeat(starts - offsets[:-1], counts)  # scene j's rows from starts[j]
        return ObjectVectors(self.vectors[rows], offsets, self.object_ids[rows])

    def pooled(self) -> np.ndarray:
        """(S, d) one vector per scene: the L2-normalised mean of its object vectors (the router's density and
        the scene-to-scene neighbours use it; scores never do)."""
        sums = np.add.reduceat(self.vectors.astype(np.float64), self.offsets[:-1], axis=0)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        return (sums / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    @classmethod
    def concatenate(cls, parts: list["ObjectVectors"]) -> "ObjectVectors":
        if not parts:
            raise ValueError("no object vectors to concatenate")
        offsets = [np.zeros(1, np.int64)]
        base = 0
        for p in parts:
            offsets.append(p.offsets[1:] + base)
            base += len(p.vectors)
        return cls(np.concatenate([p.vectors for p in parts]), np.concatenate(offsets),
                   np.concatenate([p.object_ids for p in parts]))


def objects_schema(dim: int) -> pa.Schema:
    """The schema `write_objects` writes for d = `dim`."""
    emb = embedding_schema(dim)
    return pa.schema([emb.field(SCENE_ID), pa.field(OBJECT_ID, pa.int32(), nullable=False), emb.field(EMBEDDING)])


def objects_table(ids: list[str], objects: ObjectVectors) -> pa.Table:
    """The arrow table of `write_objects`. Raises ValueError on a count mismatch or non-finite values."""
    ids = list(ids)
    if len(ids) != len(objects):
        raise ValueError(f"{len(ids)} scene ids for the object vectors of {len(objects)} scenes")
    v = objects.vectors
    if v.shape[1] == 0:
        raise ValueError("object vectors have dimension 0")
    bad = np.flatnonzero(~np.isfinite(v).all(axis=1))
    if len(bad):
        raise ValueError(f"object vectors: row {int(bad[0])} (scene {ids[objects.scene_of_row[bad[0]]]!r}) has "
                         "non-finite values")
    schema = objects_schema(v.shape[1])
    scene = pa.DictionaryArray.from_arrays(pa.array(objects.scene_of_row), pa.array(ids, pa.string()))
    emb = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1), pa.float32()), type=schema.field(EMBEDDING).type)
    return pa.Table.from_arrays([scene.cast(pa.string()), pa.array(objects.object_ids, pa.int32()), emb],
                                schema=schema)


def write_objects(path: str | Path, ids: list[str], objects: ObjectVectors) -> None:
    """Write the object vectors of the scenes `ids` (in that order) as parquet at `path`."""
    pq.write_table(objects_table(ids, objects), str(path))


def read_objects(path: str | Path, ids: list[str], dim: Optional[int] = None) -> ObjectVectors:
    """Read a file of `write_objects` holding the scenes `ids`, in that order (an encoded gallery's scenes).

    Raises FormatError naming the file and the row for what `ideal.retrieval.embeddings.read_vectors` checks, an
    embedding of another length than `dim`, a scene not in `ids`, a scene whose rows are not together or out of
    the order of `ids`, and a scene of `ids` without rows."""
    keys, vectors = read_vectors(path, {SCENE_ID: ("string", is_string),
                                        OBJECT_ID: ("an integer type", pa.types.is_integer)})
    if dim is not None and vectors.shape[1] != dim and len(vectors):
        raise FormatError(path, "row 0", f"{EMBEDDING} has {vectors.shape[1]} values, the encoding's are {dim}")
    # runs of one scene id, without a Python string per row
    codes = keys.column(SCENE_ID).combine_chunks().dictionary_encode()
    indices = codes.indices.to_numpy(zero_copy_only=False)
    names = text_column(path, pa.chunked_array([codes.dictionary]), SCENE_ID)
    starts = np.flatnonzero(np.diff(indices, prepend=-1)) if len(indices) else np.zeros(0, np.int64)
    position = {sid: i for i, sid in enumerate(ids)}
    seen: dict[str, int] = {}
    for n, row in enumerate(starts.tolist()):
        sid = names[indices[row]]
        if sid not in position:
            raise FormatError(path, f"row {row}", f"scene {sid} is not in the gallery")
        if sid in seen:
            raise FormatError(path, f"row {row}", f"scene {sid} again: its rows must be together (row {seen[sid]})")
        if position[sid] != n:
            raise FormatError(path, f"row {row}", f"scene {sid} out of order: expected scene {ids[n]} (rows are "
                              "grouped by scene in the gallery's scene order)")
        seen[sid] = row
    if len(starts) < len(ids):
        raise FormatError(path, SCENE_ID, f"scene {ids[len(starts)]} has no rows ({len(ids)} scenes expected)")
    object_ids = keys.column(OBJECT_ID).to_numpy()
    if len(object_ids) and (object_ids.min() < -1 or object_ids.max() > np.iinfo(np.int32).max):
        row = int(np.flatnonzero((object_ids < -1) | (object_ids > np.iinfo(np.int32).max))[0])
        raise FormatError(path, f"row {row}", f"{OBJECT_ID} {object_ids[row]} is not an object id")
    return ObjectVectors(vectors, np.append(starts, len(vectors)), object_ids.astype(np.int32))
