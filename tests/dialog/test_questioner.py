"""The grounded questioner: information gain over weighted candidates (Q2), dialog grounding (Q1), MERLIN-style
k=1, on small hand-made rooms whose answers are known by construction."""
import math

import numpy as np
import pytest

from ideal.dialog.answerer import GroundedAnswerer
from ideal.dialog.aspects import question_text
from ideal.dialog.knowledge import SceneKnowledge, answer_entropy
from ideal.dialog.questioner import GroundedQuestioner
from ideal.dialog.types import Candidate, DialogState, Question, Questioner, Turn
from ideal.scenes.colors import PALETTE
from ideal.scenes.memory import build_memory
from ideal.scenes.types import Scene, SceneObject


from .rooms import obj, room  # noqa: E402,F401



def bed(colour="white"):
    return ("bed", (0.1, 1, 0), (1.7, 3, 0.5), colour)


def chair(colour):
    return ("chair", (2.5, 2.5, 0), (3, 3, 0.9), colour)  # mid-room: no placement, no neighbour


# A and B differ only in the chair's colour; C is a kitchen, D an office (each with a brown chair).
A = room("A", "Bedroom / Hotel", [bed(), chair("brown")])
B = room("B", "Bedroom / Hotel", [bed(), chair("blue")])
C = room("C", "Kitchen", [("table", (2, 2, 0), (3.2, 3, 0.75), "black"), ("chair", (3.5, 3.5, 0), (4, 4, 0.9), "brown")])
D = room("D", "Office", [("desk", (2, 0.1, 0), (3.4, 0.8, 0.75), "brown"), ("chair", (2.5, 1.2, 0), (3, 1.7, 0.9), "brown")])
SCENES = [A, B, C, D]


@pytest.fixture(scope="module")
def kn():
    return SceneKnowledge(SCENES)


def cands(**weights):
    return [Candidate(sid, w, ()) for sid, w in weights.items()]


AB_HEAVY = cands(A=0.45, B=0.45, C=0.05, D=0.05)


def H(*p):
    """Entropy in nats of a distribution given by its probabilities."""
    return -sum(x * math.log(x) for x in p if x > 0)


# ------------------------------------------------------------------------------------------------ information gain

