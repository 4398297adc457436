"""How `run_round` / `predict` score the gallery: IDeal's p̂c = λ1·p̂1(u) + λ2·p̂2(ū) + λ3·p̂3(s), and the
baselines' scorings, each recomputed by hand from the gallery's own embeddings (see rounds.py)."""
import dataclasses

import numpy as np
import pytest

from ideal.dialog.build import build_summariser
from ideal.dialog.methods import ABLATIONS, METHODS, method_config
from ideal.dialog.round import predict, ranking, run_round, start
from ideal.dialog.summary import one_step, responses
from ideal.dialog.types import DONT_KNOW, Q1, Q2, DialogState, Turn, is_unknown
from ideal.retrieval.meb import fuse_responses, gallery_softmax

from .rounds import CFG, SCENES, E, ideal_by_hand, p_hat, simulate


# ------------------------------------------------------------------------------------------------ the retriever

def test_round_zero_is_the_softmax_of_the_query(gallery):
    (st,) = run_round(start(["the brown chair in the bedroom"]), gallery, None, None, CFG, ask=False)
    assert st.round == 0 and st.question is None and st.turns == () and st.summary == ""
    # before any answer ū = u and s = the query: the three views coincide and λ1 + λ2 + λ3 = 1
    want = gallery_softmax(gallery.scores(["the brown chair in the bedroom"]), CFG.temperature)[0]
    np.testing.assert_allclose(st.scores, want, atol=1e-6)
    # the retriever is cosine over bags of words: the brown-chair bedroom shares the most words
    assert ranking(st, gallery, 1)[0][0] == "scene0000_00"


@pytest.mark.parametrize("lambdas", [(0.2, 0.4, 0.4), (0.6, 0.3, 0.1), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)])
def test_scores_are_the_three_views_weighted(gallery, questioner, user, lambdas):
    cfg = dataclasses.replace(CFG, lambda1=lambdas[0], lambda2=lambdas[1], lambda3=lambdas[2])
    summariser = build_summariser(cfg, gallery)
    history = simulate(gallery, questioner, user, cfg, rounds=3)
    for states in history:
        for st in states:
            want_summary = summariser.summarise([st])[0] if st.turns and cfg.lambda3 else ""
            assert st.summary == want_summary
            np.testing.assert_allclose(st.scores, ideal_by_hand(gallery, cfg, st, st.summary), atol=1e-6)
            assert st.scores.sum() == pytest.approx(1.0, abs=1e-5)  # λs sum to 1: a distribution over scenes
    # the dialogs do hold informative Q1 and Q2 responses, so ū is more than u
    kinds = {(t.kind, is_unknown(t.answer)) for st in history[-1] for t in st.turns}
    assert {(Q1, False), (Q2, False)} <= kinds


def test_nothing_is_carried_over_from_the_previous_scores(gallery, questioner, user):
    summariser = build_summariser(CFG, gallery)
    before = simulate(gallery, questioner, user, CFG, rounds=2)[1]
    rng = np.random.default_rng(0)
    garbage = [st.with_(scores=rng.normal(size=len(SCENES)).astype(np.float32), summary="garbage") for st in before]
    clean = run_round(before, gallery, questioner, user, CFG, summariser)
    dirty = run_round(garbage, gallery, questioner, user, CFG, summariser)
    for a, b in zip(clean, dirty):
        np.testing.assert_array_equal(a.scores, b.scores)
        assert (a.turns, a.summary, a.question, a.next_kind) == (b.turns, b.summary, b.question, b.next_kind)


