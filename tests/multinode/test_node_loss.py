"""Losing a worker node mid-job, on a real 3-node Ray cluster (conftest.py): every process of the node SIGKILLed at
once, at a moment the job is seen to be in the middle of its work, never after a timer. The eval job finishes in
the same run with every dialog exactly once; the encode job keeps its finished shards and redoes the rest; IAT
resumes from its last checkpoint. Each ends where an uninterrupted run ends."""
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cluster.local import wait_for
from tests.test_eval_job import interactive_args

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """The suite's 12-scene benchmark (as bench_root), generated here because the eval job caches its gallery
    inside the benchmark folder."""
    from ideal.scenes.synthetic import generate
    from tests.conftest import BENCH_SCENES, BENCH_SEED

    return generate(tmp_path_factory.mktemp("bench"), n_scenes=BENCH_SCENES, seed=BENCH_SEED, progress=False)


def job(script, *args, cluster, log: Path) -> subprocess.Popen:
    """`python jobs/SCRIPT args` as a driver on the cluster, output to `log`."""
    return cluster.driver([ROOT / "jobs" / script, *args], log, cwd=ROOT)


def finish(proc: subprocess.Popen, log: Path, timeout: float = 600) -> str:
    """Wait for a job (killed if it outlives `timeout`); its output. A failed job fails the test."""
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert proc.returncode == 0, out[-4000:]
    return out


def test_a_plain_ray_init_elsewhere_does_not_join_this_cluster(cluster):
    """What ray.init(address=None) in this process (the suite's in-process Ray) would join: not this cluster."""
    from ray._private.services import canonicalize_bootstrap_address

    joins = canonicalize_bootstrap_address(None)  # None: it would start a Ray of its own
    assert joins is None or joins.rsplit(":", 1)[1] != cluster.gcs.rsplit(":", 1)[1], joins


def test_eval_finishes_in_the_same_run_after_losing_a_node(cluster, bench, tmp_path):
    """jobs/eval.py (a shard task per 1-CPU worker at a time) loses node_a, once shards are landing, while a shard
    task runs there: Ray runs that task again on node_b, the job ends without a rerun, every dialog is in
    transcripts.parquet exactly once and results.json is a clean run's."""
    import pyarrow.parquet as pq

    data = ("--set", f"data.root={bench}", "--set", "data.scenes=12", "--set", "data.seed=7")
    clean_log, lost_log = tmp_path / "clean.log", tmp_path / "lost.log"
    finish(job("eval.py", *interactive_args(tmp_path / "clean", *data), cluster=cluster, log=clean_log), clean_log)

    out = tmp_path / "lost"
    victim = cluster.nodes["node_a"]
    proc = job("eval.py", *interactive_args(out, *data), cluster=cluster, log=lost_log)
    saved, running = {}, []  # read with node_a's shard task frozen, just before the kill: node_b goes on meanwhile

    def at_the_kill():
        saved.update({p: p.stat().st_mtime_ns for p in out.glob("shards/*/*/*.json")})  # shards/<setting>/<method>/
        running.append(proc.poll() is None)

    try:
        wait_for(lambda: list(out.glob("shards/*/*/*.json")), "a shard saved", 300, every=0.05, alive=proc)
        cluster.kill_mid_task("node_a", "run_shard", frozen=at_the_kill)
    except BaseException:
        proc.kill()
        raise
    assert running == [True] and 0 < len(saved) < 18, f"{len(saved)} of 18 shards saved when node_a was lost"
    log = finish(proc, lost_log)

    assert "18 shards (0 already done)" in log  # one run, nothing resumed from a rerun
    assert {p: p.stat().st_mtime_ns for p in saved} == saved  # a shard saved before the loss is not computed again
    failed = cluster.failed_attempts("run_shard", [victim])
    attempts = [(t["task_id"][:8], t["attempt_number"], t["state"], cluster.node_of_name(t["node_id"]),
                 t["error_type"]) for t in cluster.tasks(name="run_shard") if t["state"] != "FINISHED"
                or t["attempt_number"]]  # shown if the next two fail
    assert failed and {f["error_type"] for f in failed} == {"NODE_DIED"}, attempts  # the shard task on node_a
    assert {f["finished_on"] for f in failed} == {"node_b"}, attempts  # ran again, to the end, on node_b

    clean = json.loads((tmp_path / "clean" / "results.json").read_text())
    assert json.loads((out / "results.json").read_text())["results"] == clean["results"]
    rows = pq.read_table(out / "transcripts.parquet").to_pylist()
    per_dialog = {}
    for r in rows:
        per_dialog[(r["method"], r["dialog_id"])] = per_dialog.get((r["method"], r["dialog_id"]), 0) + 1
    # every dialog once: static's round 0, the dialog methods' 3 rounds (0, 1, 2)
    assert len(per_dialog) == 3 * 12 and all(n == (1 if m == "static" else 3) for (m, _), n in per_dialog.items())
    key = lambda r: (r["method"], r["dialog_id"], r["round"])  # noqa: E731
    assert sorted(rows, key=key) == sorted(pq.read_table(tmp_path / "clean" / "transcripts.parquet").to_pylist(),
                                           key=key)
    print(f"\neval: node_a lost with {len(saved)}/18 shards saved; shard tasks lost there and rerun on node_b: "
          f"{len(failed)}; dialogs in transcripts: {len(per_dialog)} (expected 36), repeated: "
          f"{sum(n != (1 if m == 'static' else 3) for (m, _), n in per_dialog.items())}")


