"""ideal.scenes.load: which scenes and descriptions come back, and errors that name the file and row."""
import json

import pytest

from ideal.scenes import FormatError, load, load_synthetic
from ideal.scenes.synthetic import generate


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("b"), n_scenes=6, seed=9, progress=False)


def test_scans_only_loads_every_scan_with_memories(root):
    ds = load(root / "scans", points_per_object=0)
    assert sorted(ds.scenes) == [f"scene{i:04d}_00" for i in range(6)] and ds.descriptions == []
    assert set(ds.memories) == set(ds.scenes)
    assert all(len(m.coarse) >= 2 for m in ds.memories.values())


def test_description_files_choose_the_gallery(root):
    val = (root / "scannetv2_val.txt").read_text().split()
    ds = load(root / "scans", scanrefer=root / "ScanRefer_filtered_val.json", points_per_object=0)
    assert sorted(ds.scenes) == sorted(val)
    ds2 = load(root / "scans", nr3d=root / "nr3d.csv", scene_ids=val[:1], points_per_object=0)
    assert list(ds2.scenes) == val[:1] and {d.scene_id for d in ds2.descriptions} == set(val[:1])
    # Fine memory holds the scene's descriptions.
    d = ds.descriptions[0]
    assert d.text in ds.memories[d.scene_id].fine


def test_label_map_column(root):
    tsv = root / "scannetv2-labels.combined.tsv"
    cats = load_synthetic(root, "all", points_per_object=0)
    nyu = load(root / "scans", label_map=tsv, label_column="nyu40class", points_per_object=0)
    cat_labels = {o.label for s in cats.scenes.values() for o in s.objects}
    nyu_labels = {o.label for s in nyu.scenes.values() for o in s.objects}
    assert "office chair" not in nyu_labels and "chair" in nyu_labels
    assert "sofa" in nyu_labels or "couch" not in cat_labels


def test_missing_scan_and_object_name_the_file_and_entry(root, tmp_path):
    entries = json.loads((root / "ScanRefer_filtered_val.json").read_text())
    bad = tmp_path / "refs.json"
    bad.write_text(json.dumps(entries[:2] + [dict(entries[0], scene_id="scene0999_00")]))
    with pytest.raises(FormatError, match=r"refs\.json: entry 2: scene scene0999_00 is not in"):
        load(root / "scans", scanrefer=bad)
    bad.write_text(json.dumps(entries[:1] + [dict(entries[0], object_id="777")]))
    with pytest.raises(FormatError, match=r"refs\.json: entry 1: object_id 777 is not an object of"):
        load(root / "scans", scanrefer=bad, points_per_object=0)
    with pytest.raises(FormatError, match=r"scan\(s\) not found: \['scene0998_00'\]"):
        load(root / "scans", scene_ids=["scene0998_00"])


def test_split_names(root):
    with pytest.raises(ValueError, match="split must be train, val or all"):
        load_synthetic(root, "test")
