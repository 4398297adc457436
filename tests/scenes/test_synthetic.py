"""The synthetic benchmark: written in the published formats, read back by the same readers, true to its
geometry, deterministic from the seed, resumable."""
import filecmp
import json
import re
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from ideal.scenes import dataset_stats, load_synthetic
from ideal.scenes.colors import color_name
from ideal.scenes.rooms import ROOMS
from ideal.scenes.synthetic import generate, generate_scene, scene_id


@pytest.fixture(scope="module")
def meta(bench_root):
    """What the session's benchmark was generated with: {"scenes": n, "seed": s, ...}."""
    return json.loads((bench_root / "meta.json").read_text())


@pytest.fixture(scope="module")
def everything(bench_root):
    return load_synthetic(bench_root, split="all", points_per_object=64)


def test_published_layout_on_disk(bench_root):
    sid = scene_id(0)
    for name in (f"{sid}_vh_clean_2.ply", f"{sid}_vh_clean_2.0.010000.segs.json", f"{sid}.aggregation.json",
                 f"{sid}.txt"):
        assert (bench_root / "scans" / sid / name).is_file()
    for name in ("ScanRefer_filtered_train.json", "ScanRefer_filtered_val.json", "nr3d.csv", "sr3d.csv",
                 "scannetv2_train.txt", "scannetv2_val.txt", "scannetv2-labels.combined.tsv"):
        assert (bench_root / name).is_file()
    txt = (bench_root / "scans" / sid / f"{sid}.txt").read_text()
    assert re.search(r"^axisAlignment = (\S+ ){15}\S+$", txt, re.M) and re.search(r"^sceneType = .+$", txt, re.M)
    assert txt.split("axisAlignment = ")[1].split()[:3] != ["1", "0", "0"]  # scans are stored rotated


def test_splits_are_disjoint_and_cover_all_scenes(bench_root, meta):
    train = (bench_root / "scannetv2_train.txt").read_text().split()
    val = (bench_root / "scannetv2_val.txt").read_text().split()
    assert not set(train) & set(val) and len(train) + len(val) == meta["scenes"] and val
    val_ds = load_synthetic(bench_root, split="val", points_per_object=0)
    assert set(val_ds.scenes) == set(val)
    assert {d.scene_id for d in val_ds.descriptions} <= set(val)
    assert {d.source for d in val_ds.descriptions} == {"scanrefer", "nr3d", "sr3d"}


def test_read_back_geometry_matches_the_generator(everything, meta):
    for i in range(meta["scenes"]):
        syn = generate_scene(meta["seed"], i)
        got = everything.scenes[syn.scene.scene_id]
        assert got.scene_type == syn.scene.scene_type
        assert len(got.objects) == len(syn.scene.objects)
        for a, b in zip(syn.scene.objects, got.objects):
            assert a.object_id == b.object_id
            assert a.label == b.label  # raw annotation label mapped back to the category by the label map
            np.testing.assert_allclose(a.center, b.center, atol=2e-3)  # float32 ply after a rotation
            np.testing.assert_allclose(a.size, b.size, atol=2e-3)
            assert color_name(b.color_rgb) == syn.placed[a.object_id].color
            assert b.points is not None and b.points.shape[1] == 6


def test_every_description_is_loaded_and_points_at_a_real_object(bench_root, everything):
    relations = [json.loads(line) for line in (bench_root / "relations.jsonl").read_text().splitlines()]
    assert len(relations) == len(everything.descriptions)
    by_id = {d.desc_id: d for d in everything.descriptions}
    for r in relations:
        d = by_id[r["desc_id"]]
        assert (d.scene_id, d.object_id, d.source) == (r["scene_id"], r["object_id"], r["style"])


# Independent checks of each stated relation, on the geometry as the readers return it.
def _lo(o):
    return np.asarray(o.center) - np.asarray(o.size) / 2


def _hi(o):
    return np.asarray(o.center) + np.asarray(o.size) / 2


def _gap(a, b):
    return float(np.linalg.norm(np.maximum(0, np.maximum(_lo(a)[:2] - _hi(b)[:2], _lo(b)[:2] - _hi(a)[:2]))))


