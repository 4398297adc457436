"""Feature-level fusion of a dialog's responses (paper §3.2.2, Eqs. 3–5): p̂(u), the minimum enclosing ball, ū.

`gallery_softmax` is Eq. 3's p̂(u): a distribution over the whole gallery. `fuse_responses` builds ū, the
feature behind p̂2(ū): responses to a Q1 (detail probe) are blended into the previous feature, then all
features are enclosed in their minimum enclosing ball (centre o*, radius R*); the ones near its surface
(the boundary set U¹) are replaced by o*, which is averaged with the mean of the rest (the central set U²).

Pure numpy, float64 inside: no I/O, no globals.
"""
from __future__ import annotations

from itertools import combinations
from typing import Sequence

import numpy as np

# Up to this many distinct points the ball is found exactly by enumerating support sets (2^n − 1 subsets);
# a dialog has r ≤ 5 responses, so its n = r + 1 ≤ 6 points always take the exact path.
EXACT_MAX_POINTS = 6

# Slack for "lies inside the ball" / "lies on the shell": distances computed two ways differ in the last bits.
_REL_TOL = 1e-9


def gallery_softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    """p̂ = softmax(scores / temperature) over the last axis (Eq. 3), as float32.

    `scores` (..., S) are similarities S(u, v_l) to every gallery scene. Computed in float64 with the row
    maximum subtracted, so large scores / small temperatures do not overflow.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = np.asarray(scores, np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _check_points(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, np.float64)
    if p.ndim != 2:
        raise ValueError(f"points must be a 2-D array (n, d), got shape {p.shape}")
    if p.shape[0] == 0:
        raise ValueError("points is empty: a minimum enclosing ball needs at least one point")
    if not np.isfinite(p).all():
        raise ValueError("points contain NaN or inf")
    return p


def _circumsphere(support: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Centre and radius of the smallest sphere through all rows of `support`, centred in their affine hull.

    None when the rows are affinely dependent (their sphere is not unique; a smaller subset covers it).
    """
    p0 = support[0]
    if len(support) == 1:
        return p0.copy(), 0.0
    a = (support[1:] - p0).T                       # (d, m): edges from p0 span the affine hull
    s = np.linalg.svd(a, compute_uv=False)
    if s[-1] <= 1e-10 * s[0]:
        return None
    gram = a.T @ a
    # |c − p_i|² = |c − p0|² with c = p0 + A·λ  ⇔  2·AᵀA·λ = diag(AᵀA)
    lam = np.linalg.solve(2.0 * gram, np.diag(gram))
    centre = p0 + a @ lam
    return centre, float(np.linalg.norm(centre - p0))


