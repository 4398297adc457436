"""The training extension: only new scenes, more descriptions per scene, the benchmark's val and dev untouched
and unreachable from training; deterministic and resumable like the benchmark."""
import filecmp
import json
import re
import shutil
import subprocess
import sys
from collections import Counter

import pytest

from ideal.scenes import load, load_synthetic
from ideal.scenes.dataset import split_scene_ids
from ideal.scenes.synthetic import generate, scene_id
from ideal.scenes.synthetic_train import (EXTENSION_ID_PREFIX, generate_train_extension, load_training_set,
                                          train_extension_root)

BASE, EXTRA, SEED = 40, 12, 3


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _same_tree(a, b):
    assert sorted(p.relative_to(a) for p in a.rglob("*")) == sorted(p.relative_to(b) for p in b.rglob("*"))
    for p in a.rglob("*"):
        if p.is_file():
            assert filecmp.cmp(p, b / p.relative_to(a), shallow=False), p


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("train_ext") / "bench", n_scenes=BASE, seed=SEED, progress=False)


@pytest.fixture(scope="module")
def before(base):
    """The benchmark's files and splits before any extension exists."""
    val = load_synthetic(base, "val", points_per_object=0)
    return {"files": _files(base), "val": split_scene_ids(base, "val"), "dev": split_scene_ids(base, "dev"),
            "val_descriptions": val.descriptions}


@pytest.fixture(scope="module")
def ext(base, before):
    return generate_train_extension(train_extension_root(base, EXTRA, 2), BASE, EXTRA, SEED, passes=2, progress=False)


@pytest.fixture(scope="module")
def merged(base, ext):
    return load_training_set(base, ext)


def _keys(root):
    return [(r["scene_id"], r["object_id"], r["style"], r["desc_id"])
            for r in map(json.loads, (root / "relations.jsonl").read_text().splitlines())]


def test_default_root_sits_beside_the_benchmark(base):
    assert train_extension_root(base, 1400, 2) == base.parent / f"{base.name}-train1400x2"


def test_the_benchmark_is_untouched(base, before, ext):
    assert _files(base) == before["files"]
    assert split_scene_ids(base, "val") == before["val"] and split_scene_ids(base, "dev") == before["dev"]
    assert load_synthetic(base, "val", points_per_object=0).descriptions == before["val_descriptions"]


def test_extension_holds_only_new_scenes(base, ext):
    ids = (ext / "scannetv2_train.txt").read_text().split()
    assert ids == [scene_id(i) for i in range(BASE, BASE + EXTRA)]
    assert sorted(p.name for p in (ext / "scans").iterdir()) == ids
    base_ids = split_scene_ids(base, "train+dev") + split_scene_ids(base, "val")
    assert len(base_ids) == BASE and not set(ids) & set(base_ids)
    assert not (ext / "scannetv2_val.txt").exists() and not (ext / "ScanRefer_filtered_val.json").exists()


def test_merged_set_is_base_train_plus_extension(base, ext, merged):
    train = load_synthetic(base, "train", points_per_object=0)
    ext_ids = set((ext / "scannetv2_train.txt").read_text().split())
    assert set(merged.scenes) == set(train.scenes) | ext_ids and list(merged.scenes) == sorted(merged.scenes)
    assert not set(merged.scenes) & set(split_scene_ids(base, "val") + split_scene_ids(base, "dev"))
    assert {d.scene_id for d in merged.descriptions} <= set(merged.scenes)
    assert set(merged.memories) == set(merged.scenes) and all(m.fine for m in merged.memories.values())
    assert len({d.desc_id for d in merged.descriptions}) == len(merged.descriptions)
    assert merged.descriptions[:len(train.descriptions)] == train.descriptions
    # every description of the extension, with the ids its readers give (Nr3D/Sr3D ones prefixed)
    got = [(d.scene_id, d.object_id, d.source, d.desc_id.removeprefix(EXTENSION_ID_PREFIX))
           for d in merged.descriptions if d.scene_id in ext_ids]
    assert sorted(got) == sorted(_keys(ext))
    assert {s for s, *_ in got} == ext_ids and {src for _, _, src, _ in got} == {"scanrefer", "nr3d", "sr3d"}


def _described(root):
    """(scene, object, source, text) of every description of an extension folder, through the readers."""
    ds = load(root / "scans", scanrefer=root / "ScanRefer_filtered_train.json", nr3d=root / "nr3d.csv",
              sr3d=root / "sr3d.csv", label_map=root / "scannetv2-labels.combined.tsv", points_per_object=0)
    return [(d.scene_id, d.object_id, d.source, d.text) for d in ds.descriptions]


def test_a_second_pass_adds_new_descriptions(ext, tmp_path):
    one = generate_train_extension(tmp_path / "one", BASE, EXTRA, SEED, passes=1, progress=False)
    _same_tree(one / "scans", ext / "scans")  # passes change descriptions, not scans
    said = {root: _described(root) for root in (one, ext)}
    assert set(said[one]) < set(said[ext])  # pass 0 is kept as it was; the second pass only adds
    assert len(set(said[ext])) == len(said[ext]) - (len(said[one]) - len(set(said[one])))  # and never repeats
    per_scene = {root: Counter(s for s, *_ in said[root]) for root in (one, ext)}
    assert set(per_scene[one]) == set(per_scene[ext])
    assert all(per_scene[ext][s] > per_scene[one][s] for s in per_scene[one])
    assert len(said[ext]) > 1.5 * len(said[one])
    targets = {root: {(s, o) for s, o, src, _ in said[root] if src == "scanrefer"} for root in (one, ext)}
    assert len(targets[ext]) > len(targets[one])  # other objects are described, not only the same ones again


def test_deterministic(ext, tmp_path):
    again = generate_train_extension(tmp_path / "again", BASE, EXTRA, SEED, passes=2, progress=False)
    _same_tree(ext, again)


def test_resume_gives_the_same_folder(ext, tmp_path, monkeypatch):
    from ideal.scenes import synthetic_train

    out = shutil.copytree(ext, tmp_path / "resumed")
    shutil.rmtree(out / "scans" / scene_id(BASE + 5))
    (out / "meta.json").unlink()  # as if killed before the end
    generate_train_extension(out, BASE, EXTRA, SEED, passes=2, progress=False)
    _same_tree(ext, out)

    def no_regeneration(*a, **k):
        raise AssertionError("a finished extension was generated again")

    monkeypatch.setattr(synthetic_train, "generate_scene", no_regeneration)
    assert generate_train_extension(out, BASE, EXTRA, SEED, passes=2, progress=False) == out


def test_overlapping_extension_is_refused(base, tmp_path):
    bad = generate_train_extension(tmp_path / "bad", BASE - 2, 3, SEED, passes=1, progress=False)
    with pytest.raises(ValueError, match="also scenes of the benchmark"):
        load_training_set(base, bad)
    with pytest.raises(ValueError, match="no meta.json"):
        load_training_set(base, tmp_path / "missing")
    with pytest.raises(ValueError, match="must be >= 1"):
        generate_train_extension(tmp_path / "x", BASE, 0, SEED)


def test_cli_prints_the_merged_statistics(base, tmp_path):
    out = subprocess.run([sys.executable, "-m", "ideal.scenes.synthetic_train", "--base", str(base), "--extra", "3",
                          "--out", str(tmp_path / "e")], capture_output=True, text=True, check=True)
    n_train = len(split_scene_ids(base, "train"))
    assert re.search(rf"^scenes\s+{n_train + 3}$", out.stdout, re.M), out.stdout
    assert (tmp_path / "e" / "meta.json").is_file()
