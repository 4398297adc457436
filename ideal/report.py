"""Evaluation outputs: results.json, results.md (the paper's Tables 1–3 with its numbers beside ours),
recall-vs-round PNGs (methods; ablations apart) and the dialog transcripts as parquet.

Results are keyed by setting "<query set>/<memory>/s<seed>" (e.g. "scanrefer/fine/s0"), then method, then
round: {"R@1", "R@5", "R@10", "Rsum", "Hits@10", "BRI", "success@K", "rounds@K", "mean rank", "median rank"}
(`ideal.metrics.round_metrics`). Paired comparisons (`paired_intervals`) are a list beside them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .metrics import KS, best_rank_integral, paired_bootstrap, per_query_rsum

COLS = [f"R@{k}" for k in KS] + ["Rsum"]
QUERY_SETS = ("scanrefer", "nr3d", "sr3d")
MEMORIES = ("coarse", "fine")

# The paper's numbers (../shared/PAPER.md), Rsum unless a tuple (R@1, R@5, R@10, Rsum). Keys: memory -> set ->
# method; the static row is the paper's best static retriever (RoMa).
PAPER_TABLE1 = {
    "coarse": {"scanrefer": {"static": (11.4, 34.8, 54.4, 100.6), "ideal": (16.0, 42.7, 59.8, 118.5)},
               "nr3d": {"static": 68.9, "ideal": 96.9}, "sr3d": {"static": 74.4, "ideal": 89.0}},
    "fine": {"scanrefer": {"chatir": 150.3, "rewrite": 128.1, "merlin": 183.7, "ir": 181.2, "sum": 189.0,
                           "ideal": (37.8, 71.8, 86.4, 196.0)},
             "nr3d": {"chatir": 114.0, "rewrite": 94.3, "merlin": 148.6, "ir": 129.8, "sum": 145.2, "ideal": 167.8},
             "sr3d": {"chatir": 98.3, "rewrite": 80.9, "merlin": 116.5, "ir": 109.1, "sum": 120.0, "ideal": 126.4}},
}
# Table 2 (ScanRefer Rsum, static -> +IDeal), the paper's retrievers
PAPER_TABLE2 = {"coarse": [("VSE∞", 93.0, 109.8), ("CRCL", 92.5, 105.0)],
                "fine": [("VSE∞", 118.7, 191.4), ("CRCL", 120.9, 182.1), ("RoMa", 123.1, 196.0)]}
PAPER_TABLE3 = {"ideal": 196.0, "w/o Q1": 193.9, "w/o Q2": 165.1, "w/o p1": 191.8, "w/o p2": 172.0, "w/o p3": 183.8,
                "w/o CoT": 193.1, "w/o IAT": 129.4, "w/o L_dis": 188.8, "w/o L_div": 191.7}


def setting(query_set: str, memory: str, seed: int) -> str:
    return f"{query_set}/{memory}/s{seed}"


def final(rounds: dict) -> dict:
    """A method's metrics after its last round."""
    return rounds[str(max(int(r) for r in rounds))]


def _runs(results: dict, query_set: str, memory: str, method: str) -> list[dict]:
    """The per-round results of `method` in every seed of (query set, memory)."""
    prefix = f"{query_set}/{memory}/s"
    return [r[method] for key, r in sorted(results.items()) if key.startswith(prefix) and method in r]


def _cell(runs: list[dict], col: str, at_round=None) -> str:
    vals = [(final(r) if at_round is None else r.get(str(at_round), final(r))).get(col) for r in runs]
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–" if runs else ""
    d = 2 if col == "BRI" else 1
    if len(vals) == 1:
        return f"{vals[0]:.{d}f}"
    return f"{np.mean(vals):.{d}f} ± {np.std(vals):.{d}f}"


def _paper(value, col: str) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return f"{value[COLS.index(col)]:.1f}"
    return f"{value:.1f}" if col == "Rsum" else ""


def table1(results: dict, memory: str, methods: list[str], sets=QUERY_SETS) -> str:
    """Final-round R@1/5/10/Rsum per method and query set, the paper's Rsum beside ours (Table 1)."""
    sets = [s for s in sets if any(_runs(results, s, memory, m) for m in methods)]
    head = "| method | " + " | ".join(f"{s} {c}" for s in sets for c in COLS + ["paper Rsum"]) + " |"
    lines = [head, "|---|" + "---:|" * (len(sets) * (len(COLS) + 1))]
    for m in methods:
        cells = []
        for s in sets:
            runs = _runs(results, s, memory, m)
            cells += [_cell(runs, c) for c in COLS]
            cells.append(_paper(PAPER_TABLE1.get(memory, {}).get(s, {}).get(m), "Rsum"))
        if any(cells[i] for i in range(len(cells)) if (i + 1) % (len(COLS) + 1)):
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _closed(static: float, after: float) -> str:
    """The share of the gap from a static Rsum to the perfect 300 that the dialog closes."""
    return f"{100 * (after - static) / (300 - static):.0f}%" if static < 300 else "–"


