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