def encode_args(bench, out):
    return ["--scannet-dir", bench / "scans", "--label-map", bench / "scannetv2-labels.combined.tsv",
            "--scanrefer", bench / "ScanRefer_filtered_val.json", "--nr3d", bench / "nr3d.csv",
            "--weights", "base", "--weights", "labels", "--shard-size", "1", "--actors", "2", "--num-cpus", "1",
            "--out", out]


def shard_files(out: Path) -> dict[int, dict[str, bytes]]:
    """{shard: {file: bytes}} of the shards whose every output (tables, base and labels embeddings) is written."""
    done = {}
    for table in out.glob("shards/tables/part-*[0-9]"):  # a folder, renamed into place whole
        i = int(table.name.split("-")[1])
        outputs = [out / "shards" / name / f"{table.name}.parquet" for name in ("base", "labels")]
        if all(p.exists() for p in outputs):
            done[i] = {str(p): p.read_bytes() for p in [*outputs, *sorted(table.iterdir())]}
    return done


def test_encode_keeps_finished_shards_and_redoes_the_rest_after_losing_a_node(cluster, bench, tmp_path):
    """jobs/encode_scenes.py (one scene per shard, an encoder actor per 1-CPU worker; node_b's CPU taken until
    then, so node_a's actor encodes alone) loses node_a as soon as a shard is finished. node_a is replaced (an
    autoscaler's job) and node_b freed, so Ray Data restarts the actor. The shards finished by then are kept as they
    are, the others are encoded after, and the gallery (tables, embeddings, index) is the library's in-process one.
    Ray runs the lost actor's task again, also one whose shard was written before the node went: it is kept."""
    from ideal import build, checkpoints
    from ideal.retrieval.encode import Source
    from ideal.store import GalleryDir

    source = Source(scannet_dir=str(bench / "scans"), label_map=str(bench / "scannetv2-labels.combined.tsv"),
                    scanrefer=str(bench / "ScanRefer_filtered_val.json"), nr3d=str(bench / "nr3d.csv"))
    b = GalleryDir(build.build_gallery(source, tmp_path / "clean", {"base": str(checkpoints.resolve("base")),
                                                                    "labels": "labels"}, shard_size=1, progress=False))
    n = len(b.ids)  # one scene per shard

    out, log = tmp_path / "lost", tmp_path / "lost.log"
    kept, running = {}, []  # read with node_a's encoder frozen, just before the kill

    def at_the_kill():
        kept.update(shard_files(out))
        running.append(proc.poll() is None)

    with cluster.hold("node_b"):
        proc = job("encode_scenes.py", *encode_args(bench, out), cluster=cluster, log=log)
        try:
            wait_for(lambda: shard_files(out), "a shard encoded", 300, every=0.02, alive=proc)
            cluster.kill_mid_task("node_a", "MapWorker(MapBatches(EncodeActor)).submit", frozen=at_the_kill)
        except BaseException:
            proc.kill()
            raise
        assert running == [True] and 0 < len(kept) < n, f"{len(kept)} of {n} shards done when node_a was lost"
    cluster.replace("node_a")
    proc.wait(timeout=300)
    first = log.read_text()
    assert proc.returncode == 0, first[-4000:]

    now = shard_files(out)
    assert sorted(now) == list(range(n))  # every shard, and those finished before the loss as they were
    assert {i: now[i] for i in kept} == kept
    a = GalleryDir(out)
    assert a.ids == b.ids
    assert a.scenes() == b.scenes() and a.memories() == b.memories() and a.descriptions() == b.descriptions()
    for name in ("base", "labels"):
        np.testing.assert_allclose(a.embeddings(name), b.embeddings(name), atol=1e-6)
        found = [a.index(name).search(b.embeddings(name), 5), b.index(name).search(b.embeddings(name), 5)]
        assert found[0][0] == found[1][0]  # the same neighbours, in the same order
    print(f"\nencode: node_a lost with {len(kept)}/{n} shards done; the same run finished")


IAT_EPOCHS = 4  # each is a checkpoint: the first lands with 3 epochs (seconds) still to go