def _on(a, b):
    c = np.asarray(a.center[:2])
    return abs(_lo(a)[2] - _hi(b)[2]) < 0.05 and np.all(c >= _lo(b)[:2]) and np.all(c <= _hi(b)[:2])


def _dist(a, b):
    return float(np.linalg.norm(np.subtract(a.center, b.center)))


def _holds(name, t, anchors, scene):
    floor = next(o for o in scene.objects if o.label == "floor")
    to_wall = np.concatenate([_lo(t)[:2] - _lo(floor)[:2], _hi(floor)[:2] - _hi(t)[:2]])
    same = [o for o in scene.objects if o.label == t.label]
    if name == "on":
        return _on(t, anchors[0])
    if name == "supports":
        return _on(anchors[0], t)
    if name == "above":
        return _lo(t)[2] > _hi(anchors[0])[2] and _gap(t, anchors[0]) <= 0.11
    if name == "below":
        return _lo(anchors[0])[2] > _hi(t)[2] and _gap(t, anchors[0]) <= 0.11
    if name == "next_to":
        return _gap(t, anchors[0]) <= 0.5
    if name in ("near_window", "near_door"):
        return anchors[0].label == name[5:] and _gap(t, anchors[0]) <= 1.05
    if name == "against_wall":
        return to_wall.min() <= 0.2
    if name == "in_corner":
        return min(to_wall[0], to_wall[2]) <= 0.65 and min(to_wall[1], to_wall[3]) <= 0.65
    if name in ("closest", "farthest"):
        d = {o.object_id: _dist(o, anchors[0]) for o in same}
        pick = min if name == "closest" else max
        return len(same) >= 2 and pick(d, key=d.get) == t.object_id
    if name == "between":
        p, q, c = (np.asarray(o.center[:2]) for o in (*anchors, t))
        s = np.dot(c - p, q - p) / np.dot(q - p, q - p)
        return 0.15 < s < 0.85
    raise AssertionError(f"unknown relation {name}")


def test_stated_relations_are_true_in_the_geometry(bench_root, everything):
    records = [json.loads(line) for line in (bench_root / "relations.jsonl").read_text().splitlines()]
    seen = Counter()
    for r in records:
        scene = everything.scenes[r["scene_id"]]
        objs = {o.object_id: o for o in scene.objects}
        for rel in r["relations"]:
            anchors = [objs[a] for a in rel["anchors"]]
            assert _holds(rel["name"], objs[r["object_id"]], anchors, scene), (r["desc_id"], rel)
            seen[rel["name"]] += 1
    assert {"on", "next_to", "closest", "farthest", "between", "against_wall"} <= set(seen), seen


def test_descriptions_say_what_the_records_say(bench_root, everything):
    lines = (bench_root / "relations.jsonl").read_text().splitlines()
    records = {json.loads(x)["desc_id"]: json.loads(x) for x in lines}
    for d in everything.descriptions:
        r = records[d.desc_id]
        if r["color"]:
            assert r["color"] in d.text.split() or f"{r['color']}." in d.text
            obj = everything.scenes[d.scene_id].object(d.object_id)
            assert color_name(obj.color_rgb) == r["color"]
        if d.source == "sr3d":
            assert re.fullmatch(r"the .+ that is (closest to|farthest from|between|on top of|next to|above) the .+",
                                d.text), d.text
        if d.source in ("nr3d", "sr3d"):  # ReferIt3D: the target class has distractors in the scene
            label = everything.scenes[d.scene_id].object(d.object_id).label
            assert sum(o.label == label for o in everything.scenes[d.scene_id].objects) >= 2


def test_scanrefer_style_is_free_form(everything):
    texts = [d.text for d in everything.descriptions if d.source == "scanrefer"]
    assert np.mean([t.count(".") for t in texts]) >= 2  # several sentences
    assert len(set(texts)) > 0.9 * len(texts)
    nr3d = [d.text for d in everything.descriptions if d.source == "nr3d"]
    assert np.mean([len(t.split()) for t in nr3d]) < np.mean([len(t.split()) for t in texts]) / 2


