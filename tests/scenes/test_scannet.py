"""Tests for ideal/scenes/scannet.py: fixtures are ScanNet v2 scan folders in the published layout."""
from __future__ import annotations

import json

import numpy as np
import plyfile
import pytest

from ideal.scenes.scannet import apply_transform, list_scans, read_scan, read_scans, write_scan
from ideal.scenes.types import FormatError

SID = "scene0007_01"

# Eight vertices in ascii PLY with ScanNet's vertex layout: a red chair (0-3) and a brown table (4-7).
VERTICES = [(0, 0, 0, 200, 0, 0), (1, 0, 0, 200, 0, 0), (0, 2, 0, 100, 0, 0), (1, 2, 3, 100, 0, 0),
            (5, 5, 0, 100, 60, 30), (7, 5, 0, 100, 60, 30), (5, 6, 1, 100, 60, 30), (7, 6, 1, 100, 60, 30)]
FACES = [(0, 1, 2), (1, 2, 3), (4, 5, 6), (5, 6, 7)]
# Published txt: keys in alphabetical order, camera keys we ignore; alignment here only translates.
TXT = """axisAlignment = 1.000000 0.000000 0.000000 -1.000000 0.000000 1.000000 0.000000 0.500000 \
0.000000 0.000000 1.000000 0.250000 0.000000 0.000000 0.000000 1.000000 
colorHeight = 968
colorToDepthExtrinsics = 0.999973 0.006791 0.003179 -0.037886 -0.006765 0.999942 -0.008195 -0.003090
colorWidth = 1296
fx_color = 1170.187988
numDepthFrames = 5578
sceneType = Bedroom / Hotel
"""


def ascii_ply(vertices=VERTICES, faces=FACES, props=("x", "y", "z", "red", "green", "blue", "alpha")):
    lines = ["ply", "format ascii 1.0", "comment VCGLIB generated", f"element vertex {len(vertices)}"]
    lines += [f"property {'float' if p in 'xyz' else 'uchar'} {p}" for p in props]
    if faces is not None:
        lines += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    lines.append("end_header")
    for v in vertices:
        row = dict(zip(("x", "y", "z", "red", "green", "blue"), v), alpha=255)
        lines.append(" ".join(str(row[p]) for p in props))
    lines += [f"3 {a} {b} {c}" for a, b, c in faces or []]
    return "\n".join(lines) + "\n"


def seg_groups():
    return [{"id": 1, "objectId": 1, "segments": [20], "label": "Table "},
            {"id": 0, "objectId": 0, "segments": [10, 11], "label": "office chair"}]


def hand_scan(root, ply=None, segs=None, groups=None, txt=TXT, agg_name=f"{SID}.aggregation.json"):
    """A scan folder written file by file, as ScanNet publishes it (independent of write_scan)."""
    d = root / SID
    d.mkdir(parents=True)
    (d / f"{SID}_vh_clean_2.ply").write_text(ascii_ply() if ply is None else ply)
    seg_json = {"params": {"kThresh": "0.0001", "segMinVerts": "20"}, "sceneId": SID,
                "segIndices": [10, 10, 11, 11, 20, 20, 20, 20] if segs is None else segs}
    (d / f"{SID}_vh_clean_2.0.010000.segs.json").write_text(json.dumps(seg_json))
    agg = {"sceneId": f"scannet.{SID}", "appId": "Aggregator.v2",
           "segGroups": seg_groups() if groups is None else groups,
           "segmentsFile": f"scannet.{SID}_vh_clean_2.0.010000.segs.json"}
    (d / agg_name).write_text(json.dumps(agg))
    (d / f"{SID}.txt").write_text(txt)
    return d


def error_of(scan_dir, **kw) -> FormatError:
    with pytest.raises(FormatError) as e:
        read_scan(scan_dir, **kw)
    return e.value


# ----------------------------------------------------------------------------------- reading

def test_reads_published_layout(tmp_path):
    scene = read_scan(hand_scan(tmp_path))
    assert scene.scene_id == SID and scene.scene_type == "Bedroom / Hotel"
    chair, table = scene.objects
    assert (chair.object_id, chair.label, table.object_id, table.label) == (0, "office chair", 1, "table")
    # Boxes are measured after axisAlignment's translation (-1, 0.5, 0.25).
    assert chair.center == pytest.approx((-0.5, 1.5, 1.75)) and chair.size == pytest.approx((1, 2, 3))
    assert table.center == pytest.approx((5, 6, 0.75)) and table.size == pytest.approx((2, 1, 1))
    assert chair.color_rgb == pytest.approx((150 / 255, 0, 0))
    assert table.points.dtype == np.float32 and table.points.shape == (4, 6)
    assert table.points[0] == pytest.approx([4, 5.5, 0.25, 100 / 255, 60 / 255, 30 / 255])