def test_unknown_answers_do_not_enter_u_bar(gallery):
    cfg = dataclasses.replace(CFG, lambda1=0.0, lambda2=1.0, lambda3=0.0)
    red = Turn("What colour is the lamp?", "The lamp is red.", Q1, "color:lamp")
    unknowns = (Turn("Is there a couch in the room?", DONT_KNOW, Q2), Turn("Where is the lamp?", "Not sure.", Q1),
                Turn("What is next to the lamp?", "I do not know.", Q2))
    told = DialogState("a lamp in a room", turns=(red,))
    noisy = DialogState("a lamp in a room", turns=(unknowns[0], red) + unknowns[1:])
    (s_told, s_noisy), _ = predict([told, noisy], gallery, cfg, ["", ""])
    np.testing.assert_array_equal(s_told, s_noisy)
    u_bar = fuse_responses(E(gallery, "a lamp in a room"), E(gallery, "The lamp is red.")[None], [True],
                           cfg.alpha, cfg.shell)
    np.testing.assert_allclose(s_told, p_hat(gallery, cfg, u_bar), atol=1e-6)
    # every answer unknown: ū is u, p̂2 is p̂1
    (only,), _ = predict([DialogState("a lamp in a room", turns=unknowns)], gallery, cfg, [""])
    np.testing.assert_allclose(only, p_hat(gallery, cfg, E(gallery, "a lamp in a room")), atol=1e-6)


def test_without_p3_no_summary_is_written(gallery, questioner, user):
    cfg = dataclasses.replace(CFG, lambda3=0.0)
    *_, last = simulate(gallery, questioner, user, cfg, rounds=1)
    assert all(st.summary == "" for st in last)


def test_bad_scoring_and_route(gallery):
    with pytest.raises(ValueError, match="dialog.scoring must be one of"):
        run_round(start(["a chair"]), gallery, None, None, dataclasses.replace(CFG, scoring="rewrite"))
    with pytest.raises(ValueError, match="dialog.route must be"):
        run_round(start(["a chair"]), gallery, None, None, dataclasses.replace(CFG, route="q3"))


# ------------------------------------------------------------------------------------------------ baselines

DIALOG = DialogState("a lamp in a room", turns=(
    Turn("What colour is the lamp?", "The lamp is red.", Q1, "color:lamp"),
    Turn("Is there a couch in the room?", DONT_KNOW, Q2, "has:couch"),
    Turn("Is there a bed in the room?", "Yes, there is one bed.", Q2, "has:bed")), round=3)


def baseline(gallery, scoring):
    (scores,), _ = predict([DIALOG], gallery, dataclasses.replace(CFG, scoring=scoring), [""])
    assert scores.sum() == pytest.approx(1.0, abs=1e-5)
    return scores


def test_dialog_scoring_is_the_whole_dialog(gallery):  # ChatIR: questions and unknowns included
    emb = gallery.embed_composed([["a lamp in a room", "What colour is the lamp?", "The lamp is red.",
                                   "Is there a couch in the room?", DONT_KNOW, "Is there a bed in the room?",
                                   "Yes, there is one bed."]])
    np.testing.assert_allclose(baseline(gallery, "dialog"), p_hat(gallery, CFG, emb), atol=1e-6)


def test_answers_scoring_is_query_and_informative_answers(gallery):  # SUM
    emb = gallery.embed_composed([["a lamp in a room", "The lamp is red.", "Yes, there is one bed."]])
    np.testing.assert_allclose(baseline(gallery, "answers"), p_hat(gallery, CFG, emb), atol=1e-6)


def test_refine_scoring_moves_the_query_towards_each_answer(gallery):  # MERLIN
    u = E(gallery, "a lamp in a room")
    for answer in ("The lamp is red.", "Yes, there is one bed."):
        u = u + E(gallery, answer)
        u = u / np.linalg.norm(u)
    np.testing.assert_allclose(baseline(gallery, "refine"), p_hat(gallery, CFG, u), atol=1e-6)


def test_rerank_scoring_is_the_product_of_the_rounds(gallery):  # IR: p ∝ p̂(u)·Π_j p̂(u^j)
    p = p_hat(gallery, CFG, E(gallery, "a lamp in a room")).astype(np.float64)
    for answer in ("The lamp is red.", "Yes, there is one bed."):
        p = p * p_hat(gallery, CFG, E(gallery, answer))
    np.testing.assert_allclose(baseline(gallery, "rerank"), p / p.sum(), atol=1e-6)


