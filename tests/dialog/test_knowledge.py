"""ideal.dialog.knowledge: what the system reads off each scene's 3D data (values by construction), the table of
value ids over a gallery, and the expected information gain `answer_entropy` worked by hand."""
import inspect
import math

import numpy as np
import pytest

from ideal.dialog.knowledge import ABSENT, SceneKnowledge, answer_entropy, scene_values
from ideal.dialog.knowledge import scene_summary as room_summary
from ideal.scenes.memory import build_memory
from ideal.scenes.types import Description

from .rooms import A, C, D, SCENES, bed, chair, room


def H(*p):
    """Entropy in nats of a distribution given by its probabilities."""
    return -sum(x * math.log(x) for x in p if x > 0)


# A 5 x 5 m bedroom: a white bed against the west wall with a yellow lamp on it, a brown chair in the north-east
# corner, a blue chair right by a black desk that stands 0.5 m from the window, and a door.
S = room("S", "Bedroom / Hotel", [
    ("bed", (0.05, 1, 0), (1.7, 3, 0.5), "white"),
    ("lamp", (0.5, 1.5, 0.5), (0.8, 1.8, 0.9), "yellow"),
    ("chair", (4.4, 4.4, 0), (4.9, 4.9, 0.9), "brown"),
    ("chair", (2.9, 1.8, 0), (3.4, 2.3, 0.9), "blue"),
    ("desk", (3.6, 1.6, 0), (4.4, 2.4, 0.75), "black"),
    ("window", (4.9, 1, 1), (5, 2, 2), "white"),
    ("door", (0, 4.9, 0), (1, 5, 2), "brown"),
])


# ------------------------------------------------------------------------------------------------ scene_values

def test_scene_values_by_construction():
    assert scene_values(S) == {
        "room": "Bedroom / Hotel",
        "has:bed": "yes", "count:bed": "1", "color:bed": "white", "place:bed": "wall", "near:bed": "",
        "has:lamp": "yes", "count:lamp": "1", "color:lamp": "yellow", "place:lamp": "on:bed", "near:lamp": "",
        # two chairs: the set of their colours, of their places (the blue one has none), of their neighbours
        "has:chair": "yes", "count:chair": "2", "color:chair": "blue,brown", "place:chair": "corner",
        "near:chair": "desk",
        "has:desk": "yes", "count:desk": "1", "color:desk": "black", "place:desk": "window",
        "near:desk": "chair",
        # windows and doors: there or not, how many; no colour, place or neighbours
        "has:window": "yes", "count:window": "1",
        "has:door": "yes", "count:door": "1",
    }


def test_scene_values_leave_absent_classes_out_and_ignore_the_shell():
    v = scene_values(S)
    assert not any(k.endswith((":sofa", ":floor", ":wall")) for k in v)
    # the floor's colour (gray) is no object's value
    assert "gray" not in " ".join(v.values())


def test_scene_values_follow_the_geometry():
    # the same room with the brown chair moved to mid-room and painted red: colour and place change, count does not
    moved = room("S", "Bedroom / Hotel", [
        ("bed", (0.05, 1, 0), (1.7, 3, 0.5), "white"),
        ("chair", (2.0, 3.5, 0), (2.5, 4.0, 0.9), "red"),
    ])
    v = scene_values(moved)
    assert v["color:chair"] == "red" and v["place:chair"] == "" and v["count:chair"] == "1"
    assert v["place:bed"] == "wall"


# ------------------------------------------------------------------------------------------------ answer_entropy

def test_answer_entropy_three_candidates_by_hand():
    # weights .5/.25/.25, answers A, A, B: P(A) = .75, P(B) = .25
    # gain = -(.5 ln .75 + .25 ln .75 + .25 ln .25) = -(.75 ln .75 + .25 ln .25)
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert expected == pytest.approx(0.562335, abs=1e-6)
    got = answer_entropy(np.array([[[7], [7], [3]]]), np.array([[0.5, 0.25, 0.25]]))
    assert got.shape == (1, 1)
    assert got[0, 0] == pytest.approx(expected, rel=1e-12)
    # which candidate gives the odd answer matters: the heavy one alone (.5 vs .5) is a fair coin
    got = answer_entropy(np.array([[[3], [7], [7]]]), np.array([[0.5, 0.25, 0.25]]))
    assert got[0, 0] == pytest.approx(math.log(2), rel=1e-12)


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