def test_label_map_applied_after_normalising(tmp_path):
    scene = read_scan(hand_scan(tmp_path), label_map={"office chair": "chair"})
    assert [o.label for o in scene.objects] == ["chair", "table"]  # "table" is unmapped: kept


def test_ply_without_faces(tmp_path):
    scene = read_scan(hand_scan(tmp_path, ply=ascii_ply(faces=None)))
    assert scene.objects[1].size == pytest.approx((2, 1, 1))


def test_no_axis_alignment_means_identity(tmp_path):
    scene = read_scan(hand_scan(tmp_path, txt="colorHeight = 968\nsceneType = Office\n"))
    assert scene.objects[0].center == pytest.approx((0.5, 1, 1.5))


def test_points_sample_is_bounded_and_deterministic(tmp_path):
    d = hand_scan(tmp_path)
    a, b = read_scan(d, points_per_object=3), read_scan(d, points_per_object=3)
    assert a.objects[1].points.shape == (3, 6)
    assert np.array_equal(a.objects[1].points, b.objects[1].points)
    assert read_scan(d, points_per_object=0).objects[0].points is None


def test_vh_clean_aggregation_accepted_and_first_name_preferred(tmp_path):
    d = hand_scan(tmp_path, agg_name=f"{SID}_vh_clean.aggregation.json")
    assert len(read_scan(d).objects) == 2
    (d / f"{SID}.aggregation.json").write_text(json.dumps({"segGroups": seg_groups()[:1]}))
    assert len(read_scan(d).objects) == 1


def test_vh_clean_aggregation_of_the_hires_mesh_rejected(tmp_path):
    d = hand_scan(tmp_path, agg_name=f"{SID}_vh_clean.aggregation.json")
    path = d / f"{SID}_vh_clean.aggregation.json"
    path.write_text(json.dumps({"segGroups": seg_groups(), "segmentsFile": f"scannet.{SID}_vh_clean.segs.json"}))
    assert error_of(d).where == "segmentsFile"


def test_list_and_read_scans(tmp_path):
    for sid in ("scene0002_00", "scene0001_00"):
        hand_scan(tmp_path).rename(tmp_path / sid)
        for f in (tmp_path / sid).iterdir():
            f.rename(f.with_name(f.name.replace(SID, sid)))
    (tmp_path / "scene0003_00").mkdir()  # no .txt: not a scan
    (tmp_path / "notes").mkdir()
    assert list_scans(tmp_path) == ["scene0001_00", "scene0002_00"]
    assert [s.scene_id for s in read_scans(tmp_path)] == ["scene0001_00", "scene0002_00"]
    assert [s.scene_id for s in read_scans(tmp_path, ["scene0002_00"])] == ["scene0002_00"]
    with pytest.raises(FormatError, match="scene0009_00") as e:
        read_scans(tmp_path, ["scene0001_00", "scene0009_00"])
    assert e.value.path == str(tmp_path)


# ----------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("name", [f"{SID}_vh_clean_2.ply", f"{SID}_vh_clean_2.0.010000.segs.json",
                                  f"{SID}.aggregation.json", f"{SID}.txt"])
def test_missing_file_named(tmp_path, name):
    d = hand_scan(tmp_path)
    (d / name).unlink()
    assert error_of(d).path == str(d / name)


def test_missing_folder(tmp_path):
    assert "no such scan folder" in str(error_of(tmp_path / SID))


@pytest.mark.parametrize("txt, where, problem", [
    ("axisAlignment = " + " ".join(["1"] * 12) + "\nsceneType = Office\n", "line 1", "has 12 numbers, expected 16"),
    ("axisAlignment = 1 0 0 x" + " 0" * 12 + "\nsceneType = Office\n", "line 1", "non-number"),
    ("colorHeight = 968\n", "sceneType", "missing"),
    ("sceneType = Office\nthis line has no equals sign\n", "line 2", "expected 'key = value'"),
])
def test_bad_txt(tmp_path, txt, where, problem):
    e = error_of(hand_scan(tmp_path, txt=txt))
    assert e.path.endswith(f"{SID}.txt") and e.where == where and problem in e.problem


def test_group_without_segments(tmp_path):
    groups = seg_groups() + [{"id": 2, "objectId": 2, "segments": [11], "label": "x"},
                             {"id": 3, "objectId": 3, "label": "lamp"}]
    e = error_of(hand_scan(tmp_path, groups=groups))
    assert e.path.endswith(".aggregation.json") and (e.where, e.problem) == ("segGroups[3]", "no 'segments'")


def test_segment_not_in_segs(tmp_path):
    groups = seg_groups() + [{"id": 2, "objectId": 2, "segments": [991], "label": "lamp"}]
    e = error_of(hand_scan(tmp_path, groups=groups))
    assert e.where == "segGroups[2].segments" and "segment 991 is not in" in e.problem
    assert f"{SID}_vh_clean_2.0.010000.segs.json" in e.problem


