import numpy as np
import pytest

from ideal.retrieval.embeddings import read_embeddings, write_embeddings
from ideal.retrieval.index import SceneIndex
from ideal.scenes.types import FormatError


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n, d=32, centres=50, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, d))
    return unit(c[rng.integers(centres, size=n)] + 0.3 * rng.normal(size=(n, d)))


IDS = [f"scene{i:04d}_00" for i in range(5000)]


def test_flat_is_exact():
    v = clustered(500)
    q = clustered(20, seed=1)
    ids, scores = SceneIndex.build(IDS[:500], v, kind="flat").search(q, 10)
    brute = np.argsort(-(q @ v.T), axis=1)[:, :10]
    assert ids == [[IDS[j] for j in row] for row in brute]
    np.testing.assert_allclose(scores, np.take_along_axis(q @ v.T, brute, 1), rtol=1e-5)


def test_ivf_and_hnsw_agree_with_flat():
    v, q = clustered(5000), clustered(100, seed=2)
    flat, _ = SceneIndex.build(IDS, v, kind="flat").search(q, 10)
    ivf = SceneIndex.build(IDS, v, kind="ivf", nlist=64)
    ivf.set_nprobe(64)  # every list: exact
    assert ivf.search(q, 10)[0] == flat
    ivf.set_nprobe(8)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ivf.search(q, 10)[0], flat)])
    assert recall >= 0.9
    hnsw = SceneIndex.build(IDS, v, kind="hnsw", ef_search=128).search(q, 10)[0]
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(hnsw, flat)]) >= 0.9


def test_auto_picks_by_size():
    v = clustered(3000)
    assert SceneIndex.build(IDS[:3000], v).kind == "flat"
    assert SceneIndex.build(IDS[:3000], v, ivf_threshold=1000).kind == "ivf"


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_save_load_round_trip(kind, tmp_path):
    v, q = clustered(2000), clustered(30, seed=3)
    idx = SceneIndex.build(IDS[:2000], v, kind=kind)
    idx.save(tmp_path / "scenes.faiss")
    back = SceneIndex.load(tmp_path / "scenes.faiss")
    a, sa = idx.search(q, 5)
    b, sb = back.search(q, 5)
    assert a == b and back.kind == kind and len(back) == 2000
    np.testing.assert_allclose(sa, sb)


def test_bad_inputs():
    v = clustered(10)
    idx = SceneIndex.build(IDS[:10], v)
    assert len(idx.search(v[:2], 50)[0][0]) == 10  # k clipped to the gallery
    with pytest.raises(ValueError, match="dimension 16, the index has 32"):
        idx.search(np.zeros((1, 16), np.float32), 3)
    with pytest.raises(ValueError, match="duplicate scene id"):
        SceneIndex.build(["a", "a"], v[:2])
    bad = v.copy()
    bad[4, 0] = np.nan
    with pytest.raises(ValueError, match="row 4 has non-finite"):
        SceneIndex.build(IDS[:10], bad)
    with pytest.raises(ValueError, match="kind must be one of"):
        SceneIndex.build(IDS[:10], v, kind="lsh")


def test_load_errors(tmp_path):
    with pytest.raises(FormatError, match="missing index file"):
        SceneIndex.load(tmp_path / "none.faiss")
    (tmp_path / "junk.faiss").write_text("x")
    (tmp_path / "junk.faiss.meta.json").write_text('{"ids": [], "kind": "flat", "params": {}}')
    with pytest.raises(FormatError, match="not a faiss index"):
        SceneIndex.load(tmp_path / "junk.faiss")


def test_embeddings_parquet_round_trip_and_index(tmp_path):
    v = clustered(100)
    write_embeddings(tmp_path / "e.parquet", IDS[:100], v)
    ids, back = read_embeddings(tmp_path / "e.parquet")
    assert ids == IDS[:100] and back.dtype == np.float32
    np.testing.assert_array_equal(back, v)
    idx = SceneIndex.from_parquet(tmp_path / "e.parquet")
    assert idx.search(v[7:8], 1)[0] == [[IDS[7]]]


def test_embeddings_errors(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "bad.parquet"
    write_embeddings(p, ["a", "b", "a"], clustered(3))
    with pytest.raises(FormatError, match=r"bad\.parquet: row 2: scene_id 'a' repeats row 0"):
        read_embeddings(p)
    pq.write_table(pa.table({"scene_id": ["a", "b"], "embedding": [[1.0, 2.0], [1.0]]}), p)
    with pytest.raises(FormatError, match=r"row 1: embedding has 1 values, row 0 has 2"):
        read_embeddings(p)
    pq.write_table(pa.table({"scene_id": ["a", "b"], "embedding": [[1.0, 2.0], [float("nan"), 1.0]]}), p)
    with pytest.raises(FormatError, match=r"row 1: embedding has non-finite values"):
        read_embeddings(p)
    pq.write_table(pa.table({"scene_id": ["a"]}), p)
    with pytest.raises(FormatError, match=r"schema: missing column 'embedding'"):
        read_embeddings(p)
