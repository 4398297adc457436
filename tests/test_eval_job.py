"""jobs/eval.py as a user runs it: the static evaluation with the shipped weights, on synthetic data and on a
ScanNet/ScanRefer-format folder (zero-shot), writing results.json and results.md."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ideal.scenes.synthetic import generate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("bench"), n_scenes=12, seed=7, progress=False)


def run(*args):
    return subprocess.run([sys.executable, str(ROOT / "jobs" / "eval.py"), *args], capture_output=True, text=True,
                          cwd=ROOT)


def check_results(out: Path, methods):
    res = json.loads((out / "results.json").read_text())
    assert set(res["results"]) == set(methods)
    for rounds in res["results"].values():
        r = rounds["0"]
        assert set(r) == {"R@1", "R@5", "R@10", "Rsum"}
        assert 0 <= r["R@1"] <= r["R@5"] <= r["R@10"] <= 100
        assert r["Rsum"] == pytest.approx(r["R@1"] + r["R@5"] + r["R@10"])
    assert "| static |" in (out / "results.md").read_text()
    return res


def test_synthetic_static_eval(bench, tmp_path):
    p = run("--methods", "static,labels", "--rounds", "0", "--limit", "15", "--out", str(tmp_path),
            "--set", f"data.root={bench}", "--set", "data.scenes=12", "--set", "data.seed=7")
    assert p.returncode == 0, p.stderr[-3000:]
    res = check_results(tmp_path, ["static", "bag-of-labels"])
    assert res["queries"] == 15 and "Rsum" in p.stdout


def test_scannet_format_folder_zero_shot(bench, tmp_path):
    p = run("--scannet-dir", str(bench / "scans"), "--scanrefer", str(bench / "ScanRefer_filtered_val.json"),
            "--methods", "static", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    res = check_results(tmp_path, ["static"])
    val = (bench / "scannetv2_val.txt").read_text().split()
    assert res["gallery"] == len(val)


def test_bad_flags_are_explained(tmp_path):
    p = run("--methods", "static,oracle", "--out", str(tmp_path))
    assert p.returncode == 2 and "unknown method 'oracle'" in p.stderr and "chatir" in p.stderr
    p = run("--scannet-dir", "x", "--out", str(tmp_path))
    assert p.returncode == 2 and "--scannet-dir needs description files" in p.stderr


def test_dialog_eval_writes_everything_and_resumes(bench, tmp_path):
    """A tiny interactive eval on a real local Ray; then one shard is lost and the job, run again, recomputes
    only that shard and gives the same results."""
    args = ("--methods", "static,chatir,ideal", "--rounds", "2", "--limit", "6", "--shard-size", "3",
            "--out", str(tmp_path), "--set", f"data.root={bench}", "--set", "data.scenes=12", "--set", "data.seed=7")
    p = run(*args)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert set(res["results"]["ideal"]) == {"0", "1", "2"} and set(res["results"]["static"]) == {"0"}
    # round 0 of every dialog method is the static ranking
    assert res["results"]["ideal"]["0"] == res["results"]["static"]["0"] == res["results"]["chatir"]["0"]
    md = (tmp_path / "results.md").read_text()
    assert "Table 1" in md and "| ideal | 2 |" in md and "Rsum per round" in md
    assert (tmp_path / "recall_vs_round.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import pyarrow.parquet as pq

    tr = pq.read_table(tmp_path / "transcripts.parquet").to_pylist()
    ideal_rows = [r for r in tr if r["method"] == "ideal"]
    assert len(ideal_rows) == 6 * 3 and len({r["dialog_id"] for r in ideal_rows}) == 6
    assert all(r["question"].endswith("?") and r["answer"] for r in ideal_rows if r["round"] > 0)

    shards = sorted((tmp_path / "shards" / "ideal").glob("*.json"))
    assert len(shards) == 2
    shards[1].unlink()
    (tmp_path / "results.json").unlink()
    p = run(*args)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "6 shards (5 already done)" in p.stdout
    assert json.loads((tmp_path / "results.json").read_text())["results"] == res["results"]

    # the same folder with a different config is refused, not mixed
    p = run(*args[:-2], "--set", "data.seed=7", "--set", "dialog.alpha=0.5")
    assert p.returncode != 0 and "different evaluation" in p.stderr


def test_a_killed_job_resumes_without_losing_or_repeating_a_dialog(bench, tmp_path):
    """The job process (and the local Ray it started) is SIGKILLed once shards start landing; run again, it
    computes only the missing shards and gives exactly the results of an uninterrupted run."""
    import os
    import signal
    import time

    def args(out):
        return ("--methods", "chatir,ideal", "--rounds", "2", "--limit", "12", "--shard-size", "2", "--out", str(out),
                "--set", f"data.root={bench}", "--set", "data.scenes=12", "--set", "data.seed=7")

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(ROOT / "jobs" / "eval.py"), *args(killed)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not list(killed.glob("shards/*/*.json")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(killed.glob("shards/*/*.json")))
    assert 0 < done < 12, f"{done} shards were done when the job was killed"

    p = run(*args(killed))
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"12 shards ({done} already done)" in p.stdout
    p = run(*args(tmp_path / "whole"))
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads((killed / "results.json").read_text())
    assert got["results"] == json.loads((tmp_path / "whole" / "results.json").read_text())["results"]
    import pyarrow.parquet as pq

    rows = pq.read_table(killed / "transcripts.parquet").to_pylist()
    per_dialog = {}
    for r in rows:
        per_dialog[(r["method"], r["dialog_id"])] = per_dialog.get((r["method"], r["dialog_id"]), 0) + 1
    assert len(per_dialog) == 2 * 12 and set(per_dialog.values()) == {3}  # every dialog once, all 3 rounds
