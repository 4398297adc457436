"""`run_round` / `predict` / `replay` on a tiny gallery, with a deterministic retriever plugged in through the
Retriever protocol (bag of hashed words: no training, no model download), the grounded questioner, the simulated
user and the grounded (CoT) summariser. The retriever's formula p̂c = λ1·p̂1(u) + λ2·p̂2(ū) + λ3·p̂3(s) and the
baselines' scorings are recomputed by hand from the gallery's own embeddings."""
import dataclasses
import re
import zlib

import numpy as np
import pytest

from ideal.config import DialogConfig
from ideal.dialog.answerer import GroundedAnswerWriter, SimulatedAnswerer
from ideal.dialog.build import build_summariser
from ideal.dialog.methods import ABLATIONS, METHODS, method_config
from ideal.dialog.questioner import GroundedQuestioner
from ideal.dialog.round import (ask_next, predict, ranking, replay, replay_batch, route_next, run_round, start,
                                top_candidates)
from ideal.dialog.summary import one_step, responses
from ideal.dialog.types import DONT_KNOW, Q1, Q2, DialogState, Question, Turn, is_unknown
from ideal.retrieval.gallery import Gallery
from ideal.retrieval.meb import fuse_responses, gallery_softmax
from ideal.scenes.colors import color_name
from ideal.scenes.memory import build_memory, room_word


