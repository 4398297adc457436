"""ideal.scenes.load: which scenes and descriptions come back, and errors that name the file and row; the splits
(dev carved out of the listed training scenes)."""
import json

import pytest

from ideal.scenes import FormatError, load, load_synthetic
from ideal.scenes.dataset import dev_scene_ids, split_scene_ids


def test_scans_only_loads_every_scan_with_memories(bench_root):
    ds = load(bench_root / "scans", points_per_object=0)
    n = json.loads((bench_root / "meta.json").read_text())["scenes"]
    assert sorted(ds.scenes) == [f"scene{i:04d}_00" for i in range(n)] and ds.descriptions == []
    assert set(ds.memories) == set(ds.scenes)
    # no descriptions: the fine memory is the facts read off the geometry
    assert all(m.fine[0].startswith("This is ") and len(m.fine) >= 3 for m in ds.memories.values())


def test_description_files_choose_the_gallery(bench_root):
    val = (bench_root / "scannetv2_val.txt").read_text().split()
    ds = load(bench_root / "scans", scanrefer=bench_root / "ScanRefer_filtered_val.json", points_per_object=0)
    assert sorted(ds.scenes) == sorted(val)
    ds2 = load(bench_root / "scans", nr3d=bench_root / "nr3d.csv", scene_ids=val[:1], points_per_object=0)
    assert list(ds2.scenes) == val[:1] and {d.scene_id for d in ds2.descriptions} == set(val[:1])
    # Fine memory holds the scene's descriptions.
    d = ds.descriptions[0]
    assert d.text in ds.memories[d.scene_id].fine


def test_label_map_column(bench_root):
    tsv = bench_root / "scannetv2-labels.combined.tsv"
    cats = load_synthetic(bench_root, "all", points_per_object=0)
    nyu = load(bench_root / "scans", label_map=tsv, label_column="nyu40class", points_per_object=0)
    cat_labels = {o.label for s in cats.scenes.values() for o in s.objects}
    nyu_labels = {o.label for s in nyu.scenes.values() for o in s.objects}
    assert "office chair" not in nyu_labels and "chair" in nyu_labels
    assert "sofa" in nyu_labels or "couch" not in cat_labels


def test_missing_scan_and_object_name_the_file_and_entry(bench_root, tmp_path):
    entries = json.loads((bench_root / "ScanRefer_filtered_val.json").read_text())
    bad = tmp_path / "refs.json"
    bad.write_text(json.dumps(entries[:2] + [dict(entries[0], scene_id="scene0999_00")]))
    with pytest.raises(FormatError, match=r"refs\.json: entry 2: scene scene0999_00 is not in"):
        load(bench_root / "scans", scanrefer=bad)
    bad.write_text(json.dumps(entries[:1] + [dict(entries[0], object_id="777")]))
    with pytest.raises(FormatError, match=r"refs\.json: entry 1: object_id 777 is not an object of"):
        load(bench_root / "scans", scanrefer=bad, points_per_object=0)
    with pytest.raises(FormatError, match=r"scan\(s\) not found: \['scene0998_00'\]"):
        load(bench_root / "scans", scene_ids=["scene0998_00"])


def test_split_names(bench_root):
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'dev', 'val', 'all'\), got 'test'"):
        load_synthetic(bench_root, "test")
    with pytest.raises(ValueError, match="split must be train, dev, val or train\\+dev, got 'all'"):
        split_scene_ids(bench_root, "all")


# ------------------------------------------------------------------------------------------------ splits

def write_lists(path, n_train, n_val):
    path.mkdir(parents=True, exist_ok=True)
    train = [f"scene{i:04d}_00" for i in range(n_train)]
    val = [f"scene{i:04d}_00" for i in range(n_train, n_train + n_val)]
    # listed out of order: the split must not depend on the file's order
    (path / "scannetv2_train.txt").write_text("".join(f"{s}\n" for s in reversed(train)) + "\n")
    (path / "scannetv2_val.txt").write_text("".join(f"{s}\n" for s in val))
    return set(train), set(val)


