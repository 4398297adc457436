"""jobs/eval.py as a user runs it: the static evaluation with the shipped weights, on synthetic data and on a
ScanNet/ScanRefer-format folder (zero-shot), writing results.json (keyed by setting "<query set>/<memory>/s<seed>")
and results.md; and the plan of settings behind --tables."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ideal.config import load_config
from ideal.dialog.methods import ABLATIONS
from ideal.scenes.dataset import split_scene_ids
from ideal.scenes.synthetic import generate

ROOT = Path(__file__).resolve().parents[1]
FINE = "scanrefer/fine/s0"


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("bench"), n_scenes=12, seed=7, progress=False)


def run(*args, env=None):
    """The job as a user runs it; with `env` from the `ray_env` fixture it runs on the session's Ray, else it
    starts a local Ray of its own."""
    return subprocess.run([sys.executable, str(ROOT / "jobs" / "eval.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, env=env)


def check_results(out: Path, methods: dict):
    """results.json and results.md are well formed, with exactly `methods` ({setting: method names})."""
    res = json.loads((out / "results.json").read_text())
    assert {k: set(v) for k, v in res["results"].items()} == {k: set(v) for k, v in methods.items()}
    assert set(res["queries"]) == set(res["rounds"]) == set(methods)
    for key in methods:
        for rounds in res["results"][key].values():
            for r in rounds.values():
                assert set(r) == {"R@1", "R@5", "R@10", "Rsum", "Hits@10", "BRI", "success@1", "rounds@1",
                                  "success@10", "rounds@10", "mean rank", "median rank"}
                assert 0 <= r["R@1"] <= r["R@5"] <= r["R@10"] <= r["Hits@10"] <= 100
                assert r["success@10"] == r["Hits@10"] and r["success@1"] >= r["R@1"]
                assert r["BRI"] is None or r["BRI"] >= 0
                assert r["Rsum"] == pytest.approx(r["R@1"] + r["R@5"] + r["R@10"])
    assert "| static |" in (out / "results.md").read_text()
    assert all({"setting", "a", "b", "Rsum"} <= set(c) for c in res["intervals"])
    return res


def test_dev_split_two_query_sets_coarse_memory_two_seeds(bench, ray_env, tmp_path):
    """--split dev: the gallery is the dev scenes and every query's target is one of them. Several query sets in
    one job; coarse memory gets the paper's 3 rounds when --rounds is not given; --seeds 2 adds a second seed of
    the simulated user for ideal only, on each query set."""
    bench_args = ("--set", f"data.root={bench}", "--set", "data.scenes=12", "--set", "data.seed=7")
    p = run("--split", "dev", "--methods", "static,labels,ideal", "--memory", "coarse", "--queries", "scanrefer,nr3d",
            "--seeds", "2", "--limit", "4", "--out", str(tmp_path), *bench_args, env=ray_env)
    assert p.returncode == 0, p.stderr[-3000:]
    base, seed1 = ["scanrefer/coarse/s0", "nr3d/coarse/s0"], ["scanrefer/coarse/s1", "nr3d/coarse/s1"]
    res = check_results(tmp_path, {**{k: ["static", "bag-of-labels", "ideal"] for k in base},
                                   **{k: ["ideal"] for k in seed1}})
    assert res["rounds"] == {k: 3 for k in base + seed1}
    assert res["queries"]["scanrefer/coarse/s0"] == 4 and 0 < res["queries"]["nr3d/coarse/s0"] <= 4
    assert all(set(m) == {"0"} for k in base for name, m in res["results"][k].items() if name != "ideal")
    assert set(res["results"][base[0]]["ideal"]) == {"0", "1", "2", "3"}
    dev, val = split_scene_ids(bench, "dev"), split_scene_ids(bench, "val")
    assert dev and not set(dev) & set(val)
    assert res["split"] == "dev" and res["gallery"] == len(dev) and "Rsum" in p.stdout
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp_path / "transcripts.parquet").to_pylist()
    assert {r["setting"] for r in rows} == set(base + seed1)
    assert {r["target"] for r in rows} <= set(dev) and {r["top1"] for r in rows} <= set(dev)
    md = (tmp_path / "results.md").read_text()
    assert "## Table 1: coarse memory" in md and "| scanrefer R@1 |" in md and "| nr3d R@1 |" in md
    assert "## Table 1: fine memory" not in md
    assert "(dev split)" in md and " ± " in md  # ideal over two seeds


def test_eval_from_an_encoded_gallery_needs_no_scans(bench, ray_env, tmp_path):
    """A ScanNet/ScanRefer-format folder (zero-shot): scans -> OUT/gallery -> results, the paper's 5 rounds for
    fine memory by default; then, with the scans deleted, the same evaluation from that gallery (and the
    description file given again) gives the same results."""
    import shutil

    scans = tmp_path / "scans"
    shutil.copytree(bench / "scans", scans)
    refer = str(bench / "ScanRefer_filtered_val.json")
    common = ("--methods", "static,ideal", "--limit", "5")
    p = run("--scannet-dir", str(scans), "--scanrefer", refer, *common, "--out", str(tmp_path / "a"), env=ray_env)
    assert p.returncode == 0, p.stderr[-3000:]
    res = check_results(tmp_path / "a", {FINE: ["static", "ideal"]})
    assert res["gallery"] == len((bench / "scannetv2_val.txt").read_text().split())
    assert res["rounds"] == {FINE: 5}
    shutil.rmtree(scans)
    p = run("--gallery", str(tmp_path / "a" / "gallery"), "--scanrefer", refer, *common, "--out", str(tmp_path / "b"), env=ray_env)
    assert p.returncode == 0, p.stderr[-3000:]
    p = run("--gallery", str(tmp_path / "a" / "gallery"), *common, "--out", str(tmp_path / "c"), env=ray_env)  # its own queries
    assert p.returncode == 0, p.stderr[-3000:]
    a, b, c = (json.loads((tmp_path / x / "results.json").read_text())["results"] for x in "abc")
    assert a == b == c and set(a[FINE]) == {"static", "ideal"}
    p = run("--gallery", str(tmp_path / "nowhere"), "--out", str(tmp_path / "e"))
    assert p.returncode == 1 and "gallery.json" in p.stderr and "not an encoded gallery" in p.stderr


@pytest.mark.parametrize("argv, reason", [
    (["--methods", "static,oracle"], "unknown method 'oracle'"),
    (["--scannet-dir", "x"], "--scannet-dir needs description files"),
    (["--queries", "scanrefer,referit"], "unknown query sets ['referit']"),
    (["--seeds", "0"], "--seeds must be >= 1"),
])
def test_bad_flags_are_explained(argv, reason, capsys):
    with pytest.raises(SystemExit) as e:
        load_job().parse([*argv, "--out", "unused"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and reason in err and err.startswith("usage: ")
    if "oracle" in reason:
        assert "chatir" in err  # the methods there are


def interactive_args(out, *extra):
    return ("--methods", "static,chatir,ideal", "--rounds", "2", "--limit", "12", "--shard-size", "2", "--out", str(out),
            *extra)


@pytest.fixture(scope="module")
def uninterrupted(bench, ray_env, tmp_path_factory):
    """(out folder, its results.json) of an interactive eval run on a real local Ray, start to end."""
    out = tmp_path_factory.mktemp("whole")
    p = run(*interactive_args(out, "--set", f"data.root={bench}", "--set", "data.scenes=12", "--set", "data.seed=7"),
            env=ray_env)
    assert p.returncode == 0, p.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text())


def test_dialog_eval_writes_everything_and_resumes(bench, ray_env, uninterrupted):
    """A tiny interactive eval writes results, tables, the figure and transcripts; then one shard is lost and the
    job, run again, recomputes only that shard and gives the same results."""
    out, res = uninterrupted
    assert list(res["results"]) == [FINE] and res["rounds"] == {FINE: 2} and res["queries"] == {FINE: 12}
    got = res["results"][FINE]
    assert set(got["ideal"]) == {"0", "1", "2"} and set(got["static"]) == {"0"}
    # round 0 of every dialog method is the static ranking
    assert got["ideal"]["0"] == got["static"]["0"] == got["chatir"]["0"]
    md = (out / "results.md").read_text()
    assert "## Table 1: fine memory" in md and "| ideal | " in md
    assert "## Rsum per round (ScanRefer-style queries, fine memory)" in md
    assert (out / "recall_vs_round.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import pyarrow.parquet as pq

    tr = pq.read_table(out / "transcripts.parquet").to_pylist()
    ideal_rows = [r for r in tr if r["method"] == "ideal"]
    assert len(ideal_rows) == 12 * 3 and len({r["dialog_id"] for r in ideal_rows}) == 12
    assert {r["setting"] for r in tr} == {FINE}
    assert all(r["question"].endswith("?") and r["answer"] for r in ideal_rows if r["round"] > 0)

    shards = sorted((out / "shards" / "scanrefer_fine_s0" / "ideal").glob("*.json"))
    assert len(shards) == 6
    shards[1].unlink()
    (out / "results.json").unlink()
    args = interactive_args(out, "--set", f"data.root={bench}", "--set", "data.scenes=12", "--set", "data.seed=7")
    p = run(*args, env=ray_env)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "18 shards (17 already done)" in p.stdout
    assert json.loads((out / "results.json").read_text())["results"] == res["results"]

    # the same folder with a different config is refused, not mixed
    p = run(*args, "--set", "dialog.alpha=0.9", env=ray_env)
    assert p.returncode != 0 and "different evaluation" in p.stderr


def test_a_killed_job_resumes_without_losing_or_repeating_a_dialog(bench, uninterrupted, ray_env, tmp_path):
    """The job process (and the local Ray it started) is SIGKILLed once shards start landing; run again, it
    computes only the missing shards and gives exactly the results of an uninterrupted run."""
    import os
    import signal
    import time

    killed = tmp_path / "killed"
    args = interactive_args(killed, "--set", f"data.root={bench}", "--set", "data.scenes=12", "--set", "data.seed=7")
    proc = subprocess.Popen([sys.executable, str(ROOT / "jobs" / "eval.py"), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 900  # a starved machine takes minutes to start Ray and land a first shard
    while time.time() < deadline and proc.poll() is None and not list(killed.glob("shards/*/*/*.json")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(killed.glob("shards/*/*/*.json")))  # shards/<setting>/<method>/<a>-<b>.json
    assert 0 < done < 18, f"{done} shards were done when the job was killed"

    p = run(*args, env=ray_env)  # resubmitted, here to a running cluster
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"18 shards ({done} already done)" in p.stdout
    got = json.loads((killed / "results.json").read_text())
    assert got["results"] == uninterrupted[1]["results"]
    import pyarrow.parquet as pq

    rows = pq.read_table(killed / "transcripts.parquet").to_pylist()
    per_dialog = {}
    for r in rows:
        per_dialog[(r["method"], r["dialog_id"])] = per_dialog.get((r["method"], r["dialog_id"]), 0) + 1
    # every dialog once: static's round 0, the dialog methods' 3 rounds
    assert len(per_dialog) == 3 * 12 and sorted(set(per_dialog.values())) == [1, 3]
    assert all(n == (1 if m == "static" else 3) for (m, _), n in per_dialog.items())


def load_job():
    spec = importlib.util.spec_from_file_location("eval_job", ROOT / "jobs" / "eval.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def check_tables_plan(plan, seed0):
    """Both memories x the three query sets; plug-and-play (the pooled retriever static and +IDeal, bag-of-labels +IDeal) on the first set only, ablations on scanrefer/fine
    only, seeds beyond the first for ideal on the first set only."""
    job = load_job()
    ablations, plug = list(ABLATIONS), ["static (pooled)", "ideal (pooled)", "ideal (bag-of-labels)"]
    base = {(q, mem): names for q, mem, seed, names in plan if seed == seed0}
    assert sorted(base) == sorted((q, mem) for q in ("scanrefer", "nr3d", "sr3d") for mem in ("coarse", "fine"))
    assert len(base) == len([s for s in plan if s[2] == seed0])  # one base setting each
    for (q, mem), names in base.items():
        expected = list(job.TABLE_METHODS)
        if q == "scanrefer":
            expected += plug + (ablations if mem == "fine" else [])
        assert names == expected, (q, mem)
    extra = sorted((q, mem, seed, tuple(names)) for q, mem, seed, names in plan if seed != seed0)
    assert extra == sorted((q, mem, seed0 + s, ("ideal",)) for q in ["scanrefer"] for mem in ("coarse", "fine")
                           for s in (1, 2))
    keys = [f"{q}/{mem}/s{seed}" for q, mem, seed, _ in plan]
    assert len(keys) == len(set(keys)) == 6 + 4


def test_settings_for_tables_with_the_three_query_sets():
    job = load_job()
    args, methods = job.parse(["--tables", "--queries", "scanrefer,nr3d,sr3d"])
    check_tables_plan(job.settings(args, load_config(), methods, list(ABLATIONS)), 0)
    # the simulated user's seed in the config offsets every seed
    cfg = load_config(None, ["dialog.seed=5"])
    check_tables_plan(job.settings(args, cfg, methods, list(ABLATIONS)), 5)


def test_settings_for_tables_default_to_the_three_query_sets():
    """--tables alone is "every method x {scanrefer, nr3d, sr3d} x {coarse, fine}" (its --help and the module
    docstring: `python jobs/eval.py --tables --out results/tables`)."""
    job = load_job()
    args, methods = job.parse(["--tables"])
    check_tables_plan(job.settings(args, load_config(), methods, list(ABLATIONS)), 0)


def test_settings_without_tables():
    job = load_job()
    args, methods = job.parse(["--methods", "static,ideal", "--memory", "coarse", "--queries", "nr3d"])
    assert job.settings(args, load_config(), methods, []) == [("nr3d", "coarse", 0, ["static", "ideal"])]
    args, methods = job.parse(["--methods", "static,ideal", "--ablations", "--seeds", "2"])
    plan = job.settings(args, load_config(), methods, ["w/o Q1"])
    assert plan == [("scanrefer", "fine", 0, ["static", "ideal", "w/o Q1"]), ("scanrefer", "fine", 1, ["ideal"])]


def test_settings_for_tables_put_ablations_on_scanrefer_fine_whatever_the_order():
    """Table 3 (ideal.report.table3) reads scanrefer/fine: the ablations must run there even when
    --queries does not list scanrefer first."""
    job = load_job()
    args, methods = job.parse(["--tables", "--queries", "nr3d,scanrefer"])
    plan = job.settings(args, load_config(), methods, ["w/o Q1"])
    with_ablations = [(q, mem) for q, mem, _, names in plan if "w/o Q1" in names]
    assert with_ablations == [("scanrefer", "fine")]


def test_a_named_llm_adds_the_llm_roles_method():
    """--set dialog.llm=MODEL evaluates ideal with grounded roles and with every role on the model, unless
    --methods says otherwise."""
    job = load_job()
    assert job.parse(["--set", "dialog.llm=smollm2"])[1] == ["static", "ideal", "ideal-llm"]
    assert job.parse([])[1] == ["static", "chatir", "merlin", "ideal"]
    assert job.parse(["--set", "dialog.llm=smollm2", "--methods", "ideal"])[1] == ["ideal"]
    assert job.parse(["--set", "dialog.llm=none"])[1] == ["static", "chatir", "merlin", "ideal"]


def test_a_named_llm_compares_the_roles_on_both_memories():
    """--set dialog.llm=MODEL alone plans both memories (the LLM table's rows); --memory or dialog.memory picks one;
    --memory both works without a model too."""
    job = load_job()

    def plan(*argv):
        args, methods = job.parse(list(argv))
        return [(q, mem, names) for q, mem, _, names in job.settings(args, load_config(None, args.set), methods, [])]

    both = ["static", "ideal", "ideal-llm"]
    assert plan("--set", "dialog.llm=smollm2") == [("scanrefer", "fine", both), ("scanrefer", "coarse", both)]
    assert plan("--set", "dialog.llm=smollm2", "--memory", "coarse") == [("scanrefer", "coarse", both)]
    assert plan("--set", "dialog.llm=smollm2", "--set", "dialog.memory=coarse") == [("scanrefer", "coarse", both)]
    assert [m for _, m, _ in plan("--memory", "both")] == ["fine", "coarse"]
    assert [m for _, m, _ in plan()] == ["fine"]
    rounds = lambda *argv: [job.dialog_rounds(job.parse(list(argv))[0], m) for m in ("fine", "coarse")]  # noqa: E731
    assert rounds("--set", "dialog.llm=smollm2") == [5, 5] and rounds() == [5, 3]
    assert rounds("--set", "dialog.llm=smollm2", "--rounds", "2") == [2, 2]


def test_shard_store_adds_up_the_llm_counts_of_its_shards(tmp_path):
    from ideal.dialog_eval import EvalSpec, ShardStore

    store = ShardStore(tmp_path, FINE, EvalSpec(gallery="g"))
    for a, b, fallbacks in [(0, 2, 1), (2, 4, 0)]:
        store.save("ideal-llm", a, b, {"dialog_ids": [f"d{a}", f"d{a + 1}"], "ranks": [[0, 0], [1, 0]],
                                       "transcript": [], "llm": {"questioner": {"calls": 2, "parsed": 2 - fallbacks,
                                                                                "fallbacks": fallbacks}}})
    ranks, _ = store.collect("ideal-llm", [(0, 2), (2, 4)], 4)
    assert ranks.shape == (4, 2)
    assert store.llm_counts("ideal-llm") == {"questioner": {"calls": 4, "parsed": 3, "fallbacks": 1}}


def test_the_shard_fingerprint_ignores_training_knobs():
    """An output folder's shards stay valid when only training's or IAT's knobs change (no evaluation reads them),
    and not when a dialog knob does."""
    from ideal.dialog_eval import EvalSpec

    key = lambda *sets: EvalSpec(gallery="G", config=load_config(None, list(sets)).to_dict()).key()  # noqa: E731
    assert key("iat.epochs=9", "train.max_failures=5", "iat.roles=llm") == key()
    assert key("dialog.alpha=0.9") != key() and key("index.candidates=7") != key()


def test_where_the_llm_is_served_is_not_part_of_the_evaluation():
    """A shared engine's URL changes from run to run: shards made with it and with per-task engines resume each
    other; the context a worker caches is still per server."""
    from ideal.dialog_eval import EvalSpec

    cfg = load_config(None, ["dialog.llm=smollm2"]).to_dict()
    spec = EvalSpec(gallery="G", config=cfg)
    served = EvalSpec(gallery="G", config=cfg, llm_server={"url": "http://127.0.0.1:9/v1", "model": "m"})
    assert served.key() == spec.key()
    assert EvalSpec(gallery="G", config=load_config(None, ["dialog.llm_structured=false"]).to_dict()).key() \
        != EvalSpec(gallery="G", config=load_config(None, []).to_dict()).key()


def test_only_methods_with_llm_roles_get_the_shared_engine():
    job = load_job()
    cfg = load_config(None, ["dialog.llm=smollm2"])
    assert [m for m in ("static", "ideal", "ideal-llm", "bag-of-labels", "w/o CoT") if job.uses_llm(m, cfg)] \
        == ["ideal-llm"]
    args, _ = job.parse(["--set", "dialog.llm=smollm2"])
    assert args.llm_serving == "per-task" and job.shared_llm(args, cfg, ["ideal-llm"]) is None  # each task its own
    args, _ = job.parse(["--set", "dialog.llm=smollm2", "--llm-serving", "shared"])
    assert job.shared_llm(args, cfg, ["static", "ideal"]) is None  # no llm shard: nothing to serve
    with pytest.raises(SystemExit):
        job.parse(["--llm-shard-cpus", "0"])


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed (pip install -e '.[llm]')")
def test_llm_dialogs_through_the_shared_engine(bench, tmp_path):
    """`--set dialog.llm=smollm2` on vLLM: the job serves the model once (ray.serve.llm) and the shards' roles
    call it; results.json names the serving, the questions are the model's own and no dialog repeats one."""
    out = tmp_path / "shared"
    proc = run("--scannet-dir", str(bench / "scans"), "--scanrefer", str(bench / "ScanRefer_filtered_val.json"),
               "--set", "dialog.llm=smollm2", "--llm-serving", "shared", "--methods", "ideal-llm", "--limit", "4",
               "--rounds", "1",
               "--shard-size", "2", "--memory", "fine", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "for every shard" in proc.stdout
    res = json.loads((out / "results.json").read_text())
    assert res["llm_serving"] == "shared" and res["llm_model"] == "SmolLM2-135M-Instruct"
    q = res["llm"][FINE]["ideal-llm"]["questioner"]
    assert q["dialogs"] == 4 and q["repeated_dialogs"] == 0 and q["parsed"] >= 1