# ------------------------------------------------------------------------------------------------ SceneKnowledge



@pytest.fixture(scope="module")
def kn():
    return SceneKnowledge(SCENES)


def test_knowledge_table_by_construction(kn):
    col = kn.col
    assert kn.labels == ["bed", "chair", "desk", "table"]
    assert kn.aspects[0] == "room" and len(kn.aspects) == 1 + 5 * 4
    # A and B differ in exactly one aspect: the chair's colour
    differ = [a for a in kn.aspects if kn.answers[0, col[a]] != kn.answers[1, col[a]]]
    assert differ == ["color:chair"]
    # rooms: bedroom, bedroom, kitchen, office
    r = kn.answers[:, col["room"]]
    assert r[0] == r[1] and len({r[0], r[2], r[3]}) == 3
    # no bed in C or D: their value of "is there a bed" (and of its colour) is the column's absent id
    for a in ("has:bed", "color:bed"):
        assert kn.answers[2, col[a]] == kn.answers[3, col[a]] == kn.absent[col[a]]
        assert kn.answers[0, col[a]] != kn.absent[col[a]]
    # a brown chair in A, C and D is one value; brown desk (another column) is not confused with it
    c = kn.answers[:, col["color:chair"]]
    assert c[0] == c[2] == c[3] != c[1]
    np.testing.assert_array_equal(kn.rows(["D", "A"]), [3, 0])
    assert kn.summaries[kn.row["A"]] == tuple(room_summary(A))


def test_prior_gain_is_uniform_entropy_over_the_gallery(kn):
    g = dict(zip(kn.aspects, kn.prior_gain))
    assert g["room"] == pytest.approx(H(0.5, 0.25, 0.25))  # bedroom x2, kitchen, office
    assert g["color:chair"] == pytest.approx(H(0.75, 0.25))  # brown x3, blue
    assert g["has:bed"] == pytest.approx(H(0.5, 0.5))  # yes x2, absent x2
    assert g["has:chair"] == pytest.approx(0.0)  # every room has one


def test_knowledge_is_a_function_of_the_geometry_alone():
    # nothing but scenes goes in: no descriptions, no memories
    assert list(inspect.signature(SceneKnowledge).parameters) == ["scenes"]
    assert ABSENT == "-"
    # the same scenes described in two different ways (the users' memories differ) give one and the same table
    talk1 = [Description("d1", "A", 2, "chair", "the brown chair in the middle of the room.")]
    talk2 = [Description("d2", "A", 2, "chair", "a purple zorblax humming beside the piano."),
             Description("d3", "B", 1, "bed", "the bed under the turquoise chandelier.")]
    memories1 = {s.scene_id: build_memory(s, talk1) for s in SCENES}
    memories2 = {s.scene_id: build_memory(s, talk2) for s in SCENES}
    assert memories1["A"].fine != memories2["A"].fine
    k1, k2 = SceneKnowledge(SCENES), SceneKnowledge(SCENES)
    assert k1.aspects == k2.aspects and k1.labels == k2.labels and k1.summaries == k2.summaries
    np.testing.assert_array_equal(k1.answers, k2.answers)
    np.testing.assert_array_equal(k1.prior_gain, k2.prior_gain)
    # and a change of geometry does change it
    k3 = SceneKnowledge([A, room("B", "Bedroom / Hotel", [bed(), chair("brown")]), C, D])
    assert not np.array_equal(k1.answers, k3.answers)


def test_the_prior_gain_is_the_uniform_answer_entropy_without_the_pairwise_table():
    from ideal.dialog.knowledge import answer_entropy, value_entropy

    table = np.random.default_rng(0).integers(0, 5, (60, 9))
    np.testing.assert_allclose(value_entropy(table), answer_entropy(table[None], np.full((1, 60), 1 / 60))[0])
    np.testing.assert_allclose(value_entropy(np.zeros((4, 2), int)), [0.0, 0.0])  # one value: no information
