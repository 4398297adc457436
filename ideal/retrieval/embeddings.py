"""Scene embeddings on disk: one parquet row per scene.

    scene_id:  string                      not null, unique
    embedding: fixed_size_list<float32>[d] not null, finite

`read_embeddings` also accepts what other tools tend to write for the same data — `large_string` ids,
variable-length `list<float64>` embeddings of one length — and checks every row; errors name the file
and the row.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..scenes.types import FormatError

SCENE_ID, EMBEDDING = "scene_id", "embedding"


def embedding_schema(dim: int) -> pa.Schema:
    """The schema `write_embeddings` writes for d = `dim`."""
    return pa.schema([
        pa.field(SCENE_ID, pa.string(), nullable=False),
        pa.field(EMBEDDING, pa.list_(pa.field("item", pa.float32(), nullable=False), dim), nullable=False),
    ])


def embeddings_table(ids: list[str], vectors: np.ndarray) -> pa.Table:
    """The arrow table of `write_embeddings`. Raises ValueError on shapes, non-finite values, repeated ids."""
    ids = list(ids)
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    if v.ndim != 2 or v.shape[1] == 0:
        raise ValueError(f"vectors must be a 2-D array (n, d) with d >= 1, got shape {v.shape}")
    if len(ids) != len(v):
        raise ValueError(f"{len(ids)} ids for {len(v)} vectors")
    bad_id = _first_bad_id(ids)
    if bad_id:
        raise ValueError(f"ids[{bad_id[0]}]: {bad_id[1]}")
    bad = np.flatnonzero(~np.isfinite(v).all(axis=1))
    if len(bad):
        raise ValueError(f"vectors: row {int(bad[0])} ({ids[bad[0]]!r}) has non-finite values")
    # One flat float32 buffer, viewed as n lists of d: no per-row Python objects.
    values = pa.array(v.reshape(-1), type=pa.float32())
    emb = pa.FixedSizeListArray.from_arrays(values, type=embedding_schema(v.shape[1]).field(EMBEDDING).type)
    return pa.Table.from_arrays([pa.array(ids, type=pa.string()), emb], schema=embedding_schema(v.shape[1]))


def write_embeddings(path: str | Path, ids: list[str], vectors: np.ndarray) -> None:
    """Write (n, d) `vectors`, row i the embedding of scene `ids[i]`, as parquet at `path`."""
    pq.write_table(embeddings_table(ids, vectors), str(path))


def read_embeddings(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read a file of `write_embeddings`: (scene ids, (n, d) float32 vectors), in file order.

    Raises FormatError (naming the file, and the row where there is one) for an unreadable file, a
    missing column, a column of the wrong type, a null id or embedding, embeddings of different lengths,
    non-finite values and repeated scene ids.
    """
    keys, vectors = read_vectors(path, {SCENE_ID: ("string", is_string)})
    ids = text_column(path, keys.column(SCENE_ID), SCENE_ID)
    bad_id = _first_bad_id(ids)
    if bad_id:
        raise FormatError(path, f"row {bad_id[0]}", bad_id[1])
    return ids, vectors


def is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def text_column(path, col: pa.ChunkedArray, name: str) -> list[str]:
    """A string column as Python strings; FormatError if it is not UTF-8 (parquet does not check)."""
    try:
        return col.to_pylist()
    except UnicodeDecodeError as e:
        raise FormatError(path, f"column {name!r}", f"not UTF-8 text ({e})") from None


def read_vectors(path: str | Path, keys: dict) -> tuple[pa.Table, np.ndarray]:
    """(the table of the columns `keys`, the (n, d) float32 `embedding` column) of a parquet file of vectors.

    keys: {column: (the type expected, in words; a test of its arrow type)}. Checks that the file is readable,
    that every column is there with its type and no nulls, that the embeddings have one length d >= 1 and finite
    values; FormatError names the file, and the row where there is one."""
    try:
        schema = pq.read_schema(str(path))
    except (OSError, pa.ArrowException, UnicodeDecodeError) as e:  # a damaged footer can hold non-UTF-8 names
        raise FormatError(path, "", f"not a readable parquet file ({e})") from None
    names = [*keys, EMBEDDING]
    for col in names:
        if col not in schema.names:
            raise FormatError(path, "schema", f"missing column {col!r}; columns are {schema.names}")
    for col, (words, test) in keys.items():
        if not test(schema.field(col).type):
            raise FormatError(path, f"column {col!r}", f"expected {words}, got {schema.field(col).type}")
    emb_type = schema.field(EMBEDDING).type
    if not (_is_list(emb_type) and pa.types.is_floating(emb_type.value_type)):
        raise FormatError(path, f"column {EMBEDDING!r}", f"expected fixed_size_list<float32>[d], got {emb_type}")
    try:
        table = pq.read_table(str(path), columns=names)
    except (OSError, pa.ArrowException, UnicodeDecodeError) as e:
        raise FormatError(path, "", f"cannot read columns {', '.join(map(repr, names))} ({e})") from None

    for name in names:
        col = table.column(name)
        if col.null_count:
            raise FormatError(path, f"row {_first(col.is_null())}", f"{name} is null")
    emb_col = table.column(EMBEDDING)
    dim = _dimension(path, emb_col)
    vectors = np.empty((len(table), dim), dtype=np.float32)
    start = 0
    for chunk in emb_col.chunks:
        # .flatten() honours the chunk's offset, and for variable lists each row's own offsets.
        values = chunk.flatten()
        if values.null_count:
            row = start + _first(values.is_null()) // dim
            raise FormatError(path, f"row {row}", f"{EMBEDDING} has a null value")
        with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, reported below
            vectors[start:start + len(chunk)] = values.to_numpy().astype(np.float32, copy=False).reshape(-1, dim)
        start += len(chunk)
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if len(bad):
        raise FormatError(path, f"row {int(bad[0])}", f"{EMBEDDING} has non-finite values")
    return table.select(list(keys)), vectors


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)


def _first(mask) -> int:
    """Index of the first true value of a boolean (chunked) arrow array."""
    return int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0])


def _dimension(path, emb_col: pa.ChunkedArray) -> int:
    """The common embedding length d >= 1 of every row; FormatError names the first row that differs."""
    if pa.types.is_fixed_size_list(emb_col.type):
        dim = emb_col.type.list_size
    else:
        lengths = pc.list_value_length(emb_col).to_numpy()
        dim = int(lengths[0]) if len(lengths) else 1
        off = np.flatnonzero(lengths != dim)
        if len(off):
            row = int(off[0])
            raise FormatError(path, f"row {row}", f"{EMBEDDING} has {lengths[row]} values, row 0 has {dim}")
    if dim < 1:
        raise FormatError(path, f"column {EMBEDDING!r}", "embeddings have no values")
    return dim


def _first_bad_id(ids: list[str]) -> tuple[int, str] | None:
    """(row, problem) for the first id that is not a string or repeats an earlier one; None if all are fine."""
    if all(isinstance(s, str) for s in ids) and len(set(ids)) == len(ids):
        return None
    first: dict[str, int] = {}
    for row, sid in enumerate(ids):
        if not isinstance(sid, str):
            return row, f"scene_id is {type(sid).__name__}, not str"
        if sid in first:
            return row, f"scene_id {sid!r} repeats row {first[sid]}"
        first[sid] = row
    return None
