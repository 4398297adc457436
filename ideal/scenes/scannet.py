"""ScanNet v2 scan folders: read them into Scenes, and write them (for the synthetic benchmark).

A scan folder `sceneXXXX_XX/` holds, as published (ScanNet/ScanNet README, "Data Formats"):

    sceneXXXX_XX_vh_clean_2.ply                 mesh: vertex x y z (float) red green blue alpha (uchar),
                                                face vertex_indices (list uchar int); binary little endian
    sceneXXXX_XX_vh_clean_2.0.010000.segs.json  {"params": {...}, "sceneId": ..., "segIndices": [seg per vertex]}
    sceneXXXX_XX.aggregation.json               {"sceneId": "scannet.<id>", "appId": ..., "segGroups":
                                                 [{"id", "objectId", "segments", "label"}], "segmentsFile": ...}
    sceneXXXX_XX.txt                            "key = value" lines: axisAlignment (16 floats, row-major 4x4),
                                                sceneType, and camera keys we ignore

Raw meshes are rotated; `axisAlignment` maps them to the axis-aligned frame (z up) that ScanRefer and
ReferIt3D boxes live in, so the reader applies it before measuring anything. objectId is 0-based and is
what ScanRefer's object_id and ReferIt3D's target_id refer to.
"""
from __future__ import annotations

import json
import re
import zlib
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import plyfile

from .types import FormatError, Scene, SceneObject

SCAN_ID_RE = re.compile(r"scene\d{4}_\d{2}")
VERTEX_PROPS = ("x", "y", "z", "red", "green", "blue")  # alpha is written but never needed
# Parameters of ScanNet's own over-segmentation (README, "Surface mesh segmentation file").
SEGS_PARAMS = {"kThresh": "0.0001", "segMinVerts": "20", "minPoints": "750", "maxPoints": "30000",
               "thinThresh": "0.05", "flatThresh": "0.001", "minLength": "0.02", "maxLength": "1"}


def scan_files(scan_dir, scene_id: str) -> dict[str, Path]:
    """Paths of the four files of a scan; "aggregation" is the preferred name of its two spellings."""
    d = Path(scan_dir)
    return {"ply": d / f"{scene_id}_vh_clean_2.ply",
            "segs": d / f"{scene_id}_vh_clean_2.0.010000.segs.json",
            "aggregation": d / f"{scene_id}.aggregation.json",
            "txt": d / f"{scene_id}.txt"}


def apply_transform(matrix, xyz) -> np.ndarray:
    """(M @ [x y z 1]^T)[:3] for every row of `xyz` (N, 3); returns float64 (N, 3)."""
    m = np.asarray(matrix, dtype=np.float64)
    p = np.asarray(xyz, dtype=np.float64)
    if m.shape != (4, 4):
        raise ValueError(f"transform must be a 4x4 matrix, got shape {m.shape}")
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"points must be an (N, 3) array, got shape {p.shape}")
    return p @ m[:3, :3].T + m[:3, 3]


# ----------------------------------------------------------------------------------------- reading

def read_scan(scan_dir, label_map: Optional[dict[str, str]] = None, points_per_object: int = 1024) -> Scene:
    """Read one ScanNet v2 scan folder into a Scene in the axis-aligned frame.

    Each segGroup of the aggregation becomes a SceneObject: its box and mean colour come from all of its
    mesh vertices; `points` is a deterministic sample of at most `points_per_object` of them (xyz + rgb in
    [0, 1], float32), or None when `points_per_object` is 0. Labels are stripped, lower-cased and mapped
    through `label_map` (labels it lacks are kept). Objects are sorted by object_id.
    Raises FormatError naming the file and field of any bad input.
    """
    if points_per_object < 0:
        raise ValueError(f"points_per_object must be >= 0, got {points_per_object}")
    scan_dir = Path(scan_dir)
    scene_id = scan_dir.name
    if not scan_dir.is_dir():
        raise FormatError(scan_dir, "", "no such scan folder")
    files = _existing_files(scan_dir, scene_id)
    alignment, scene_type = _read_txt(files["txt"])
    agg_path = files["aggregation"]
    groups = _read_aggregation(agg_path, fallback=agg_path.name.endswith("_vh_clean.aggregation.json"))
    seg = _read_segs(files["segs"])
    xyz, rgb = _read_ply_vertices(files["ply"])
    if len(seg) != len(xyz):
        raise FormatError(files["segs"], "segIndices", f"has {len(seg)} entries but the mesh "
                                                       f"{files['ply'].name} has {len(xyz)} vertices")
    xyz = apply_transform(alignment, xyz)
    vertices_of = _segment_index(seg)
    objects = []
    for i, group in groups:
        where = f"segGroups[{i}].segments"
        idx = []
        for s in sorted(set(group["segments"])):
            if s not in vertices_of:
                raise FormatError(files["aggregation"], where,
                                  f"segment {s} is not in {files['segs'].name}")
            idx.append(vertices_of[s])
        if not idx:
            raise FormatError(files["aggregation"], where, "is empty: the object has no vertices")
        idx = np.sort(np.concatenate(idx))
        label = group["label"].strip().lower()
        label = (label_map or {}).get(label, label)
        objects.append(_make_object(scene_id, group["objectId"], label, xyz[idx], rgb[idx], points_per_object))
    objects.sort(key=lambda o: o.object_id)
    return Scene(scene_id=scene_id, scene_type=scene_type, objects=objects)