def table2(results: dict, pairs: list[tuple[str, str, str]], query_set: str = "scanrefer") -> str:
    """Plug-and-play: (retriever name, static method, IDeal method) rows, Rsum static -> +IDeal per memory."""
    lines = ["| retriever | memory | static Rsum | +IDeal Rsum | gain | gap to 300 closed |",
             "|---|---|---:|---:|---:|---:|"]
    for memory in MEMORIES:
        if not any(key.split("/")[1] == memory for key in results):
            continue
        for name, static, plugged in pairs:
            a, b = _runs(results, query_set, memory, static), _runs(results, query_set, memory, plugged)
            if a and b:
                x, y = np.mean([final(r)["Rsum"] for r in a]), np.mean([final(r)["Rsum"] for r in b])
                lines.append(f"| {name} (ours) | {memory} | {x:.1f} | {y:.1f} | {y - x:+.1f} | {_closed(x, y)} |")
        for name, x, y in PAPER_TABLE2[memory]:
            lines.append(f"| {name} (paper) | {memory} | {x:.1f} | {y:.1f} | {y - x:+.1f} | {_closed(x, y)} |")
    return "\n".join(lines)


def table3(results: dict, ablations: list[str], query_set: str = "scanrefer", memory: str = "fine") -> str:
    """Ablations: final-round Rsum of the full model and each ablation, with the paper's."""
    lines = ["| variant | R@1 | R@5 | R@10 | Rsum | vs full | paper Rsum |", "|---|---:|---:|---:|---:|---:|---:|"]
    full = _runs(results, query_set, memory, "ideal")
    base = np.mean([final(r)["Rsum"] for r in full]) if full else None
    for m in ["ideal"] + ablations:
        runs = _runs(results, query_set, memory, m)
        if not runs:
            continue
        rsum = np.mean([final(r)["Rsum"] for r in runs])
        delta = f"{rsum - base:+.1f}" if base is not None and m != "ideal" else ""
        lines.append(f"| {m} | " + " | ".join(_cell(runs, c) for c in COLS) + f" | {delta} | "
                     f"{PAPER_TABLE3.get(m, ''):} |")
    return "\n".join(lines)


def per_round(results: dict, query_set: str, memory: str, methods: list[str]) -> str:
    """Rsum after each round (mean over seeds)."""
    runs = {m: _runs(results, query_set, memory, m) for m in methods}
    runs = {m: r for m, r in runs.items() if r}
    if not runs:
        return ""
    n = max(max(int(k) for k in r[0]) for r in runs.values())
    lines = ["| Rsum | " + " | ".join(f"round {r}" for r in range(n + 1)) + " |", "|---|" + "---:|" * (n + 1)]
    for m, rs in runs.items():
        lines.append(f"| {m} | " + " | ".join(_cell(rs, "Rsum", r) for r in range(n + 1)) + " |")
    return "\n".join(lines)


# the rank metrics shown in results.md (success@10 is Hits@10: the target in the top 10 at some round)
RANK_SHOWN = ("Hits@10", "BRI", "success@1", "rounds@1", "rounds@10", "mean rank", "median rank")


def rank_table(results: dict, query_set: str, memory: str, methods: list[str]) -> str:
    """Final-round interactive metrics per method: Hits@10, BRI (lower is better), success@1 and the mean rounds to
    success among successes (K = 1, 10), mean and median target rank."""
    runs = {m: _runs(results, query_set, memory, m) for m in methods}
    runs = {m: r for m, r in runs.items() if r}
    if not runs:
        return ""
    lines = ["| method | " + " | ".join(RANK_SHOWN) + " |", "|---|" + "---:|" * len(RANK_SHOWN)]
    lines += [f"| {m} | " + " | ".join(_cell(rs, c) for c in RANK_SHOWN) + " |" for m, rs in runs.items()]
    return "\n".join(lines)


