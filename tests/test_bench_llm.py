"""jobs/bench_llm.py on the bundled SmolLM2 (transformers arms, one dialog): every role of rounds 0 and 1 is timed
in each arm, and batching does not change a greedy reply."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_llm_benchmark_times_every_role_of_a_round(serve_gallery, tmp_path, capsys):
    from ideal.dialog.models import ensure_model

    ensure_model("smollm2")
    spec = importlib.util.spec_from_file_location("bench_llm", ROOT / "jobs" / "bench_llm.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "bench.json"
    bench.main(["--gallery", str(serve_gallery[1]), "--dialogs", "1", "--rounds", "1", "--arms", "one,batched",
                "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["dialogs"] == 1 and report["rounds"] == 1
    for arm in ("one_at_a_time", "batched"):
        r = report[arm]
        # round 0 asks; round 1 answers, reconstructs (an object list, then the description) and asks again
        assert r["questioner"]["conversations"] == 2 and r["answerer"]["conversations"] == 1
        assert r["summariser"]["conversations"] in (1, 2)
        assert r["total"]["seconds"] > 0 and r["total"]["tokens"] > 0
        assert r["total"]["conversations"] == sum(r[k]["conversations"] for k in bench.ROLES)
    ratio = report["ratio_batched"]
    assert ratio["same_reply"] == ratio["replies"] == report["batched"]["total"]["conversations"]
    assert "batched / one at a time" in capsys.readouterr().out