@pytest.mark.parametrize("n_train, n_val, n_dev", [(30, 4, 4), (9, 10, 3), (12, 4, 4), (2, 5, 0)],
                         ids=["as-many-as-val", "a-third-of-train", "both", "too-few"])
def test_dev_is_carved_from_train(tmp_path, n_train, n_val, n_dev):
    listed_train, listed_val = write_lists(tmp_path, n_train, n_val)
    train, dev, val = (split_scene_ids(tmp_path, s) for s in ("train", "dev", "val"))
    assert len(dev) == n_dev == min(len(listed_val), len(listed_train) // 3)
    assert set(val) == listed_val
    assert set(train) | set(dev) == listed_train
    assert not set(train) & set(dev) and not set(train) & set(val) and not set(dev) & set(val)
    assert len(set(train)) == len(train) and len(set(dev)) == len(dev)
    assert set(split_scene_ids(tmp_path, "train+dev")) == listed_train
    # deterministic: the same split on every call, and from a copy of the lists elsewhere
    assert [split_scene_ids(tmp_path, s) for s in ("train", "dev", "val")] == [train, dev, val]
    write_lists(tmp_path / "copy", n_train, n_val)
    assert split_scene_ids(tmp_path / "copy", "dev") == dev
    assert sorted(dev) == dev_scene_ids(sorted(listed_train), n_val)


def test_dev_scene_ids():
    ids = [f"s{i:03d}" for i in range(90)]
    dev = dev_scene_ids(ids, 10)
    assert len(dev) == 10 and set(dev) <= set(ids) and dev == sorted(dev)
    assert dev_scene_ids(ids, 10) == dev == dev_scene_ids(list(reversed(ids)), 10)  # order of the input: no matter
    assert dev != ids[:10]  # a sample, not the first scenes
    assert len(dev_scene_ids(ids, 1000)) == 30  # at most a third
    assert dev_scene_ids(ids, 10, seed=1) != dev


def test_load_synthetic_dev(bench_root):
    listed_train = set((bench_root / "scannetv2_train.txt").read_text().split())
    val_ids = set((bench_root / "scannetv2_val.txt").read_text().split())
    dev = load_synthetic(bench_root, "dev", points_per_object=0)
    train = load_synthetic(bench_root, "train", points_per_object=0)
    val = load_synthetic(bench_root, "val", points_per_object=0)
    assert sorted(dev.scenes) == split_scene_ids(bench_root, "dev")
    assert len(dev.scenes) == min(len(val_ids), len(listed_train) // 3) >= 1
    assert set(dev.scenes) | set(train.scenes) == listed_train and set(val.scenes) == val_ids
    assert not set(dev.scenes) & set(train.scenes)
    for ds in (dev, train, val):
        assert ds.descriptions and {d.scene_id for d in ds.descriptions} <= set(ds.scenes)
        assert set(ds.memories) == set(ds.scenes)
    # dev's descriptions are those of its scenes in the training files, and all of them
    listed = load(bench_root / "scans", scanrefer=bench_root / "ScanRefer_filtered_train.json",
                  nr3d=bench_root / "nr3d.csv", sr3d=bench_root / "sr3d.csv",
                  label_map=bench_root / "scannetv2-labels.combined.tsv", scene_ids=sorted(listed_train),
                  points_per_object=0)
    assert {d.desc_id for d in dev.descriptions} | {d.desc_id for d in train.descriptions} == \
        {d.desc_id for d in listed.descriptions}
    for d in dev.descriptions:
        assert d.text in dev.memories[d.scene_id].fine
    # all: every scene, train + dev + val
    everything = load_synthetic(bench_root, "all", points_per_object=0)
    assert set(everything.scenes) == listed_train | val_ids