def test_rooms_are_varied_and_ambiguous():
    syns = [generate_scene(11, i) for i in range(150)]
    n_objects = [len(s.scene.furniture()) for s in syns]
    assert min(n_objects) >= 8 and max(n_objects) <= 40
    assert len({s.scene.scene_type for s in syns}) >= 6
    assert set(ROOMS) >= {s.scene.scene_type for s in syns}
    classes = Counter(o.label for s in syns for o in s.scene.furniture())
    assert len(classes) >= 40
    assert classes["chair"] >= 5 * 150 / 10  # many chairs in many rooms
    rooms_with_chairs = sum(any(o.label == "chair" for o in s.scene.objects) for s in syns)
    assert rooms_with_chairs >= 30


def test_deterministic_from_seed(bench_root, meta, tmp_path):
    again = generate(tmp_path / "again", n_scenes=meta["scenes"], seed=meta["seed"], progress=False)
    cmp = filecmp.dircmp(bench_root, again)
    assert not cmp.diff_files and not cmp.left_only and not cmp.right_only
    for sub in (bench_root / "scans").iterdir():
        c = filecmp.dircmp(sub, again / "scans" / sub.name)
        assert not c.diff_files and not c.left_only and not c.right_only, sub.name
        assert all(filecmp.cmp(sub / f, again / "scans" / sub.name / f, shallow=False) for f in c.common_files)
    other = generate(tmp_path / "other", n_scenes=meta["scenes"], seed=meta["seed"] + 1, progress=False)
    refs = "ScanRefer_filtered_train.json"
    assert (other / refs).read_bytes() != (bench_root / refs).read_bytes()


def test_resume_rewrites_only_what_is_missing(tmp_path):
    out = generate(tmp_path / "b", n_scenes=4, seed=5, progress=False)
    sid = scene_id(2)
    ply = out / "scans" / sid / f"{sid}_vh_clean_2.ply"
    original = ply.read_bytes()
    kept = out / "scans" / scene_id(1) / f"{scene_id(1)}.txt"
    mtime = kept.stat().st_mtime_ns
    ply.unlink()  # as if the run was killed mid-scan
    (out / "scans" / ".scene0003_00.tmp999").mkdir()  # and left a temp folder behind
    generate(out, n_scenes=4, seed=5, progress=False)
    assert ply.read_bytes() == original
    assert kept.stat().st_mtime_ns == mtime
    generate(out, n_scenes=4, seed=6, progress=False)  # another seed: nothing stale is reused
    assert ply.read_bytes() != original


def test_stats(everything, meta):
    s = dataset_stats(everything)
    assert s["scenes"] == meta["scenes"] and s["descriptions"] == len(everything.descriptions)
    assert 8 <= s["objects_per_scene"]["min"] <= s["objects_per_scene"]["mean"] <= s["objects_per_scene"]["max"] <= 40
    assert set(s["descriptions_by_source"]) == {"scanrefer", "nr3d", "sr3d"}
    assert 0 < s["share_target_class_in_5+_scenes"] <= 1


def test_cli_writes_and_prints_statistics(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ideal.scenes.synthetic", "--out", str(tmp_path / "c"),
                          "--scenes", "3", "--seed", "1"], capture_output=True, text=True, check=True)
    assert re.search(r"^scenes\s+3$", out.stdout, re.M), out.stdout
    assert "words_per_description" in out.stdout and (tmp_path / "c" / "scans" / scene_id(2)).is_dir()
    bad = subprocess.run([sys.executable, "-m", "ideal.scenes.synthetic", "--out", str(tmp_path / "d"),
                          "--scenes", "0"], capture_output=True, text=True)
    assert bad.returncode != 0 and "--scenes must be between 1 and 10000" in bad.stderr


def test_a_finished_benchmark_is_not_generated_again(tmp_path, monkeypatch):
    from ideal.scenes import synthetic

    out = generate(tmp_path / "b", n_scenes=3, seed=5, progress=False)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    def no_regeneration(*a, **k):
        raise AssertionError("a finished benchmark was generated again")

    monkeypatch.setattr(synthetic, "generate_scene", no_regeneration)
    assert generate(out, n_scenes=3, seed=5, progress=False) == out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    (out / "nr3d.csv").unlink()  # an incomplete one is
    with pytest.raises(AssertionError, match="generated again"):
        generate(out, n_scenes=3, seed=5, progress=False)