def test_answer_entropy_hand_example():
    # weights [.4, .3, .2, .1], answers [a, a, b, c]: P(a) = .7, P(b) = .2, P(c) = .1
    # H = -(.4 ln .7 + .3 ln .7 + .2 ln .2 + .1 ln .1)
    expected = -(0.4 * math.log(0.7) + 0.3 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    assert expected == pytest.approx(0.80182, abs=1e-5)
    answers = np.array([[[0], [0], [1], [2]]])  # (B=1, k=4, A=1)
    got = answer_entropy(answers, np.array([[0.4, 0.3, 0.2, 0.1]]))
    assert got.shape == (1, 1)
    assert got[0, 0] == pytest.approx(expected, rel=1e-9)


def test_answer_entropy_batch_and_aspects():
    # two aspects: one all the same (no gain), one all different under uniform weights (ln 3)
    answers = np.array([[[5, 0], [5, 1], [5, 2]],
                        [[1, 7], [2, 7], [2, 7]]])
    w = np.array([[1 / 3, 1 / 3, 1 / 3], [0.5, 0.25, 0.25]])
    got = answer_entropy(answers, w)
    np.testing.assert_allclose(got, [[0.0, math.log(3)], [H(0.5, 0.5), 0.0]], atol=1e-12)


def test_knowledge_table_by_construction(kn):
    col = kn.col
    # A and B differ in exactly one aspect: the chair's colour
    differ = [a for a in kn.aspects if kn.answers[0, col[a]] != kn.answers[1, col[a]]]
    assert differ == ["color:chair"]
    # rooms: bedroom, bedroom, kitchen, office
    r = kn.answers[:, col["room"]]
    assert r[0] == r[1] and len({r[0], r[2], r[3]}) == 3
    # no bed in C or D: their answer to "is there a bed" is the unknown id
    assert kn.answers[2, col["has:bed"]] == kn.unknown[col["has:bed"]]
    assert kn.answers[0, col["has:bed"]] != kn.unknown[col["has:bed"]]
    np.testing.assert_array_equal(kn.rows(["D", "A"]), [3, 0])


def test_prior_gain_is_uniform_entropy_over_the_gallery(kn):
    g = dict(zip(kn.aspects, kn.prior_gain))
    assert g["room"] == pytest.approx(H(0.5, 0.25, 0.25))  # bedroom x2, kitchen, office
    assert g["color:chair"] == pytest.approx(H(0.75, 0.25))  # brown x3, blue
    assert g["has:bed"] == pytest.approx(H(0.5, 0.5))  # yes x2, unknown x2
    assert g["has:chair"] == pytest.approx(0.0)  # every room has one


def test_gains_on_weighted_candidates(kn):
    g = dict(zip(kn.aspects, GroundedQuestioner(kn).gains([AB_HEAVY])[0]))
    # colour of the chair: brown = A, C, D (.55), blue = B (.45)
    assert g["color:chair"] == pytest.approx(H(0.55, 0.45))
    # room: bedroom .9, kitchen .05, office .05
    assert g["room"] == pytest.approx(H(0.9, 0.05, 0.05))
    # a bed: A, B yes (.9); C, D don't know (.1)
    assert g["has:bed"] == pytest.approx(H(0.9, 0.1))


def test_weights_are_normalised(kn):
    q = GroundedQuestioner(kn)
    scaled = [Candidate(c.scene_id, 10 * c.weight, ()) for c in AB_HEAVY]
    np.testing.assert_allclose(q.gains([scaled]), q.gains([AB_HEAVY]), atol=1e-12)


def test_q2_asks_the_aspect_that_splits_the_heavy_candidates(kn):
    q = GroundedQuestioner(kn)
    assert isinstance(q, Questioner)
    (question,) = q.ask([DialogState("a room", round=0)], [AB_HEAVY])
    assert question == Question("What colour is the chair?", "color:chair")


def test_q2_follows_the_candidates(kn):
    # weight on C and D (kitchen vs office): the room tells them apart, the chair (brown in both) does not
    q = GroundedQuestioner(kn)
    (question,) = q.ask([DialogState("a room", round=0)], [cands(A=0.05, B=0.05, C=0.45, D=0.45)])
    g = dict(zip(kn.aspects, q.gains([cands(A=0.05, B=0.05, C=0.45, D=0.45)])[0]))
    assert g["color:chair"] == pytest.approx(H(0.95, 0.05))
    assert question.aspect != "color:chair"
    assert g[question.aspect] == pytest.approx(max(g.values()))


def test_without_q2_the_prior_gain_decides(kn):
    q = GroundedQuestioner(kn, use_q2=False)
    gains = q.gains([AB_HEAVY, cands(C=1.0)])
    np.testing.assert_allclose(gains, np.stack([kn.prior_gain, kn.prior_gain]))
    # over the whole gallery the room splits best (1.04 nats vs <= 0.69 for anything else), whatever the candidates
    (question,) = q.ask([DialogState("a room", round=0)], [AB_HEAVY])
    assert question.aspect == "room"


def test_batch_of_dialogs(kn):
    q = GroundedQuestioner(kn)
    states = [DialogState("a room", round=0, dialog_id=str(i)) for i in range(2)]
    out = q.ask(states, [AB_HEAVY, cands(A=0.05, B=0.05, C=0.45, D=0.45)])
    assert [x.aspect for x in out][0] == "color:chair" and out[1].aspect != "color:chair"
    with pytest.raises(ValueError, match="2 dialogs but 1 candidate"):
        q.ask(states, [AB_HEAVY])


# ------------------------------------------------------------------------------------------------ k = 1 (MERLIN)

# Four bedrooms: the lamp's colour splits the gallery best (red, green, yellow, none), but H has no lamp.
def lamp(colour):
    return ("lamp", (4.2, 4.2, 0), (4.6, 4.6, 1.5), colour)


BEDROOMS = [room("E", "Bedroom / Hotel", [bed("white"), lamp("red")]),
            room("F", "Bedroom / Hotel", [bed("white"), lamp("green")]),
            room("G", "Bedroom / Hotel", [bed("brown"), lamp("yellow")]),
            room("H", "Bedroom / Hotel", [bed("brown")])]


def test_k1_asks_what_the_top1_scene_can_answer():
    kn = SceneKnowledge(BEDROOMS)
    best_overall = kn.aspects[int(np.argmax(kn.prior_gain))]
    assert best_overall == "color:lamp" and kn.prior_gain[kn.col["color:lamp"]] == pytest.approx(math.log(4))
    h = kn.row["H"]
    assert kn.answers[h, kn.col["color:lamp"]] == kn.unknown[kn.col["color:lamp"]]  # H cannot answer it
    q = GroundedQuestioner(kn)
    (question,) = q.ask([DialogState("a room", round=0)], [cands(H=1.0)])
    j = kn.col[question.aspect]
    assert kn.answers[h, j] != kn.unknown[j]
    # of what H can answer, the bed's colour (white x2, brown x2) tells the gallery's scenes apart best
    assert question.aspect == "color:bed"
    # a top-1 scene that has a lamp is asked about it
    (question,) = q.ask([DialogState("a room", round=0)], [cands(E=1.0)])
    assert question.aspect == "color:lamp"


# ------------------------------------------------------------------------------------------------ Q1

def dialog(q: GroundedQuestioner, candidates, rounds: int, target: Scene, with_aspects: bool, query="a room"):
    """Ask `rounds` questions against fixed candidates, answering from the target's memory."""
    memory = build_memory(target, []).fine
    answerer = GroundedAnswerer(embed=None)
    st = DialogState(query, round=0)
    asked = []
    for _ in range(rounds):
        (question,) = q.ask([st], [candidates])
        asked.append(question.aspect)
        (answer,) = answerer.answer([question.text], [memory])
        st = st.with_(turns=st.turns + (Turn(question.text, answer, question.aspect if with_aspects else None),),
                      round=st.round + 1)
    return asked


@pytest.mark.parametrize("with_aspects", [True, False], ids=["aspects", "http-text"])
def test_q1_never_repeats_an_answered_aspect(kn, with_aspects):
    asked = dialog(GroundedQuestioner(kn), AB_HEAVY, 8, A, with_aspects)
    assert asked[0] == "color:chair"
    assert len(set(asked)) == len(asked), asked


def test_q1_reads_plain_text_history_back(kn):
    q = GroundedQuestioner(kn)
    # the best question would be the chair's colour; an HTTP client already asked it in its own words
    for text in ("What colour is the chair?", "What color are the chairs?", "what colour is the chair ?"):
        st = DialogState("a room", turns=(Turn(text, "The chair is brown.", None),), round=1)
        (question,) = q.ask([st], [AB_HEAVY])
        assert question.aspect != "color:chair", text


def test_q1_does_not_ask_whether_a_named_object_is_there(kn):
    # C vs D at equal weight: room, "is there a desk" and "is there a table" each split them (ln 2). Once the room
    # is known, the desk is next in line, unless the dialog already named it.
    q = GroundedQuestioner(kn)
    cd = cands(C=0.5, D=0.5)
    g = dict(zip(kn.aspects, q.gains([cd])[0]))
    assert g["room"] == g["has:desk"] == g["has:table"] == pytest.approx(math.log(2))

    def next_aspect(answer):
        st = DialogState("a room", turns=(Turn("What kind of room is it?", answer, "room"),), round=1)
        return q.ask([st], [cd])[0].aspect

    assert next_aspect("It is an office.") == "has:desk"
    assert next_aspect("It is an office. There is a desk.") not in ("has:desk", "room")


def test_plain_text_history_gets_the_same_questions(kn):
    q = GroundedQuestioner(kn)
    assert dialog(q, AB_HEAVY, 8, A, True) == dialog(q, AB_HEAVY, 8, A, False)


def test_without_q1_a_question_repeats_when_the_ranking_does_not_change(kn):
    asked = dialog(GroundedQuestioner(kn, use_q1=False), AB_HEAVY, 3, A, True)
    assert asked == ["color:chair"] * 3


def test_when_every_aspect_is_settled_it_still_asks(kn):
    q = GroundedQuestioner(kn)
    turns = tuple(Turn(question_text(a), "I don't know.", a) for a in kn.aspects)
    (question,) = q.ask([DialogState("a room", turns=turns, round=len(turns))], [AB_HEAVY])
    assert question.aspect in kn.aspects and question.text == question_text(question.aspect)


def test_q1_does_not_ask_what_the_query_already_says(kn):
    # A and B differ only in the chair's colour, which is the best split; but the query already says it
    q = GroundedQuestioner(kn, use_q2=True)
    plain = q.ask([DialogState(query="the chair in the bedroom")], [AB_HEAVY])[0]
    assert plain.aspect == "color:chair"
    told = q.ask([DialogState(query="the brown chair in the bedroom")], [AB_HEAVY])[0]
    assert told.aspect != "color:chair"
    # ... and an answer that gave the colour settles it just as well
    st = DialogState(query="the chair in the bedroom", turns=(Turn("Is there a chair?", "Yes. The chair is brown."),))
    assert q.ask([st], [AB_HEAVY])[0].aspect != "color:chair"


def test_prior_weight_adds_the_gallery_wide_gain(kn):
    plain = GroundedQuestioner(kn).gains([AB_HEAVY])[0]
    tilted = GroundedQuestioner(kn, prior_weight=2.0).gains([AB_HEAVY])[0]
    np.testing.assert_allclose(tilted, plain + 2.0 * kn.prior_gain)
    # Q2 off ignores it: the prior is then the whole criterion already
    np.testing.assert_allclose(GroundedQuestioner(kn, use_q2=False, prior_weight=2.0).gains([AB_HEAVY])[0],
                               kn.prior_gain)
