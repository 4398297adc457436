import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ideal.scenes.parquet import SCENE_SCHEMA, read_scenes, write_scenes
from ideal.scenes.types import FormatError, Scene, SceneObject


def scenes():
    pts = np.arange(24, dtype=np.float32).reshape(4, 6) / 24
    return [
        Scene("scene0000_00", "Office", [
            SceneObject(0, "desk", (1.0, 2.0, 0.375), (1.4, 0.7, 0.75), (0.45, 0.28, 0.14), pts),
            SceneObject(3, "office chair", (1.0, 1.2, 0.5), (0.6, 0.6, 1.0), (0.1, 0.1, 0.1)),
        ]),
        Scene("scene0001_00", "Kitchen", [SceneObject(7, "sink", (0.5, 0.5, 0.4), (0.6, 0.5, 0.85), (0.9, 0.9, 0.9))]),
    ]


def test_round_trip_keeps_every_field(tmp_path):
    path = tmp_path / "scenes.parquet"
    write_scenes(scenes(), path)
    back = read_scenes(path)
    assert [s.scene_id for s in back] == ["scene0000_00", "scene0001_00"]
    for a, b in zip(scenes(), back):
        assert a.scene_type == b.scene_type and len(a.objects) == len(b.objects)
        for oa, ob in zip(a.objects, b.objects):
            assert (oa.object_id, oa.label) == (ob.object_id, ob.label)
            np.testing.assert_allclose(oa.center + oa.size + oa.color_rgb, ob.center + ob.size + ob.color_rgb, rtol=1e-6)
            if oa.points is None:
                assert ob.points is None
            else:
                np.testing.assert_array_equal(oa.points, ob.points)
    # One row per object, with the declared schema on disk.
    table = pq.read_table(path)
    assert table.num_rows == 3 and table.schema.equals(SCENE_SCHEMA, check_metadata=False)
    assert table.schema.field("center").type == pa.list_(pa.float32(), 3)


def test_without_points(tmp_path):
    write_scenes(scenes(), tmp_path / "s.parquet", with_points=False)
    assert all(o.points is None for s in read_scenes(tmp_path / "s.parquet") for o in s.objects)


def test_empty_scene_is_refused(tmp_path):
    with pytest.raises(ValueError, match="scene0009_00: a scene without objects"):
        write_scenes([Scene("scene0009_00", "Office", [])], tmp_path / "s.parquet")


def test_missing_column_names_file_and_column(tmp_path):
    path = tmp_path / "bad.parquet"
    write_scenes(scenes(), path)
    pq.write_table(pq.read_table(path).drop_columns(["label"]), path)
    with pytest.raises(FormatError, match=r"bad\.parquet: schema: missing column\(s\) \['label'\]"):
        read_scenes(path)


def test_null_field_names_the_row(tmp_path):
    path = tmp_path / "bad.parquet"
    write_scenes(scenes(), path)
    t = pq.read_table(path)
    labels = t.column("label").to_pylist()
    labels[2] = None
    t = t.set_column(t.schema.get_field_index("label"), pa.field("label", pa.string()), pa.array(labels))
    pq.write_table(t, path)
    with pytest.raises(FormatError, match=r"bad\.parquet: row 2: 'label' is null"):
        read_scenes(path)


def test_wrong_vector_length_is_a_schema_error(tmp_path):
    path = tmp_path / "bad.parquet"
    write_scenes(scenes(), path)
    t = pq.read_table(path)
    i = t.schema.get_field_index("center")
    t = t.set_column(i, "center", pa.array([[1.0, 2.0]] * t.num_rows, pa.list_(pa.float32())))
    pq.write_table(t, path)
    with pytest.raises(FormatError, match=r"bad\.parquet: schema"):
        read_scenes(path)


def test_not_parquet(tmp_path):
    path = tmp_path / "junk.parquet"
    path.write_text("hello")
    with pytest.raises(FormatError, match=r"junk\.parquet: not a readable parquet file"):
        read_scenes(path)


def test_read_selected_scenes_and_list_ids(tmp_path):
    from ideal.scenes.parquet import list_scene_ids

    obj = SceneObject(0, "chair", (0, 0, 0), (1, 1, 1), (0.5, 0.5, 0.5))
    scenes = [Scene(f"scene{i:04d}_00", "office", [obj, SceneObject(1, "table", (1, 0, 0), (1, 1, 1), (0, 0, 0))])
              for i in (3, 1, 2)]
    path = tmp_path / "s.parquet"
    write_scenes(scenes, path, with_points=False)
    assert list_scene_ids(path) == ["scene0001_00", "scene0002_00", "scene0003_00"]
    got = read_scenes(path, scene_ids=["scene0002_00", "scene0003_00"])
    assert [s.scene_id for s in got] == ["scene0003_00", "scene0002_00"]
    assert [o.label for o in got[0].objects] == ["chair", "table"]
    with pytest.raises(FormatError, match=r"s\.parquet.*scene0009_00"):
        read_scenes(path, scene_ids=["scene0001_00", "scene0009_00"])
