"""One round of Interactive Retrieval Refinement (paper §3.2), as one function over a batch of dialogs.

    states = start(queries)                                         # round -1: nothing ranked yet
    states = run_round(states, gallery, questioner, answerer, cfg)  # round 0: rank on u, ask question 1
    states = run_round(states, gallery, questioner, answerer, cfg)  # round 1: answer, re-rank, ask again ...

A round: (1) the pending question is answered (by the simulated `answerer`; with `answerer=None` the caller
has already appended the real user's turn); (2) the retriever predicts p̂c = λ1·p̂1(u) + λ2·p̂2(ū) + λ3·p̂3(s)
over the gallery from the dialog alone (nothing is carried over from the previous round's scores); (3) the
router reads the last round's text feature and picks the next question's type, Q1 (detail probe) or Q2
(diverge exploration), and the questioner writes it. The eval job, the Serve app and notebooks all call this.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..config import DialogConfig
from ..retrieval.fusion import fuse
from ..retrieval.gallery import Gallery
from ..retrieval.meb import fuse_responses, fusion_coefficients, gallery_softmax
from .router import affinity_entropy, route
from .summary import answers_segments, dialog_segments
from .types import Q1, Q2, Candidate, DialogState, Turn, is_unknown

SCORINGS = ("ideal", "dialog", "answers", "refine", "rerank")
FUSIONS = ("feature", "score")


def start(queries: list[str], targets: Optional[list[str]] = None, dialog_ids: Optional[list[str]] = None
          ) -> list[DialogState]:
    """Fresh dialogs (round -1). `targets` only for simulated users."""
    for i, q in enumerate(queries):
        if not isinstance(q, str) or not q.strip():
            raise ValueError(f"query {i} is empty")
    targets = targets or [None] * len(queries)
    dialog_ids = dialog_ids or [str(i) for i in range(len(queries))]
    return [DialogState(query=q, target=t, dialog_id=d) for q, t, d in zip(queries, targets, dialog_ids)]


def best(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k largest scores of each row, best first (ties in gallery order)."""
    k = min(k, scores.shape[1])
    if k <= 0:
        return np.zeros((len(scores), 0), np.int64)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else np.tile(
        np.arange(scores.shape[1]), (len(scores), 1))
    order = np.lexsort((part, -np.take_along_axis(scores, part, axis=1)), axis=1)
    return np.take_along_axis(part, order, axis=1)


def candidates(top: list[tuple[str, float]], knowledge, k: int) -> list[Candidate]:
    """The k best scenes of one ranking ((scene id, p̂c) pairs, best first), weighted by their share of p̂c
    among the k, with what the system reads off their 3D data (`knowledge`: a SceneKnowledge)."""
    top = list(top)[:max(k, 0)]
    total = sum(max(float(s), 0.0) for _, s in top)
    return [Candidate(sid, max(float(s), 0.0) / total if total > 0 else 1.0 / len(top),
                      knowledge.summaries[knowledge.row[sid]]) for sid, s in top]


def top_candidates(scores: np.ndarray, gallery: Gallery, k: int) -> list[list[Candidate]]:
    """The k best scenes of each dialog's p̂c (see `candidates`; k = 0: none, a dialog-only questioner)."""
    if k <= 0:
        return [[] for _ in range(len(scores))]
    return [candidates([(gallery.ids[j], float(row[j])) for j in cols], gallery.knowledge, k)
            for row, cols in zip(scores, best(scores, k))]


def compact(states: list[DialogState], gallery: Gallery, k: int) -> list[DialogState]:
    """Ranked dialogs with `scores` replaced by their top-k (scene id, score) pairs: a few hundred bytes to
    send on instead of one float per scene."""
    if not states:
        return []
    scores = np.stack([st.scores for st in states])
    return [st.with_(scores=None, top=tuple((gallery.ids[j], float(row[j])) for j in cols))
            for st, row, cols in zip(states, scores, best(scores, k))]


