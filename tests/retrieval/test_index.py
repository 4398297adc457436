import json

import numpy as np
import pytest

from ideal.retrieval.embeddings import write_embeddings
from ideal.retrieval.index import SceneIndex, default_nlist, gpu_available
from ideal.scenes.types import FormatError


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n, d=32, centres=50, seed=0):
    """Unit vectors around `centres` random directions: the structure real scene embeddings have."""
    rng = np.random.default_rng(seed)
    c = np.random.default_rng(1234).normal(size=(centres, d))  # same centres for database and queries
    return unit(c[rng.integers(centres, size=n)] + 0.3 * rng.normal(size=(n, d)))


def recall(got, truth):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(got, truth)])


IDS = [f"scene{i:04d}_00" for i in range(5000)]


def test_flat_is_exact():
    v, q = clustered(500), clustered(20, seed=1)
    ids, scores = SceneIndex.build(IDS[:500], v, kind="flat").search(q, 10)
    sims = q @ v.T
    brute = np.argsort(-sims, axis=1, kind="stable")[:, :10]
    assert ids == [[IDS[j] for j in row] for row in brute]
    np.testing.assert_allclose(scores, np.take_along_axis(sims, brute, 1), rtol=1e-5)
    assert scores.dtype == np.float32 and scores.shape == (20, 10)


@pytest.fixture(scope="module")
def data5k():
    v, q = clustered(5000), clustered(100, seed=2)
    flat_ids, flat_scores = SceneIndex.build(IDS, v, kind="flat").search(q, 10)
    return v, q, flat_ids, flat_scores


def test_ivf_all_lists_is_exact_and_few_lists_recall(data5k):
    v, q, flat_ids, flat_scores = data5k
    ivf = SceneIndex.build(IDS, v, kind="ivf", nlist=64)
    assert ivf.kind == "ivf" and ivf.params["nlist"] == 64 and ivf.params["nprobe"] == 4
    ivf.set_search_params(nprobe=64)  # every list scanned: exact
    ids, scores = ivf.search(q, 10)
    assert [set(r) for r in ids] == [set(r) for r in flat_ids]
    np.testing.assert_allclose(scores, flat_scores, rtol=1e-5)
    ivf.set_search_params(nprobe=8)
    assert recall(ivf.search(q, 10)[0], flat_ids) >= 0.9


def test_hnsw_agrees_with_flat(data5k):
    v, q, flat_ids, _ = data5k
    hnsw = SceneIndex.build(IDS, v, kind="hnsw", hnsw_m=16, ef_search=128)
    assert hnsw.params["ef_search"] == 128 and hnsw.index.hnsw.efSearch == 128
    assert recall(hnsw.search(q, 10)[0], flat_ids) >= 0.95


def test_auto_picks_by_size_and_default_nlist():
    v = clustered(3000)
    assert SceneIndex.build(IDS[:3000], v).kind == "flat"
    ivf = SceneIndex.build(IDS[:3000], v, ivf_threshold=1000)
    assert ivf.kind == "ivf" and ivf.params["nlist"] == default_nlist(3000) == 76
    assert default_nlist(1_000_000) == 4000 and default_nlist(100) == 2 and default_nlist(5) == 1


def test_ivf_training_is_seeded():
    v, q = clustered(3000), clustered(10, seed=5)
    a = SceneIndex.build(IDS[:3000], v, kind="ivf", nlist=30, train_size=1500, seed=3)
    b = SceneIndex.build(IDS[:3000], v, kind="ivf", nlist=30, train_size=1500, seed=3)
    assert a.search(q, 10)[0] == b.search(q, 10)[0]


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_save_load_round_trip(kind, tmp_path):
    v, q = clustered(2000), clustered(30, seed=3)
    idx = SceneIndex.build(IDS[:2000], v, kind=kind)
    if kind == "ivf":
        idx.set_search_params(nprobe=3)  # not the default, and not stored in the faiss file
    if kind == "hnsw":
        idx.set_search_params(ef_search=20)
    idx.save(tmp_path / "sub" / "scenes.faiss")
    back = SceneIndex.load(tmp_path / "sub" / "scenes.faiss")
    assert (back.kind, len(back), back.dim, back.params) == (kind, 2000, 32, idx.params)
    a, sa = idx.search(q, 5)
    b, sb = back.search(q, 5)
    assert a == b
    np.testing.assert_array_equal(sa, sb)


