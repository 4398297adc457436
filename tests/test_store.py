"""The encoded gallery directory (ideal.store): tables and encodings read back as written, encodings found by
the checkpoint's digest, and every broken file named with what is wrong."""
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ideal.dialog.router import mean_knn_distance
from ideal.retrieval.index import SceneIndex
from ideal.scenes.types import Description, FormatError, Scene, SceneMemory, SceneObject
from ideal.store import GalleryDir, write_encoding, write_tables

SCENES = [Scene(f"scene000{i}_00", "Office", [SceneObject(j, lab, (j, 0.5, 0.5), (1, 1, 1), (0.25, 0.5, 0.75))
                                              for j, lab in enumerate(labels)])
          for i, labels in enumerate([["desk", "chair"], ["bed"], ["sofa", "tv", "lamp"]])]
DESCS = [Description("d0", "scene0000_00", 1, "chair", "the chair at the desk", "scanrefer"),
         Description("d1", "scene0002_00", 2, "lamp", "the lamp by the sofa", "nr3d")]
MEMORIES = [SceneMemory(s.scene_id, [f"There is a {o.label}." for o in s.objects]) for s in SCENES]


@pytest.fixture()
def g(tmp_path):
    write_tables(tmp_path, SCENES[::-1], DESCS, MEMORIES, {"scannet_dir": "/data/scans"})
    ids = [s.scene_id for s in SCENES]
    v = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    write_encoding(tmp_path, "labels", "labels", ids, v, mean_knn_distance(v, 1), 1, SceneIndex.build(ids, v))
    return tmp_path, v


def test_what_is_written_is_read_back(g):
    path, v = g
    store = GalleryDir(path)
    assert store.ids == sorted(s.scene_id for s in SCENES)
    assert [s.scene_id for s in store.scenes()] == store.ids
    assert [o.label for o in store.scenes()[2].objects] == ["sofa", "tv", "lamp"]
    assert store.descriptions() == DESCS
    assert store.memories() == {m.scene_id: m for m in MEMORIES}
    name = store.encoding_name("labels")
    np.testing.assert_array_equal(store.embeddings(name), v)
    k, dist = store.mean_knn_distance(name)
    assert k == 1 and np.allclose(dist, mean_knn_distance(v, 1))
    assert store.index(name).ids == store.ids
    ds = store.dataset()
    assert sorted(ds.scenes) == store.ids and ds.descriptions == DESCS


def test_the_scene_knowledge_is_stored_and_read_back_as_computed(g):
    from ideal.dialog.knowledge import SceneKnowledge

    got, want = GalleryDir(g[0]).knowledge(), SceneKnowledge(SCENES)
    assert got.ids == want.ids and got.labels == want.labels == ["bed", "chair", "desk", "lamp", "sofa", "tv"]
    np.testing.assert_array_equal(got.answers, want.answers)
    np.testing.assert_allclose(got.prior_gain, want.prior_gain)
    assert got.summaries == want.summaries and got.summaries[2][0] == "This is an office."


def test_a_gallery_without_stored_knowledge_computes_it(g):
    from ideal.dialog.knowledge import SceneKnowledge

    (g[0] / "knowledge.parquet").unlink()
    np.testing.assert_array_equal(GalleryDir(g[0]).knowledge().answers, SceneKnowledge(SCENES).answers)


def test_knowledge_of_a_scene_outside_the_gallery_is_named(g):
    rows = pq.read_table(g[0] / "knowledge.parquet").to_pylist()
    rows[4]["scene_id"] = "scene0999_00"
    pq.write_table(pa.Table.from_pylist(rows), g[0] / "knowledge.parquet")
    with pytest.raises(FormatError, match=r"knowledge.parquet.*row 4.*scene0999_00 is not in the gallery"):
        GalleryDir(g[0]).knowledge()


def test_an_encoding_made_with_other_weights_is_an_error_saying_how_to_add_it(g):
    from ideal.checkpoints import SHIPPED

    with pytest.raises(ValueError, match=r"no encoding made with .*base.*--weights .* --out"):
        GalleryDir(g[0]).encoding_name(SHIPPED["base"])


