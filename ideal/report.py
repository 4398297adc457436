"""Evaluation outputs: results.json, results.md (Table 1 / Table 3 analogues + per-round rows),
recall_vs_round.png and the dialog transcripts as parquet."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .metrics import KS

COLS = [f"R@{k}" for k in KS] + ["Rsum"]


def final(rounds: dict) -> dict:
    """A method's metrics after its last round."""
    return rounds[str(max(int(r) for r in rounds))]


def table1(results: dict, memory: str, methods: list[str]) -> str:
    """Final-round R@1/5/10/Rsum per method, as the paper's Table 1 (one memory setting)."""
    lines = [f"| method (memory: {memory}) | rounds | " + " | ".join(COLS) + " |", "|---|---:|" + "---:|" * len(COLS)]
    for m in methods:
        rounds = results[m]
        f = final(rounds)
        lines.append(f"| {m} | {max(int(r) for r in rounds)} | " + " | ".join(f"{f[c]:.1f}" for c in COLS) + " |")
    return "\n".join(lines)


def per_round(results: dict, methods: list[str], metric: str = "Rsum") -> str:
    n = max(max(int(r) for r in results[m]) for m in methods)
    lines = [f"| {metric} | " + " | ".join(f"round {r}" for r in range(n + 1)) + " |", "|---|" + "---:|" * (n + 1)]
    for m in methods:
        cells = [f"{results[m][str(r)][metric]:.1f}" if str(r) in results[m] else "" for r in range(n + 1)]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(results: dict, meta: dict, methods: list[str], ablations: list[str]) -> str:
    parts = [f"# Interactive retrieval: {meta['queries']} dialogs, {meta['gallery']} scenes", "",
             f"Dataset: `{meta['dataset']}`; memory: {meta['memory']}; rounds: {meta['rounds']}; "
             f"weights: `{meta['weights']}`; IAT weights: `{meta.get('iat_weights')}`", "",
             "## Final round (Table 1 layout)", "",
             table1(results, meta["memory"], methods), "", "## Rsum per round", "", per_round(results, methods)]
    if ablations:
        rows = ["ideal"] if "ideal" in results else []
        parts += ["", "## Ablations (Table 3 layout, final round)", "",
                  table1(results, meta["memory"], rows + ablations), "", "### Rsum per round", "",
                  per_round(results, rows + ablations)]
    return "\n".join(parts) + "\n"


def plot(results: dict, methods: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(max(int(r) for r in results[m]) for m in methods)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("Rsum", "R@1")):
        for m in methods:
            rounds = sorted(int(r) for r in results[m])
            ys = [results[m][str(r)][metric] for r in rounds]
            if len(rounds) == 1:  # a static method: the same ranking every round
                ax.plot(range(n + 1), ys * (n + 1), linestyle="--", label=m)
            else:
                ax.plot(rounds, ys, marker="o", label=m)
        ax.set_xlabel("round")
        ax.set_ylabel(metric)
        ax.set_xticks(range(n + 1))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_all(out: Path, results: dict, meta: dict, methods: list[str], ablations: list[str],
              transcripts: list[dict]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "results.json", out / "results.md", out / "recall_vs_round.png", out / "transcripts.parquet"]
    paths[0].write_text(json.dumps({**meta, "results": results}, indent=1) + "\n")
    paths[1].write_text(markdown(results, meta, methods, ablations))
    plot(results, methods + ablations, paths[2], f"{meta['queries']} dialogs, memory {meta['memory']}")
    if transcripts:
        pq.write_table(pa.Table.from_pylist(transcripts), paths[3])
    else:
        paths.pop()
    return paths
