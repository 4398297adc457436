"""`run_round` / `replay` on a tiny gallery, with a deterministic retriever plugged in through the Retriever protocol
(bag of hashed words: no training, no model download) and the grounded questioner and simulated user."""
import dataclasses
import re
import zlib

import numpy as np
import pytest

from ideal.config import DialogConfig
from ideal.dialog.answerer import GroundedAnswerer, SimulatedUser
from ideal.dialog.knowledge import SceneKnowledge
from ideal.dialog.questioner import GroundedQuestioner
from ideal.dialog.round import rank, ranking, replay, replay_batch, run_round, start, top_candidates
from ideal.dialog.summary import ConcatSummariser, GroundedSummariser, concat_dialog, enriched_query
from ideal.dialog.types import DialogState, Question, Turn
from ideal.retrieval.gallery import Gallery
from ideal.retrieval.retriever import Retriever
from ideal.scenes.colors import PALETTE, color_name
from ideal.scenes.memory import build_memory, room_word
from ideal.scenes.types import Scene, SceneObject


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


from .rooms import obj, room  # noqa: E402,F401



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
CFG = DialogConfig(k=4, beta=0.1)


@pytest.fixture(scope="module")
def gallery():
    r = HashedWordsRetriever()
    assert isinstance(r, Retriever)
    return Gallery(r, SCENES)


@pytest.fixture(scope="module")
def questioner():
    return GroundedQuestioner(SceneKnowledge(SCENES))


@pytest.fixture(scope="module")
def user():
    return SimulatedUser(GroundedAnswerer(embed=None), {s.scene_id: build_memory(s, []) for s in SCENES}, "fine")


def simulate(gallery, questioner, user, cfg, rounds, queries=QUERIES, targets=TARGETS):
    states = start(queries, targets)
    history = []
    for r in range(rounds + 1):
        states = run_round(states, gallery, questioner, user, cfg, ask=r < rounds)
        history.append(states)
    return history


# ------------------------------------------------------------------------------------------------ start

def test_start():
    states = start(["a chair", "a bed"], ["s0", "s1"], ["d0", "d1"])
    assert [s.round for s in states] == [-1, -1]
    assert [(s.query, s.target, s.dialog_id) for s in states] == [("a chair", "s0", "d0"), ("a bed", "s1", "d1")]
    assert all(s.scores is None and s.turns == () and s.question is None for s in states)
    assert [s.dialog_id for s in start(["a", "b"])] == ["0", "1"]


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_start_rejects_empty_queries(bad):
    with pytest.raises(ValueError, match="query 1 is empty"):
        start(["a chair", bad])


# ------------------------------------------------------------------------------------------------ rounds

def test_static_round_is_the_gallery_scores_of_the_query(gallery):
    (st,) = run_round(start(["the brown chair in the bedroom"]), gallery, None, None, CFG, ask=False)
    assert st.round == 0 and st.question is None and st.turns == ()
    np.testing.assert_array_equal(st.scores, gallery.scores(["the brown chair in the bedroom"])[0])
    # the retriever is cosine over bags of words: the brown-chair bedroom shares the most words
    assert ranking(st, gallery, 1)[0][0] == "scene0000_00"


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
            assert (t.question, t.aspect) == (b.question.text, b.question.aspect)
            assert a.turns[:-1] == b.turns
            # ... answered by the simulated user from the target's memory
            assert t.answer == user.answer([b], [b.question.text])[0]


def test_questions_do_not_repeat_across_rounds(gallery, questioner, user):
    history = simulate(gallery, questioner, user, CFG, rounds=4)
    for st in history[-1]:
        aspects = [t.aspect for t in st.turns]
        assert len(set(aspects)) == len(aspects), aspects


def manual_round(gallery, cfg, st_before_scores, st):
    """λ1·p1 + λ2·p2 + λ3·p3, then α·that + (1−α)·previous, written out with numpy."""
    p1 = gallery.scores([st.query])[0]
    p2 = gallery.scores([enriched_query(st)])[0]
    p3 = gallery.scores([st.summary])[0]
    fused = cfg.lambda1 * p1 + cfg.lambda2 * p2 + cfg.lambda3 * p3
    return cfg.alpha * fused + (1 - cfg.alpha) * st_before_scores


