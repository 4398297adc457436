"""Evaluation outputs on a hand-made results dict keyed by setting "<query set>/<memory>/s<seed>": Tables 1-3
(with the paper's numbers beside ours), per-round Rsum, results.md sections and the files write_all leaves."""
import json

import pyarrow.parquet as pq

import numpy as np
import pytest

from ideal.metrics import round_metrics
from ideal.report import (PAPER_TABLE1, PAPER_TABLE3, comparison_pairs, final, interval_table, markdown,
                          paired_intervals, per_round, rank_table, setting, table1, table2, table3, write_all)


def row(r1, r5, r10):
    return {"R@1": r1, "R@5": r5, "R@10": r10, "Rsum": r1 + r5 + r10}


START = row(10.0, 30.0, 50.0)  # round 0: the static ranking (Rsum 90)
RESULTS = {
    "scanrefer/fine/s0": {
        "static": {"0": START},
        "ideal": {"0": START, "1": row(20.0, 40.0, 60.0), "2": row(30.0, 50.0, 70.0)},  # Rsum 120, 150
        "w/o Q1": {"0": START, "1": row(15.0, 35.0, 55.0), "2": row(20.0, 40.0, 65.0)},  # Rsum 105, 125
        "w/o CoT": {"0": START, "1": row(30.0, 50.0, 60.0), "2": row(35.0, 55.0, 70.0)},  # Rsum 140, 160
        "bag-of-labels": {"0": row(5.0, 15.0, 25.0)},  # Rsum 45
        "ideal (bag-of-labels)": {"0": row(5.0, 15.0, 25.0), "2": row(10.0, 20.0, 30.0)},  # Rsum 60
    },
    # a second seed of the simulated user, headline method only
    "scanrefer/fine/s1": {"ideal": {"0": START, "1": row(25.0, 45.0, 65.0), "2": row(35.0, 55.0, 75.0)}},  # 135, 165
    "nr3d/fine/s0": {"static": {"0": row(8.0, 24.0, 40.0)},  # Rsum 72
                     "ideal": {"0": row(8.0, 24.0, 40.0), "2": row(25.0, 45.0, 60.0)}},  # Rsum 130
    "scanrefer/coarse/s0": {"static": {"0": row(11.0, 33.0, 52.0)},  # Rsum 96
                            "ideal": {"0": row(11.0, 33.0, 52.0), "1": row(15.0, 40.0, 60.0)}},  # Rsum 115
}
PLUG = [("trained", "static", "ideal"), ("bag-of-labels", "bag-of-labels", "ideal (bag-of-labels)")]
META = {"dataset": "synthetic:/data/x", "split": "val", "gallery": 6,
        "queries": {k: 12 for k in RESULTS}, "rounds": {k: (1 if "coarse" in k else 2) for k in RESULTS},
        "weights": "ideal/weights/base", "iat_weights": "ideal/weights/iat", "argv": ["--tables"]}
COLS = ["R@1", "R@5", "R@10", "Rsum", "paper Rsum"]


def test_setting_key_and_final_round():
    assert setting("scanrefer", "fine", 0) == "scanrefer/fine/s0"
    rounds = {str(r): row(float(r), 0.0, 0.0) for r in range(11)}  # "9" > "10" as strings
    assert final(rounds)["R@1"] == 10.0
    assert final(RESULTS["scanrefer/fine/s0"]["static"]) == START


def test_table1_fine_cells_paper_rsum_and_mean_std_over_seeds():
    lines = table1(RESULTS, "fine", ["static", "chatir", "ideal"]).splitlines()
    # sr3d has no runs: no columns; chatir has no runs: no row (its paper numbers alone do not make one)
    assert lines[0] == "| method | " + " | ".join(f"{s} {c}" for s in ("scanrefer", "nr3d") for c in COLS) + " |"
    assert lines[1] == "|---|" + "---:|" * 10
    assert lines[2] == "| static | 10.0 | 30.0 | 50.0 | 90.0 |  | 8.0 | 24.0 | 40.0 | 72.0 |  |"
    # ideal on scanrefer/fine has seeds 0 and 1, final rounds (30, 50, 70) and (35, 55, 75):
    # mean 32.5 / 52.5 / 72.5 / 157.5, population std 2.5 / 2.5 / 2.5 / 7.5; paper Rsum 196.0 and 167.8
    assert lines[3] == ("| ideal | 32.5 ± 2.5 | 52.5 ± 2.5 | 72.5 ± 2.5 | 157.5 ± 7.5 | 196.0 "
                        "| 25.0 | 45.0 | 60.0 | 130.0 | 167.8 |")
    assert len(lines) == 4


