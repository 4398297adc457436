"""Evaluation outputs on a hand-made results dict: Table 1 / per-round Markdown, and the files write_all leaves."""
import json

import pyarrow.parquet as pq

from ideal.report import final, markdown, per_round, table1, write_all


def row(r1, r5, r10):
    return {"R@1": r1, "R@5": r5, "R@10": r10, "Rsum": r1 + r5 + r10}


RESULTS = {
    "static": {"0": row(10.0, 30.0, 50.0)},
    "ideal": {"0": row(10.0, 30.0, 50.0), "1": row(20.0, 40.0, 60.0), "2": row(100 / 3, 140 / 3, 70.0)},
    "w/o Q1": {"0": row(10.0, 30.0, 50.0), "1": row(15.0, 35.0, 55.0), "2": row(20.0, 40.0, 65.0)},
}
META = {"queries": 12, "gallery": 6, "dataset": "synthetic:/data/x", "memory": "fine", "rounds": 2,
        "weights": "ideal/weights/base"}


def test_final_is_the_highest_round_numerically():
    rounds = {str(r): row(float(r), 0.0, 0.0) for r in range(11)}  # "9" > "10" as strings
    assert final(rounds)["R@1"] == 10.0
    assert final(RESULTS["static"]) == RESULTS["static"]["0"]


def test_table1_cells():
    lines = table1(RESULTS, "fine", ["static", "ideal"]).splitlines()
    assert lines == [
        "| method (memory: fine) | rounds | R@1 | R@5 | R@10 | Rsum |",
        "|---|---:|---:|---:|---:|---:|",
        "| static | 0 | 10.0 | 30.0 | 50.0 | 90.0 |",
        # 33.33 + 46.67 + 70 = 150
        "| ideal | 2 | 33.3 | 46.7 | 70.0 | 150.0 |",
    ]


def test_table1_follows_the_given_order_and_subset():
    lines = table1(RESULTS, "coarse", ["w/o Q1", "static"]).splitlines()
    assert lines[0].startswith("| method (memory: coarse) |")
    assert lines[2] == "| w/o Q1 | 2 | 20.0 | 40.0 | 65.0 | 125.0 |"
    assert lines[3].startswith("| static | 0 |") and len(lines) == 4


def test_per_round_cells():
    lines = per_round(RESULTS, ["static", "ideal"]).splitlines()
    assert lines == [
        "| Rsum | round 0 | round 1 | round 2 |",
        "|---|---:|---:|---:|",
        "| static | 90.0 |  |  |",  # a static method has round 0 only
        "| ideal | 90.0 | 120.0 | 150.0 |",
    ]
    r1 = per_round(RESULTS, ["ideal"], metric="R@1").splitlines()
    assert r1[0] == "| R@1 | round 0 | round 1 | round 2 |"
    assert r1[2] == "| ideal | 10.0 | 20.0 | 33.3 |"


def test_markdown_without_and_with_ablations():
    md = markdown(RESULTS, META, ["static", "ideal"], [])
    assert md.startswith("# Interactive retrieval: 12 dialogs, 6 scenes\n")
    assert "Dataset: `synthetic:/data/x`; memory: fine; rounds: 2; weights: `ideal/weights/base`" in md
    assert table1(RESULTS, "fine", ["static", "ideal"]) in md
    assert per_round(RESULTS, ["static", "ideal"]) in md
    assert "Ablations" not in md and md.endswith("\n")

    md = markdown(RESULTS, META, ["static", "ideal"], ["w/o Q1"])
    abl = md[md.index("## Ablations"):]
    # the full method first, then each ablation
    assert table1(RESULTS, "fine", ["ideal", "w/o Q1"]) in abl
    assert per_round(RESULTS, ["ideal", "w/o Q1"]) in abl
    assert "| static |" not in abl


TRANSCRIPTS = [
    {"method": "ideal", "dialog_id": "d0", "target": "scene0000_00", "round": 0, "query": "a brown chair",
     "question": "", "answer": "", "summary": "", "target_rank": 3, "top1": "scene0001_00"},
    {"method": "ideal", "dialog_id": "d0", "target": "scene0000_00", "round": 1, "query": "",
     "question": "What colour is the chair?", "answer": "The chair is brown.",
     "summary": "a brown chair The chair is brown.", "target_rank": 1, "top1": "scene0000_00"},
]


def test_write_all(tmp_path):
    out = tmp_path / "nested" / "results"
    paths = write_all(out, RESULTS, META, ["static", "ideal"], ["w/o Q1"], TRANSCRIPTS)
    names = [p.name for p in paths]
    assert names == ["results.json", "results.md", "recall_vs_round.png", "transcripts.parquet"]
    assert all(p.parent == out and p.is_file() and p.stat().st_size > 0 for p in paths)

    data = json.loads((out / "results.json").read_text())
    assert data == {**META, "results": RESULTS}

    assert (out / "results.md").read_text() == markdown(RESULTS, META, ["static", "ideal"], ["w/o Q1"])

    png = (out / "recall_vs_round.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    table = pq.read_table(out / "transcripts.parquet")
    assert table.num_rows == 2
    assert table.to_pylist() == TRANSCRIPTS


def test_write_all_without_transcripts(tmp_path):
    paths = write_all(tmp_path, {"static": RESULTS["static"]}, META, ["static"], [], [])
    assert [p.name for p in paths] == ["results.json", "results.md", "recall_vs_round.png"]
    assert not (tmp_path / "transcripts.parquet").exists()
    assert (tmp_path / "recall_vs_round.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
