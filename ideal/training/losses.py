"""Contrastive losses as pure tensor functions.

`info_nce` is the base retriever's symmetric InfoNCE (VSE∞/CLIP style) between descriptions and scenes.
Positives are decided by scene id, so several descriptions of one scene in a batch are never each
other's negatives, and a scene that appears twice (e.g. gathered from two workers) is a positive twice.

`l_dis`, `l_div` (with its weight `div_weight`) and `iat_loss` are IAT's contrastive domain adaptation loss
L = λ·L_dis + (1−λ)·L_div over interaction-like texts ũ (paper §3.3; see DESIGN.md, "IAT").

A scene is either one vector (U, d) or, for a late-interaction retriever, its object vectors (U, N, d) with a
(U, N) mask of real objects; `scene_similarity` scores both (the latter as the best object). `object_nce` is the
object-level term: a description against every object of the batch, its positive the object it names.
"""
from __future__ import annotations

from typing import Optional

import torch


def _multi_positive_nll(logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -log(sum of softmax mass on the row's positives). Rows need ≥1 positive."""
    all_ = torch.logsumexp(logits, dim=1)
    pos = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1)
    return (all_ - pos).mean()


def scene_similarity(text: torch.Tensor, scene: torch.Tensor, scene_mask: Optional[torch.Tensor] = None
                     ) -> torch.Tensor:
    """(B, U) S(t, v): text (B, d) against scenes (U, d) as inner products, or against object vectors (U, N, d)
    with scene_mask (U, N) as the best real object's: max_{n: mask[u, n]} t_b·o_un (late interaction)."""
    if scene.dim() == 2:
        return text @ scene.T
    if scene.dim() != 3 or scene_mask is None or scene_mask.shape != scene.shape[:2]:
        raise ValueError(f"scene_similarity: object vectors (U, N, d) need a (U, N) mask, got "
                         f"{tuple(scene.shape)} and {None if scene_mask is None else tuple(scene_mask.shape)}")
    sims = torch.einsum("bd,und->bun", text, scene)
    return sims.masked_fill(~scene_mask[None], float("-inf")).amax(dim=2)


def info_nce(text: torch.Tensor, scene: torch.Tensor, text_scene_ids: torch.Tensor, scene_ids: torch.Tensor,
             temperature: float, scene_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Symmetric InfoNCE.

    text: (B, d) and scene: (U, d) (or object vectors (U, N, d) with `scene_mask`, see `scene_similarity`), all
    L2-normalised; text_scene_ids: (B,) the scene id of each text; scene_ids: (U,) the id of each scene row.
    Every text's scene must be among the rows.
    loss = ½ [ mean_b -log Σ_{u∈P(b)} softmax_u(S(t_b, v_u)/τ) + mean_u -log Σ_{b∈P(u)} softmax_b(S(t_b, v_u)/τ) ]
    """
    logits = scene_similarity(text, scene, scene_mask) / temperature
    positive = text_scene_ids[:, None] == scene_ids[None, :]
    if not bool(positive.any(dim=1).all()):
        raise ValueError("info_nce: a text's scene is not among the scene rows")
    t2s = _multi_positive_nll(logits, positive)
    has_text = positive.any(dim=0)  # scenes without a text in the batch only serve as negatives
    s2t = _multi_positive_nll(logits.T[has_text], positive.T[has_text])
    return (t2s + s2t) / 2


def object_nce(text: torch.Tensor, objects: torch.Tensor, object_mask: torch.Tensor, text_scene_ids: torch.Tensor,
               text_slots: torch.Tensor, scene_ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """Object-level InfoNCE: each text against every real object of the batch, its positive the object it names.

    text (B, d); objects (U, N, d) with object_mask (U, N); text_scene_ids (B,) and scene_ids (U,) as in
    `info_nce`; text_slots (B,) the slot n of the named object in its scene's row, -1 where it is not among the
    encoded objects (those texts are left out). loss = mean_b −log Σ_{(u,n)∈P(b)} softmax_{(u,n)}(t_b·o_un/τ);
    a zero that still backpropagates when no text has a slot."""
    keep = text_slots >= 0
    if not bool(keep.any()):
        return text.sum() * 0.0
    text, text_scene_ids, text_slots = text[keep], text_scene_ids[keep], text_slots[keep]
    u, n, d = objects.shape
    logits = (text @ objects.reshape(u * n, d).T / temperature).masked_fill(~object_mask.reshape(1, u * n),
                                                                            float("-inf"))
    slot = torch.arange(n, device=text.device)
    positive = ((text_scene_ids[:, None, None] == scene_ids[None, :, None])
                & (text_slots[:, None, None] == slot[None, None, :]) & object_mask[None]).reshape(len(text), u * n)
    if not bool(positive.any(dim=1).all()):
        raise ValueError("object_nce: a text's named object is not among the batch's real objects")
    return _multi_positive_nll(logits, positive)


def l_dis(text_emb: torch.Tensor, scene_emb: torch.Tensor, targets: torch.Tensor,
          temperature: float, scene_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """IAT positive aligning: L_dis = −(1/N) Σ_i Σ_j y_ij log S(ũ_i, v_j).

    text_emb: (N, d) interaction texts ũ and scene_emb: (S, d) the batch's scene features v (or object vectors
    (S, M, d) with `scene_mask`: ũ_i·v_j is then `scene_similarity`'s best object), L2-normalised rows.
    S(ũ_i, v_j) = softmax_j(ũ_i·v_j / temperature): the softmax over SCENES, whose
    positive is the text's own scene feature (never another text). targets is either
      (N,) long: the row of scene_emb that is each text's scene (y_ij = 1 iff j = targets[i]), or
      (N, S) bool: y itself, for batches where one scene has several rows (e.g. gathered from two workers);
      there a text's loss is −log of the softmax mass on all its scene's rows, which is the paper's term
      when y is one-hot, and keeps a duplicate of the text's own scene from acting as its negative.
    The paper sums over i; the mean keeps the loss scale (and so the learning rate and λ) independent of N.
    """
    if text_emb.dim() != 2 or scene_emb.dim() not in (2, 3) or text_emb.shape[1] != scene_emb.shape[-1]:
        raise ValueError(f"l_dis: need text_emb (N, d) and scene_emb (S, d), got {tuple(text_emb.shape)} "
                         f"and {tuple(scene_emb.shape)}")
    n, n_scenes = text_emb.shape[0], scene_emb.shape[0]
    logits = scene_similarity(text_emb, scene_emb, scene_mask) / temperature
    if targets.dtype == torch.bool:
        if targets.shape != (n, n_scenes):
            raise ValueError(f"l_dis: a bool targets (y) must have shape ({n}, {n_scenes}), "
                             f"got {tuple(targets.shape)}")
        if not bool(targets.any(dim=1).all()):
            raise ValueError("l_dis: every text needs its scene among the scene rows (a row of y is all False)")
        return _multi_positive_nll(logits, targets)
    if targets.shape != (n,):
        raise ValueError(f"l_dis: targets must have shape ({n},) (row indices) or ({n}, {n_scenes}) (bool y), "
                         f"got {tuple(targets.shape)}")
    if len(targets) and not bool(((targets >= 0) & (targets < n_scenes)).all()):
        raise ValueError(f"l_dis: targets must index the {n_scenes} scene rows, got {targets.tolist()}")
    return torch.nn.functional.cross_entropy(logits, targets)  # = mean_i −log S(ũ_i, v_{targets_i})


def div_weight(s: torch.Tensor, gamma: float) -> torch.Tensor:
    """The paper's L_div pair weight w_ij = exp(−max(0, S_ij − γ)), detached from the graph.

    It is 1 for S ≤ γ and decays above γ, down-weighting different-scene pairs that look alike (likely
    near-duplicate texts, for which pushing apart is noise). Detached because w is a weight, not a path:
    left in the graph, dw/dS < 0 would reward raising S above γ and weaken the very push it weights.
    """
    return torch.exp(-torch.clamp(s.detach() - gamma, min=0.0))


def l_div(text_emb: torch.Tensor, scene_ids: torch.Tensor, gamma: float, eps: float = 1e-6) -> torch.Tensor:
    """IAT negative diverging over pairs of texts of different scenes:

        L_div = −(1/|P|) Σ_{(i,j)∈P} w_ij log(1 − S_ij),   w_ij = div_weight(S_ij, γ),

    P the ordered pairs i ≠ j with scene_ids[i] ≠ scene_ids[j]; same-scene pairs are not in the sum. The
    paper prints +Σ w log(1 − S), which minimising would pull negatives together; −log(1 − S) ≥ S bounds
    the divergence risk E[S(ũ⁻, ũ)] from above, so minimising this pushes different-scene texts apart.
    The mean over pairs keeps the scale independent of the batch size; with no pair the loss is a zero
    that still backpropagates.
    S_ij = ũ_i·ũ_j clamped to [0, 1 − eps]: orthogonal texts already count as apart, γ reads as a cosine,
    and identical texts stay finite. (The authors' code instead uses a text–text softmax probability
    p_ij with τ 0.15 and w = 1 for p ≤ 0.05, exp(−5(p − 0.05)) above; not implemented here.)

    text_emb: (N, d) L2-normalised rows; scene_ids: (N,) the scene of each text.
    """
    if text_emb.dim() != 2:
        raise ValueError(f"l_div: need text_emb (N, d), got {tuple(text_emb.shape)}")
    if scene_ids.shape != (text_emb.shape[0],):
        raise ValueError(f"l_div: scene_ids must have shape ({text_emb.shape[0]},), got {tuple(scene_ids.shape)}")
    pairs = scene_ids[:, None] != scene_ids[None, :]  # i ≠ j follows: a text has its own scene
    if not bool(pairs.any()):
        return text_emb.sum() * 0.0
    s = (text_emb @ text_emb.T)[pairs].clamp(min=0.0)
    # Clamping 1 − S at eps is S ≤ 1 − eps, but exact in float32 (1 − (1 − 1e-6) is not 1e-6 there).
    return -(div_weight(s, gamma) * torch.log((1.0 - s).clamp(min=eps))).mean()


def iat_loss(text_emb: torch.Tensor, scene_emb: torch.Tensor, targets: torch.Tensor, scene_ids: torch.Tensor,
             lam: float, gamma: float, temperature: float, scene_mask: Optional[torch.Tensor] = None
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """IAT's loss L = λ·L_dis + (1−λ)·L_div; returns (L, {"l_dis": …, "l_div": …}).

    text_emb (N, d), scene_emb (S, d): L2-normalised; targets: each text's scene among the scene rows for
    L_dis, (N,) row indices or (N, S) bool y (see `l_dis`); scene_ids (N,): each text's scene id, for
    L_div's different-scene pairs; temperature: τ of L_dis's softmax over scenes.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"iat_loss: lam (λ) must be in [0, 1], got {lam}")
    dis = l_dis(text_emb, scene_emb, targets, temperature, scene_mask)
    div = l_div(text_emb, scene_ids, gamma)
    return lam * dis + (1.0 - lam) * div, {"l_dis": dis, "l_div": div}