def test_alpha_mixes_with_the_previous_round(gallery, questioner, user):
    history = simulate(gallery, questioner, user, CFG, rounds=2)
    for before, after in zip(history, history[1:]):
        for b, a in zip(before, after):
            assert a.summary == GroundedSummariser().summarise([a])[0]
            np.testing.assert_allclose(a.scores, manual_round(gallery, CFG, b.scores, a), atol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_alpha_extremes(gallery, questioner, user, alpha):
    cfg = dataclasses.replace(CFG, alpha=alpha)
    r0, r1 = simulate(gallery, questioner, user, cfg, rounds=1)
    for b, a in zip(r0, r1):
        if alpha == 0.0:  # the ranking never moves
            np.testing.assert_allclose(a.scores, b.scores, atol=1e-7)
        else:  # only the new round counts
            np.testing.assert_allclose(a.scores, manual_round(gallery, cfg, np.zeros_like(b.scores), a), atol=1e-6)


def test_p2_on_the_whole_dialog_and_a_concat_summary(gallery, questioner, user):
    cfg = dataclasses.replace(CFG, lambda1=0.0, lambda2=0.5, lambda3=0.5, p2_text="dialog", alpha=1.0)
    states = start(QUERIES, TARGETS)
    states = run_round(states, gallery, questioner, user, cfg)
    states = run_round(states, gallery, questioner, user, cfg, summariser=ConcatSummariser())
    for st in states:
        assert st.summary == concat_dialog(st)
        text = gallery.scores([concat_dialog(st)])[0]
        np.testing.assert_allclose(st.scores, 0.5 * text + 0.5 * text, atol=1e-6)


def test_without_p3_no_summary_is_written(gallery, questioner, user):
    cfg = dataclasses.replace(CFG, lambda3=0.0)
    *_, last = simulate(gallery, questioner, user, cfg, rounds=1)
    assert all(st.summary == "" for st in last)


def test_bad_p2_text(gallery):
    with pytest.raises(ValueError, match="p2_text"):
        run_round(start(["a chair"]), gallery, None, None, dataclasses.replace(CFG, p2_text="summary"))


def test_a_batch_equals_its_dialogs_run_alone(gallery, questioner, user):
    together = simulate(gallery, questioner, user, CFG, rounds=2)[-1]
    for i, (q, t) in enumerate(zip(QUERIES, TARGETS)):
        # alone, the dialog id differs ("0"); ids only seed the noise, which is off
        (alone,) = simulate(gallery, questioner, user, CFG, rounds=2, queries=[q], targets=[t])[-1]
        assert alone.turns == together[i].turns
        np.testing.assert_allclose(alone.scores, together[i].scores, atol=1e-6)


# ------------------------------------------------------------------------------------------------ replay (HTTP)

def test_replay_equals_the_simulated_rounds(gallery, questioner, user):
    history = simulate(gallery, questioner, user, CFG, rounds=3)
    for r in range(1, 4):
        # a client holding r answered turns, and the question asked after round r (pending then)
        for i, q in enumerate(QUERIES):
            st = history[r][i]
            turns = [(t.question, t.answer) for t in st.turns]
            got = replay(q, turns, gallery, questioner, CFG)
            assert got.round == r and len(got.turns) == r
            assert got.summary == st.summary
            np.testing.assert_allclose(got.scores, st.scores, atol=1e-6)
            if st.question is not None:
                # the questioner reads the aspects back from plain text and asks what the simulation asked
                assert got.question == st.question


def test_replay_batch_of_mixed_lengths_equals_one_by_one(gallery, questioner, user):
    history = simulate(gallery, questioner, user, CFG, rounds=3)
    # dialog i holds i answered turns (0..3): rounds are shared only where the dialogs overlap
    qs = [QUERIES[i % len(QUERIES)] for i in range(4)]
    hs = [[(t.question, t.answer) for t in history[i][i % len(QUERIES)].turns] for i in range(4)]
    batch = replay_batch(qs, hs, gallery, questioner, CFG)
    for q, h, got in zip(qs, hs, batch):
        alone = replay(q, h, gallery, questioner, CFG)
        assert got.round == len(h) == alone.round and got.question == alone.question
        np.testing.assert_allclose(got.scores, alone.scores, atol=1e-6)
    with pytest.raises(ValueError, match="2 queries but 1 histories"):
        replay_batch(qs[:2], hs[:1], gallery, questioner, CFG)


def test_replay_without_history_is_the_static_ranking(gallery, questioner):
    st = replay("a lamp in a room", [], gallery, None, CFG)
    assert st.round == 0 and st.question is None
    np.testing.assert_array_equal(st.scores, gallery.scores(["a lamp in a room"])[0])
    with_q = replay("a lamp in a room", [], gallery, questioner, CFG)
    assert with_q.question is not None and with_q.question.aspect in questioner.knowledge.aspects


def test_real_user_turns_appended_by_the_caller(gallery, questioner):
    # answerer=None: the caller has already put the real user's answer into the dialog
    (st,) = run_round(start(["the brown chair in the bedroom"]), gallery, questioner, None, CFG)
    prev = st.scores
    st = st.with_(turns=(Turn(st.question.text, "It is a bedroom.", st.question.aspect),), question=None)
    (st,) = run_round([st], gallery, questioner, None, CFG)
    assert st.round == 1 and len(st.turns) == 1 and st.question is not None
    np.testing.assert_allclose(st.scores, manual_round(gallery, CFG, prev, st), atol=1e-6)


# ------------------------------------------------------------------------------------------------ candidates, ranking

def test_top_candidates(gallery):
    scores = np.array([[0.1, 0.5, 0.3, 0.0, 0.2, 0.4]], np.float32)
    (cands,) = top_candidates(scores, gallery, k=3, beta=0.1)
    assert [c.scene_id for c in cands] == ["scene0001_00", "scene0005_00", "scene0002_00"]
    # softmax over the top-3 at β = 0.1: e^5, e^4, e^3 normalised
    e = np.exp([5.0, 4.0, 3.0])
    np.testing.assert_allclose([c.weight for c in cands], e / e.sum(), rtol=1e-6)
    (every,) = top_candidates(scores, gallery, k=100, beta=0.1)
    assert len(every) == len(SCENES) and every[0].scene_id == "scene0001_00" and every[-1].scene_id == "scene0003_00"
    assert sum(c.weight for c in every) == pytest.approx(1.0)


def test_ranking(gallery):
    st = DialogState("q", scores=np.array([0.1, 0.5, 0.3, 0.0, 0.2, 0.4], np.float32), round=0)
    assert [sid for sid, _ in ranking(st, gallery, 2)] == ["scene0001_00", "scene0005_00"]
    assert ranking(st, gallery, 2)[0][1] == pytest.approx(0.5)
    assert len(ranking(st, gallery, 50)) == len(SCENES)
    with pytest.raises(ValueError, match="not been ranked"):
        ranking(DialogState("q"), gallery, 3)


def test_rank_on_a_fresh_dialog_is_the_query_score(gallery):
    states = start(["a brown desk"])
    np.testing.assert_array_equal(rank(states, gallery, CFG, [""]), gallery.scores(["a brown desk"]))