def test_group_with_no_vertices(tmp_path):
    groups = seg_groups() + [{"id": 2, "objectId": 2, "segments": [], "label": "lamp"}]
    e = error_of(hand_scan(tmp_path, groups=groups))
    assert e.where == "segGroups[2].segments" and "no vertices" in e.problem


def test_duplicate_object_id(tmp_path):
    groups = seg_groups() + [{"id": 2, "objectId": 1, "segments": [10], "label": "lamp"}]
    e = error_of(hand_scan(tmp_path, groups=groups))
    assert e.where == "segGroups[2].objectId" and "segGroups[0]" in e.problem


def test_seg_indices_length_mismatch(tmp_path):
    e = error_of(hand_scan(tmp_path, segs=[10] * 7))
    assert e.path.endswith(".segs.json") and e.where == "segIndices" and "7 entries" in e.problem
    assert "8 vertices" in e.problem


def test_seg_indices_not_integers(tmp_path):
    e = error_of(hand_scan(tmp_path, segs=[10.5] * 8))
    assert e.where == "segIndices"


def test_json_that_does_not_parse(tmp_path):
    d = hand_scan(tmp_path)
    (d / f"{SID}.aggregation.json").write_text('{"segGroups": [\n  {"id": 0,,}]}')
    e = error_of(d)
    assert e.where == "line 2 col 12" and "not valid JSON" in e.problem


def test_ply_missing_vertex_property(tmp_path):
    ply = ascii_ply(props=("x", "y", "z", "red", "blue", "alpha"))
    e = error_of(hand_scan(tmp_path, ply=ply))
    assert e.path.endswith(".ply") and "'green'" in e.problem


def test_ply_truncated(tmp_path):
    d = hand_scan(tmp_path)
    write_scan(d, SID, "Office", np.zeros((8, 3)), np.zeros((8, 3), np.uint8), np.array([10] * 4 + [11, 11, 20, 20]),
               seg_groups(), np.eye(4), faces=np.array(FACES))
    ply = d / f"{SID}_vh_clean_2.ply"
    ply.write_bytes(ply.read_bytes()[:-20])
    e = error_of(d)
    assert e.path == str(ply) and "cannot read the PLY" in e.problem


def test_ply_unreadable(tmp_path):
    e = error_of(hand_scan(tmp_path, ply="this is not a ply file\n"))
    assert e.path.endswith(".ply") and "cannot read the PLY" in e.problem


# ----------------------------------------------------------------------------------- writing

def random_scene(rng, n_objects=4, n_per=300):
    """Aligned-frame boxes of points, their colours, segments and groups, plus a z-rotation alignment."""
    xyz, rgb, seg, groups, boxes = [], [], [], [], {}
    for oid in range(n_objects):
        lo = rng.uniform(-3, 3, 3)
        hi = lo + rng.uniform(0.2, 1.5, 3)
        pts = rng.uniform(lo, hi, (n_per, 3))
        pts[:2], boxes[oid] = [lo, hi], (lo, hi)  # the extreme corners pin the box exactly
        xyz.append(pts)
        rgb.append(rng.integers(0, 256, (n_per, 3)).astype(np.uint8))
        segs = [100 * oid + 7, 100 * oid + 9]
        seg.append(np.where(np.arange(n_per) % 2, segs[0], segs[1]))
        groups.append({"objectId": oid, "label": ["Chair", "desk", "lamp", "bed"][oid % 4], "segments": segs})
    t = rng.uniform(0, 2 * np.pi)
    align = np.eye(4)
    align[:2, :2] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
    align[:3, 3] = rng.uniform(-5, 5, 3)
    return np.vstack(xyz), np.vstack(rgb), np.concatenate(seg), groups, boxes, align


def test_write_read_round_trip_recovers_aligned_boxes(tmp_path):
    xyz, rgb, seg, groups, boxes, align = random_scene(np.random.default_rng(0))
    raw = apply_transform(np.linalg.inv(align), xyz)
    write_scan(tmp_path / SID, SID, "Living room / Lounge", raw, rgb, seg, groups, align)
    scene = read_scan(tmp_path / SID, label_map={"chair": "seat"}, points_per_object=100)
    assert scene.scene_type == "Living room / Lounge"
    assert [o.label for o in scene.objects] == ["seat", "desk", "lamp", "bed"]
    for obj in scene.objects:
        lo, hi = boxes[obj.object_id]
        assert obj.center == pytest.approx((lo + hi) / 2, abs=1e-4)
        assert obj.size == pytest.approx(hi - lo, abs=1e-4)
        mine = slice(300 * obj.object_id, 300 * (obj.object_id + 1))
        assert obj.color_rgb == pytest.approx(rgb[mine].mean(axis=0) / 255)
        assert obj.points.shape == (100, 6)