def test_table1_coarse_and_a_subset_of_sets():
    lines = table1(RESULTS, "coarse", ["static", "ideal"]).splitlines()
    assert lines[0] == "| method | " + " | ".join(f"scanrefer {c}" for c in COLS) + " |"
    assert lines[2:] == ["| static | 11.0 | 33.0 | 52.0 | 96.0 | 100.6 |",
                         "| ideal | 15.0 | 40.0 | 60.0 | 115.0 | 118.5 |"]
    assert PAPER_TABLE1["coarse"]["scanrefer"]["ideal"][3] == 118.5

    lines = table1(RESULTS, "fine", ["ideal", "static"], sets=["nr3d"]).splitlines()
    assert lines[0] == "| method | " + " | ".join(f"nr3d {c}" for c in COLS) + " |"
    assert lines[2:] == ["| ideal | 25.0 | 45.0 | 60.0 | 130.0 | 167.8 |", "| static | 8.0 | 24.0 | 40.0 | 72.0 |  |"]


def test_table2_gains_ours_and_the_papers():
    lines = table2(RESULTS, PLUG).splitlines()
    assert lines == [
        "| retriever | memory | static Rsum | +IDeal Rsum | gain | gap to 300 closed |",
        "|---|---|---:|---:|---:|---:|",
        "| trained (ours) | coarse | 96.0 | 115.0 | +19.0 | 9% |",  # no bag-of-labels runs on coarse: no row
        "| VSE∞ (paper) | coarse | 93.0 | 109.8 | +16.8 | 8% |",
        "| CRCL (paper) | coarse | 92.5 | 105.0 | +12.5 | 6% |",
        "| trained (ours) | fine | 90.0 | 157.5 | +67.5 | 32% |",  # ideal: mean of seeds 150 and 165
        "| bag-of-labels (ours) | fine | 45.0 | 60.0 | +15.0 | 6% |",
        "| VSE∞ (paper) | fine | 118.7 | 191.4 | +72.7 | 40% |",
        "| CRCL (paper) | fine | 120.9 | 182.1 | +61.2 | 34% |",
        "| RoMa (paper) | fine | 123.1 | 196.0 | +72.9 | 41% |",
    ]


def test_table3_deltas_vs_full_and_paper_column():
    lines = table3(RESULTS, ["w/o Q1", "w/o p1", "w/o CoT"]).splitlines()
    assert lines == [
        "| variant | R@1 | R@5 | R@10 | Rsum | vs full | paper Rsum |",
        "|---|---:|---:|---:|---:|---:|---:|",
        "| ideal | 32.5 ± 2.5 | 52.5 ± 2.5 | 72.5 ± 2.5 | 157.5 ± 7.5 |  | 196.0 |",
        "| w/o Q1 | 20.0 | 40.0 | 65.0 | 125.0 | -32.5 | 193.9 |",  # 125 - 157.5
        # w/o p1 has no runs: no row
        "| w/o CoT | 35.0 | 55.0 | 70.0 | 160.0 | +2.5 | 193.1 |",
    ]
    assert PAPER_TABLE3["w/o Q1"] == 193.9 and PAPER_TABLE3["w/o CoT"] == 193.1


def test_per_round_cells():
    lines = per_round(RESULTS, "scanrefer", "fine", ["static", "chatir", "ideal", "w/o Q1"]).splitlines()
    assert lines == [
        "| Rsum | round 0 | round 1 | round 2 |",
        "|---|---:|---:|---:|",
        "| static | 90.0 | 90.0 | 90.0 |",  # a static method: the same ranking every round
        "| ideal | 90.0 ± 0.0 | 127.5 ± 7.5 | 157.5 ± 7.5 |",  # seeds: (90, 120, 150) and (90, 135, 165)
        "| w/o Q1 | 90.0 | 105.0 | 125.0 |",
    ]
    coarse = per_round(RESULTS, "scanrefer", "coarse", ["static", "ideal"]).splitlines()
    assert coarse[0] == "| Rsum | round 0 | round 1 |" and coarse[3] == "| ideal | 96.0 | 115.0 |"
    assert per_round(RESULTS, "sr3d", "fine", ["ideal"]) == ""


