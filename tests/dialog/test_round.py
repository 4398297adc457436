"""`run_round` / `replay` as a dialog loop on a tiny gallery (see rounds.py): the round counter and the pending
question, routing, a batch against its dialogs run alone, replay against the simulation, candidates and ranking."""
import dataclasses

import numpy as np
import pytest

from ideal.dialog.build import build_summariser
from ideal.dialog.round import (ask_next, ranking, replay, replay_batch, route_next, run_round, start,
                                top_candidates)
from ideal.dialog.types import Q1, Q2, DialogState, Question, Turn

from .rounds import CFG, PROBING, QUERIES, SCENES, TARGETS, E, ideal_by_hand, p_hat, simulate


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