def comparison_pairs(methods: list[str], ablations: list[str], plug: list[tuple] = ()) -> list[tuple[str, str]]:
    """(a, b) pairs the tables compare: ideal against static and each baseline, each ablation against ideal, and
    each plug-and-play retriever's +IDeal against its static."""
    pairs = [("ideal", m) for m in ("static", "chatir", "rewrite", "merlin", "ir", "sum") if m in methods]
    pairs += [(a, "ideal") for a in ablations]
    pairs += [(plugged, static) for _, static, plugged in plug if plugged != "ideal"]
    return pairs


def paired_intervals(ranks: dict, pairs: list[tuple[str, str]], n_boot: int = 2000, seed: int = 0) -> list[dict]:
    """For every setting and pair (a, b) run on it: a − b in final-round Rsum and, when both ran rounds, BRI,
    with the paired bootstrap 95% interval over queries. `ranks`: {setting: {method: 0-based ranks (n, R+1)}}."""
    out = []
    for key, per_method in ranks.items():
        for a, b in pairs:
            if a not in per_method or b not in per_method:
                continue
            ra, rb = np.asarray(per_method[a]), np.asarray(per_method[b])
            row = {"setting": key, "a": a, "b": b}
            row["Rsum"] = paired_bootstrap(per_query_rsum(ra[:, -1]), per_query_rsum(rb[:, -1]), n_boot, seed)
            if ra.shape[1] > 1 and rb.shape[1] > 1:
                row["BRI"] = paired_bootstrap(best_rank_integral(ra + 1)[:, -1], best_rank_integral(rb + 1)[:, -1],
                                              n_boot, seed)
            out.append(row)
    return out


def interval_table(intervals: list[dict], setting_key: str) -> str:
    """a − b with its paired 95% interval, one line per comparison of one setting."""
    rows = [r for r in intervals if r["setting"] == setting_key]
    if not rows:
        return ""
    fmt = lambda v: f"{v[0]:+.1f} [{v[1]:+.1f}, {v[2]:+.1f}]" if v else "–"  # noqa: E731
    fmt2 = lambda v: f"{v[0]:+.2f} [{v[1]:+.2f}, {v[2]:+.2f}]" if v else "–"  # noqa: E731
    lines = ["| comparison | Rsum difference [95% CI] | BRI difference [95% CI] |", "|---|---:|---:|"]
    lines += [f"| {r['a']} − {r['b']} | {fmt(r['Rsum'])} | {fmt2(r.get('BRI'))} |" for r in rows]
    return "\n".join(lines)


def markdown(results: dict, meta: dict, methods: list[str], ablations: list[str], plug: list[tuple],
             intervals: list[dict] = ()) -> str:
    def per_setting(d) -> str:
        if not isinstance(d, dict):
            return str(d)
        return ", ".join(f"{k} {v}" for k, v in d.items() if k.endswith("/s0") or "/s" not in k)

    parts = [f"# Interactive text-to-3D-scene retrieval: {meta['dataset']}", "",
             f"Gallery: {meta['gallery']} scenes ({meta.get('split', 'val')} split); queries: "
             f"{per_setting(meta['queries'])}; rounds: {per_setting(meta['rounds'])}; weights: `{meta['weights']}`; IAT weights: "
             f"`{meta.get('iat_weights')}`. Cells with ± are mean ± std over seeds of the simulated user. "
             "The paper's numbers (ScanNet, 7B LLMs) are beside ours for the shape of the results, not as "
             "the same benchmark.", ""]
    for memory in MEMORIES:
        if any(key.split("/")[1] == memory for key in results):
            parts += [f"## Table 1: {memory} memory{' (†: leaks scene information)' if memory == 'fine' else ''}",
                      "", table1(results, memory, methods), ""]
    if plug:
        parts += ["## Table 2: plug-and-play (ScanRefer-style queries)", "", table2(results, plug), ""]
    if ablations:
        parts += ["## Table 3: ablations (ScanRefer-style queries, fine memory)", "", table3(results, ablations), ""]
    for memory in MEMORIES:
        table = per_round(results, "scanrefer", memory, methods + ablations)
        if table:
            parts += [f"## Rsum per round (ScanRefer-style queries, {memory} memory)", "", table, ""]
    for memory in MEMORIES:
        table = rank_table(results, "scanrefer", memory, methods + ablations)
        if table:
            parts += [f"## Rank metrics after the last round (ScanRefer-style queries, {memory} memory)", "",
                      "Hits@10: % of queries with the target in the top 10 at some round; BRI: best-rank integral "
                      "(PlugIR; lower is better); success@1: % with the target first at some round; rounds@K: mean "
                      "first round with the target in the top K, among those; ranks are 1-based.", "", table, ""]
    for key in dict.fromkeys(r["setting"] for r in intervals):
        parts += [f"## Paired differences ({key}; bootstrap over queries, 95%)", "", interval_table(intervals, key), ""]
    if meta.get("llm"):
        parts += [f"## LLM roles ({meta.get('llm_model', 'LLM')})", "", llm_table(results, meta["llm"]), ""]
    return "\n".join(parts)