def list_scans(root) -> list[str]:
    """Sorted ids of the scan folders under `root`: subfolders named sceneXXXX_XX holding sceneXXXX_XX.txt."""
    root = Path(root)
    if not root.is_dir():
        raise FormatError(root, "", "no such folder (expected a ScanNet 'scans' folder)")
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and SCAN_ID_RE.fullmatch(p.name) and (p / f"{p.name}.txt").is_file())


def read_scans(root, scene_ids=None, label_map: Optional[dict[str, str]] = None,
               points_per_object: int = 1024) -> Iterator[Scene]:
    """Read the scans under `root` (all of them, or `scene_ids`) one by one, in sorted id order.

    A requested id with no scan folder under `root` raises FormatError at once, before any scan is read.
    """
    on_disk = list_scans(root)
    if scene_ids is None:
        ids = on_disk
    else:
        ids = sorted(set(scene_ids))
        missing = sorted(set(ids) - set(on_disk))
        if missing:
            raise FormatError(root, "", f"no scan folder for {', '.join(missing[:5])}"
                                        f"{' ...' if len(missing) > 5 else ''} (each needs <id>/<id>.txt)")
    return (read_scan(Path(root) / sid, label_map, points_per_object) for sid in ids)


def _existing_files(scan_dir: Path, scene_id: str) -> dict[str, Path]:
    files = scan_files(scan_dir, scene_id)
    if not files["aggregation"].is_file():
        # Some releases name it after the hi-res mesh; usable only if it indexes the same segments.
        alt = scan_dir / f"{scene_id}_vh_clean.aggregation.json"
        if alt.is_file():
            files["aggregation"] = alt
        else:
            raise FormatError(files["aggregation"], "", f"file not found (nor {alt.name}): every scan "
                                                        "folder needs its aggregation")
    for key in ("txt", "segs", "ply"):
        if not files[key].is_file():
            raise FormatError(files[key], "", "file not found: every scan folder needs it")
    return files


