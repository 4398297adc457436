"""jobs/encode_scenes.py on a real local Ray (Ray Data actors): an encoded gallery directory (tables, embeddings,
density, faiss index) equal to what the library builds in-process, a re-run that skips finished shards and redoes
only a lost one, and input errors that name the file."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ideal import build
from ideal.dialog.knowledge import SceneKnowledge
from ideal.retrieval.index import SceneIndex
from ideal.scenes import load_synthetic
from ideal.scenes.synthetic import generate
from ideal.store import GalleryDir

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("bench"), n_scenes=10, seed=5, progress=False)


def files(bench) -> list[str]:
    return ["--scannet-dir", str(bench / "scans"), "--label-map", str(bench / "scannetv2-labels.combined.tsv"),
            "--scanrefer", str(bench / "ScanRefer_filtered_val.json"), "--nr3d", str(bench / "nr3d.csv")]


def run(out, *extra, ok=True, env=None):
    p = subprocess.run([sys.executable, str(ROOT / "jobs" / "encode_scenes.py"), "--shard-size", "4", "--actors", "2",
                        "--num-cpus", "0.5", "--weights", "base", "--weights", "labels", "--out", str(out), *extra],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert (p.returncode == 0) == ok, p.stderr[-3000:]
    return p.stdout if ok else p.stderr


@pytest.fixture(scope="module")
def encoded(bench, tmp_path_factory):
    """(G, the job's stdout): the bench's scan folder encoded by the job (on a local Ray of its own)."""
    out = tmp_path_factory.mktemp("encoded")
    return out, run(out, *files(bench))


def test_encode_then_resume(bench, encoded, ray_env):
    tmp_path, out = encoded
    assert "10 scenes in 3 shards, encodings base, labels; 0 shards already done" in out
    g = GalleryDir(tmp_path)
    assert g.ids == sorted(g.ids) and len(g.ids) == 10
    # the tables are what the scan reader gives; the vectors what encoding in-process gives
    ds = load_synthetic(bench, "all", points_per_object=0)
    for s in g.scenes():  # stored as float32, as the published parquet schema says
        want = ds.scenes[s.scene_id]
        assert s.scene_type == want.scene_type and [o.label for o in s.objects] == [o.label for o in want.objects]
        np.testing.assert_allclose([o.center + o.size + o.color_rgb for o in s.objects],
                                   [o.center + o.size + o.color_rgb for o in want.objects], atol=1e-6)
    vecs = g.embeddings(g.encoding_name("base"))
    want = build.retriever("base").encode_scenes([ds.scenes[s] for s in g.ids])
    np.testing.assert_allclose(vecs, want, atol=1e-5)
    index = SceneIndex.load(tmp_path / "encodings" / "base" / "index.faiss")
    found, _ = index.search(vecs[:3], 1)
    assert [f[0] for f in found] == g.ids[:3]
    val = [d for d in g.descriptions()]
    assert val and all(d.source in ("scanrefer", "nr3d") for d in val)
    # the questioner's table of the scenes' 3D data, made in the shards (no worker reads it again)
    assert all((p / "knowledge.parquet").is_file() for p in (tmp_path / "shards" / "tables").glob("part-*"))
    kn, want = g.knowledge(), SceneKnowledge(g.scenes())
    assert kn.ids == g.ids and kn.labels == want.labels and kn.summaries == want.summaries
    np.testing.assert_array_equal(kn.answers, want.answers)

    shards = sorted((tmp_path / "shards" / "base").glob("part-?????.parquet"))  # the embeddings (not objects)
    stamps = [p.stat().st_mtime_ns for p in shards]
    # re-runs as jobs on a running cluster
    assert "3 shards already done" in run(tmp_path, *files(bench), env=ray_env)
    assert [p.stat().st_mtime_ns for p in shards] == stamps  # nothing re-encoded
    shards[1].unlink()
    assert "2 shards already done" in run(tmp_path, *files(bench), env=ray_env)
    assert [p.stat().st_mtime_ns for i, p in enumerate(shards) if i != 1] == stamps[:1] + stamps[2:]
    np.testing.assert_allclose(GalleryDir(tmp_path).embeddings("base"), vecs, atol=1e-6)


def test_another_plan_for_the_same_folder_is_refused(bench, ray_env, tmp_path):
    (tmp_path / "shards" / "base").mkdir(parents=True)
    (tmp_path / "shards" / "base" / "plan.json").write_text('{"shards": 1}')
    err = run(tmp_path, *files(bench), ok=False, env=ray_env)
    assert "plan.json" in err and "another encoding" in err and "shards 1 -> 3" in err
    assert not list((tmp_path / "shards" / "base").glob("part-*.parquet"))


def test_scenes_parquet_input_gives_the_scan_folders_gallery(bench, encoded, ray_env, tmp_path):
    from ideal.scenes.parquet import write_scenes

    ds = load_synthetic(bench, "all", points_per_object=0)
    ids = sorted(ds.scenes)
    write_scenes([ds.scenes[s] for s in ids[::-1]], tmp_path / "scenes.parquet", with_points=False)
    run(tmp_path / "b", "--scenes-parquet", str(tmp_path / "scenes.parquet"), *files(bench)[4:], env=ray_env)
    a, b = GalleryDir(encoded[0]), GalleryDir(tmp_path / "b")
    assert a.ids == b.ids == ids
    np.testing.assert_allclose(a.embeddings("base"), b.embeddings("base"), atol=1e-6)
    assert a.memories() == b.memories() and a.descriptions() == b.descriptions()


def test_a_bad_scenes_parquet_is_named(bench, ray_env, tmp_path):
    (tmp_path / "scenes.parquet").write_text("not parquet")
    err = run(tmp_path / "out", "--scenes-parquet", str(tmp_path / "scenes.parquet"), *files(bench)[4:], ok=False, env=ray_env)
    assert "scenes.parquet" in err and "not a scenes parquet file" in err


def test_real_inputs_need_their_description_files(bench, tmp_path):
    err = run(tmp_path / "out", "--scannet-dir", str(bench / "scans"), ok=False)
    assert "--scanrefer" in err