def test_k_larger_than_gallery_and_missing_results():
    v = clustered(10)
    ids, scores = SceneIndex.build(IDS[:10], v).search(v[:2], 50)
    assert [len(r) for r in ids] == [10, 10] and scores.shape == (2, 10)
    assert ids[0][0] == IDS[0]

    # Two far-apart groups, one list each, one list probed: a query sees only its own group's 100.
    rng = np.random.default_rng(0)
    two = unit(np.concatenate([np.tile([5.0, 0, 0, 0], (100, 1)), np.tile([0, 0, 5.0, 0], (100, 1))])
               + rng.normal(size=(200, 4)))
    ivf = SceneIndex.build(IDS[:200], two, kind="ivf", nlist=2, nprobe=1)
    ids, scores = ivf.search(two[:1], 150)
    assert scores.shape == (1, 150) and 0 < len(ids[0]) < 150
    assert np.isfinite(scores[0, :len(ids[0])]).all() and (scores[0, len(ids[0]):] == -np.inf).all()


def test_empty_inputs():
    idx = SceneIndex.build([], np.zeros((0, 8), np.float32), kind="flat")
    assert len(idx) == 0 and idx.search(np.ones((2, 8), np.float32), 5)[0] == [[], []]
    ids, scores = SceneIndex.build(IDS[:10], clustered(10)).search(np.zeros((0, 32), np.float32), 5)
    assert ids == [] and scores.shape == (0, 5)


def test_bad_inputs():
    v = clustered(10)
    idx = SceneIndex.build(IDS[:10], v)
    with pytest.raises(ValueError, match="queries have dimension 16, the index has 32"):
        idx.search(np.zeros((1, 16), np.float32), 3)
    with pytest.raises(ValueError, match=r"got shape \(32,\) \(a single vector is the batch of one"):
        idx.search(v[0], 3)
    q = v[:3].copy()
    q[1, 2] = np.inf
    with pytest.raises(ValueError, match="queries: row 1 has non-finite values"):
        idx.search(q, 3)
    with pytest.raises(ValueError, match="k must be >= 1"):
        idx.search(v[:1], 0)
    with pytest.raises(ValueError, match="duplicate scene id 'a' at positions 0 and 2"):
        SceneIndex.build(["a", "b", "a"], v[:3])
    with pytest.raises(ValueError, match=r"ids\[1\] is int"):
        SceneIndex.build(["a", 7], v[:2])
    with pytest.raises(ValueError, match="3 ids for 10 vectors"):
        SceneIndex.build(IDS[:3], v)
    bad = v.copy()
    bad[4, 0] = np.nan
    with pytest.raises(ValueError, match="vectors: row 4 has non-finite values"):
        SceneIndex.build(IDS[:10], bad)
    with pytest.raises(ValueError, match="numeric array"):
        SceneIndex.build(["a"], [["x", "y"]])
    with pytest.raises(ValueError, match="kind must be one of"):
        SceneIndex.build(IDS[:10], v, kind="lsh")
    with pytest.raises(ValueError, match="nlist=20 for n=10"):
        SceneIndex.build(IDS[:10], v, kind="ivf", nlist=20)
    with pytest.raises(ValueError, match="nprobe applies to ivf"):
        idx.set_search_params(nprobe=4)
    with pytest.raises(ValueError, match="nprobe applies to ivf, 1..nlist; got nprobe=5"):
        SceneIndex.build(IDS[:10], v, kind="ivf", nlist=2, nprobe=5)
    with pytest.raises(ValueError, match="use_gpu must be"):
        SceneIndex.build(IDS[:10], v, use_gpu="yes")


@pytest.mark.skipif(gpu_available(), reason="checks the CPU-only error")
def test_use_gpu_true_without_gpu():
    with pytest.raises(ValueError, match="no GPU"):
        SceneIndex.build(IDS[:10], clustered(10), use_gpu=True)
    assert not SceneIndex.build(IDS[:10], clustered(10), use_gpu="auto").on_gpu


