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