def test_markdown_sections():
    md = markdown(RESULTS, META, ["static", "ideal"], ["w/o Q1", "w/o CoT"], PLUG)
    assert md.startswith("# Interactive text-to-3D-scene retrieval: synthetic:/data/x\n")
    assert "Gallery: 6 scenes (val split)" in md and "`ideal/weights/base`" in md
    for section in ("## Table 1: coarse memory\n", "## Table 1: fine memory (†: leaks scene information)\n",
                    "## Table 2: plug-and-play", "## Table 3: ablations",
                    "## Rsum per round (ScanRefer-style queries, fine memory)",
                    "## Rsum per round (ScanRefer-style queries, coarse memory)"):
        assert section in md, section
    assert table1(RESULTS, "fine", ["static", "ideal"]) in md
    assert table1(RESULTS, "coarse", ["static", "ideal"]) in md
    assert table2(RESULTS, PLUG) in md
    assert table3(RESULTS, ["w/o Q1", "w/o CoT"]) in md
    assert per_round(RESULTS, "scanrefer", "fine", ["static", "ideal", "w/o Q1", "w/o CoT"]) in md

    fine_only = {k: v for k, v in RESULTS.items() if "/fine/" in k}
    md = markdown(fine_only, {**META, "split": "dev"}, ["static", "ideal"], [], [])
    assert "(dev split)" in md and "## Table 1: fine memory" in md
    for absent in ("## Table 1: coarse memory", "## Table 2", "## Table 3", "coarse memory)"):
        assert absent not in md, absent
    assert "## Rsum per round (ScanRefer-style queries, fine memory)" in md


TRANSCRIPTS = [
    {"setting": "scanrefer/fine/s0", "method": "ideal", "dialog_id": "d0", "target": "scene0000_00", "round": 0,
     "query": "a brown chair", "question": "", "answer": "", "summary": "", "target_rank": 3, "top1": "scene0001_00"},
    {"setting": "scanrefer/fine/s0", "method": "ideal", "dialog_id": "d0", "target": "scene0000_00", "round": 1,
     "query": "", "question": "What colour is the chair?", "answer": "The chair is brown.",
     "summary": "a brown chair The chair is brown.", "target_rank": 1, "top1": "scene0000_00"},
]


