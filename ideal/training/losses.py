"""Contrastive losses as pure tensor functions.

`info_nce` is the base retriever's symmetric InfoNCE (VSE∞/CLIP style) between descriptions and scenes.
Positives are decided by scene id, so several descriptions of one scene in a batch are never each
other's negatives, and a scene that appears twice (e.g. gathered from two workers) is a positive twice.

`l_dis`, `l_div` and `iat_loss` are IAT's contrastive domain adaptation loss
L = λ·L_dis + (1−λ)·L_div over interaction-like texts ũ (see DESIGN.md, "IAT").
"""
from __future__ import annotations

import torch


def _multi_positive_nll(logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -log(sum of softmax mass on the row's positives). Rows need ≥1 positive."""
    all_ = torch.logsumexp(logits, dim=1)
    pos = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1)
    return (all_ - pos).mean()


def info_nce(text: torch.Tensor, scene: torch.Tensor, text_scene_ids: torch.Tensor, scene_ids: torch.Tensor,
             temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE.

    text: (B, d) and scene: (U, d), both L2-normalised; text_scene_ids: (B,) the scene id of each text;
    scene_ids: (U,) the id of each scene row. Every text's scene must be among the rows.
    loss = ½ [ mean_b -log Σ_{u∈P(b)} softmax_u(t_b·v_u/τ) + mean_u -log Σ_{b∈P(u)} softmax_b(t_b·v_u/τ) ]
    """
    logits = text @ scene.T / temperature
    positive = text_scene_ids[:, None] == scene_ids[None, :]
    if not bool(positive.any(dim=1).all()):
        raise ValueError("info_nce: a text's scene is not among the scene rows")
    t2s = _multi_positive_nll(logits, positive)
    has_text = positive.any(dim=0)  # scenes without a text in the batch only serve as negatives
    s2t = _multi_positive_nll(logits.T[has_text], positive.T[has_text])
    return (t2s + s2t) / 2


def l_dis(text_emb: torch.Tensor, scene_emb: torch.Tensor, targets: torch.Tensor,
          temperature: float) -> torch.Tensor:
    """IAT positive aligning: L_dis = −Σ_i Σ_j y_ij log S(ũ_i, v_j), averaged over i.

    text_emb: (B, d) interaction texts ũ and scene_emb: (S, d) scenes v, both L2-normalised rows;
    targets: (B,) long, the row of scene_emb that is each text's scene (y_ij = 1 iff j = targets[i]).
    S(ũ_i, v_j) = softmax_j(ũ_i·v_j / temperature), the softmax over scenes of the cosine similarity.
    The paper sums over i; we take the mean so the loss scale (and so the learning rate and λ) does not
    depend on the batch size.
    """
    if text_emb.dim() != 2 or scene_emb.dim() != 2 or text_emb.shape[1] != scene_emb.shape[1]:
        raise ValueError(f"l_dis: need text_emb (B, d) and scene_emb (S, d), got {tuple(text_emb.shape)} "
                         f"and {tuple(scene_emb.shape)}")
    if targets.shape != (text_emb.shape[0],):
        raise ValueError(f"l_dis: targets must have shape ({text_emb.shape[0]},), got {tuple(targets.shape)}")
    if len(targets) and not bool(((targets >= 0) & (targets < scene_emb.shape[0])).all()):
        raise ValueError(f"l_dis: targets must index the {scene_emb.shape[0]} scene rows, got {targets.tolist()}")
    logits = text_emb @ scene_emb.T / temperature
    return torch.nn.functional.cross_entropy(logits, targets)  # = mean_i −log S(ũ_i, v_{targets_i})


def l_div(text_emb: torch.Tensor, scene_ids: torch.Tensor, gamma: float, eps: float = 1e-6) -> torch.Tensor:
    """IAT negative diverging over pairs of texts of different scenes.

    The paper writes L_div = Σ_i Σ_{j≠i} exp(−max(0, S(ũ_i, ũ_j) − γ)) · log(1 − S(ũ_i, ũ_j)).
    As printed, minimising it would pull S → 1, against its purpose (a surrogate for the divergence risk
    R_div = E[S(ũ⁻, ũ)], which IAT minimises). We therefore minimise the complementary-contrastive form
        L_div = −(1/|P|) Σ_{(i,j)∈P} w_ij log(1 − S_ij),   w_ij = exp(−max(0, S_ij − γ)),
    with P the ordered pairs i ≠ j whose scene_ids differ; −log(1 − S) ≥ S bounds R_div from above, so
    minimising it pushes different-scene texts apart. The mean over pairs keeps the scale independent of
    the batch size; with no such pair the loss is a zero that still backpropagates.

    text_emb: (B, d) L2-normalised rows; scene_ids: (B,) the scene of each text.
    S_ij = clamp(ũ_i·ũ_j, min=0): orthogonal texts already count as apart (S = 0 adds no loss and no
    gradient), and γ reads directly as a cosine. (cos + 1)/2 would instead keep pushing towards cos = −1,
    which many scenes cannot all reach. 1 − S is clamped to ≥ eps so identical texts stay finite.
    The weight w_ij is detached: it only down-weights pairs above γ (likely near-duplicates across scenes),
    and left in the graph it would also reward raising S above γ, weakening the push it weights.
    """
    if text_emb.dim() != 2:
        raise ValueError(f"l_div: need text_emb (B, d), got {tuple(text_emb.shape)}")
    if scene_ids.shape != (text_emb.shape[0],):
        raise ValueError(f"l_div: scene_ids must have shape ({text_emb.shape[0]},), got {tuple(scene_ids.shape)}")
    pairs = scene_ids[:, None] != scene_ids[None, :]  # i ≠ j follows: a text has its own scene
    if not bool(pairs.any()):
        return text_emb.sum() * 0.0
    s = (text_emb @ text_emb.T)[pairs].clamp(min=0.0)
    w = torch.exp(-torch.clamp(s.detach() - gamma, min=0.0))
    return -(w * torch.log((1.0 - s).clamp(min=eps))).mean()


def iat_loss(text_emb: torch.Tensor, scene_emb: torch.Tensor, targets: torch.Tensor, scene_ids: torch.Tensor,
             lam: float, gamma: float, temperature: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """IAT's loss L = λ·L_dis + (1−λ)·L_div; returns (L, {"l_dis": …, "l_div": …}).

    text_emb (B, d), scene_emb (S, d): L2-normalised; targets (B,): each text's row in scene_emb, for L_dis;
    scene_ids (B,): each text's scene id, for L_div's different-scene pairs. See `l_dis` and `l_div`.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"iat_loss: lam (λ) must be in [0, 1], got {lam}")
    dis = l_dis(text_emb, scene_emb, targets, temperature)
    div = l_div(text_emb, scene_ids, gamma)
    return lam * dis + (1.0 - lam) * div, {"l_dis": dis, "l_div": div}