def test_written_ply_header_and_alpha(tmp_path):
    xyz, rgb, seg, groups, _, align = random_scene(np.random.default_rng(1), n_objects=1, n_per=5)
    write_scan(tmp_path, SID, "Office", xyz, rgb, seg, groups, align, faces=[[0, 1, 2], [2, 3, 4]])
    data = (tmp_path / f"{SID}_vh_clean_2.ply").read_bytes()
    header, body = data.split(b"end_header\n")
    assert b"format binary_little_endian 1.0" in header and b"element face 2" in header
    assert b"property uchar alpha\nelement face 2\nproperty list uchar int vertex_indices\n" in header
    vertex = np.frombuffer(body[:5 * 16], dtype=[("xyz", "<f4", 3), ("rgba", "u1", 4)])
    assert (vertex["rgba"][:, 3] == 255).all() and np.array_equal(vertex["rgba"][:, :3], rgb)
    assert body[5 * 16:] == bytes([3]) + np.array([0, 1, 2], "<i4").tobytes() + bytes([3]) + \
        np.array([2, 3, 4], "<i4").tobytes()
    agg = json.loads((tmp_path / f"{SID}.aggregation.json").read_text())
    assert agg["segmentsFile"] == f"scannet.{SID}_vh_clean_2.0.010000.segs.json"
    assert agg["segGroups"][0] == {"id": 0, "objectId": 0, "segments": [7, 9], "label": "Chair"}
    segs = json.loads((tmp_path / f"{SID}_vh_clean_2.0.010000.segs.json").read_text())
    assert segs["sceneId"] == SID and segs["params"]["kThresh"] == "0.0001"
    assert (tmp_path / f"{SID}.txt").read_text().splitlines()[1] == "sceneType = Office"


def test_written_without_faces_reads(tmp_path):
    xyz, rgb, seg, groups, _, align = random_scene(np.random.default_rng(2), n_objects=2, n_per=10)
    write_scan(tmp_path / SID, SID, "Office", xyz, rgb, seg, groups, align)
    assert b"element face 0\n" in (tmp_path / SID / f"{SID}_vh_clean_2.ply").read_bytes()
    assert len(read_scan(tmp_path / SID).objects) == 2


def test_write_is_byte_deterministic(tmp_path):
    args = random_scene(np.random.default_rng(3), n_objects=2, n_per=20)
    xyz, rgb, seg, groups, _, align = args
    for d in ("a", "b"):
        write_scan(tmp_path / d, SID, "Office", xyz, rgb, seg, groups, align, faces=[[0, 1, 2]])
    for f in (tmp_path / "a").iterdir():
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes()


@pytest.mark.parametrize("change, match", [
    ({"scene_id": "kitchen"}, "scene_id"),
    ({"rgb": np.zeros((20, 3))}, "uint8"),
    ({"seg_groups": [{"objectId": 0, "label": "x", "segments": [12345]}]}, "unknown"),
    ({"faces": [[0, 1, 20]]}, "faces"),
])
def test_write_rejects_what_the_reader_would(tmp_path, change, match):
    xyz, rgb, seg, groups, _, align = random_scene(np.random.default_rng(4), n_objects=1, n_per=20)
    kw = dict(scene_id=SID, scene_type="Office", xyz_raw=xyz, rgb=rgb, seg_indices=seg, seg_groups=groups,
              axis_alignment=align)
    kw.update(change)
    with pytest.raises(ValueError, match=match):
        write_scan(tmp_path, **kw)


def test_apply_transform_matches_homogeneous_product():
    m = np.random.default_rng(5).normal(size=(4, 4))
    p = np.random.default_rng(6).normal(size=(7, 3))
    expected = (m @ np.hstack([p, np.ones((7, 1))]).T).T[:, :3]
    assert apply_transform(m, p) == pytest.approx(expected)


def test_binary_ply_with_non_triangle_faces_reads(tmp_path):
    d = hand_scan(tmp_path)
    vertex = np.array([tuple(v) + (255,) for v in VERTICES], dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"),
                      ("red", "u1"), ("green", "u1"), ("blue", "u1"), ("alpha", "u1")])
    face = np.array([([0, 1, 2],), ([4, 5, 7, 6],)], dtype=[("vertex_indices", "O")])
    plyfile.PlyData([plyfile.PlyElement.describe(vertex, "vertex"), plyfile.PlyElement.describe(
        face, "face", len_types={"vertex_indices": "u1"}, val_types={"vertex_indices": "i4"})]).write(
        str(d / f"{SID}_vh_clean_2.ply"))
    assert read_scan(d).objects[1].size == pytest.approx((2, 1, 1))
