"""Contrastive losses as pure tensor functions.

`info_nce` is the base retriever's symmetric InfoNCE (VSE∞/CLIP style) between descriptions and scenes.
Positives are decided by scene id, so several descriptions of one scene in a batch are never each
other's negatives, and a scene that appears twice (e.g. gathered from two workers) is a positive twice.
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
