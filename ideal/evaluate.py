"""Static (single-round) evaluation: rank the gallery for each description, report R@1/5/10 and Rsum.

A hit at K means the description's scene is among the top K scenes (scene-level, as in the paper).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .checkpoints import DEFAULT_WEIGHTS
from .dialog_eval import queries
from .metrics import KS, format_table, recall_from_rankings
from .retrieval.index import SceneIndex
from .retrieval.retriever import BagOfLabelsRetriever, Retriever, TrainedRetriever
from .scenes.dataset import SceneDataset
from .scenes.types import Description

def static_eval(retriever: Retriever, ds: SceneDataset, descs: list[Description], index_kind: str = "auto") -> dict:
    """R@1/5/10 and Rsum of `retriever` for `descs` over the gallery `ds.scenes`."""
    if not descs:
        raise ValueError("no descriptions to evaluate")
    ids = sorted(ds.scenes)
    scenes = [ds.scenes[s] for s in ids]
    text_emb = np.ascontiguousarray(retriever.encode_text([d.text for d in descs]), np.float32)
    if retriever.late_interaction:  # a scene scores as its best object
        scores = retriever.encode_objects(scenes).scores(text_emb)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :max(KS)]
        return recall_from_rankings([[ids[j] for j in row] for row in top], [d.scene_id for d in descs])
    scene_emb = retriever.encode_scenes(scenes)
    index = SceneIndex.build(ids, np.ascontiguousarray(scene_emb, np.float32), kind=index_kind)
    rankings, _ = index.search(text_emb, max(KS))
    return recall_from_rankings(rankings, [d.scene_id for d in descs])


def static_table(ds: SceneDataset, text_encoder, weights: str | Path = DEFAULT_WEIGHTS, sources=("scanrefer",),
                 limit: Optional[int] = None) -> tuple[str, dict]:
    """The trained retriever next to the bag-of-labels floor, as a Markdown table and a dict."""
    descs = queries(ds.descriptions, sources, limit)
    results = {
        "static": static_eval(TrainedRetriever.from_checkpoint(weights, text_encoder), ds, descs),
        "bag-of-labels": static_eval(BagOfLabelsRetriever(text_encoder), ds, descs),
    }
    return format_table(results), results