def _embed(gallery: Gallery, texts: list[list[str]], cfg: DialogConfig) -> np.ndarray:
    """Embeddings of texts given as sentence lists (composed, or joined and encoded whole)."""
    if not texts:
        return np.zeros((0, gallery.embeddings.shape[1]), np.float32)
    if cfg.compose:
        return gallery.embed_composed(texts)
    return gallery.embed([" ".join(t) for t in texts])


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.clip(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12, None)


def _score_fusion(gallery: Gallery, cols, said, at, u0, resp, sims_u, sims_r, cfg: DialogConfig) -> np.ndarray:
    """S(ū, v) per dialog as (c₀·S(u, v) + Σ_j c_j·S(u^j, v)) / |c₀·u + Σ_j c_j·u^j| (`meb.fusion_coefficients`).
    With an approximate index a dialog's candidates are those of any of its texts, each scored exactly."""
    out = np.empty_like(sims_u)
    for i in range(len(u0)):
        coef, norm = fusion_coefficients(u0[i], resp[at[i]:at[i + 1]], [k == Q1 for k, _ in said[i]], cfg.alpha,
                                         cfg.shell)
        rows = np.vstack([sims_u[i:i + 1], sims_r[at[i]:at[i + 1]]])
        known = np.isfinite(rows).any(axis=0)
        if cols is not None:
            rows = gallery.exact_scores(np.vstack([u0[i:i + 1], resp[at[i]:at[i + 1]]]), cols)
        fused = (coef[:, None] * rows.astype(np.float64)).sum(axis=0) / max(norm, 1e-12)
        out[i] = np.where(known, fused, -np.inf)
    return out