def test_rewrite_ranks_on_the_one_step_reconstruction_alone(gallery):
    cfg = method_config("rewrite", CFG)
    (st,) = run_round([DIALOG], gallery, None, None, cfg, build_summariser(cfg, gallery), ask=False)
    assert st.summary == one_step(responses(DIALOG)) == "a lamp in a room. The lamp is red. Yes, there is one bed."
    np.testing.assert_allclose(st.scores, p_hat(gallery, cfg, E(gallery, st.summary)), atol=1e-6)


@pytest.mark.parametrize("name", sorted(METHODS) + sorted(ABLATIONS))
def test_every_method_and_ablation_runs_a_dialog(gallery, questioner, user, name, tiny_lm):
    cfg = dataclasses.replace(method_config(name, CFG), llm=str(tiny_lm),
                              llm_engine="transformers")  # for the llm roles of ideal-llm
    # p̂c sums to λ1 + λ2 + λ3 (a view left out is not made up for; the ranking does not care); baselines to 1
    total = cfg.lambda1 + cfg.lambda2 + cfg.lambda3 if cfg.scoring == "ideal" else 1.0
    for states in simulate(gallery, questioner, user, cfg, rounds=2):
        for st in states:
            assert st.scores.shape == (len(SCENES),) and st.scores.sum() == pytest.approx(total, abs=1e-5)


def _indexed(gallery, candidates: int):
    from ideal.retrieval.gallery import Gallery
    from ideal.retrieval.index import SceneIndex

    index = SceneIndex.build(gallery.ids, gallery.embeddings, kind="ivf", nlist=1)
    return Gallery(gallery.retriever, gallery.scenes, embeddings=gallery.embeddings, index=index,
                   candidates=candidates)


def test_an_indexed_gallery_gives_each_view_a_softmax_over_its_own_candidates(gallery, questioner, user):
    """Served from an approximate index, a round scores only the union of its texts' candidates, and p̂c is
    still the formula over the whole gallery with each view's non-candidates at 0."""
    indexed = _indexed(gallery, candidates=1)
    for states in simulate(indexed, questioner, user, CFG, rounds=3):
        for st in states:
            np.testing.assert_allclose(st.scores, ideal_by_hand(indexed, CFG, st, st.summary), atol=1e-6)
            nonzero = int((st.scores > 0).sum())
            assert nonzero in (1, 2, 3), nonzero  # each of the three views' one candidate
            assert st.scores.sum() == pytest.approx(1.0, abs=1e-5)


def test_an_indexed_gallery_routes_on_the_candidates_entropy(gallery):
    from ideal.dialog.round import route_next
    from ideal.dialog.router import affinity_entropy, route

    indexed = _indexed(gallery, candidates=3)
    cfg = dataclasses.replace(CFG, router_k=3)
    feats = np.random.default_rng(0).normal(size=(8, gallery.embeddings.shape[1])).astype(np.float32)
    asked = (Q2,)  # one question asked: the type is the router's (rule 3)
    states = [DialogState(query="q", turns=(Turn("Is there a lamp?", "Yes.", Q2),)) for _ in feats]
    entropy = affinity_entropy(indexed.score_embeddings(feats), cfg.router_k, cfg.tau,
                               indexed.density(cfg.density_k, cfg.density_eps))
    assert len(set(np.round(entropy, 6))) > 1
    cfg = dataclasses.replace(cfg, beta=float(np.median(entropy)))
    want = route(entropy, cfg.beta, [asked] * len(feats), cfg.force_q2_after)
    assert route_next(states, indexed, cfg, feats) == want and {Q1, Q2} <= set(want)


# ------------------------------------------------------------------------------------------------ p̂2 by score