@pytest.mark.skipif(not gpu_available(), reason="needs faiss-gpu and a GPU")
@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_gpu_matches_cpu_and_saves(kind, tmp_path):
    v, q = clustered(2000), clustered(20, seed=4)
    kw = {"nlist": 20} if kind == "ivf" else {}
    cpu = SceneIndex.build(IDS[:2000], v, kind=kind, use_gpu=False, **kw)
    gpu = SceneIndex.build(IDS[:2000], v, kind=kind, use_gpu=True, **kw)
    assert gpu.on_gpu
    for ix in (cpu, gpu):
        if kind == "ivf":
            ix.set_search_params(nprobe=20)
    assert recall(gpu.search(q, 10)[0], cpu.search(q, 10)[0]) >= 0.99
    gpu.save(tmp_path / "g.faiss")
    assert not SceneIndex.load(tmp_path / "g.faiss", use_gpu=False).on_gpu


def test_from_parquet(tmp_path):
    v = clustered(100)
    write_embeddings(tmp_path / "e.parquet", IDS[:100], v)
    idx = SceneIndex.from_parquet(tmp_path / "e.parquet", kind="hnsw")
    assert idx.kind == "hnsw" and idx.search(v[7:8], 1)[0] == [[IDS[7]]]


def test_load_errors(tmp_path):
    with pytest.raises(FormatError, match=r"none\.faiss: missing index file"):
        SceneIndex.load(tmp_path / "none.faiss")
    SceneIndex.build(IDS[:50], clustered(50), kind="flat").save(tmp_path / "ok.faiss")
    meta_path = tmp_path / "ok.faiss.meta.json"
    meta = json.loads(meta_path.read_text())

    (tmp_path / "lonely.faiss").write_bytes((tmp_path / "ok.faiss").read_bytes())
    with pytest.raises(FormatError, match=r"lonely\.faiss\.meta\.json: missing index metadata file"):
        SceneIndex.load(tmp_path / "lonely.faiss")

    meta_path.write_text("{not json")
    with pytest.raises(FormatError, match=r"ok\.faiss\.meta\.json: not JSON"):
        SceneIndex.load(tmp_path / "ok.faiss")
    meta_path.write_text(json.dumps({**meta, "ids": meta["ids"][:-1]}))
    with pytest.raises(FormatError, match=r"ok\.faiss\.meta\.json: ids: 49 ids for an index of 50 vectors"):
        SceneIndex.load(tmp_path / "ok.faiss")
    meta_path.write_text(json.dumps({**meta, "ids": ["a"] * 50}))
    with pytest.raises(FormatError, match=r"meta\.json: ids: duplicate scene id 'a'"):
        SceneIndex.load(tmp_path / "ok.faiss")
    meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k != "kind"}))
    with pytest.raises(FormatError, match=r"meta\.json: kind: missing"):
        SceneIndex.load(tmp_path / "ok.faiss")
    meta_path.write_text(json.dumps({**meta, "kind": "hnsw"}))
    with pytest.raises(FormatError, match=r"ok\.faiss: holds a IndexFlatIP, its metadata says kind 'hnsw'"):
        SceneIndex.load(tmp_path / "ok.faiss")

    (tmp_path / "junk.faiss").write_text("x")
    (tmp_path / "junk.faiss.meta.json").write_text('{"ids": [], "kind": "flat", "params": {}}')
    with pytest.raises(FormatError, match=r"junk\.faiss: not a faiss index"):
        SceneIndex.load(tmp_path / "junk.faiss")


# The object index (late interaction): a scene is found through its objects and scores as its best one.

def object_gallery(n_scenes=400, seed=0):
    """ObjectVectors of n scenes of 1..8 clustered object vectors each."""
    from ideal.retrieval.objects import ObjectVectors

    counts = np.random.default_rng(seed).integers(1, 9, size=n_scenes)
    v = clustered(int(counts.sum()), seed=seed)
    return ObjectVectors(v, np.concatenate([[0], np.cumsum(counts)]), np.zeros(len(v), np.int32))


def brute_top_scenes(objects, q, k):
    """The top-k scenes of max-over-objects scores, by brute force."""
    sims = objects.scores(q)
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return top, np.take_along_axis(sims, top, 1)


@pytest.fixture(scope="module")
def objects400():
    return object_gallery(), clustered(30, seed=9)