def llm_table(results: dict, llm: dict) -> str:
    """Per setting and method with llm roles: the last round's Rsum beside `ideal` (grounded roles), and per role
    the conversations sent, the outputs made (a reconstruction is two conversations) and the share of outputs
    whose reply did not parse and fell back to the grounded writer; for the questioner, the questions the model
    asked again (each asked for once more) and the dialogs whose final questions include one asked twice."""
    lines = ["| setting | method | Rsum (last round) | ideal, grounded roles | role | calls | outputs | fallbacks "
             "| repeats | dialogs with a repeated question |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for key, per_method in llm.items():
        for method, roles in per_method.items():
            def last(m):
                r = results.get(key, {}).get(m)
                return f"{r[max(r, key=int)]['Rsum']:.1f}" if r else ""
            for role, c in roles.items():
                outputs = c.get("parsed", 0) + c.get("fallbacks", 0)
                share = f"{100 * c.get('fallbacks', 0) / outputs:.1f}%" if outputs else "–"
                repeats = str(c["repeats"]) if "repeats" in c else "–"
                dialogs = c.get("dialogs", 0)
                repeated = (f"{c.get('repeated_dialogs', 0)} of {dialogs} "
                            f"({100 * c.get('repeated_dialogs', 0) / dialogs:.1f}%)") if dialogs else "–"
                lines.append(f"| {key} | {method} | {last(method)} | {last('ideal')} | {role} | {c.get('calls', 0)} "
                             f"| {outputs} | {c.get('fallbacks', 0)} ({share}) | {repeats} | {repeated} |")
    return "\n".join(lines)


def plot(results: dict, methods: list[str], path: Path, query_set: str = "scanrefer") -> None:
    """Recall vs round: Rsum, R@1, Hits@10 and BRI, one row of panels per memory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    memories = [m for m in MEMORIES if any(_runs(results, query_set, m, x) for x in methods)]
    fig, axes = plt.subplots(len(memories), 4, figsize=(20, 4 * len(memories)), squeeze=False)
    for row, memory in zip(axes, memories):
        runs = {m: _runs(results, query_set, memory, m) for m in methods}
        runs = {m: r for m, r in runs.items() if r}
        n = max(max(int(k) for k in r[0]) for r in runs.values())
        for ax, metric in zip(row, ("Rsum", "R@1", "Hits@10", "BRI")):
            ax.set_prop_cycle(color=plt.cm.tab20.colors)  # up to 20 distinct lines
            for m, rs in runs.items():
                rounds = [k for k in sorted(int(k) for k in rs[0]) if rs[0][str(k)].get(metric) is not None]
                if not rounds:
                    continue
                ys = [np.mean([r[str(k)][metric] for r in rs]) for k in rounds]
                if len(rounds) == 1:  # a static method: the same ranking every round
                    ax.plot(range(n + 1), ys * (n + 1), linestyle="--", label=m)
                else:
                    ax.plot(rounds, ys, marker="o", label=m)
            ax.set_xlabel("round")
            ax.set_ylabel(metric + (" (lower is better)" if metric == "BRI" else ""))
            ax.set_title(f"{query_set}, {memory} memory")
            ax.set_xticks(range(n + 1))
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_all(out: Path, results: dict, meta: dict, methods: list[str], ablations: list[str],
              transcripts: list[dict], plug: list[tuple] = (), intervals: list[dict] = ()) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "results.json", out / "results.md", out / "recall_vs_round.png"]
    paths[0].write_text(json.dumps({**meta, "results": results, "intervals": list(intervals)}, indent=1) + "\n")
    paths[1].write_text(markdown(results, meta, methods, ablations, list(plug), list(intervals)))
    sets = {key.split("/")[0] for key in results}
    main = "scanrefer" if "scanrefer" in sets else sorted(sets)[0]
    plot(results, methods, paths[2], main)
    if ablations:
        paths.append(out / "ablations_vs_round.png")
        plot(results, ["ideal"] + ablations, paths[-1], main)
    if transcripts:
        paths.append(out / "transcripts.parquet")
        pq.write_table(pa.Table.from_pylist(transcripts), paths[-1])
    return paths
