"""Scene embeddings on disk: parquet with `scene_id: string`, `embedding: fixed_size_list<float32>[d]`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..scenes.types import FormatError


def embedding_schema(dim: int) -> pa.Schema:
    return pa.schema([pa.field("scene_id", pa.string(), nullable=False),
                      pa.field("embedding", pa.list_(pa.float32(), dim), nullable=False)])


def embeddings_table(ids: list[str], vectors: np.ndarray) -> pa.Table:
    vectors = np.ascontiguousarray(vectors, np.float32)
    if vectors.ndim != 2 or len(ids) != len(vectors):
        raise ValueError(f"need one (d,) vector per id: {len(ids)} ids, vectors of shape {vectors.shape}")
    # One flat buffer -> fixed_size_list: no per-row Python objects.
    emb = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), pa.float32()), vectors.shape[1])
    return pa.Table.from_arrays([pa.array(ids, pa.string()), emb], schema=embedding_schema(vectors.shape[1]))


def write_embeddings(path: str | Path, ids: list[str], vectors: np.ndarray) -> None:
    pq.write_table(embeddings_table(ids, vectors), path)


def read_embeddings(path: str | Path) -> tuple[list[str], np.ndarray]:
    """(scene ids, (n, d) float32); errors name the file and the row."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise FormatError(path, "", f"not a readable parquet file: {e}") from None
    for col in ("scene_id", "embedding"):
        if col not in table.column_names:
            raise FormatError(path, "schema", f"missing column {col!r}; found {table.column_names}")
    emb = table.column("embedding").combine_chunks()
    if not pa.types.is_fixed_size_list(emb.type) and not pa.types.is_list(emb.type):
        raise FormatError(path, "embedding", f"expected fixed_size_list<float32>, got {emb.type}")
    ids = table.column("scene_id").to_pylist()
    for row, sid in enumerate(ids):
        if sid is None:
            raise FormatError(path, f"row {row}", "scene_id is null")
    if emb.null_count:
        row = next(i for i in range(len(emb)) if not emb[i].is_valid)
        raise FormatError(path, f"row {row}", "embedding is null")
    if pa.types.is_fixed_size_list(emb.type):
        vectors = emb.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(emb), -1)
    else:
        rows = emb.to_pylist()
        dims = {len(r) for r in rows}
        if len(dims) > 1:
            row = next(i for i, r in enumerate(rows) if len(r) != len(rows[0]))
            raise FormatError(path, f"row {row}", f"embedding has {len(rows[row])} values, row 0 has {len(rows[0])}")
        vectors = np.asarray(rows, np.float32)
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if len(bad):
        raise FormatError(path, f"row {int(bad[0])}", "embedding has non-finite values")
    first: dict[str, int] = {}
    for row, sid in enumerate(ids):
        if sid in first:
            raise FormatError(path, f"row {row}", f"scene_id {sid!r} repeats row {first[sid]}")
        first[sid] = row
    return ids, vectors
