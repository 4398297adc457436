"""Fused re-ranking (IRR retriever): score = λ1·p1(u) + λ2·p2(ū) + λ3·p3(s), mixed with the previous round.

p1: similarity to the initial query u; p2: to the query enriched with the answers ū; p3: to the dialog
summary s (the CoT step). α weighs this round's fused scores against the previous round's.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


def fuse(p1: Optional[np.ndarray], p2: Optional[np.ndarray], p3: Optional[np.ndarray],
         lambdas: tuple[float, float, float]) -> np.ndarray:
    """λ1·p1 + λ2·p2 + λ3·p3 over (..., S) score arrays; a view with λ = 0 may be None."""
    total = None
    for lam, p, name in zip(lambdas, (p1, p2, p3), ("p1", "p2", "p3")):
        if lam == 0:
            continue
        if p is None:
            raise ValueError(f"{name} is missing but its weight is {lam}")
        term = lam * np.asarray(p, np.float32)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("all fusion weights are zero: nothing to rank by")
    return total


def mix(new: np.ndarray, previous: Optional[np.ndarray], alpha: float) -> np.ndarray:
    """α·new + (1−α)·previous (just `new` in the first round)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if previous is None:
        return np.asarray(new, np.float32)
    return (alpha * np.asarray(new, np.float32) + (1.0 - alpha) * np.asarray(previous, np.float32)).astype(np.float32)


def softmax_weights(scores: np.ndarray, beta: float) -> np.ndarray:
    """softmax(score/β) along the last axis: how sharply the questioner weighs its candidates."""
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    z = np.asarray(scores, np.float64) / beta
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
