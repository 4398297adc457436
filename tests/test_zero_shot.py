"""jobs/zero_shot.py: its phrasing generator names the target's class, states only what the geometry makes true,
picks the target out of its class, shares no template with language.py, is deterministic and survives the Nr3D CSV;
the job runs end to end on three scenes with the bag-of-labels floor."""
import csv
import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from ideal.scenes import relations as rel
from ideal.scenes.colors import color_name
from ideal.scenes.language import describe_scene
from ideal.scenes.referit3d import read_nr3d, write_nr3d
from ideal.scenes.synthetic import generate_scene
from ideal.scenes.types import Scene, SceneObject

ROOT = Path(__file__).resolve().parents[1]
N_SCENES, PER_SCENE = 40, 12
# Phrases that mark language.py's templates (its sentence openings, relation wordings and Nr3D/Sr3D shapes).
LANGUAGE_PHRASES = ("it is", "there is", "this is", "that is", "closest to", "farthest from", "furthest from",
                    "nearest the", "nearest to", "next to", "on top of", "hangs above", "right by", "is placed",
                    "made of", "of all the", "choose the", "not the other ones", "against the wall", "in the corner",
                    "along the wall", "by the window", "close to the", "is located", "is between", "sits in",
                    "mounted on the wall")


def _load_job():
    spec = importlib.util.spec_from_file_location("zero_shot_job", ROOT / "jobs" / "zero_shot.py")
    job = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = job  # dataclasses look their module up while the file runs
    spec.loader.exec_module(job)
    return job


zs = _load_job()


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


@pytest.fixture(scope="module")
def synthetic():
    return {s.scene.scene_id: s for s in (generate_scene(0, i) for i in range(N_SCENES))}


@pytest.fixture(scope="module")
def scenes(synthetic):
    return {sid: s.scene for sid, s in synthetic.items()}


@pytest.fixture(scope="module")
def novel(scenes):
    return zs.novel_descriptions(scenes, PER_SCENE, seed=0)


def holds(scene: Scene, t: SceneObject, claim) -> bool:
    """The claim recomputed from the geometry: ideal.scenes.relations, the job's two hand-tested side relations,
    the colour palette and box volumes."""
    same = [o for o in scene.objects if o.label == t.label]
    if claim.name == "colour":
        return claim.word in zs.COLOUR_WORDS[color_name(t.color_rgb)]
    if claim.name in ("smaller", "bigger"):
        others = [float(np.prod(o.size)) for o in same if o.object_id != t.object_id]
        v = float(np.prod(t.size))
        return bool(others) and (v * 1.25 < min(others) if claim.name == "smaller" else v > 1.25 * max(others))
    a = scene.object(claim.anchors[0])
    bounds = rel.room_bounds(scene)
    return {
        "closest": lambda: rel.is_closest(t, same, a), "farthest": lambda: rel.is_farthest(t, same, a),
        "on": lambda: rel.is_on(t, a), "under": lambda: rel.is_on(a, t) or rel.is_above(a, t),
        "over": lambda: rel.is_above(t, a), "beside": lambda: rel.is_next_to(t, a), "near": lambda: rel.is_near(t, a),
        "left": lambda: zs.side_of(t, a, bounds) == "left", "right": lambda: zs.side_of(t, a, bounds) == "right",
        "across": lambda: zs.across_from(t, a, bounds),
    }[claim.name]()


def test_a_full_set_of_descriptions_per_scene(novel):
    per = {}
    for n in novel:
        per[n.description.scene_id] = per.get(n.description.scene_id, 0) + 1
    assert len(per) == N_SCENES and min(per.values()) == PER_SCENE
    assert [n.description.desc_id for n in novel] == [f"nr3d/{i}" for i in range(len(novel))]
    texts = [(n.description.scene_id, n.description.text) for n in novel]
    assert len(set(texts)) == len(texts)


def test_every_description_names_its_target_class(novel, scenes):
    for n in novel:
        d = n.description
        label = scenes[d.scene_id].object(d.object_id).label
        assert d.object_name == label and d.source == "nr3d"
        w, lw = words(d.text), words(label)
        assert any(w[i:i + len(lw)] == lw for i in range(len(w))), d


def test_every_stated_relation_holds_and_picks_the_target_out(novel, scenes):
    said = set()
    for n in novel:
        d, scene = n.description, scenes[n.description.scene_id]
        t = scene.object(d.object_id)
        assert n.claims, d
        for c in n.claims:
            assert holds(scene, t, c), (d, c)
            said.add(c.name)
            if c.anchors:  # the anchor is named, and an anchor a superlative or side needs is one of a kind
                a = scene.object(c.anchors[0])
                assert " ".join(words(a.label)) in " ".join(words(d.text)), (d, c)
                if c.name in zs.DEFINITE_ONLY:
                    assert sum(o.label == a.label for o in scene.objects) == 1, (d, c)
            if c.name == "colour":
                assert c.word in words(d.text)
        # Nr3D-style: no other object of the class fits every claim (relations to any anchor of that label)
        for other in scene.objects:
            if other.label != t.label or other.object_id == t.object_id:
                continue
            fits = []
            for c in n.claims:
                if c.anchors:
                    anchor_label = scene.object(c.anchors[0]).label
                    fits.append(any(holds(scene, other, type(c)(c.name, (o.object_id,))) for o in scene.objects
                                    if o.label == anchor_label))
                else:
                    fits.append(holds(scene, other, c))
            assert not all(fits), (d, other.object_id)
    # the generator uses its whole vocabulary of relations on 40 rooms
    assert set(zs.PHRASES) <= said and {"colour", "smaller", "bigger"} <= said


