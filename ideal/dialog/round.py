"""One round of Interactive Retrieval Refinement, as one function over a batch of dialogs.

    states = start(queries)                                   # round -1: nothing ranked yet
    states = run_round(states, gallery, questioner, user, cfg)  # round 0: rank on u, ask question 1
    states = run_round(states, gallery, questioner, user, cfg)  # round 1: answer, re-rank, ask question 2 ...

A round: (1) the pending question is answered (by the simulated `answerer`; with `answerer=None` the caller
has already appended the real user's turn), (2) the CoT summary is written and the gallery re-ranked with
the fused score, mixed with the previous round's by α, (3) the next question is asked from the new ranking.
The eval job, the Serve app and notebooks all call this function.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..config import DialogConfig
from ..retrieval.fusion import fuse, mix, softmax_weights
from ..retrieval.gallery import Gallery
from .summary import (GroundedSummariser, concat_dialog, dialog_segments, enriched_query, enriched_segments,
                      segments)
from .types import Candidate, DialogState, Turn


def start(queries: list[str], targets: Optional[list[str]] = None, dialog_ids: Optional[list[str]] = None
          ) -> list[DialogState]:
    """Fresh dialogs (round -1). `targets` only for simulated users."""
    for i, q in enumerate(queries):
        if not isinstance(q, str) or not q.strip():
            raise ValueError(f"query {i} is empty")
    targets = targets or [None] * len(queries)
    dialog_ids = dialog_ids or [str(i) for i in range(len(queries))]
    return [DialogState(query=q, target=t, dialog_id=d) for q, t, d in zip(queries, targets, dialog_ids)]


def top_candidates(scores: np.ndarray, gallery: Gallery, k: int, beta: float) -> list[list[Candidate]]:
    """The k best scenes of each dialog with softmax(score/β) weights (over those k), best first."""
    k = min(k, len(gallery))
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else np.tile(
        np.arange(scores.shape[1]), (len(scores), 1))
    order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
    top = np.take_along_axis(top, order, axis=1)
    w = softmax_weights(np.take_along_axis(scores, top, axis=1), beta)
    summaries = getattr(gallery, "summaries", None)
    return [[Candidate(gallery.ids[j], float(wj), tuple(summaries[j]) if summaries is not None else ())
             for j, wj in zip(row, wrow)] for row, wrow in zip(top, w)]


def rank(states: list[DialogState], gallery: Gallery, cfg: DialogConfig, summaries: list[str]) -> np.ndarray:
    """The fused, α-mixed scores (B, S) of each dialog after its turns so far."""
    lambdas = (cfg.lambda1, cfg.lambda2, cfg.lambda3)
    out = np.zeros((len(states), len(gallery)), np.float32)
    first = [i for i, st in enumerate(states) if not st.turns]
    rest = [i for i, st in enumerate(states) if st.turns]
    if first:  # round 0: the query is all there is
        out[first] = gallery.scores([states[i].query for i in first])
    if rest:
        views = {}
        if cfg.lambda1:  # p1: the initial query u
            views[0] = gallery.scores([states[i].query for i in rest])
        if cfg.compose:  # sentence by sentence, each encoded once per dialog (see Gallery.scores_composed)
            if cfg.lambda2:  # p2: ū, the query enriched with the answers (or the whole dialog)
                views[1] = gallery.scores_composed([dialog_segments(states[i]) if cfg.p2_text == "dialog"
                                                    else enriched_segments(states[i]) for i in rest])
            if cfg.lambda3:  # p3: the dialog summary s
                views[2] = gallery.scores_composed([segments(summaries[i]) for i in rest])
        else:
            if cfg.lambda2:
                views[1] = gallery.scores([concat_dialog(states[i]) if cfg.p2_text == "dialog"
                                           else enriched_query(states[i]) for i in rest])
            if cfg.lambda3:
                views[2] = gallery.scores([summaries[i] for i in rest])
        fused = fuse(views.get(0), views.get(1), views.get(2), lambdas)
        for row, i in enumerate(rest):
            out[i] = mix(fused[row], states[i].scores, cfg.alpha)
    return out


def run_round(states: list[DialogState], gallery: Gallery, questioner, answerer, cfg: DialogConfig,
              summariser=None, ask: bool = True) -> list[DialogState]:
    """Advance every dialog by one round (see the module docstring). Pure: returns new states."""
    if cfg.p2_text not in ("answers", "dialog"):
        raise ValueError(f"p2_text must be 'answers' or 'dialog', got {cfg.p2_text!r}")
    summariser = summariser or GroundedSummariser()
    states = list(states)
    # (1) the user answers the pending question
    pending = [i for i, st in enumerate(states) if st.question is not None]
    if pending and answerer is not None:
        qs = [states[i].question for i in pending]
        answers = answerer.answer([states[i] for i in pending], [q.text for q in qs])
        for i, q, a in zip(pending, qs, answers):
            states[i] = states[i].with_(turns=states[i].turns + (Turn(q.text, a, q.aspect),), question=None)
    # (2) summarise (CoT) and re-rank
    with_turns = [i for i, st in enumerate(states) if st.turns]
    summaries = [""] * len(states)
    if with_turns and cfg.lambda3:
        for i, s in zip(with_turns, summariser.summarise([states[i] for i in with_turns])):
            summaries[i] = s
    scores = rank(states, gallery, cfg, summaries)
    states = [st.with_(scores=scores[i], summary=summaries[i] or st.summary, round=st.round + 1)
              for i, st in enumerate(states)]
    # (3) ask the next question from the new ranking
    if ask and questioner is not None:
        cands = top_candidates(scores, gallery, cfg.k, cfg.beta)
        questions = questioner.ask(states, cands)
        states = [st.with_(question=q) for st, q in zip(states, questions)]
    return states


def ranking(state: DialogState, gallery: Gallery, k: int) -> list[tuple[str, float]]:
    """The top-k (scene id, score) of a dialog, best first."""
    if state.scores is None:
        raise ValueError("the dialog has not been ranked yet: run a round first")
    k = min(k, len(gallery))
    top = np.argsort(-state.scores, kind="stable")[:k]
    return [(gallery.ids[j], float(state.scores[j])) for j in top]


def replay_batch(queries: list[str], histories: list[list[tuple[str, str]]], gallery: Gallery, questioner,
                 cfg: DialogConfig, summariser=None) -> list[DialogState]:
    """Stateless clients' dialogs (query + answered turns) rebuilt round by round, each ending with its next
    question: the same rounds a simulated dialog goes through, so α-mixing matches. Dialogs of different
    lengths share every round they have in common (one encoder batch per round)."""
    if len(queries) != len(histories):
        raise ValueError(f"{len(queries)} queries but {len(histories)} histories")
    states = run_round(start(queries), gallery, None, None, cfg, summariser, ask=False)
    for r in range(max((len(h) for h in histories), default=0)):
        idx = [i for i, h in enumerate(histories) if len(h) > r]
        grown = [states[i].with_(turns=states[i].turns + (Turn(*histories[i][r], None),)) for i in idx]
        for i, st in zip(idx, run_round(grown, gallery, None, None, cfg, summariser, ask=False)):
            states[i] = st
    if questioner is not None and states:
        cands = top_candidates(np.stack([st.scores for st in states]), gallery, cfg.k, cfg.beta)
        states = [st.with_(question=q) for st, q in zip(states, questioner.ask(states, cands))]
    return states


def replay(query: str, history: list[tuple[str, str]], gallery: Gallery, questioner, cfg: DialogConfig,
           summariser=None) -> DialogState:
    """One stateless dialog rebuilt (see `replay_batch`)."""
    return replay_batch([query], [history], gallery, questioner, cfg, summariser)[0]


__all__ = ["rank", "ranking", "replay", "replay_batch", "run_round", "start", "top_candidates"]