@pytest.fixture(scope="module")
def iat_inputs(bench, text_encoder, tmp_path_factory):
    """(config, arrays file, init checkpoint) of a small IAT run: tests/training/test_ray_train.py's tiny model on
    the benchmark's training descriptions, from a base checkpoint trained here in one process (no Ray)."""
    from ideal.config import load_config
    from ideal.encoders.scene import LabelBank
    from ideal.scenes import load_synthetic
    from ideal.training.data import build_train_arrays
    from ideal.training.train import fit, latest_checkpoint
    from tests.training.test_ray_train import TINY

    tmp = tmp_path_factory.mktemp("iat")
    cfg = load_config(None, TINY + [f"iat.epochs={IAT_EPOCHS}", "iat.tune=all", "iat.lam=0.5", "train.epochs=1"])
    arrays = build_train_arrays(load_synthetic(bench, "train", points_per_object=0), text_encoder,
                                LabelBank(text_encoder.embed_backbone), cfg.scene_encoder, progress=False)
    arrays.save(tmp / "arrays.npz")
    fit(cfg, arrays, ckpt_dir=tmp / "base", progress=False)
    return cfg, tmp / "arrays.npz", latest_checkpoint(tmp / "base")


def iat(cluster, inputs, storage: Path, log: Path) -> subprocess.Popen:
    """jobs/train.py's trainer (2 workers, train.max_failures at its default) for IAT, as a driver on the cluster;
    checkpoints under STORAGE/iat/."""
    cfg, arrays, init = inputs
    return cluster.driver([Path(__file__).with_name("iat_driver.py"), json.dumps(cfg.to_dict()), arrays, init,
                           storage, "iat"], log, cwd=ROOT)


def iat_result(output: str) -> dict:
    return json.loads(next(l for l in output.splitlines() if l.startswith("result: "))[len("result: "):])


def registered_epoch(storage: Path):
    """The epoch (0-based) of the run's latest checkpoint, as Ray Train's checkpoint manager has recorded it."""
    try:
        snapshot = json.loads((storage / "iat" / "checkpoint_manager_snapshot.json").read_text())
        return snapshot["latest_checkpoint_result"]["metrics"]["epoch"]
    except (OSError, ValueError, KeyError, TypeError):  # not written yet, or being written
        return None


def rank0_logs(cluster, storage: Path) -> list[list[str]]:
    """The lines of jobs/train.py's rank 0 ("resuming ...", "epoch E/N ...") in each worker log that resumed the
    run at `storage`, from every node of the cluster, lost ones too."""
    found = []
    for f in cluster.root.glob("*/session_2*/logs/worker-*.out"):
        lines = [l for l in f.read_text(errors="replace").splitlines() if l.startswith(("resuming after", "epoch "))]
        if any(str(storage) in l for l in lines):
            found.append(lines)
    return found


def test_iat_resumes_from_its_last_checkpoint_after_losing_a_train_worker(cluster, iat_inputs, tmp_path):
    """IAT on 2 Ray Train workers, one per 1-CPU node; node_a (a worker, and rank 0 or 1) is lost once Ray Train
    has recorded a checkpoint, and replaced (an autoscaler's job). The worker group restarts (FailureConfig) from
    the last checkpoint: rank 0 says so and trains only the epochs after it; the final weights are an
    uninterrupted run's."""
    from safetensors.numpy import load_file

    clean_log, log = tmp_path / "clean.log", tmp_path / "lost.log"
    finish(iat(cluster, iat_inputs, tmp_path / "clean", clean_log), clean_log)

    out = tmp_path / "lost"
    victim = cluster.nodes["node_a"]
    proc = iat(cluster, iat_inputs, out, log)
    try:
        epoch = wait_for(lambda: registered_epoch(out) is not None and registered_epoch(out) + 1, "a checkpoint",
                         300, every=0.05, alive=proc) - 1
        cluster.kill("node_a")
    except BaseException:
        proc.kill()
        raise
    assert proc.poll() is None and epoch < IAT_EPOCHS - 1, f"node_a lost after epoch {epoch + 1}, at the end"
    cluster.replace("node_a")
    result = iat_result(finish(proc, log))
    assert result["error"] is None and result["metrics"]["epoch"] == IAT_EPOCHS - 1

    lost = [a for a in cluster.actors(class_name="RayTrainWorker") if a["node_id"] == victim.node_id
            and (a.get("death_cause") or {}).get("actor_died_error_context", {}).get("reason") == "NODE_DIED"]
    assert len(lost) == 1  # the worker on node_a went with it
    resumed = [lines for lines in rank0_logs(cluster, out) if lines[0].startswith("resuming after")]
    assert len(resumed) == 1, rank0_logs(cluster, out)  # one restart, from a checkpoint
    after = int(resumed[0][0].split()[3])  # "resuming after epoch K from PATH"
    assert epoch + 1 <= after < IAT_EPOCHS  # the checkpoint seen when node_a was lost, or a later one
    # and the restarted rank 0 trains only the epochs after it
    assert [l.split()[1] for l in resumed[0][1:]] == [f"{e}/{IAT_EPOCHS}" for e in range(after + 1, IAT_EPOCHS + 1)]

    weights = lambda run: load_file(Path(run) / "model.safetensors")  # noqa: E731
    clean = iat_result(clean_log.read_text())
    a, b = weights(clean["checkpoint"]), weights(result["checkpoint"])
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6)
    print(f"\niat: node_a lost with the checkpoint of epoch {epoch + 1}/{IAT_EPOCHS} recorded; resumed after epoch "
          f"{after}; max |w - w_clean| = {max(float(np.abs(b[k] - a[k]).max()) for k in a):.2e}")