def _read_txt(path: Path) -> tuple[np.ndarray, str]:
    alignment, scene_type = np.eye(4), None  # ScanNet's test scans have no axisAlignment
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        key, eq, value = line.partition("=")
        if not eq:
            raise FormatError(path, f"line {n}", f"expected 'key = value', got {line.strip()[:60]!r}")
        key, value = key.strip(), value.strip()
        if key == "axisAlignment":
            try:
                numbers = [float(v) for v in value.split()]
            except ValueError as e:
                raise FormatError(path, f"line {n}", f"axisAlignment holds a non-number ({e})") from None
            if len(numbers) != 16:
                raise FormatError(path, f"line {n}", f"axisAlignment has {len(numbers)} numbers, expected 16")
            alignment = np.array(numbers).reshape(4, 4)
        elif key == "sceneType":
            scene_type = value
    if not scene_type:
        raise FormatError(path, "sceneType", "missing or empty (expected e.g. 'sceneType = Bedroom / Hotel')")
    return alignment, scene_type


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise FormatError(path, f"line {e.lineno} col {e.colno}", f"not valid JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise FormatError(path, f"byte {e.start}", "not UTF-8 text") from None
    if not isinstance(data, dict):
        raise FormatError(path, "", f"expected a JSON object at the top, got {type(data).__name__}")
    return data


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _read_aggregation(path: Path, fallback: bool = False) -> list[tuple[int, dict]]:
    data = _read_json(path)
    segments_file = data.get("segmentsFile")
    # The _vh_clean spelling may index the hi-res mesh's segments; those ids would silently mismatch.
    expected = "_vh_clean_2.0.010000.segs.json"
    if fallback and isinstance(segments_file, str) and not segments_file.endswith(expected):
        raise FormatError(path, "segmentsFile", f"refers to {segments_file!r}, not the _vh_clean_2 mesh's "
                                                "segmentation this reader pairs it with")
    groups = data.get("segGroups")
    if not isinstance(groups, list):
        raise FormatError(path, "segGroups", "missing or not a list")
    out, seen = [], {}
    for i, g in enumerate(groups):
        where = f"segGroups[{i}]"
        if not isinstance(g, dict):
            raise FormatError(path, where, f"expected an object, got {type(g).__name__}")
        for key in ("objectId", "segments", "label"):
            if key not in g:
                raise FormatError(path, where, f"no {key!r}")
        if not _is_int(g["objectId"]) or g["objectId"] < 0:
            raise FormatError(path, f"{where}.objectId", f"expected an integer >= 0, got {g['objectId']!r}")
        if g["objectId"] in seen:
            raise FormatError(path, f"{where}.objectId", f"objectId {g['objectId']} is also used by "
                                                         f"segGroups[{seen[g['objectId']]}]")
        seen[g["objectId"]] = i
        if not isinstance(g["segments"], list) or not all(_is_int(s) for s in g["segments"]):
            raise FormatError(path, f"{where}.segments", "expected a list of integer segment ids")
        if not isinstance(g["label"], str):
            raise FormatError(path, f"{where}.label", f"expected a string, got {g['label']!r}")
        out.append((i, g))
    return out


def _read_segs(path: Path) -> np.ndarray:
    data = _read_json(path)
    seg = data.get("segIndices")
    if not isinstance(seg, list):
        raise FormatError(path, "segIndices", "missing or not a list")
    arr = np.asarray(seg)
    if arr.ndim != 1 or (len(arr) and arr.dtype.kind not in "iu"):
        raise FormatError(path, "segIndices", "expected a flat list of integers, one per vertex")
    return arr.astype(np.int64)


def _read_ply_vertices(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertex xyz (float64) and rgb (uint8) of a PLY; faces are memory-mapped, never turned into objects."""
    try:
        try:
            ply = plyfile.PlyData.read(str(path), known_list_len={"face": {"vertex_indices": 3}})
        except plyfile.PlyElementParseError as e:
            if e.message != "unexpected list length":
                raise
            ply = plyfile.PlyData.read(str(path))  # faces not all triangles: the slow, general reader
    except (plyfile.PlyParseError, ValueError) as e:
        raise FormatError(path, "", f"cannot read the PLY ({e})") from None
    if "vertex" not in ply:
        raise FormatError(path, "", "no 'vertex' element")
    vertex = ply["vertex"]
    names = [p.name for p in vertex.properties]
    for prop in VERTEX_PROPS:
        if prop not in names:
            raise FormatError(path, "element vertex", f"no property {prop!r} (has {', '.join(names)})")
    for prop in ("red", "green", "blue"):
        if vertex[prop].dtype.kind not in "iu":
            raise FormatError(path, f"vertex property {prop!r}", "expected uchar 0-255 colours, "
                                                                 f"got {vertex[prop].dtype}")
    xyz = np.stack([np.asarray(vertex[c], dtype=np.float64) for c in "xyz"], axis=1)
    rgb = np.stack([np.asarray(vertex[c]) for c in ("red", "green", "blue")], axis=1).astype(np.uint8)
    return xyz, rgb


def _segment_index(seg: np.ndarray) -> dict[int, np.ndarray]:
    """segment id -> its vertex indices, in one sort rather than one scan of the mesh per segment."""
    order = np.argsort(seg, kind="stable")
    ids, starts, counts = np.unique(seg[order], return_index=True, return_counts=True)
    return {int(s): order[a:a + c] for s, a, c in zip(ids, starts, counts)}


def _make_object(scene_id: str, object_id: int, label: str, xyz: np.ndarray, rgb: np.ndarray,
                 points_per_object: int) -> SceneObject:
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    color = rgb.mean(axis=0) / 255.0
    points = None
    if points_per_object > 0:
        keep = np.arange(len(xyz))
        if len(xyz) > points_per_object:
            # Seeded by scene and object, so every read of the same scan yields the same points.
            rng = np.random.default_rng([zlib.crc32(scene_id.encode()), object_id])
            keep = np.sort(rng.choice(len(xyz), points_per_object, replace=False))
        points = np.concatenate([xyz[keep], rgb[keep] / 255.0], axis=1).astype(np.float32)
    return SceneObject(object_id=int(object_id), label=label,
                       center=tuple(float(v) for v in (lo + hi) / 2), size=tuple(float(v) for v in hi - lo),
                       color_rgb=tuple(float(v) for v in color), points=points)


# ----------------------------------------------------------------------------------------- writing

def write_scan(scan_dir, scene_id: str, scene_type: str, xyz_raw, rgb, seg_indices, seg_groups: list[dict],
               axis_alignment, faces=None) -> None:
    """Write a scan folder in ScanNet v2's published format (the four files `read_scan` reads).

    `xyz_raw` (N, 3) is in the raw, unaligned frame, as ScanNet stores it: `axis_alignment` maps it to the
    aligned frame. `rgb` is (N, 3) uint8; `seg_indices` gives each vertex's segment; each of `seg_groups`
    is {"objectId": int, "label": str, "segments": [segment ids]}. `faces` (F, 3) vertex indices, or None
    for a face element with no faces. The output bytes depend on the inputs only. The folder may be named
    otherwise (e.g. a temporary folder renamed afterwards); the files are named after `scene_id`.
    """
    if not SCAN_ID_RE.fullmatch(scene_id):
        raise ValueError(f"scene_id must look like scene0000_00, got {scene_id!r}")
    if not scene_type or "\n" in scene_type:
        raise ValueError(f"scene_type must be a non-empty single line, got {scene_type!r}")
    xyz = np.asarray(xyz_raw, dtype=np.float64)
    n = len(xyz)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"xyz_raw must be (N, 3), got shape {xyz.shape}")
    rgb = np.asarray(rgb)
    if rgb.shape != (n, 3) or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be ({n}, 3) uint8, got shape {rgb.shape} dtype {rgb.dtype}")
    seg = np.asarray(seg_indices)
    if seg.shape != (n,) or (n and seg.dtype.kind not in "iu"):
        raise ValueError(f"seg_indices must be ({n},) integers, got shape {seg.shape} dtype {seg.dtype}")
    alignment = np.asarray(axis_alignment, dtype=np.float64)
    if alignment.shape != (4, 4):
        raise ValueError(f"axis_alignment must be 4x4, got shape {alignment.shape}")
    faces = np.zeros((0, 3), dtype=np.int64) if faces is None else np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or (len(faces) and faces.dtype.kind not in "iu"):
        raise ValueError(f"faces must be (F, 3) integers, got shape {faces.shape} dtype {faces.dtype}")
    if len(faces) and (faces.min() < 0 or faces.max() >= n):
        raise ValueError(f"faces index vertices outside 0..{n - 1}")
    groups = _check_groups(seg_groups, set(np.unique(seg).tolist()))

    files = scan_files(scan_dir, scene_id)
    Path(scan_dir).mkdir(parents=True, exist_ok=True)
    _write_ply(files["ply"], xyz, rgb, faces)
    segs = {"params": SEGS_PARAMS, "sceneId": scene_id, "segIndices": [int(s) for s in seg]}
    files["segs"].write_text(json.dumps(segs, separators=(",", ":")), encoding="utf-8")
    agg = {"sceneId": f"scannet.{scene_id}", "appId": "Aggregator.v2",
           "segGroups": [{"id": g["objectId"], "objectId": g["objectId"], "segments": g["segments"],
                          "label": g["label"]} for g in groups],
           "segmentsFile": f"scannet.{files['segs'].name}"}
    files["aggregation"].write_text(json.dumps(agg, separators=(",", ":")), encoding="utf-8")
    # Six decimals as in ScanNet's own .txt files; keys in their (alphabetical) order.
    numbers = " ".join(f"{v:.6f}" for v in alignment.ravel())
    files["txt"].write_text(f"axisAlignment = {numbers}\nsceneType = {scene_type}\n", encoding="utf-8")


def _check_groups(seg_groups: list[dict], segments: set[int]) -> list[dict]:
    out, seen = [], set()
    for i, g in enumerate(seg_groups):
        missing = [k for k in ("objectId", "label", "segments") if k not in g]
        if missing:
            raise ValueError(f"seg_groups[{i}] lacks {missing}")
        oid, label, segs = g["objectId"], g["label"], [int(s) for s in g["segments"]]
        if not (_is_int(oid) or isinstance(oid, np.integer)) or oid < 0 or int(oid) in seen:
            raise ValueError(f"seg_groups[{i}].objectId must be a new integer >= 0, got {oid!r}")
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"seg_groups[{i}].label must be a non-empty string, got {label!r}")
        unknown = sorted(set(segs) - segments)
        if not segs or unknown:
            raise ValueError(f"seg_groups[{i}].segments must be non-empty segment ids of seg_indices; "
                             f"unknown: {unknown[:5]}")
        seen.add(int(oid))
        out.append({"objectId": int(oid), "label": label, "segments": segs})
    return out


def _write_ply(path: Path, xyz: np.ndarray, rgb: np.ndarray, faces: np.ndarray) -> None:
    header = ("ply\nformat binary_little_endian 1.0\ncomment ideal synthetic scan in ScanNet v2 layout\n"
              f"element vertex {len(xyz)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nproperty uchar alpha\n"
              f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n")
    vertex = np.empty(len(xyz), dtype=[("xyz", "<f4", 3), ("rgba", "u1", 4)])
    vertex["xyz"] = xyz
    vertex["rgba"][:, :3] = rgb
    vertex["rgba"][:, 3] = 255  # ScanNet meshes are opaque
    face = np.empty(len(faces), dtype=[("n", "u1"), ("v", "<i4", 3)])
    face["n"] = 3
    face["v"] = faces
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(vertex.tobytes())
        f.write(face.tobytes())
