"""The encoded gallery directory (ideal.store): tables and encodings read back as written, encodings found by
the checkpoint's digest, and every broken file named with what is wrong."""
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ideal.dialog.router import mean_knn_distance
from ideal.retrieval.index import ObjectIndex, SceneIndex
from ideal.retrieval.objects import ObjectVectors
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


def objects_of(seed=1) -> ObjectVectors:
    """Object vectors of SCENES (2, 1 and 3 objects)."""
    v = np.random.default_rng(seed).normal(size=(6, 4)).astype(np.float32)
    return ObjectVectors(v / np.linalg.norm(v, axis=1, keepdims=True), [0, 2, 3, 6], [0, 1, 0, 0, 1, 2])


def write_objects_encoding(path, objects=None):
    ids = [s.scene_id for s in SCENES]
    objects = objects or objects_of()
    pooled = objects.pooled()
    write_encoding(path, "late", "labels", ids, pooled, mean_knn_distance(pooled, 1), 1, SceneIndex.build(ids, pooled),
                   objects, ObjectIndex.build(ids, objects))
    return objects


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
    assert store.manifest["format"] == "ideal.gallery/2" and store.manifest["encodings"]["labels"]["scoring"] == "scene"
    assert store.objects(name) is None and store.object_index(name) is None


def test_object_vectors_and_their_index_are_read_back(g):
    objects = write_objects_encoding(g[0])
    store = GalleryDir(g[0])
    entry = store.manifest["encodings"]["late"]
    assert (entry["scoring"], entry["object_index"], entry["objects"], entry["dim"]) == ("objects", "flat", 6, 4)
    assert sorted(p.name for p in (g[0] / "encodings" / "late").iterdir()) == [
        "embeddings.parquet", "index.faiss", "index.faiss.meta.json", "knn.parquet", "objects.faiss",
        "objects.faiss.meta.json", "objects.parquet"]
    back = store.objects("late")
    for name in ("vectors", "offsets", "object_ids"):
        np.testing.assert_array_equal(getattr(back, name), getattr(objects, name))
    np.testing.assert_array_equal(store.embeddings("late"), objects.pooled())
    index = store.object_index("late")
    assert index.ids == store.ids and (index.offsets == objects.offsets).all()
    rows, _ = index.search_scenes(objects.vectors[3:4], 1)
    assert rows.tolist() == [[2]]


def test_broken_object_vectors_are_named_with_the_row(g):
    write_objects_encoding(g[0])
    path = g[0] / "encodings" / "late" / "objects.parquet"
    table = pq.read_table(path)
    rows = table.to_pylist()
    rows[4]["embedding"] = [float("nan")] * 4
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
    with pytest.raises(FormatError, match=r"late/objects.parquet: row 4: embedding has non-finite values"):
        GalleryDir(g[0]).objects("late")
    rows = table.to_pylist()
    rows[2]["scene_id"] = "scene0999_00"
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
    with pytest.raises(FormatError, match=r"objects.parquet: row 2: scene scene0999_00 is not in the gallery"):
        GalleryDir(g[0]).objects("late")
    pq.write_table(table.slice(2), path)  # scene0000_00 left out
    with pytest.raises(FormatError, match=r"objects.parquet: row 0: scene scene0001_00 out of order: expected "
                                          r"scene scene0000_00"):
        GalleryDir(g[0]).objects("late")
    wide = pa.table({"scene_id": table.column("scene_id"), "object_id": table.column("object_id"),
                     "embedding": pa.array([e + [0.0] for e in table.column("embedding").to_pylist()],
                                           pa.list_(pa.float32(), 5))})
    pq.write_table(wide, path)
    with pytest.raises(FormatError, match=r"objects.parquet: row 0: embedding has 5 values, the encoding's are 4"):
        GalleryDir(g[0]).objects("late")


def test_a_gallery_of_the_older_format_names_the_command_that_rebuilds_it(g):
    manifest = json.loads((g[0] / "gallery.json").read_text())
    (g[0] / "gallery.json").write_text(json.dumps({**manifest, "format": "ideal.gallery/1"}))
    with pytest.raises(FormatError, match=r"gallery.json: format: written by an older version \(ideal.gallery/1; "
                                          r"this one reads ideal.gallery/2\): rebuild it with python "
                                          r"jobs/encode_scenes.py --scannet-dir /data/scans --out \S+, or delete it "
                                          r"\(the default gallery is rebuilt on next use\)"):
        GalleryDir(g[0])
    # rebuilding in place: the tables are written again (same scenes), the old encodings are dropped
    write_tables(g[0], SCENES, DESCS, MEMORIES, {"scannet_dir": "/data/scans"})
    assert GalleryDir(g[0]).manifest["encodings"] == {}
    (g[0] / "gallery.json").write_text(json.dumps({**manifest, "format": "ideal.gallery/1"}))
    with pytest.raises(ValueError, match="other scenes"):
        write_tables(g[0], SCENES[:2], [], MEMORIES[:2], {})


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


def test_an_older_gallery_is_rebuilt_in_place(bench_root, tmp_path):
    """What `ensure_gallery` does with a gallery of an older format (read_manifest's FormatError is a ValueError):
    build it again in the same folder, reusing the finished shards."""
    from ideal import build
    from ideal.store import read_manifest

    source = build.synthetic_source(bench_root, "val")
    build.build_gallery(source, tmp_path, {"labels": "labels"}, shard_size=4, progress=False)
    want = GalleryDir(tmp_path).embeddings("labels")
    manifest = json.loads((tmp_path / "gallery.json").read_text())
    (tmp_path / "gallery.json").write_text(json.dumps({**manifest, "format": "ideal.gallery/1"}))
    with pytest.raises(ValueError, match=r"older version.*--split \{train,dev,val\} --out"):
        read_manifest(tmp_path)
    build.build_gallery(source, tmp_path, {"labels": "labels"}, shard_size=4, progress=False)
    np.testing.assert_array_equal(GalleryDir(tmp_path).embeddings("labels"), want)


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


def test_the_default_gallery_drops_shards_of_retrained_weights(tmp_path):
    from ideal import checkpoints
    from ideal.build import _drop_stale_shards

    for name, sha in (("base", "an older digest"), ("iat", checkpoints.digest("iat")), ("labels", "labels")):
        (tmp_path / "shards" / name).mkdir(parents=True)
        (tmp_path / "shards" / name / "plan.json").write_text(json.dumps({"checkpoint_sha256": sha}))
    _drop_stale_shards(tmp_path, {"base": "base", "iat": "iat", "labels": "labels"})
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == ["iat", "labels"]