def test_score_fusion_is_feature_fusion_on_pooled_scene_vectors(gallery, questioner, user):
    """ū·v = Σ c_i·(u^i·v) / |Σ c_i·u^i| when the score is linear: both fusions give the same p̂c."""
    history = simulate(gallery, questioner, user, CFG, rounds=3)
    states = history[-1]
    assert any(st.turns for st in states)
    by_feature, _ = predict(states, gallery, CFG, ["", ""])
    by_score, _ = predict(states, gallery, dataclasses.replace(CFG, fusion="score"), ["", ""])
    np.testing.assert_allclose(by_score, by_feature, atol=1e-6)
    with pytest.raises(ValueError, match="dialog.fusion must be one of"):
        predict(states, gallery, dataclasses.replace(CFG, fusion="sum"), ["", ""])


def test_score_fusion_on_objects_matches_each_response_to_its_own_best_object():
    """On a late-interaction gallery p̂2 is softmax((c₀·max_o u·o + Σ c_j·max_o u^j·o) / |Σ c_i·u^i| / T), by hand;
    the feature fusion instead scores the blended ū against one object."""
    from ideal.retrieval.gallery import Gallery
    from ideal.retrieval.meb import fusion_coefficients

    from .fakes import HashedObjectsRetriever

    late = Gallery(HashedObjectsRetriever(), SCENES)
    cfg = dataclasses.replace(CFG, lambda1=0.0, lambda2=1.0, lambda3=0.0, fusion="score")
    st = DialogState("a chair in the bedroom", turns=(
        Turn("What colour is the chair?", "The chair is brown.", Q1, "color:chair"),
        Turn("Is there a bed in the room?", DONT_KNOW, Q2, "has:bed"),
        Turn("Is there a bed in the room?", "There is a white bed.", Q2, "has:bed")))
    (got,), _ = predict([st], late, cfg, [""])
    u = E(late, st.query)
    resp = np.stack([E(late, "The chair is brown."), E(late, "There is a white bed.")])
    coef, norm = fusion_coefficients(u, resp, [True, False], cfg.alpha, cfg.shell)
    obj = late.objects
    best = np.array([[(obj.vectors[a:b] @ t).max() for a, b in zip(obj.offsets, obj.offsets[1:])]
                     for t in np.vstack([u, resp])])
    np.testing.assert_allclose(got, gallery_softmax((coef @ best / norm)[None], cfg.temperature)[0], atol=1e-6)
    (feat,), _ = predict([st], late, dataclasses.replace(cfg, fusion="feature"), [""])
    u_bar = fuse_responses(u, resp, [True, False], cfg.alpha, cfg.shell)
    np.testing.assert_allclose(feat, p_hat(late, cfg, u_bar), atol=1e-6)
    assert np.abs(got - feat).max() > 1e-3  # the two differ once a scene's objects answer different responses
    assert ranking(st.with_(scores=got), late, 1)[0][0] == "scene0000_00"  # brown chair + white bed, a bedroom


def test_score_fusion_through_an_object_index():
    """With a flat object index over every scene p̂2 by score is the exact one; with fewer candidates a dialog's
    scenes are its texts' candidates, each scored exactly, and p̂2 is still a distribution over them."""
    from ideal.retrieval.gallery import Gallery
    from ideal.retrieval.index import ObjectIndex

    from .fakes import HashedObjectsRetriever

    exact = Gallery(HashedObjectsRetriever(), SCENES)
    flat = ObjectIndex.build(exact.ids, exact.objects, kind="flat")
    cfg = dataclasses.replace(CFG, fusion="score", lambda1=0.3, lambda2=0.7, lambda3=0.0)
    states = [DIALOG, DialogState("the brown chair in the bedroom", turns=(
        Turn("What is near the chair?", "A white bed is near the chair.", Q1, "near:chair"),), round=1)]
    want, _ = predict(states, exact, cfg, ["", ""])
    every = Gallery(exact.retriever, SCENES, objects=exact.objects, object_index=flat, candidates=len(SCENES))
    np.testing.assert_allclose(predict(states, every, cfg, ["", ""])[0], want, atol=1e-6)
    two = Gallery(exact.retriever, SCENES, objects=exact.objects, object_index=flat, candidates=2)
    got, _ = predict(states, two, cfg, ["", ""])
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    assert ((got > 0).sum(axis=1) < len(SCENES)).all()
