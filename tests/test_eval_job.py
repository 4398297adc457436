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