def _exact_meb(p: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact ball: the smallest circumsphere of a support set of ≤ d+1 points that contains every point.

    The minimum enclosing ball is the circumsphere (within their affine hull) of an affinely independent
    subset of at most d+1 points, so trying them all finds it. Cost grows as 2^n: small n only.
    """
    p = np.unique(p, axis=0)                       # duplicates add nothing and make subsets degenerate
    n, d = p.shape
    best_centre, best_radius = p[0].copy(), np.inf
    for size in range(1, min(n, d + 1) + 1):
        for idx in combinations(range(n), size):
            ball = _circumsphere(p[list(idx)])
            if ball is None:
                continue
            centre, radius = ball
            if radius >= best_radius:
                continue
            reach = np.linalg.norm(p - centre, axis=1).max()
            if reach <= radius * (1 + _REL_TOL) + _REL_TOL:
                best_centre, best_radius = centre, radius
    # the radius reported is the true reach of the centre, so the ball contains every point
    return best_centre, float(np.linalg.norm(p - best_centre, axis=1).max())


def _badoiu_clarkson(p: np.ndarray, eps: float, max_iter: int) -> tuple[np.ndarray, float]:
    """Bădoiu–Clarkson core-set iteration: c ← c + (farthest − c)/(i + 1).

    After i steps |c − o*| ≤ R*/sqrt(i), so the ball around c reaching every point has radius
    ≤ (1 + 1/sqrt(i))·R*; ⌈1/ε²⌉ steps give (1 + ε), but max_iter caps the count.
    """
    steps = int(min(np.ceil(1.0 / eps**2), max_iter))
    centre = p[0].copy()
    best_centre, best_radius = centre.copy(), np.inf
    for i in range(1, steps + 1):
        dist = np.linalg.norm(p - centre, axis=1)
        far = int(dist.argmax())
        if dist[far] < best_radius:
            best_centre, best_radius = centre.copy(), float(dist[far])
        centre += (p[far] - centre) / (i + 1)
    reach = float(np.linalg.norm(p - centre, axis=1).max())
    if reach < best_radius:
        best_centre, best_radius = centre, reach
    return best_centre, best_radius


def minimum_enclosing_ball(points: np.ndarray, eps: float = 1e-4,
                           max_iter: int = 10_000) -> tuple[np.ndarray, float]:
    """Centre o* (d,) and radius R* of the minimum enclosing ball of the rows of `points` (n, d).

    Exact when there are at most EXACT_MAX_POINTS distinct points (support-set enumeration). Otherwise the
    Bădoiu–Clarkson approximation with min(⌈1/eps²⌉, max_iter) steps: its radius is at most
    (1 + 1/sqrt(steps))·R*, i.e. (1 + eps)·R* only if max_iter ≥ 1/eps². In both cases the returned ball
    contains every point (the radius is the distance from the centre to the farthest point).
    One point (or all points equal) gives radius 0. float64 throughout.
    """
    p = _check_points(points)
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    distinct = np.unique(p, axis=0)
    if len(distinct) <= EXACT_MAX_POINTS:
        return _exact_meb(distinct)
    return _badoiu_clarkson(p, eps, max_iter)


def split_boundary(points: np.ndarray, centre: np.ndarray, radius: float, shell: float) -> np.ndarray:
    """Shell rule: True for the boundary set U¹, False for the central set U².

    A point is on the boundary when its distance to the centre is ≥ (1 − shell)·radius, i.e. it lies in
    the outer shell of relative thickness `shell` (0: only points on the sphere; 1: every point).
    A ball of radius 0 has no boundary: all points are central. Distances get a relative slack of 1e-9
    so points that define the sphere count as on it despite rounding.
    """
    if not 0.0 <= shell <= 1.0:
        raise ValueError(f"shell must be in [0, 1], got {shell}")
    p = _check_points(points)
    if radius <= 0:
        return np.zeros(len(p), bool)
    dist = np.linalg.norm(p - np.asarray(centre, np.float64), axis=1)
    return dist >= (1.0 - shell) * radius * (1 - _REL_TOL)


def fuse_responses(query: np.ndarray, responses: np.ndarray, detail: Sequence[bool], alpha: float,
                   shell: float) -> np.ndarray:
    """ū of one dialog, L2-normalised, float32 (d,).

    query: u⁰ (d,), the initial query's feature. responses: (r, d), u¹..uʳ in dialog order.
    detail[j]: True when response j answered a Q1 (detail probe), False for a Q2.
    A Q1 response is blended into the feature before it, u^j ← α·u^j + (1 − α)·u^{j−1}, where u^{j−1} is
    the previous feature as already fused (u⁰ for the first); a Q2 response is kept as it is. The ball is
    the minimum enclosing ball of {u⁰, u¹..uʳ}; with the shell rule (`split_boundary`),
    ū = ½·(o* + mean(U²)), or o* when U² is empty. No responses: ū = u⁰.
    Inputs are used as given (normalise them first if they are cosine features); a zero ū stays zero.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    q = np.asarray(query, np.float64)
    if q.ndim != 1:
        raise ValueError(f"query must be a 1-D feature (d,), got shape {q.shape}")
    resp = np.asarray(responses, np.float64)
    if resp.size == 0:
        resp = resp.reshape(0, q.shape[0])
    if resp.ndim != 2 or resp.shape[1] != q.shape[0]:
        raise ValueError(f"responses must be (r, {q.shape[0]}) like the query, got shape {resp.shape}")
    if len(detail) != len(resp):
        raise ValueError(f"detail has {len(detail)} flags for {len(resp)} responses")
    if len(resp) == 0:
        u_bar = q
    else:
        fused = [q]
        for u_j, is_q1 in zip(resp, detail):
            # Q1 refines the area just described, so it leans on the previous feature; Q2 opens a new area
            fused.append(alpha * u_j + (1.0 - alpha) * fused[-1] if is_q1 else u_j)
        pts = np.stack(fused)
        centre, radius = minimum_enclosing_ball(pts)          # o*, R*
        boundary = split_boundary(pts, centre, radius, shell)  # U¹; ~boundary is U²
        u_bar = centre if boundary.all() else 0.5 * (centre + pts[~boundary].mean(axis=0))
    norm = np.linalg.norm(u_bar)
    return (u_bar / norm if norm > 0 else u_bar).astype(np.float32)


def fusion_coefficients(query: np.ndarray, responses: np.ndarray, detail: Sequence[bool], alpha: float,
                        shell: float) -> tuple[np.ndarray, float]:
    """ū of `fuse_responses` written as a combination of its inputs: (c (r+1,), n) with
    ū = (c₀·u⁰ + Σ_j c_j·u^j) / n, c ≥ 0 summing to 1 and n = |c₀·u⁰ + Σ_j c_j·u^j| (0 for a zero ū).

    Every step of ū is affine in the features (the Q1 blend, the ball's centre, the mean of U²), so a score
    that is linear in the text feature, S(ū, v) = ū·v, equals (Σ c_i·S(u^i, v)) / n. A late-interaction score
    (the best of a scene's objects) is not linear; applying the coefficients to it matches each response
    against its own best object instead of matching one blended feature (`ideal.dialog.round.predict`).
    """
    q = np.asarray(query, np.float64)
    resp = np.asarray(responses, np.float64).reshape(-1, q.shape[0])
    if len(detail) != len(resp):
        raise ValueError(f"detail has {len(detail)} flags for {len(resp)} responses")
    n = len(resp) + 1
    if len(resp) == 0:
        return np.ones(1), float(np.linalg.norm(q))
    inputs = np.vstack([q, resp])
    mix = [np.eye(n)[0]]                               # each fused point as coefficients over the inputs
    for j, is_q1 in enumerate(detail, start=1):
        mix.append(alpha * np.eye(n)[j] + (1.0 - alpha) * mix[-1] if is_q1 else np.eye(n)[j])
    mix = np.stack(mix)
    pts = mix @ inputs
    centre, radius = minimum_enclosing_ball(pts)
    # the centre lies in the points' affine hull: its affine weights (least squares with Σw = 1)
    system = np.vstack([pts.T, np.ones((1, n))])
    w = np.linalg.lstsq(system, np.append(centre, 1.0), rcond=None)[0]
    boundary = split_boundary(pts, centre, radius, shell)
    if not boundary.all():
        w = 0.5 * (w + np.where(~boundary, 1.0 / (~boundary).sum(), 0.0))
    coef = np.clip(w @ mix, 0.0, None)
    coef /= coef.sum()
    return coef, float(np.linalg.norm(coef @ inputs))