def test_write_all(tmp_path):
    out = tmp_path / "nested" / "results"
    args = (RESULTS, META, ["static", "ideal"], ["w/o Q1", "w/o CoT"])
    paths = write_all(out, *args, TRANSCRIPTS, PLUG)
    assert [p.name for p in paths] == ["results.json", "results.md", "recall_vs_round.png", "ablations_vs_round.png",
                                       "transcripts.parquet"]
    assert all(p.parent == out and p.is_file() and p.stat().st_size > 0 for p in paths)
    assert (out / "ablations_vs_round.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert json.loads((out / "results.json").read_text()) == {**META, "results": RESULTS, "intervals": []}
    assert (out / "results.md").read_text() == markdown(*args, PLUG)
    assert (out / "recall_vs_round.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pq.read_table(out / "transcripts.parquet").to_pylist() == TRANSCRIPTS


def test_write_all_without_transcripts_and_without_scanrefer(tmp_path):
    results = {"nr3d/coarse/s0": {"static": {"0": START}, "ideal": {"0": START, "1": row(20.0, 40.0, 60.0)}}}
    paths = write_all(tmp_path, results, META, ["static", "ideal"], [], [])
    assert [p.name for p in paths] == ["results.json", "results.md", "recall_vs_round.png"]
    assert not (tmp_path / "transcripts.parquet").exists()
    png = tmp_path / "recall_vs_round.png"
    assert png.stat().st_size > 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "results.md").read_text()
    assert "## Table 1: coarse memory" in md and "## Table 1: fine memory" not in md
    assert "| ideal | 20.0 | 40.0 | 60.0 | 120.0 | 96.9 |" in md  # the paper's nr3d coarse Rsum beside ours


def test_llm_roles_table_beside_the_grounded_roles():
    """results.md gets the llm roles' calls and fallbacks per setting, with the last round's Rsum of ideal-llm
    beside ideal's (grounded roles)."""
    results = {"scanrefer/fine/s0": {**RESULTS["scanrefer/fine/s0"],
                                     "ideal-llm": {"0": START, "2": row(20.0, 45.0, 65.0)}}}  # Rsum 130
    llm = {"scanrefer/fine/s0": {"ideal-llm": {"questioner": {"calls": 24, "parsed": 18, "fallbacks": 6},
                                               "answerer": {"calls": 24, "parsed": 24, "fallbacks": 0},
                                               "summariser": {"calls": 45, "parsed": 6, "fallbacks": 18}}}}
    md = markdown(results, {**META, "llm": llm, "llm_model": "SmolLM2-135M-Instruct"}, ["static", "ideal", "ideal-llm"],
                  [], [])
    assert "## LLM roles (SmolLM2-135M-Instruct)" in md
    assert "| scanrefer/fine/s0 | ideal-llm | 130.0 | 150.0 | questioner | 24 | 24 | 6 (25.0%) |" in md
    assert "| scanrefer/fine/s0 | ideal-llm | 130.0 | 150.0 | answerer | 24 | 24 | 0 (0.0%) |" in md
    # a reconstruction is two conversations (object list, description): the share is of the 24 reconstructions
    assert "| scanrefer/fine/s0 | ideal-llm | 130.0 | 150.0 | summariser | 45 | 24 | 18 (75.0%) |" in md
    assert "## LLM roles" not in markdown(RESULTS, META, ["static", "ideal"], [], [])


# ------------------------------------------------------------------------------------------------ rank metrics

RANKS = {"scanrefer/fine/s0": {"static": np.array([[4], [20], [50], [0]]),
                               "ideal": np.array([[4, 0, 0], [20, 12, 3], [50, 60, 70], [0, 0, 0]]),
                               "ir": np.array([[4, 0, 0], [20, 12, 3], [50, 60, 70], [0, 0, 0]])}}


def test_rank_table_and_paired_intervals_in_results_md(tmp_path):
    results = {k: {m: round_metrics(r) for m, r in per.items()} for k, per in RANKS.items()}
    lines = rank_table(results, "scanrefer", "fine", ["static", "ideal"]).splitlines()
    assert lines[0] == "| method | Hits@10 | BRI | success@1 | rounds@1 | rounds@10 | mean rank | median rank |"
    # static: one round, no BRI; query 4 is first from round 0 (rounds@1 = 0)
    assert lines[2] == "| static | 50.0 | – | 25.0 | 0.0 | 0.0 | 19.5 | 13.0 |"  # 1-based ranks 5, 21, 51, 1
    ideal = results["scanrefer/fine/s0"]["ideal"]["2"]
    assert lines[3] == (f"| ideal | 75.0 | {ideal['BRI']:.2f} | 50.0 | 0.5 | 0.7 | 19.2 | 2.5 |")  # 1, 4, 71, 1

    pairs = comparison_pairs(["static", "chatir", "ideal", "ir"], ["w/o Q1"],
                             [("trained", "static", "ideal"), ("labels", "bag-of-labels", "ideal (bag-of-labels)")])
    assert pairs == [("ideal", "static"), ("ideal", "chatir"), ("ideal", "ir"), ("w/o Q1", "ideal"),
                     ("ideal (bag-of-labels)", "bag-of-labels")]
    got = paired_intervals(RANKS, pairs, n_boot=500)
    assert [(r["a"], r["b"]) for r in got] == [("ideal", "static"), ("ideal", "ir")]  # only pairs that ran
    same = got[1]
    assert same["Rsum"] == (0.0, 0.0, 0.0) and same["BRI"] == (0.0, 0.0, 0.0)  # identical ranks
    d, lo, hi = got[0]["Rsum"]
    assert d == pytest.approx(results["scanrefer/fine/s0"]["ideal"]["2"]["Rsum"] - results["scanrefer/fine/s0"]["static"]["0"]["Rsum"])
    assert lo <= d <= hi and "BRI" not in got[0]  # static has no rounds: no BRI
    table = interval_table(got, "scanrefer/fine/s0").splitlines()
    assert table[2].startswith(f"| ideal − static | {d:+.1f} [{lo:+.1f}, {hi:+.1f}] | – |")
    assert table[3] == "| ideal − ir | +0.0 [+0.0, +0.0] | +0.00 [+0.00, +0.00] |"

    paths = write_all(tmp_path, results, META, ["static", "ideal", "ir"], [], [], (), got)
    md = paths[1].read_text()
    assert "## Rank metrics after the last round (ScanRefer-style queries, fine memory)" in md
    assert "## Paired differences (scanrefer/fine/s0; bootstrap over queries, 95%)" in md
    assert "\n".join(table) in md
    saved = json.loads(paths[0].read_text())
    assert saved["intervals"][1] == {"setting": "scanrefer/fine/s0", "a": "ideal", "b": "ir", "Rsum": [0.0, 0.0, 0.0],
                                     "BRI": [0.0, 0.0, 0.0]}
    assert saved["results"]["scanrefer/fine/s0"]["ideal"]["0"]["BRI"] is None
