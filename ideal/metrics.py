"""Retrieval metrics: R@K (percent of queries whose target scene is in the top K), Rsum = R@1+R@5+R@10, the
interactive-retrieval metrics per round (Hits@10, BRI, rounds to success, mean and median rank) and paired
bootstrap intervals of a difference between two methods on the same queries."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

KS = (1, 5, 10)


def target_ranks(scores: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """0-based rank of each query's target among all scenes (ties count against the target).

    scores: (Q, S) similarity of each query to each gallery scene; targets: (Q,) column of the true scene.
    """
    scores = np.asarray(scores)
    targets = np.asarray(targets)
    if scores.ndim != 2 or len(targets) != len(scores):
        raise ValueError(f"scores must be (queries, scenes) and targets one per query; got {scores.shape}, {targets.shape}")
    own = scores[np.arange(len(scores)), targets]
    return (scores >= own[:, None]).sum(axis=1) - 1


def recall_from_ranks(ranks: np.ndarray, ks: Sequence[int] = KS) -> dict[str, float]:
    """{'R@1': .., 'R@5': .., 'R@10': .., 'Rsum': ..} in percent."""
    ranks = np.asarray(ranks)
    if len(ranks) == 0:
        raise ValueError("recall over zero queries is undefined")
    out = {f"R@{k}": float(100.0 * np.mean(ranks < k)) for k in ks}
    out["Rsum"] = float(sum(out[f"R@{k}"] for k in ks))
    return out


def recall_at_k(scores: np.ndarray, targets: Sequence[int], ks: Sequence[int] = KS) -> dict[str, float]:
    return recall_from_ranks(target_ranks(scores, targets), ks)


def recall_from_rankings(rankings: Sequence[Sequence[str]], targets: Sequence[str],
                         ks: Sequence[int] = KS) -> dict[str, float]:
    """Same metric from ranked scene-id lists (e.g. an index's top-K): a hit if the target is in the top K.

    A ranking may be shorter than K only if it contains its target (e.g. it ranks a whole gallery smaller than
    K); a truncated ranking that misses its target cannot tell R@K and is refused."""
    ranks = []
    for i, (r, t) in enumerate(zip(rankings, targets)):
        r = list(r)
        if t in r:
            ranks.append(r.index(t))
        elif len(r) < max(ks):
            raise ValueError(f"ranking {i} has {len(r)} entries without its target; R@{max(ks)} is undefined")
        else:
            ranks.append(np.iinfo(np.int32).max)
    return recall_from_ranks(np.array(ranks, dtype=np.int64), ks)


def format_table(rows: dict[str, dict[str, float]], ks: Sequence[int] = KS) -> str:
    """A Markdown table: one row per method."""
    cols = [f"R@{k}" for k in ks] + ["Rsum"]
    lines = ["| method | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    lines += [f"| {name} | " + " | ".join(f"{r[c]:.1f}" for c in cols) + " |" for name, r in rows.items()]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ per round

RANK_COLS = ("Hits@10", "BRI", "success@1", "rounds@1", "success@10", "rounds@10", "mean rank", "median rank")


def best_rank_integral(ranks: np.ndarray) -> np.ndarray:
    """Each query's BRI (PlugIR, lower is better) after each round T ≥ 1, from 1-based target ranks (n, R+1):
    π_0 = r_0, π_t = min(π_{t−1}, r_t), BRI_T = (1/T)·Σ_{t<T} ½·(log π_t + log π_{t+1}) (natural log).
    Returns (n, R) for T = 1..R; the reported BRI is its mean over queries."""
    r = np.asarray(ranks, np.float64)
    if r.ndim != 2 or (r < 1).any():
        raise ValueError("BRI needs 1-based ranks (queries, rounds + 1), all >= 1")
    log_pi = np.log(np.minimum.accumulate(r, axis=1))
    steps = 0.5 * (log_pi[:, :-1] + log_pi[:, 1:])           # (n, R): the trapezoid of each round
    return np.cumsum(steps, axis=1) / np.arange(1, r.shape[1])


def round_metrics(ranks: np.ndarray) -> dict[str, dict[str, Optional[float]]]:
    """{round: metrics} from 0-based target ranks (n queries, R+1 rounds; round 0 is the initial query).

    Per round t: R@1/5/10 and Rsum (percent); Hits@10 (ChatIR: percent of queries whose target was in the top 10
    at some round ≤ t); BRI after t rounds (none at round 0); success@K (percent with the target in the top K at
    some round ≤ t, K = 1, 10) and rounds@K (the mean first such round among those, none if no query succeeded);
    mean and median 1-based rank of the target at round t."""
    r0 = np.asarray(ranks)
    if r0.ndim != 2 or not r0.size:
        raise ValueError(f"ranks must be (queries, rounds + 1) with at least one of each, got shape {r0.shape}")
    r = r0.astype(np.int64) + 1
    bri = best_rank_integral(r).mean(axis=0) if r.shape[1] > 1 else np.zeros(0)
    out = {}
    for t in range(r.shape[1]):
        row: dict[str, Optional[float]] = dict(recall_from_ranks(r0[:, t]))
        best = r[:, :t + 1].min(axis=1)
        row["Hits@10"] = float(100.0 * np.mean(best <= 10))
        row["BRI"] = float(bri[t - 1]) if t else None
        for k in (1, 10):
            hit = r[:, :t + 1] <= k
            ok = hit.any(axis=1)
            row[f"success@{k}"] = float(100.0 * ok.mean())
            row[f"rounds@{k}"] = float(hit[ok].argmax(axis=1).mean()) if ok.any() else None
        row["mean rank"] = float(r[:, t].mean())
        row["median rank"] = float(np.median(r[:, t]))
        out[str(t)] = row
    return out


# ------------------------------------------------------------------------------------------------ paired intervals

def per_query_rsum(ranks: np.ndarray, ks: Sequence[int] = KS) -> np.ndarray:
    """Each query's share of Rsum: 100·Σ_K [rank < K] from 0-based ranks (n,); their mean is Rsum."""
    ranks = np.asarray(ranks)
    return 100.0 * sum((ranks < k).astype(np.float64) for k in ks)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float, float]:
    """(mean(a − b), low, high): the percentile bootstrap interval of the mean paired difference, resampling
    queries (the same resample for both: a[i] and b[i] are one query under two methods)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"paired values must be two equal-length 1-D arrays, got {a.shape} and {b.shape}")
    d = a - b
    idx = np.random.default_rng(seed).integers(0, len(d), size=(n_boot, len(d)))
    means = d[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(d.mean()), float(lo), float(hi)