def predict(states: list[DialogState], gallery: Gallery, cfg: DialogConfig, summaries: list[str]
            ) -> tuple[np.ndarray, np.ndarray]:
    """(p̂c (B, S), the text feature the router reads (B, d)) of each dialog after its turns so far.

    scoring "ideal" is the paper's retriever; the others are the baselines' (see ideal.dialog.methods)."""
    if cfg.scoring not in SCORINGS:
        raise ValueError(f"dialog.scoring must be one of {SCORINGS}, got {cfg.scoring!r}")
    if cfg.fusion not in FUSIONS:
        raise ValueError(f"dialog.fusion must be one of {FUSIONS}, got {cfg.fusion!r}")
    p = lambda emb: gallery_softmax(gallery.score_embeddings(emb), cfg.temperature)  # noqa: E731  (Eq. 3)
    # texts are encoded whole (as the retriever was trained); a dialog's turns are composed (SegmentEncoder)
    u0 = _embed(gallery, [[st.query.strip()] for st in states], cfg)  # u: the initial query
    # each informative response's feature u^j (an "I don't know" carries nothing to fuse)
    said = [[(t.kind, t.answer) for t in st.turns if not is_unknown(t.answer)] for st in states]
    flat = [[a.strip()] for turns in said for _, a in turns]
    resp = _embed(gallery, flat, cfg)
    at = np.cumsum([0] + [len(t) for t in said])
    last = np.array([resp[at[i + 1] - 1] if said[i] and not is_unknown(st.turns[-1].answer) else u0[i]
                     for i, st in enumerate(states)], np.float32).reshape(len(states), -1)
    if cfg.scoring == "ideal":
        u_bar = np.stack([fuse_responses(u0[i], resp[at[i]:at[i + 1]], [k == Q1 for k, _ in said[i]], cfg.alpha,
                                         cfg.shell) for i in range(len(states))]) if states else u0
        lambdas = (cfg.lambda1, cfg.lambda2, cfg.lambda3)
        by_score = cfg.lambda2 and cfg.fusion == "score" and gallery.late_interaction
        embs = [u0 if cfg.lambda1 or by_score else None, u_bar if cfg.lambda2 and not by_score else None, None]
        if cfg.lambda3:  # p̂3: the CoT reconstruction s (the query alone before any answer)
            embs[2] = _embed(gallery, [[(s or st.query).strip()] for s, st in zip(summaries, states)], cfg)
        if by_score:
            embs.append(resp)
        # the views over the columns that can be non-zero (every scene, or an index's candidates)
        cols, sims = gallery.candidate_scores([e for e in embs if e is not None])
        sims = iter(sims)
        sims = [None if e is None else next(sims) for e in embs]
        if by_score:  # p̂2 from ū's coefficients applied to u's and each response's own scores
            sims[1] = _score_fusion(gallery, cols[0], said, at, u0, resp, sims[0], sims[3], cfg)
        views = [None if x is None else gallery_softmax(x, cfg.temperature) for x in sims[:3]]
        scores = fuse(views[0] if cfg.lambda1 else None, *views[1:], lambdas)
        if cols and cols[0] is not None:
            dense = np.zeros((len(states), len(gallery)), np.float32)
            dense[:, cols[0]] = scores
            scores = dense
        router_feat = np.where([[bool(st.turns) and is_unknown(st.turns[-1].answer)] for st in states],
                               u_bar, last) if states else last
        return scores, router_feat
    if cfg.scoring == "dialog":  # ChatIR: the whole dialog, questions included
        emb = _embed(gallery, [dialog_segments(st) for st in states], cfg)
        return p(emb), emb
    if cfg.scoring == "answers":  # SUM: query and answers merged into one description
        emb = _embed(gallery, [answers_segments(st) for st in states], cfg)
        return p(emb), emb
    if cfg.scoring == "refine":  # MERLIN: the embedding moves towards each answer, round by round
        emb = u0.copy()
        for i in range(len(states)):
            for r in resp[at[i]:at[i + 1]]:
                emb[i] = _normalise(emb[i] + r)
        return p(emb), emb
    # rerank (IR): the ranking is re-weighted by each round's response, p ∝ p̂(u)·Π_j p̂(u^j)
    log_p = np.log(np.clip(p(u0), 1e-30, None)).astype(np.float64)
    if len(resp):
        log_r = np.log(np.clip(p(resp), 1e-30, None))
        for i in range(len(states)):
            log_p[i] += log_r[at[i]:at[i + 1]].sum(axis=0)
    log_p -= log_p.max(axis=1, keepdims=True)
    scores = np.exp(log_p)
    return (scores / scores.sum(axis=1, keepdims=True)).astype(np.float32), last


def route_next(states: list[DialogState], gallery: Gallery, cfg: DialogConfig, feats: np.ndarray) -> list[str]:
    """The next question's type per dialog: the router on the density-compensated affinity entropy of the
    last round's text feature, or forced (cfg.route "q1" = w/o Q2, "q2" = w/o Q1)."""
    if cfg.route == "q1":
        return [Q1] * len(states)
    if cfg.route == "q2":
        return [Q2] * len(states)
    if cfg.route != "router":
        raise ValueError(f"dialog.route must be 'router', 'q1' or 'q2', got {cfg.route!r}")
    if not states:
        return []
    (cols,), (sims,) = gallery.candidate_scores([feats])
    density = gallery.density(cfg.density_k, cfg.density_eps)
    entropy = affinity_entropy(sims, cfg.router_k, cfg.tau, density if cols is None else density[cols])
    return route(entropy, cfg.beta, [st.kinds for st in states], cfg.force_q2_after)