def test_other_scenes_in_the_same_folder_are_refused(g):
    with pytest.raises(ValueError, match="other scenes"):
        write_tables(g[0], SCENES[:2], [], MEMORIES[:2], {})
    with pytest.raises(ValueError, match="other scenes than the gallery"):
        write_encoding(g[0], "x", "labels", ["a"], np.ones((1, 4), np.float32), np.zeros(1), 1,
                       SceneIndex.build(["a"], np.ones((1, 4), np.float32)))


def test_broken_files_are_named(g, tmp_path_factory):
    path = g[0]
    with pytest.raises(FormatError, match="gallery.json.*not an encoded gallery"):
        GalleryDir(tmp_path_factory.mktemp("empty"))
    rows = pq.read_table(path / "memories.parquet").to_pylist()
    rows[3]["sentence"] = None
    pq.write_table(pa.Table.from_pylist(rows), path / "memories.parquet")
    with pytest.raises(FormatError, match=r"memories.parquet.*row 3.*'sentence' is null"):
        GalleryDir(path).memories()
    pq.write_table(pa.table({"desc_id": ["d9"]}), path / "descriptions.parquet")
    with pytest.raises(FormatError, match=r"descriptions.parquet.*missing column"):
        GalleryDir(path).descriptions()
    manifest = json.loads((path / "gallery.json").read_text())
    manifest["scene_ids"] = manifest["scene_ids"][:2]
    (path / "gallery.json").write_text(json.dumps(manifest))
    with pytest.raises(FormatError, match="embeddings.parquet.*not the gallery's 2 scenes"):
        GalleryDir(path).embeddings("labels")
    (path / "gallery.json").write_text("{not json")
    with pytest.raises(FormatError, match="gallery.json.*not JSON"):
        GalleryDir(path)


def test_a_table_shard_written_without_knowledge_gets_it_when_the_gallery_is_finished(bench_root, tmp_path):
    """Shards of an older build hold no knowledge table: finishing the gallery computes theirs, so the stored
    table equals the one computed from the scenes."""
    from ideal import build
    from ideal.dialog.knowledge import SceneKnowledge

    source = build.synthetic_source(bench_root, "val")
    build.build_gallery(source, tmp_path, {"labels": "labels"}, shard_size=2, progress=False)
    stored = GalleryDir(tmp_path).knowledge()
    shards = sorted((tmp_path / "shards" / "tables").glob("part-*"))
    assert len(shards) > 1
    (shards[1] / "knowledge.parquet").unlink()
    (tmp_path / "knowledge.parquet").unlink()
    build.build_gallery(source, tmp_path, {"labels": "labels"}, shard_size=2, progress=False)
    again, want = GalleryDir(tmp_path).knowledge(), SceneKnowledge(GalleryDir(tmp_path).scenes())
    for got in (stored, again):
        np.testing.assert_array_equal(got.answers, want.answers)
        assert got.summaries == want.summaries


def test_a_shard_encoded_again_keeps_what_it_wrote(bench_root, tmp_path):
    """Ray runs a task again when its node is lost, also one that had written its shard: the outputs stay."""
    from ideal import build
    from ideal.retrieval.encode import ShardEncoder, gallery_plan

    source = build.synthetic_source(bench_root, "val")
    shards, tables, embedded = gallery_plan(tmp_path, source, {"labels": "labels"}, 4)
    encoder = ShardEncoder(source.to_dict(), {"labels": "labels"})
    todo = {"labels": str(embedded["labels"][0])}
    assert encoder.encode(shards[0], str(tables[0]), todo) == len(shards[0])
    stamps = [p.stat().st_mtime_ns for p in (tables[0] / "scenes.parquet", embedded["labels"][0])]
    assert encoder.encode(shards[0], str(tables[0]), todo) == len(shards[0])
    assert [p.stat().st_mtime_ns for p in (tables[0] / "scenes.parquet", embedded["labels"][0])] == stamps
