"""jobs/encode_scenes.py on a real local Ray (Ray Data actors): embeddings parquet + faiss index, and a re-run
that skips finished shards and redoes only a lost one."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ideal.encoders.text import TextEncoder
from ideal.evaluate import DEFAULT_WEIGHTS
from ideal.retrieval.embeddings import read_embeddings
from ideal.retrieval.index import SceneIndex
from ideal.retrieval.retriever import TrainedRetriever
from ideal.scenes import load_synthetic
from ideal.scenes.synthetic import generate

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("bench"), n_scenes=10, seed=5, progress=False)


def run(bench, out, *extra, ok=True):
    p = subprocess.run([sys.executable, str(ROOT / "jobs" / "encode_scenes.py"), "--split", "all", "--shard-size", "4",
                        "--actors", "2", "--num-cpus", "0.5", "--out", str(out), "--set", f"data.root={bench}",
                        "--set", "data.scenes=10", "--set", "data.seed=5", *extra], capture_output=True, text=True,
                       cwd=ROOT)
    assert (p.returncode == 0) == ok, p.stderr[-3000:]
    return p.stdout if ok else p.stderr


def test_encode_then_resume(bench, tmp_path):
    out = run(bench, tmp_path)
    assert "10 scenes in 3 shards; 0 already encoded" in out
    ids, vecs = read_embeddings(tmp_path / "embeddings.parquet")
    assert len(ids) == 10 == len(set(ids)) and vecs.shape == (10, 384)
    # the same vectors as encoding in-process with the same weights
    ds = load_synthetic(bench, "all", points_per_object=0)
    want = TrainedRetriever.from_checkpoint(DEFAULT_WEIGHTS, TextEncoder()).encode_scenes([ds.scenes[s] for s in ids])
    np.testing.assert_allclose(vecs, want, atol=1e-5)
    index = SceneIndex.load(tmp_path / "index.faiss")
    found, _ = index.search(vecs[:3], 1)
    assert [f[0] for f in found] == ids[:3]

    shards = sorted((tmp_path / "embeddings").glob("part-*.parquet"))
    stamps = [p.stat().st_mtime_ns for p in shards]
    assert "3 already encoded" in run(bench, tmp_path)
    assert [p.stat().st_mtime_ns for p in shards] == stamps  # nothing re-encoded
    shards[1].unlink()
    assert "2 already encoded" in run(bench, tmp_path)
    assert [p.stat().st_mtime_ns for i, p in enumerate(shards) if i != 1] == stamps[:1] + stamps[2:]
    ids2, vecs2 = read_embeddings(tmp_path / "embeddings.parquet")
    assert ids2 == ids
    np.testing.assert_allclose(vecs2, vecs, atol=1e-6)


def test_another_plan_for_the_same_folder_is_refused(bench, tmp_path):
    (tmp_path / "embeddings").mkdir()
    (tmp_path / "embeddings" / "plan.json").write_text('{"shards": 1}')
    err = run(bench, tmp_path, ok=False)
    assert "plan.json" in err and "another encoding" in err and "shards 1 -> 3" in err
    assert not list((tmp_path / "embeddings").glob("part-*.parquet"))


def test_scenes_parquet_input_gives_the_scan_folders_vectors(bench, tmp_path):
    from ideal.scenes.parquet import write_scenes

    ds = load_synthetic(bench, "all", points_per_object=0)
    ids = sorted(ds.scenes)
    write_scenes([ds.scenes[s] for s in ids[::-1]], tmp_path / "scenes.parquet", with_points=False)
    run(bench, tmp_path / "out", "--scenes-parquet", str(tmp_path / "scenes.parquet"))
    got_ids, vecs = read_embeddings(tmp_path / "out" / "embeddings.parquet")
    assert got_ids == ids
    want = TrainedRetriever.from_checkpoint(DEFAULT_WEIGHTS, TextEncoder()).encode_scenes([ds.scenes[s] for s in ids])
    np.testing.assert_allclose(vecs, want, atol=1e-5)


def test_a_bad_scenes_parquet_is_named(bench, tmp_path):
    (tmp_path / "scenes.parquet").write_text("not parquet")
    err = run(bench, tmp_path / "out", "--scenes-parquet", str(tmp_path / "scenes.parquet"), ok=False)
    assert "scenes.parquet" in err and "not a scenes parquet file" in err