def test_object_index_flat_top_scenes_are_the_brute_force_max_over_objects(objects400):
    from ideal.retrieval.index import ObjectIndex

    objects, q = objects400
    index = ObjectIndex.build(IDS[:400], objects, kind="flat")
    assert index.kind == "flat" and len(index) == 400
    for k in (1, 10, 300):  # k=300: for some queries the first 2k object hits hold fewer scenes, the search widens
        rows, scores = index.search_scenes(q, k)
        want_rows, want_scores = brute_top_scenes(objects, q, k)
        np.testing.assert_array_equal(rows, want_rows)
        np.testing.assert_allclose(scores, want_scores, rtol=1e-5)
    rows, scores = index.search_scenes(q[:2], 1000)  # more than there are scenes: every scene, once
    assert rows.shape == (2, 400) and all(sorted(r) == list(range(400)) for r in rows)


def test_object_index_ivf_scanning_every_list_is_exact_and_hnsw_recalls(objects400):
    from ideal.retrieval.index import ObjectIndex

    objects, q = objects400
    want_rows, want_scores = brute_top_scenes(objects, q, 10)
    ivf = ObjectIndex.build(IDS[:400], objects, kind="ivf", nlist=16)
    assert ivf.params["nprobe"] == 1
    ivf.set_search_params(nprobe=16)
    rows, scores = ivf.search_scenes(q, 10)
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5)
    hnsw = ObjectIndex.build(IDS[:400], objects, kind="hnsw", ef_search=128)
    assert recall(hnsw.search_scenes(q, 10)[0].tolist(), want_rows.tolist()) >= 0.95


def test_object_index_auto_counts_scenes_and_an_exhausted_search_pads():
    from ideal.retrieval.index import ObjectIndex
    from ideal.retrieval.objects import ObjectVectors

    objects = object_gallery(50)
    assert ObjectIndex.build(IDS[:50], objects, ivf_threshold=51).kind == "flat"  # ~225 rows, 50 scenes
    auto = ObjectIndex.build(IDS[:50], objects, ivf_threshold=50)
    assert auto.kind == "ivf" and auto.params["nlist"] == default_nlist(int(objects.offsets[-1]))
    # two far-apart groups of scenes, one list each, one probed: a query finds only its own group's 3 scenes
    v = unit(np.array([[5.0, 0, 0, 0]] * 60 + [[0, 0, 5.0, 0]] * 60) + np.random.default_rng(0).normal(size=(120, 4)))
    two = ObjectVectors(v, np.arange(0, 121, 20), np.zeros(120, np.int32))  # 6 scenes of 20 objects
    ivf = ObjectIndex.build(IDS[:6], two, kind="ivf", nlist=2, nprobe=1)
    rows, scores = ivf.search_scenes(v[:1], 6)
    assert sorted(rows[0, :3]) == [0, 1, 2] and (rows[0, 3:] == -1).all()
    assert np.isfinite(scores[0, :3]).all() and (scores[0, 3:] == -np.inf).all()


def test_object_index_save_load_round_trip_and_errors(objects400, tmp_path):
    from ideal.retrieval.index import ObjectIndex

    objects, q = objects400
    index = ObjectIndex.build(IDS[:400], objects, kind="ivf", nlist=8, nprobe=3)
    index.save(tmp_path / "objects.faiss")
    back = ObjectIndex.load(tmp_path / "objects.faiss")
    assert (back.kind, back.ids, back.params) == ("ivf", IDS[:400], index.params)
    np.testing.assert_array_equal(back.offsets, objects.offsets)
    for a, b in zip(index.search_scenes(q, 5), back.search_scenes(q, 5)):
        np.testing.assert_array_equal(a, b)
    meta_path = tmp_path / "objects.faiss.meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "objects_per_scene": meta["objects_per_scene"][:-1]}))
    with pytest.raises(FormatError, match=r"objects\.faiss\.meta\.json: objects_per_scene: expected one count"):
        ObjectIndex.load(tmp_path / "objects.faiss")
    counts = meta["objects_per_scene"]
    meta_path.write_text(json.dumps({**meta, "objects_per_scene": [counts[0] + 1] + counts[1:]}))
    with pytest.raises(FormatError, match=rf"objects_per_scene: {sum(counts) + 1} object rows for an index of "
                                          rf"{sum(counts)} vectors"):
        ObjectIndex.load(tmp_path / "objects.faiss")
    with pytest.raises(ValueError, match="3 ids for the object vectors of 400 scenes"):
        ObjectIndex.build(IDS[:3], objects)