class HashedWordsRetriever:
    """Texts and scenes as L2-normalised bags of hashed words; a scene's words are its room type and its objects'
    colours and labels."""

    name = "hashed-words"
    dim = 256

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, np.float32)
        for w in re.findall(r"[a-z]+", text.lower()):
            v[zlib.crc32(w.encode()) % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode_text(self, texts):
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def encode_scenes(self, scenes):
        return np.stack([self._vec(" ".join([room_word(s.scene_type)] + [
            f"{color_name(o.color_rgb)} {o.label}" for o in s.furniture()])) for s in scenes])

    def score(self, text_emb, scene_emb):
        return np.asarray(text_emb, np.float32) @ np.asarray(scene_emb, np.float32).T


from .rooms import room  # noqa: E402


def chair(colour, at=(2.5, 2.5)):
    return ("chair", (at[0], at[1], 0), (at[0] + 0.5, at[1] + 0.5, 0.9), colour)


SCENES = [
    room("scene0000_00", "Bedroom / Hotel", [("bed", (0.1, 1, 0), (1.7, 3, 0.5), "white"), chair("brown")]),
    room("scene0001_00", "Bedroom / Hotel", [("bed", (0.1, 1, 0), (1.7, 3, 0.5), "white"), chair("blue")]),
    room("scene0002_00", "Kitchen", [("table", (2, 2, 0), (3.2, 3, 0.75), "black"), chair("brown", (3.5, 3.5))]),
    room("scene0003_00", "Office", [("desk", (2, 0.1, 0), (3.4, 0.8, 0.75), "brown"), chair("black", (2.5, 1.2))]),
    room("scene0004_00", "Living room / Lounge", [("couch", (0.1, 1, 0), (0.9, 3, 0.8), "gray"),
                                                  ("lamp", (4.2, 4.2, 0), (4.6, 4.6, 1.5), "yellow")]),
    room("scene0005_00", "Bedroom / Hotel", [("bed", (0.1, 1, 0), (1.7, 3, 0.5), "brown"),
                                             ("lamp", (4.2, 4.2, 0), (4.6, 4.6, 1.5), "red")]),
]
QUERIES = ["the brown chair in the bedroom", "a lamp in a room"]
TARGETS = ["scene0000_00", "scene0005_00"]
CFG = DialogConfig(k=4)
# the router with β below any entropy: every routed type is Q1 except where force_q2_after steps in
PROBING = dataclasses.replace(CFG, beta=-1.0)


@pytest.fixture(scope="module")
def gallery():
    return Gallery(HashedWordsRetriever(), SCENES)


@pytest.fixture(scope="module")
def questioner(gallery):
    return GroundedQuestioner(gallery.knowledge)


@pytest.fixture(scope="module")
def user():
    return SimulatedAnswerer(GroundedAnswerWriter(embed=None), {s.scene_id: build_memory(s, []) for s in SCENES}, "fine")


def simulate(gallery, questioner, user, cfg, rounds, queries=QUERIES, targets=TARGETS):
    """The states after rounds 0..rounds (the last round asks nothing)."""
    summariser = build_summariser(cfg, gallery)
    states = start(queries, targets)
    history = []
    for r in range(rounds + 1):
        states = run_round(states, gallery, questioner, user, cfg, summariser, ask=r < rounds)
        history.append(states)
    return history


# ------------------------------------------------------------------------------------------------ by hand

def E(gallery, text: str) -> np.ndarray:
    """A text's feature u = f(text): the text whole, as the retriever was trained."""
    return gallery.embed_composed([[text.strip()]])[0]


def p_hat(gallery, cfg, u) -> np.ndarray:
    """Eq. 3: softmax over the whole gallery of S(u, v)/T."""
    return gallery_softmax(gallery.score_embeddings(np.atleast_2d(u)), cfg.temperature)[0]


def ideal_by_hand(gallery, cfg, st: DialogState, summary: str) -> np.ndarray:
    """λ1·p̂1(u) + λ2·p̂2(ū) + λ3·p̂3(s), written out."""
    u = E(gallery, st.query)
    said = [t for t in st.turns if not is_unknown(t.answer)]
    resp = np.stack([E(gallery, t.answer) for t in said]) if said else np.zeros((0, u.shape[0]), np.float32)
    u_bar = fuse_responses(u, resp, [t.kind == Q1 for t in said], cfg.alpha, cfg.shell)
    s = E(gallery, summary or st.query)
    return (cfg.lambda1 * p_hat(gallery, cfg, u) + cfg.lambda2 * p_hat(gallery, cfg, u_bar)
            + cfg.lambda3 * p_hat(gallery, cfg, s))


# ------------------------------------------------------------------------------------------------ start

def test_start():
    states = start(["a chair", "a bed"], ["s0", "s1"], ["d0", "d1"])
    assert [s.round for s in states] == [-1, -1]
    assert [(s.query, s.target, s.dialog_id) for s in states] == [("a chair", "s0", "d0"), ("a bed", "s1", "d1")]
    assert all(s.scores is None and s.turns == () and s.question is None and s.next_kind is None for s in states)
    assert [s.dialog_id for s in start(["a", "b"])] == ["0", "1"]


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_start_rejects_empty_queries(bad):
    with pytest.raises(ValueError, match="query 1 is empty"):
        start(["a chair", bad])


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
def test_every_method_and_ablation_runs_a_dialog(gallery, questioner, user, name):
    cfg = method_config(name, CFG)
    # p̂c sums to λ1 + λ2 + λ3 (a view left out is not made up for; the ranking does not care); baselines to 1
    total = cfg.lambda1 + cfg.lambda2 + cfg.lambda3 if cfg.scoring == "ideal" else 1.0
    for states in simulate(gallery, questioner, user, cfg, rounds=2):
        for st in states:
            assert st.scores.shape == (len(SCENES),) and st.scores.sum() == pytest.approx(total, abs=1e-5)


# ------------------------------------------------------------------------------------------------ routing

@pytest.mark.parametrize("route,kind", [("q1", Q1), ("q2", Q2)])
def test_a_forced_route_fixes_every_question_type(gallery, questioner, user, route, kind):
    history = simulate(gallery, questioner, user, dataclasses.replace(CFG, route=route), rounds=4)
    for states in history[:-1]:
        assert [st.next_kind for st in states] == [kind] * len(states)
        assert [st.question.kind for st in states] == [kind] * len(states)
    assert all(t.kind == kind for st in history[-1] for t in st.turns)


def test_the_router_asks_q1_in_round_zero(gallery, questioner, user):
    # β above any entropy: after round 0 every routed type is Q2, but round 0 is a detail probe
    cfg = dataclasses.replace(CFG, beta=1e9)
    history = simulate(gallery, questioner, user, cfg, rounds=3)
    assert all(st.next_kind == Q1 and st.question.kind == Q1 for st in history[0])
    assert all(st.next_kind == Q2 for states in history[1:-1] for st in states)


@pytest.mark.parametrize("force,want", [(2, [Q1, Q1, Q2, Q1, Q1]), (1, [Q1, Q2, Q1, Q2, Q1]), (0, [Q1] * 5)])
def test_force_q2_after_a_run_of_detail_probes(gallery, questioner, user, force, want):
    cfg = dataclasses.replace(PROBING, force_q2_after=force)
    history = simulate(gallery, questioner, user, cfg, rounds=4)
    for i in range(len(QUERIES)):
        assert [states[i].next_kind for states in history[:-1]] == want[:4]


def test_route_next_is_the_router_on_the_last_feature(gallery):
    # one Q1 turn: rule 3 decides on Ẽ of the last response's feature
    st = DialogState("a lamp in a room", turns=(Turn("What colour is the lamp?", "The lamp is red.", Q1),))
    feat = E(gallery, "The lamp is red.")[None]
    from ideal.dialog.router import affinity_entropy
    e = affinity_entropy(gallery.score_embeddings(feat), CFG.router_k, CFG.tau,
                         gallery.density(CFG.density_k, CFG.density_eps))[0]
    assert route_next([st], gallery, dataclasses.replace(CFG, beta=e - 1e-6), feat) == [Q1]
    assert route_next([st], gallery, dataclasses.replace(CFG, beta=e + 1e-6), feat) == [Q2]


@pytest.mark.parametrize("cfg", [CFG, PROBING], ids=["router", "probing"])
def test_each_turn_is_recorded_as_the_routed_type(gallery, questioner, user, cfg):
    # the type a question is asked as is the router's (the Questioner protocol: "of the routed type"); replay
    # recomputes only the router, so a turn typed otherwise would be fused differently there
    history = simulate(gallery, questioner, user, cfg, rounds=5)
    for before, after in zip(history, history[1:]):
        for b, a in zip(before, after):
            assert a.turns[-1].kind == b.question.kind == b.next_kind, (a.query, a.turns[-1])


# ------------------------------------------------------------------------------------------------ the loop

def test_a_round_that_asks_nothing_leaves_no_type_pending(gallery, questioner, user):
    # ask=False: neither routed nor asked; the type of the question just answered must not linger as `next_kind`
    *_, last = simulate(gallery, questioner, user, CFG, rounds=1)
    assert [(st.question, st.next_kind) for st in last] == [(None, None)] * len(last)


def test_round_counter_and_pending_question(gallery, questioner, user):
    history = simulate(gallery, questioner, user, CFG, rounds=3)
    for r, states in enumerate(history):
        for st in states:
            assert st.round == r
            assert len(st.turns) == r
            assert (st.question is None) == (r == 3)  # ask=False in the last round
    for before, after in zip(history, history[1:]):
        for b, a in zip(before, after):
            # the question asked after round r is the turn answered in round r + 1
            t = a.turns[-1]
            assert isinstance(b.question, Question)
            assert (t.question, t.kind, t.aspect) == (b.question.text, b.question.kind, b.question.aspect)
            assert a.turns[:-1] == b.turns
            # ... answered by the simulated user from the target's memory
            assert t.answer == user.answer([b], [b.question.text])[0]


def test_questions_do_not_repeat_across_rounds(gallery, questioner, user):
    history = simulate(gallery, questioner, user, CFG, rounds=4)
    for st in history[-1]:
        aspects = [t.aspect for t in st.turns]
        assert len(set(aspects)) == len(aspects), aspects


def test_a_batch_equals_its_dialogs_run_alone(gallery, questioner, user):
    together = simulate(gallery, questioner, user, CFG, rounds=3)[-1]
    for i, (q, t) in enumerate(zip(QUERIES, TARGETS)):
        # alone, the dialog id differs ("0"), and it seeds the simulated user's shuffling: use the same id
        states = start([q], [t], [str(i)])
        summariser = build_summariser(CFG, gallery)
        for r in range(4):
            states = run_round(states, gallery, questioner, user, CFG, summariser, ask=r < 3)
        (alone,) = states
        assert (alone.turns, alone.summary) == (together[i].turns, together[i].summary)
        np.testing.assert_allclose(alone.scores, together[i].scores, atol=1e-6)


def test_real_user_turns_appended_by_the_caller(gallery, questioner):
    # answerer=None: the caller has already put the real user's answer into the dialog
    summariser = build_summariser(CFG, gallery)
    (st,) = run_round(start(["the brown chair in the bedroom"]), gallery, questioner, None, CFG, summariser)
    q = st.question
    st = st.with_(turns=(Turn(q.text, "The chair is brown. There is a white bed.", q.kind, q.aspect),), question=None)
    (st,) = run_round([st], gallery, questioner, None, CFG, summariser)
    assert st.round == 1 and len(st.turns) == 1 and st.question is not None
    assert st.summary == summariser.summarise([st])[0]
    np.testing.assert_allclose(st.scores, ideal_by_hand(gallery, CFG, st, st.summary), atol=1e-6)


# ------------------------------------------------------------------------------------------------ replay (HTTP)

@pytest.mark.parametrize("cfg", [CFG, dataclasses.replace(CFG, route="q2"), PROBING], ids=["router", "q2", "probing"])
def test_replay_equals_the_simulated_rounds(gallery, questioner, user, cfg):
    summariser = build_summariser(cfg, gallery)
    history = simulate(gallery, questioner, user, cfg, rounds=5)
    for r in range(0, 6):
        # a client holding r answered (question, answer) pairs: no types, no aspects
        hs = [[(t.question, t.answer) for t in st.turns] for st in history[r]]
        got = replay_batch(QUERIES, hs, gallery, questioner if r < 5 else None, cfg, summariser)
        for st, g in zip(history[r], got):
            assert g.round == r and [t.kind for t in g.turns] == [t.kind for t in st.turns]
            assert g.summary == st.summary
            np.testing.assert_allclose(g.scores, st.scores, atol=1e-6)
            if r < 5:  # the simulation's last round asks nothing, so routes nothing
                assert g.next_kind == st.next_kind
            # the questioner reads the aspects back from plain text and asks what the simulation asked
            assert g.question == st.question


def test_replay_batch_of_mixed_lengths_equals_one_by_one(gallery, questioner, user):
    summariser = build_summariser(CFG, gallery)
    history = simulate(gallery, questioner, user, CFG, rounds=3)
    # dialog i holds i answered turns (0..3): rounds are shared only where the dialogs overlap
    qs = [QUERIES[i % len(QUERIES)] for i in range(4)]
    hs = [[(t.question, t.answer) for t in history[i][i % len(QUERIES)].turns] for i in range(4)]
    batch = replay_batch(qs, hs, gallery, questioner, CFG, summariser)
    for q, h, got in zip(qs, hs, batch):
        alone = replay(q, h, gallery, questioner, CFG, summariser)
        assert got.round == len(h) == alone.round and got.question == alone.question and got.turns == alone.turns
        np.testing.assert_allclose(got.scores, alone.scores, atol=1e-6)
    with pytest.raises(ValueError, match="2 queries but 1 histories"):
        replay_batch(qs[:2], hs[:1], gallery, questioner, CFG)


def test_replay_without_history_is_the_static_ranking(gallery, questioner):
    st = replay("a lamp in a room", [], gallery, None, CFG)
    assert st.round == 0 and st.question is None and st.next_kind == Q1
    np.testing.assert_allclose(st.scores, p_hat(gallery, CFG, E(gallery, "a lamp in a room")), atol=1e-6)
    with_q = replay("a lamp in a room", [], gallery, questioner, CFG)
    assert with_q.question is not None and with_q.question.kind == Q1
    assert with_q.question.aspect in questioner.knowledge.aspects


def test_ask_next_asks_the_routed_type(gallery, questioner):
    states = replay_batch(QUERIES, [[], []], gallery, None, CFG)
    asked = ask_next([st.with_(next_kind=Q2) for st in states], gallery, questioner, CFG)
    assert [st.question.kind for st in asked] == [Q2, Q2]
    want = questioner.ask(states, [Q2, Q2], top_candidates(np.stack([st.scores for st in states]), gallery, CFG.k))
    assert [st.question for st in asked] == want


# ------------------------------------------------------------------------------------------------ candidates, ranking

def test_top_candidates(gallery):
    scores = np.array([[0.1, 0.5, 0.3, 0.0, 0.2, 0.4]], np.float32)
    (cands,) = top_candidates(scores, gallery, k=3)
    assert [c.scene_id for c in cands] == ["scene0001_00", "scene0005_00", "scene0002_00"]
    # each one's share of p̂c among the three: 0.5, 0.4, 0.3 over 1.2
    np.testing.assert_allclose([c.weight for c in cands], [0.5 / 1.2, 0.4 / 1.2, 0.3 / 1.2], rtol=1e-6)
    assert cands[0].summary == gallery.knowledge.summaries[1]
    (every,) = top_candidates(scores, gallery, k=100)
    assert len(every) == len(SCENES) and every[0].scene_id == "scene0001_00" and every[-1].scene_id == "scene0003_00"
    assert sum(c.weight for c in every) == pytest.approx(1.0)
    assert top_candidates(np.vstack([scores, scores]), gallery, k=0) == [[], []]


def test_ranking(gallery):
    st = DialogState("q", scores=np.array([0.1, 0.5, 0.3, 0.0, 0.2, 0.4], np.float32), round=0)
    assert [sid for sid, _ in ranking(st, gallery, 2)] == ["scene0001_00", "scene0005_00"]
    assert ranking(st, gallery, 2)[0][1] == pytest.approx(0.5)
    assert len(ranking(st, gallery, 50)) == len(SCENES)
    with pytest.raises(ValueError, match="not been ranked"):
        ranking(DialogState("q"), gallery, 3)
