"""Scenes as parquet, one row per object. The schema below is the contract; readers check it."""
from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .types import FormatError, Scene, SceneObject

_VEC3 = pa.list_(pa.float32(), 3)
SCENE_SCHEMA = pa.schema([
    pa.field("scene_id", pa.string(), nullable=False),
    pa.field("scene_type", pa.string(), nullable=False),
    pa.field("object_id", pa.int32(), nullable=False),
    pa.field("label", pa.string(), nullable=False),
    pa.field("center", _VEC3, nullable=False),  # metres, axis-aligned frame
    pa.field("size", _VEC3, nullable=False),  # box extent along x, y, z
    pa.field("color_rgb", _VEC3, nullable=False),  # mean colour in [0, 1]
    pa.field("points", pa.list_(pa.list_(pa.float32(), 6)), nullable=True),  # xyzrgb sample, or null
])


def scenes_to_table(scenes: list[Scene], with_points: bool = True) -> pa.Table:
    cols = {name: [] for name in SCENE_SCHEMA.names if name != "points"}
    point_arrays: list = []
    for s in scenes:
        if not s.objects:
            raise ValueError(f"{s.scene_id}: a scene without objects has no rows in the one-row-per-object layout")
        for o in s.objects:
            for k, v in (("scene_id", s.scene_id), ("scene_type", s.scene_type), ("object_id", o.object_id),
                         ("label", o.label), ("center", o.center), ("size", o.size), ("color_rgb", o.color_rgb)):
                cols[k].append(v)
            pts = o.points if with_points else None
            point_arrays.append(None if pts is None else np.asarray(pts, np.float32).reshape(-1, 6))
    arrays = [pa.array(cols[f.name], f.type) for f in SCENE_SCHEMA if f.name != "points"]
    return pa.Table.from_arrays(arrays + [_points_array(point_arrays)], schema=SCENE_SCHEMA)


def _points_array(point_arrays: list) -> pa.Array:
    # Built from one flat buffer: pa.array() over per-object numpy arrays is slow and rejects 2-D input.
    lengths = [0 if p is None else len(p) for p in point_arrays]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    flat = np.concatenate([p.ravel() for p in point_arrays if p is not None] or [np.zeros(0, np.float32)])
    rows = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), 6)
    mask = pa.array([p is None for p in point_arrays])
    return pa.ListArray.from_arrays(pa.array(offsets), rows, mask=mask)


def write_scenes(scenes: list[Scene], path: str | Path, with_points: bool = True) -> None:
    pq.write_table(scenes_to_table(scenes, with_points), path)


def table_to_scenes(table: pa.Table, path: str | Path = "<table>") -> list[Scene]:
    # Millions of small objects are made below, none of them garbage: the cyclic collector would walk them all
    # again and again (most of the time of reading a large gallery), so it is paused meanwhile.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _table_to_scenes(table, path)
    finally:
        if was_enabled:
            gc.enable()


def _table_to_scenes(table: pa.Table, path) -> list[Scene]:
    missing = [n for n in SCENE_SCHEMA.names if n not in table.column_names]
    if missing:
        raise FormatError(path, "schema", f"missing column(s) {missing}; found {table.column_names}")
    table = table.select(SCENE_SCHEMA.names)
    try:
        # Cast with nulls allowed, so a null is reported below with its row.
        table = table.cast(pa.schema([f.with_nullable(True) for f in SCENE_SCHEMA]))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as e:
        raise FormatError(path, "schema", f"columns do not match the scene schema: {e}") from None
    for n in SCENE_SCHEMA.names[:-1]:
        col = table.column(n)
        if col.null_count:
            raise FormatError(path, f"row {_first_null(col)}", f"'{n}' is null")
    try:
        cols = {n: table.column(n).to_pylist() for n in ("scene_id", "scene_type", "object_id", "label")}
    except UnicodeDecodeError as e:  # parquet does not check that a string column is UTF-8
        raise FormatError(path, "schema", f"a text column is not UTF-8 ({e})") from None
    vecs = {n: _vectors(table.column(n), n, path) for n in ("center", "size", "color_rgb")}
    points = table.column("points")
    all_null = points.null_count == table.num_rows
    scenes: dict[str, Scene] = {}
    for row in range(table.num_rows):
        sid = cols["scene_id"][row]
        scene = scenes.setdefault(sid, Scene(sid, cols["scene_type"][row], []))
        if scene.scene_type != cols["scene_type"][row]:
            raise FormatError(path, f"row {row}", f"scene {sid} has two scene types")
        pts = None if all_null else points[row]
        pts = None if pts is None or not pts.is_valid else np.asarray(pts.as_py(), dtype=np.float32).reshape(-1, 6)
        scene.objects.append(SceneObject(cols["object_id"][row], cols["label"][row], vecs["center"][row],
                                         vecs["size"][row], vecs["color_rgb"][row], pts))
    return list(scenes.values())


def _first_null(col) -> int:
    return int(pc.index(pc.is_null(col), True).as_py())


def _vectors(col, name: str, path) -> list[tuple]:
    """A fixed_size_list<float32>[3] column as one tuple of floats per row (a null value named with its row)."""
    flat = col.combine_chunks().flatten()
    if flat.null_count:
        raise FormatError(path, f"row {_first_null(flat) // 3}", f"'{name}' has a null value")
    return list(map(tuple, flat.to_numpy(zero_copy_only=False).reshape(-1, 3).tolist()))


def read_scenes(path: str | Path, scene_ids: list[str] | None = None) -> list[Scene]:
    """Scenes in order of first appearance (only `scene_ids`, if given); errors name the file and the row
    (with `scene_ids`, the row among those scenes' rows)."""
    try:
        if scene_ids is None:
            table = pq.read_table(path)
        else:
            table = pq.read_table(path, filters=[("scene_id", "in", list(scene_ids))])
    except (OSError, pa.ArrowInvalid, UnicodeDecodeError) as e:
        raise FormatError(path, "", f"not a readable parquet file: {e}") from None
    scenes = table_to_scenes(table, path if scene_ids is None else f"{path} (the rows of {len(scene_ids)} scenes)")
    if scene_ids is not None:
        missing = sorted(set(scene_ids) - {s.scene_id for s in scenes})
        if missing:
            raise FormatError(path, "scene_id", f"no rows for scene(s) {missing[:5]}")
    return scenes


def list_scene_ids(path: str | Path) -> list[str]:
    """Sorted distinct scene ids of a scenes parquet file (reads only that column)."""
    try:
        col = pq.read_table(path, columns=["scene_id"]).column("scene_id")
    except (OSError, pa.ArrowInvalid, KeyError, UnicodeDecodeError) as e:
        raise FormatError(path, "scene_id", f"not a scenes parquet file: {e}") from None
    if col.null_count:
        raise FormatError(path, "scene_id", "has nulls")
    return sorted(set(col.to_pylist()))
