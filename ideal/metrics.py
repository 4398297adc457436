"""Retrieval metrics: R@K (percent of queries whose target scene is in the top K) and Rsum = R@1+R@5+R@10."""
from __future__ import annotations

from typing import Sequence

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