def test_phrasing_shares_no_template_with_language_py(novel, synthetic):
    language = {}
    for sid, s in synthetic.items():
        texts = [u.text for u in s.utterances]
        for k in range(5):  # more draws of language.py's templates over the same rooms
            texts += [u.text for u in describe_scene(s.scene, s.placed, np.random.default_rng([k, 99]))]
        language[sid] = [words(t) for t in texts]
    for n in novel:
        g = words(n.description.text)
        joined = " " + " ".join(g) + " "
        for phrase in LANGUAGE_PHRASES:
            assert f" {phrase} " not in joined, (n.description.text, phrase)
        for lw in language[n.description.scene_id]:
            assert g != lw, n.description.text
            assert g[:len(lw)] != lw, (n.description.text, " ".join(lw))  # does not open with a whole one
            assert len(lw) < 3 or g[:3] != lw[:3], (n.description.text, " ".join(lw))


def test_deterministic_and_each_scene_alone(scenes, novel):
    again = zs.novel_descriptions(scenes, PER_SCENE, seed=0)
    assert again == novel
    sid = sorted(scenes)[7]
    other = zs.novel_descriptions({sid: scenes[sid]}, PER_SCENE, seed=1)
    assert {n.description.text for n in other} != {n.description.text for n in novel if n.description.scene_id == sid}
    alone = zs.novel_descriptions({sid: scenes[sid]}, PER_SCENE, seed=0)
    assert [(n.description.text, n.claims) for n in alone] == \
           [(n.description.text, n.claims) for n in novel if n.description.scene_id == sid]


def test_nr3d_csv_round_trip(novel, scenes, tmp_path):
    path = tmp_path / "nr3d_novel.csv"
    descs = [n.description for n in novel]
    write_nr3d(path, descs, scenes)
    assert read_nr3d(path) == descs
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert all(r["mentions_target_class"] == "True" for r in rows)


def box(oid, label, lo, hi):
    lo, hi = np.array(lo, float), np.array(hi, float)
    return SceneObject(oid, label, tuple((lo + hi) / 2), tuple(hi - lo), (0.5, 0.5, 0.5))


# A 5 m x 4 m room; the bed stands against the north wall (y = 4).
FLOOR = box(0, "floor", (0, 0, -0.05), (5, 4, 0))
BED = box(1, "bed", (2, 2.5, 0), (3.6, 4, 0.5))
BOUNDS = rel.room_bounds(Scene("s", "Bedroom / Hotel", [FLOOR, BED]))


def test_left_and_right_as_seen_facing_the_anchor():
    # Facing the north wall, west (small x) is on the left.
    assert zs.side_of(box(2, "nightstand", (1.4, 3.5, 0), (1.9, 4, 0.5)), BED, BOUNDS) == "left"
    assert zs.side_of(box(2, "nightstand", (3.8, 3.5, 0), (4.3, 4, 0.5)), BED, BOUNDS) == "right"
    assert zs.side_of(box(2, "rug", (2.5, 1.8, 0), (3.0, 2.3, 0.1)), BED, BOUNDS) is None  # in front, not beside
    assert zs.side_of(box(2, "chair", (0.1, 0.1, 0), (0.6, 0.6, 0.9)), BED, BOUNDS) is None  # too far to say
    # Facing the west wall (x = 0), south (small y) is on the left.
    couch = box(3, "couch", (0, 1, 0), (0.9, 3, 0.8))
    assert zs.side_of(box(2, "lamp", (0.1, 0.4, 0), (0.4, 0.7, 1.5)), couch, BOUNDS) == "left"
    assert zs.side_of(box(2, "lamp", (0.1, 3.3, 0), (0.4, 3.6, 1.5)), couch, BOUNDS) == "right"
    # An anchor in the middle of the room has no front to face.
    table = box(4, "table", (2, 1.2, 0), (3, 2, 0.75))
    assert zs.side_of(box(2, "chair", (1.3, 1.3, 0), (1.8, 1.8, 0.9)), table, BOUNDS) is None


def test_across_means_opposite_walls_facing_each_other():
    assert zs.across_from(box(2, "dresser", (2.2, 0, 0), (3.4, 0.5, 0.9)), BED, BOUNDS)
    assert not zs.across_from(box(2, "dresser", (4.0, 0, 0), (4.9, 0.5, 0.9)), BED, BOUNDS)  # not facing it
    assert not zs.across_from(box(2, "desk", (0, 1, 0), (0.7, 2.4, 0.75)), BED, BOUNDS)  # a side wall
    assert not zs.across_from(box(2, "table", (2, 1.2, 0), (3, 2, 0.75)), BED, BOUNDS)  # mid-room


def test_the_job_on_three_scenes_with_the_floor_only(bench_root, tmp_path):
    meta = json.loads((Path(bench_root) / "meta.json").read_text())
    out = tmp_path / "zs" / "nr3d_novel.csv"
    report = zs.main(["--out", str(out), "--limit", "3", "--per-scene", "4", "--weights", "labels",
                      "--set", f"data.root={bench_root}", "--set", f"data.scenes={meta['scenes']}",
                      "--set", f"data.seed={meta['seed']}"])
    saved = json.loads((out.parent / "results.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert saved["scenes"] == 3 and saved["queries"] == len(read_nr3d(out)) > 0
    assert list(saved["results"]) == [zs.FLOOR]
    r = saved["results"][zs.FLOOR]
    assert 0 <= r["R@1"] <= r["R@5"] <= r["R@10"] == 100  # a 3-scene gallery: every target is in the top 10
    assert r["Rsum"] == pytest.approx(r["R@1"] + r["R@5"] + r["R@10"]) and r["ratio_to_floor"] == 1
    assert f"| {zs.FLOOR} |" in (out.parent / "results.md").read_text()
