"""The retriever's final prediction (paper Eq. 5): p̂c = λ1·p̂1(u) + λ2·p̂2(ū) + λ3·p̂3(s).

p̂1: of the initial query u; p̂2: of ū, the feature-level fusion of the responses (`meb.fuse_responses`);
p̂3: of s, the semantic-level (CoT) reconstruction. Each p̂ is a softmax over the whole gallery
(`meb.gallery_softmax`), so the weighted sum is again a distribution over scenes.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


def fuse(p1: Optional[np.ndarray], p2: Optional[np.ndarray], p3: Optional[np.ndarray],
         lambdas: tuple[float, float, float]) -> np.ndarray:
    """λ1·p1 + λ2·p2 + λ3·p3 over (..., S) arrays; a view with λ = 0 may be None."""
    if any(lam < 0 for lam in lambdas):
        raise ValueError(f"fusion weights must be >= 0, got {lambdas}")
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
