"""The questioner's router (paper §3.2.1): pick the next question TYPE from the density-compensated entropy Ẽ.

Ẽ high → the description still matches many scenes alike (uninformative) → Q1, a detail probe of the area
already described. Ẽ low → it singles out a few scenes (informative) → Q2, diverge to areas not yet discussed.

Pure numpy: `scene_density` (ρ, once per gallery), `affinity_entropy` (Ẽ per dialog), `route` (the rule).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

Q1 = "Q1"   # detail probe: attributes and relations within the area already described
Q2 = "Q2"   # diverge exploration: objects not yet discussed


def scene_density(scene_emb: np.ndarray, k: int, eps: float, chunk: int = 256) -> np.ndarray:
    """ρ(v_i) = 1 / ((1/k)·Σ_{j∈N_k(v_i)} D(v_i, v_j) + ε) for every scene, float64 (S,).

    scene_emb: (S, d) scene features v. D is the Euclidean distance; N_k(v_i) are the k nearest OTHER scenes
    (a scene is never its own neighbour, an identical copy of it is, at distance 0). k is clipped to S − 1;
    a gallery of one scene gets ρ = 1/ε.
    """
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    return density_from_distance(mean_knn_distance(scene_emb, k, chunk=chunk), eps)


def density_from_distance(mean_dist: np.ndarray, eps: float) -> np.ndarray:
    """ρ = 1 / (mean distance to the k nearest scenes + ε)."""
    return 1.0 / (np.asarray(mean_dist, np.float64) + eps)


def mean_knn_distance(scene_emb: np.ndarray, k: int, index=None, chunk: int = 256) -> np.ndarray:
    """Each scene's mean Euclidean distance to its k nearest other scenes, float64 (S,) (0 for a gallery of one).

    Exact, `chunk` rows at a time (memory about 2·chunk·S·8 bytes rather than S²); with an approximate
    `index` (a SceneIndex over the same rows, e.g. IVF for a large gallery), its top-(k+1) search instead."""
    v = np.asarray(scene_emb, np.float64)
    if v.ndim != 2 or v.shape[0] == 0:
        raise ValueError(f"scene_emb must be a non-empty (S, d) array, got shape {v.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    n = v.shape[0]
    if n == 1:
        return np.zeros(1)
    k = min(k, n - 1)
    sq = np.einsum("ij,ij->i", v, v)
    mean_dist = np.empty(n)
    if index is not None and index.kind != "flat":
        row = {sid: i for i, sid in enumerate(index.ids)}
        for start in range(0, n, 4096):
            stop = min(start + 4096, n)
            ids, ips = index.search(v[start:stop].astype(np.float32), k + 1)
            for i, (found, ip) in enumerate(zip(ids, ips)):
                pairs = [(row[sid], float(x)) for sid, x in zip(found, ip) if row[sid] != start + i][:k]
                d2 = np.array([sq[start + i] + sq[j] - 2.0 * x for j, x in pairs])
                mean_dist[start + i] = np.sqrt(np.maximum(d2, 0.0)).mean() if len(d2) else 0.0
        return mean_dist
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        # |a − b|² = |a|² + |b|² − 2a·b, built in place in the one (chunk, S) buffer
        d2 = v[start:stop] @ v.T
        d2 *= -2.0
        d2 += sq[start:stop, None]
        d2 += sq[None, :]
        np.maximum(d2, 0.0, out=d2)                       # rounding can dip just below 0
        d2[np.arange(stop - start), np.arange(start, stop)] = np.inf   # exclude the scene itself
        nearest = np.partition(d2, k - 1, axis=1)[:, :k]  # squared distances order like distances
        mean_dist[start:stop] = np.sqrt(nearest).mean(axis=1)
    return mean_dist


def affinity_entropy(sims: np.ndarray, k: int, tau: float, density: Optional[np.ndarray] = None) -> np.ndarray:
    """Cross-modal affinity entropy E(u) (or Ẽ(u) with `density`) in nats, float64 (B,).

    sims: (B, S) similarities S(u, v) of each dialog's text feature to every scene. With density ρ (S,),
    S̃ = S / sqrt(ρ) (dense regions are damped); N_k(u) are the k largest S̃ (k clipped to S), and
    p = softmax over N_k(u) of S̃/τ, E = −Σ p log p. Without density, S̃ = S.
    """
    s = np.asarray(sims, np.float64)
    if s.ndim != 2 or s.shape[1] == 0:
        raise ValueError(f"sims must be a (B, S) array with S >= 1, got shape {s.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    if density is not None:
        rho = np.asarray(density, np.float64)
        if rho.shape != (s.shape[1],):
            raise ValueError(f"density must have one value per scene ({s.shape[1]},), got shape {rho.shape}")
        if not (rho > 0).all():
            raise ValueError("density must be > 0 for every scene")
        s = s / np.sqrt(rho)                              # S̃(u, v_j) = S(u, v_j) / sqrt(ρ(v_j))
    k = min(k, s.shape[1])
    top = -np.partition(-s, k - 1, axis=1)[:, :k]         # N_k(u): the k largest S̃ of each row
    z = top / tau
    z -= z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    # a scene outside an approximate index's candidates (S = -inf) has p = 0 and adds nothing
    return -(np.exp(log_p) * np.where(np.isfinite(log_p), log_p, 0.0)).sum(axis=1)


def route(entropy: np.ndarray, beta: float, previous: Sequence[Sequence[str]], force_q2_after: int) -> list[str]:
    """The next question type, Q1 or Q2, for each of B dialogs.

    entropy: (B,) Ẽ of each dialog's latest text feature. previous[b]: the types already asked in dialog b,
    oldest first. In order of precedence:
      1. no question asked yet (round 0) → Q1;
      2. force_q2_after ≥ 1 and the last force_q2_after types are all Q1 → Q2 (0 turns this rule off);
      3. Ẽ > beta → Q1 (uninformative: probe details), else Q2 (informative: explore elsewhere).
    """
    e = np.asarray(entropy, np.float64).reshape(-1)
    if len(previous) != len(e):
        raise ValueError(f"previous has {len(previous)} dialogs but entropy has {len(e)}")
    if force_q2_after < 0:
        raise ValueError(f"force_q2_after must be >= 0 (0 disables it), got {force_q2_after}")
    out = []
    for b, (e_b, asked) in enumerate(zip(e, previous)):
        unknown = set(asked) - {Q1, Q2}
        if unknown:
            raise ValueError(f"previous[{b}] holds unknown question types {sorted(unknown)}; expected Q1/Q2")
        if not asked:
            out.append(Q1)
        elif force_q2_after >= 1 and len(asked) >= force_q2_after and \
                all(t == Q1 for t in asked[-force_q2_after:]):
            # a run of detail probes stops paying off: move on to unexplored parts of the scene
            out.append(Q2)
        else:
            out.append(Q1 if e_b > beta else Q2)
    return out
