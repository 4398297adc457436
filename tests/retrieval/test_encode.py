"""The shard plan of a gallery build (ideal.retrieval.encode): a re-run of the same plan is let in, any other plan
for the same folder is refused naming what differs, shards of unknown origin are refused, and what is left to do
is exactly the missing outputs."""
import json

import numpy as np
import pytest

from ideal import checkpoints
from ideal.retrieval.encode import PLAN_FILE, pending_work, plan_shards

SHARDS = [["scene0000_00", "scene0001_00"], ["scene0002_00"]]


def test_same_plan_again_and_other_plans_refused(tmp_path):
    paths = plan_shards(tmp_path, SHARDS, source="/data/scans", weights="/w", weights_sha256="ab")
    assert [p.name for p in paths] == ["part-00000", "part-00001"]
    stored = json.loads((tmp_path / PLAN_FILE).read_text())
    assert stored["shards"] == 2 and stored["scenes"] == 3 and stored["source"] == "/data/scans"
    assert plan_shards(tmp_path, SHARDS, source="/data/scans", weights="/w", weights_sha256="ab") == paths
    with pytest.raises(ValueError, match=r"weights_sha256 'ab' -> 'cd'"):
        plan_shards(tmp_path, SHARDS, source="/data/scans", weights="/w", weights_sha256="cd")
    with pytest.raises(ValueError, match="shard_ids_sha256"):  # the same scenes cut into other shards
        plan_shards(tmp_path, [["scene0000_00"], ["scene0001_00", "scene0002_00"]], source="/data/scans",
                    weights="/w", weights_sha256="ab")


def test_shards_without_a_plan_are_refused(tmp_path):
    (tmp_path / "part-00000.parquet").write_bytes(b"")
    with pytest.raises(ValueError, match="no plan.json"):
        plan_shards(tmp_path, SHARDS, source="x")


def test_pending_work_is_the_missing_outputs(tmp_path):
    tables = [tmp_path / "t0", tmp_path / "t1"]
    emb = {"base": [tmp_path / "b0.parquet", tmp_path / "b1.parquet"]}
    assert len(pending_work(SHARDS, tables, emb)) == 2
    tables[0].mkdir()
    emb["base"][0].write_bytes(b"x")
    emb["base"][1].write_bytes(b"x")
    (row,) = pending_work(SHARDS, tables, emb)
    assert row == {"scene_ids": SHARDS[1], "tables": str(tables[1]), "encodings": {}}


def test_checkpoint_digest_follows_the_bytes(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"1234")
    (tmp_path / "config.json").write_text("{}")
    first = checkpoints.digest(tmp_path)
    assert checkpoints.digest(tmp_path) == first
    (tmp_path / "model.safetensors").write_bytes(b"1235")  # retrained in place
    assert checkpoints.digest(tmp_path) != first
    assert checkpoints.digest("labels") == "labels"
    with pytest.raises(ValueError, match="not a checkpoint folder"):
        checkpoints.resolve(tmp_path / "nowhere")


@pytest.fixture(scope="module")
def object_checkpoint(tmp_path_factory):
    """A small untrained late-interaction checkpoint (scene_encoder.output=objects) written by the training code."""
    from ideal.config import load_config
    from ideal.training.train import RetrievalModel, TrainState, save_checkpoint

    import torch

    cfg = load_config(None, ["scene_encoder.width=32", "scene_encoder.ffn=64", "scene_encoder.output=objects"])
    path = tmp_path_factory.mktemp("objects") / "ck"
    torch.manual_seed(0)
    save_checkpoint(path, RetrievalModel(cfg), None, cfg, TrainState(0, []))
    return path


def test_a_late_interaction_gallery_scores_as_its_retriever(object_checkpoint, bench_root, text_encoder, tmp_path):
    """Encoded in shards, stored and read back, a late-interaction gallery scores every text against every scene
    as the retriever's own object vectors do (max over objects); served from its object index (IVF), the candidates
    score the same; a shard whose object vectors are lost is encoded again."""
    from ideal import build
    from ideal.config import IndexConfig
    from ideal.retrieval.encode import gallery_plan, objects_path, pending_work, scores_objects
    from ideal.store import GalleryDir

    assert scores_objects(object_checkpoint) and not scores_objects("labels")
    source = build.synthetic_source(bench_root, "train")  # 6 scenes, in 3 shards
    encodings = {"late": str(object_checkpoint), "labels": "labels"}
    approximate = IndexConfig(ivf_threshold=1, candidates=2)  # IVF indexes
    build.build_gallery(source, tmp_path, encodings, shard_size=2, index=approximate, progress=False)
    g = GalleryDir(tmp_path)
    assert g.manifest["encodings"]["late"]["scoring"] == "objects" and g.objects("labels") is None
    scenes = g.scenes()
    retriever = build.retriever(object_checkpoint, text_encoder)
    want = retriever.encode_objects(scenes)
    texts = [d.text for d in g.descriptions()[:6]]
    emb = retriever.encode_text(texts)
    gallery = build.gallery(g, object_checkpoint, text_encoder)
    assert gallery.late_interaction and gallery.object_index is None
    np.testing.assert_array_equal(gallery.objects.offsets, want.offsets)
    np.testing.assert_allclose(gallery.scores(texts), want.scores(emb), atol=1e-5)
    np.testing.assert_allclose(gallery.embeddings, want.pooled(), atol=1e-5)

    served = build.gallery(g, object_checkpoint, text_encoder, index=approximate, scenes=scenes)
    assert served.object_index.kind == "ivf" and served.index.kind == "ivf"
    served.object_index.set_search_params(nprobe=served.object_index.params["nlist"])  # every list: the exact top 2
    got, exact = served.scores(texts), want.scores(emb)
    for g_row, e_row in zip(got, exact):
        assert set(np.flatnonzero(np.isfinite(g_row))) == set(np.argsort(-e_row)[:2])
    np.testing.assert_allclose(got[np.isfinite(got)], exact[np.isfinite(got)], atol=1e-5)

    shards, tables, embedded = gallery_plan(tmp_path, source, encodings, 2)
    assert pending_work(shards, tables, embedded) == []
    lost = objects_path(embedded["late"][1])
    lost.unlink()
    (row,) = pending_work(shards, tables, embedded)
    assert row["encodings"] == {"late": str(embedded["late"][1])}
    build.build_gallery(source, tmp_path, encodings, shard_size=2, index=approximate, progress=False)
    assert lost.is_file()
    np.testing.assert_allclose(GalleryDir(tmp_path).objects("late").vectors, want.vectors, atol=1e-5)