def run_round(states: list[DialogState], gallery: Gallery, questioner, answerer, cfg: DialogConfig,
              summariser=None, ask: bool = True) -> list[DialogState]:
    """Advance every dialog by one round (see the module docstring). Pure: returns new states."""
    states = list(states)
    # (1) the user answers the pending question
    pending = [i for i, st in enumerate(states) if st.question is not None]
    if pending and answerer is not None:
        qs = [states[i].question for i in pending]
        answers = answerer.answer([states[i] for i in pending], [q.text for q in qs])
        for i, q, a in zip(pending, qs, answers):
            states[i] = states[i].with_(turns=states[i].turns + (Turn(q.text, a, q.kind, q.aspect),), question=None,
                                        next_kind=None)
    # (2) reconstruct s (CoT) and predict p̂c
    summaries = [""] * len(states)
    with_turns = [i for i, st in enumerate(states) if st.turns]
    if with_turns and summariser is not None and cfg.scoring == "ideal" and cfg.lambda3:
        for i, s in zip(with_turns, summariser.summarise([states[i] for i in with_turns])):
            summaries[i] = s
    scores, feats = predict(states, gallery, cfg, summaries)
    states = [st.with_(scores=scores[i], summary=summaries[i], round=st.round + 1) for i, st in enumerate(states)]
    # (3) route, and ask the next question (with no questioner: only route, e.g. in a Retriever replica)
    if ask and states:
        kinds = route_next(states, gallery, cfg, feats)
        states = [st.with_(next_kind=kind) for st, kind in zip(states, kinds)]
        if questioner is not None:
            questions = questioner.ask(states, kinds, top_candidates(scores, gallery, cfg.k))
            states = [st.with_(question=q) for st, q in zip(states, questions)]
    return states


def ranking(state: DialogState, gallery: Gallery, k: int) -> list[tuple[str, float]]:
    """The top-k (scene id, score) of a dialog, best first."""
    if state.scores is None:
        if state.top:
            return list(state.top[:k])
        raise ValueError("the dialog has not been ranked yet: run a round first")
    return [(gallery.ids[j], float(state.scores[j])) for j in best(state.scores[None], k)[0]]


def replay_batch(queries: list[str], histories: list[list[tuple[str, str]]], gallery: Gallery, questioner,
                 cfg: DialogConfig, summariser=None) -> list[DialogState]:
    """Stateless clients' dialogs (query + answered turns) rebuilt round by round, each ending ranked and
    routed (`next_kind`), with its next question when a questioner is given. Each turn gets the type the
    router chose at its round, so the fusion treats it as a simulated dialog would. Dialogs of different
    lengths share every round they have in common (one encoder batch per round)."""
    if len(queries) != len(histories):
        raise ValueError(f"{len(queries)} queries but {len(histories)} histories")
    states = run_round(start(queries), gallery, None, None, cfg, summariser)
    for r in range(max((len(h) for h in histories), default=0)):
        idx = [i for i, h in enumerate(histories) if len(h) > r]
        grown = [states[i].with_(turns=states[i].turns + (Turn(*histories[i][r], states[i].next_kind),),
                                 next_kind=None) for i in idx]
        for i, st in zip(idx, run_round(grown, gallery, None, None, cfg, summariser)):
            states[i] = st
    if questioner is not None and states:
        return ask_next(states, gallery, questioner, cfg)
    return states


def ask_next(states: list[DialogState], gallery, questioner, cfg: DialogConfig) -> list[DialogState]:
    """Ranked, routed dialogs (full `scores`, or `top` pairs of at least cfg.k scenes) with their next question
    written (`gallery` needs `ids` and `knowledge` only: a Gallery or a Catalog)."""
    if all(st.scores is not None for st in states):
        cands = top_candidates(np.stack([st.scores for st in states]), gallery, cfg.k)
    else:
        cands = [candidates(st.top, gallery.knowledge, cfg.k) for st in states]
    kinds = [st.next_kind or Q1 for st in states]
    return [st.with_(question=q) for st, q in zip(states, questioner.ask(states, kinds, cands))]


def replay(query: str, history: list[tuple[str, str]], gallery: Gallery, questioner, cfg: DialogConfig,
           summariser=None) -> DialogState:
    """One stateless dialog rebuilt (see `replay_batch`)."""
    return replay_batch([query], [history], gallery, questioner, cfg, summariser)[0]


__all__ = ["ask_next", "best", "candidates", "compact", "predict", "ranking", "replay", "replay_batch", "route_next", "run_round", "start", "top_candidates"]
