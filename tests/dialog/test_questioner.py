"""The grounded questioner: Q1 (detail probe of objects the dialog names) and Q2 (diverge exploration: a class the
dialog does not name, or "what else"), chosen by information gain over the weighted candidates' 3D data; MERLIN-style
k=1; and no access to any user's memory. Small hand-made rooms whose answers are known by construction."""
import math
import re

import numpy as np
import pytest

from ideal.dialog.answerer import GroundedAnswerWriter, SimulatedAnswerer
from ideal.dialog.aspects import DETAIL_KINDS, question_text, split_aspect
from ideal.dialog.knowledge import SceneKnowledge
from ideal.dialog.questioner import GroundedQuestioner
from ideal.dialog.types import Q1, Q2, Candidate, DialogState, Question, Turn
from ideal.scenes.memory import build_memory
from ideal.scenes.types import Description, Scene, SceneMemory

from .rooms import A, SCENES, bed, room




@pytest.fixture(scope="module")
def kn():
    return SceneKnowledge(SCENES)


def cands(**weights):
    return [Candidate(sid, w, ()) for sid, w in weights.items()]


AB_HEAVY = cands(A=0.45, B=0.45, C=0.05, D=0.05)
CD_HEAVY = cands(A=0.05, B=0.05, C=0.45, D=0.45)


def H(*p):
    """Entropy in nats of a distribution given by its probabilities."""
    return -sum(x * math.log(x) for x in p if x > 0)


def ask1(q, query, kind, candidates, turns=()):
    (question,) = q.ask([DialogState(query, turns=tuple(turns), round=len(turns))], [kind], [candidates])
    return question


# ------------------------------------------------------------------------------------------------ information gain

def test_gains_on_weighted_candidates(kn):
    gains = GroundedQuestioner(kn).gains([AB_HEAVY])
    assert gains.shape == (1, len(kn.aspects))
    g = dict(zip(kn.aspects, gains[0]))
    prior = dict(zip(kn.aspects, kn.prior_gain))
    # ties are broken by a small share (1e-3) of the gain over the whole gallery
    # colour of the chair: brown = A, C, D (.55), blue = B (.45)
    assert g["color:chair"] == pytest.approx(H(0.55, 0.45) + 1e-3 * prior["color:chair"], rel=1e-9)
    # room: bedroom .9, kitchen .05, office .05
    assert g["room"] == pytest.approx(H(0.9, 0.05, 0.05) + 1e-3 * prior["room"], rel=1e-9)
    # a bed: A, B yes (.9); C, D none (.1)
    assert g["has:bed"] == pytest.approx(H(0.9, 0.1) + 1e-3 * prior["has:bed"], rel=1e-9)
    assert g["has:chair"] == pytest.approx(0.0, abs=1e-12)


def test_weights_are_normalised(kn):
    q = GroundedQuestioner(kn)
    scaled = [Candidate(c.scene_id, 10 * c.weight, ()) for c in AB_HEAVY]
    np.testing.assert_allclose(q.gains([scaled]), q.gains([AB_HEAVY]), atol=1e-12)


def test_gains_without_candidates_are_the_gallery_share(kn):
    gains = GroundedQuestioner(kn).gains([[], AB_HEAVY])
    np.testing.assert_allclose(gains[0], 1e-3 * kn.prior_gain, atol=1e-15)
    assert gains[1, kn.col["color:chair"]] > 0.5


def test_gains_of_a_single_candidate_are_what_it_has(kn):
    (g,) = GroundedQuestioner(kn).gains([cands(C=1.0)])
    present = kn.answers[kn.row["C"]] != kn.absent
    np.testing.assert_allclose(g, np.where(present, kn.prior_gain, 0.0))
    assert g[kn.col["has:bed"]] == 0.0 and g[kn.col["has:table"]] > 0


# ------------------------------------------------------------------------------------------------ types and batches

def test_every_question_carries_the_routed_kind(kn):
    q = GroundedQuestioner(kn)
    queries = ["the chair in the bedroom", "the bed next to the chair", "a desk in an office", "a brown chair"]
    candidate_lists = [AB_HEAVY, CD_HEAVY, [], cands(D=1.0)]
    states, kinds, cl = [], [], []
    for i, query in enumerate(queries):
        for kind in (Q1, Q2):
            for c in candidate_lists:
                states.append(DialogState(query, round=0, dialog_id=str(len(states))))
                kinds.append(kind)
                cl.append(c)
    out = q.ask(states, kinds, cl)
    assert len(out) == len(states)
    for st, kind, question in zip(states, kinds, out):
        assert isinstance(question, Question)
        # every query names an object with something left to probe: Q1 stays Q1
        assert question.kind == kind, (st.query, kind, question)
        assert question.text == question_text(question.aspect)
        k, label = split_aspect(question.aspect)
        if kind == Q1:
            assert k in DETAIL_KINDS and label in st.query, (st.query, question)
        else:
            assert k in ("has", "explore"), (st.query, question)


def test_batch_errors(kn):
    q = GroundedQuestioner(kn)
    states = [DialogState("a room", round=0, dialog_id=str(i)) for i in range(2)]
    with pytest.raises(ValueError, match="2 dialogs, 2 question types, 1 candidate lists"):
        q.ask(states, [Q1, Q2], [AB_HEAVY])
    with pytest.raises(ValueError, match="2 dialogs, 1 question types, 2 candidate lists"):
        q.ask(states, [Q1], [AB_HEAVY, AB_HEAVY])
    with pytest.raises(ValueError, match="question type must be Q1 or Q2, got 'Q3'"):
        q.ask(states, [Q1, "Q3"], [AB_HEAVY, AB_HEAVY])


def test_batch_answers_each_dialog_on_its_own(kn):
    q = GroundedQuestioner(kn)
    states = [DialogState("the chair in the bedroom", round=0, dialog_id="a"),
              DialogState("a room", round=0, dialog_id="b"),
              DialogState("the chair and the desk", round=0, dialog_id="c")]
    batch = q.ask(states, [Q1, Q2, Q1], [AB_HEAVY, CD_HEAVY, CD_HEAVY])
    alone = [q.ask([s], [k], [c])[0] for s, k, c in zip(states, [Q1, Q2, Q1], [AB_HEAVY, CD_HEAVY, CD_HEAVY])]
    assert batch == alone


# ------------------------------------------------------------------------------------------------ Q1: detail probe

def test_q1_probes_a_named_object_where_the_candidates_differ(kn):
    q = GroundedQuestioner(kn)
    # A vs B: only the chair's colour tells them apart
    assert ask1(q, "the chair in the bedroom", Q1, AB_HEAVY) == Question("What colour is the chair?", Q1, "color:chair")
    # C vs D: the chair's colour (brown in both) does not; where it is / what is next to it does (D's is by the desk)
    question = ask1(q, "the chair in the room", Q1, CD_HEAVY)
    assert question.kind == Q1 and question.aspect in ("place:chair", "near:chair")
    g = dict(zip(kn.aspects, q.gains([CD_HEAVY])[0]))
    assert g[question.aspect] == max(g[f"{k}:chair"] for k in DETAIL_KINDS)


def test_q1_asks_the_query_before_the_answers(kn):
    # two identical rooms: every gain is 0, so the order of the dialog decides: the query's object first
    twin = SceneKnowledge([A, Scene("A2", A.scene_type, A.objects)])
    q = GroundedQuestioner(twin)
    st = DialogState("the bed", turns=(Turn("Is there a chair in the room?", "Yes, there is a chair."),), round=1)
    for c in ([], cands(A=0.5, A2=0.5)):
        (question,) = q.ask([st], [Q1], [c])
        assert question.kind == Q1 and split_aspect(question.aspect)[1] == "bed", question


@pytest.mark.parametrize("query, target", [("the bed next to the chair", "bed"), ("the chair next to the bed", "chair"),
                                           ("a white bed with a chair beside it", "bed")])
def test_q1_asks_the_querys_target_first_when_gains_tie(query, target):
    # two identical rooms: every gain is 0; the target of a referring query is the object it names first
    twin = SceneKnowledge([A, Scene("A2", A.scene_type, A.objects)])
    q = GroundedQuestioner(twin)
    for c in ([], cands(A=0.5, A2=0.5)):
        question = ask1(q, query, Q1, c)
        assert question.kind == Q1 and split_aspect(question.aspect)[1] == target, (query, question)


def dialog(q: GroundedQuestioner, candidates, kinds, target: Scene, with_aspects: bool, query="the bed next to the chair"):
    """Ask one question per routed kind against fixed candidates, answering from the target's memory."""
    memory = build_memory(target, []).fine
    answerer = GroundedAnswerWriter(embed=None)
    st = DialogState(query, round=0)
    asked = []
    for kind in kinds:
        (question,) = q.ask([st], [kind], [candidates])
        asked.append(question)
        (answer,) = answerer.answer([question.text], [memory])
        st = st.with_(turns=st.turns + (Turn(question.text, answer, question.kind,
                                             question.aspect if with_aspects else None),), round=st.round + 1)
    return asked


@pytest.mark.parametrize("with_aspects", [True, False], ids=["aspects", "http-text"])
@pytest.mark.parametrize("candidates", [AB_HEAVY, CD_HEAVY, []], ids=["AB", "CD", "none"])
def test_q1_never_repeats_an_asked_aspect(kn, with_aspects, candidates):
    asked = dialog(GroundedQuestioner(kn), candidates, [Q1] * 10, A, with_aspects)
    probes = [x.aspect for x in asked]
    # every question keeps the routed type; bed and chair: each detail probed exactly once, then an open
    # "describe ... in more detail" probe of each, and only then does an open probe repeat
    assert [x.kind for x in asked] == [Q1] * 10
    assert set(probes[:6]) == {f"{k}:{lab}" for k in DETAIL_KINDS for lab in ("bed", "chair")}
    assert set(probes[6:8]) == {"detail:bed", "detail:chair"}
    assert all(p.startswith("detail:") for p in probes[8:])
    assert len(set(probes[:8])) == 8, probes


def test_q1_reads_plain_text_history_back(kn):
    q = GroundedQuestioner(kn)
    # the best question would be the chair's colour; an HTTP client already asked it in its own words
    for text in ("What colour is the chair?", "What color are the chairs?", "what colour is the chair ?"):
        st = [Turn(text, "I don't know.", None)]
        question = ask1(q, "the chair in the bedroom", Q1, AB_HEAVY, st)
        assert question.kind == Q1 and question.aspect != "color:chair", text
    # ... and so with where it is and what is next to it
    st = [Turn("What colour is the chairs?", "I don't know."), Turn("Where are the chairs?", "I don't know."),
          Turn("What is next to the chair?", "I don't know.")]
    question = ask1(q, "the chair in the bedroom", Q1, AB_HEAVY, st)
    assert question.aspect not in {f"{k}:chair" for k in DETAIL_KINDS}, question


def test_plain_text_history_gets_the_same_questions(kn):
    q = GroundedQuestioner(kn)
    kinds = [Q1, Q2, Q1, Q1, Q2, Q1, Q1, Q1]
    for c in (AB_HEAVY, CD_HEAVY, []):
        assert dialog(q, c, kinds, A, True) == dialog(q, c, kinds, A, False)


def test_q1_does_not_ask_what_the_dialog_already_says(kn):
    # A and B differ only in the chair's colour, which is the best split; but the query already says it
    q = GroundedQuestioner(kn)
    assert ask1(q, "the chair in the bedroom", Q1, AB_HEAVY).aspect == "color:chair"
    told = ask1(q, "the brown chair in the bedroom", Q1, AB_HEAVY)
    assert told.kind == Q1 and told.aspect != "color:chair"
    # ... and an answer that gave the colour settles it just as well
    st = [Turn("Is there a chair?", "Yes. The chair is brown.")]
    assert ask1(q, "the chair in the bedroom", Q1, AB_HEAVY, st).aspect != "color:chair"
    # a place the dialog gives settles where it is
    placed = ask1(q, "the chair in a corner", Q1, CD_HEAVY)
    assert placed.aspect != "place:chair"


def test_q1_with_nothing_left_to_probe_stays_a_detail_probe(kn):
    q = GroundedQuestioner(kn)
    # a query that names no object: an open probe, still of the routed type
    assert ask1(q, "a room", Q1, AB_HEAVY) == Question(question_text("detail:"), Q1, "detail:")
    # every detail of the one object named is asked already: an open probe of that object
    turns = [Turn(question_text(f"{k}:chair"), "I don't know.", Q1, f"{k}:chair") for k in DETAIL_KINDS]
    for cands in (AB_HEAVY, []):
        question = ask1(q, "the chair", Q1, cands, turns)
        assert question == Question("Can you describe the chair and what is around it in more detail?", Q1,
                                    "detail:chair")


# ------------------------------------------------------------------------------------------------ Q2: diverge

def test_q2_asks_an_unnamed_class_that_splits_the_candidates(kn):
    q = GroundedQuestioner(kn)
    # A, B heavy: a bed (A, B) or not (C, D) splits them best
    assert ask1(q, "a room", Q2, AB_HEAVY) == Question("Is there a bed in the room?", Q2, "has:bed")
    # C, D heavy: the desk (D) or the table (C), not the bed (.9 of the weight has none)
    question = ask1(q, "a room", Q2, CD_HEAVY)
    g = dict(zip(kn.aspects, q.gains([CD_HEAVY])[0]))
    assert question.kind == Q2 and question.aspect in ("has:desk", "has:table")
    assert g[question.aspect] == pytest.approx(max(g[f"has:{lab}"] for lab in kn.labels))
    assert question.text == question_text(question.aspect)


def test_q2_never_asks_about_a_class_the_dialog_names(kn):
    q = GroundedQuestioner(kn)
    for query in ("the bed", "a white bed", "the beds in the bedroom"):
        question = ask1(q, query, Q2, AB_HEAVY)
        assert question.kind == Q2 and question.aspect != "has:bed" and question.aspect.startswith("has:"), query
    # named in an answer
    st = [Turn("What else is in the room?", "There is a desk.")]
    question = ask1(q, "a room", Q2, CD_HEAVY, st)
    assert question.aspect == "has:table"
    # ... and no class is asked twice, also when the history is plain text
    for aspect in ("has:bed", None):
        st = [Turn("Is there a bed in the room?", "I don't know.", Q2, aspect)]
        question = ask1(q, "a room", Q2, AB_HEAVY, st)
        assert question.kind == Q2 and question.aspect not in ("has:bed",), question


def test_q2_without_candidates_asks_what_else(kn):
    q = GroundedQuestioner(kn)
    assert ask1(q, "the chair next to the bed", Q2, []) == Question(
        "Apart from the chair and the bed, what else is in the room?", Q2, "explore:chair,bed")
    assert ask1(q, "a room", Q2, []) == Question("What else is in the room, away from the area you described?", Q2,
                                                  "explore:")
    # what else: at most three of the named objects
    question = ask1(q, "the chair by the desk near the bed and the table", Q2, [])
    assert question.kind == Q2 and question.aspect.startswith("explore:")
    assert len(question.aspect.split(":")[1].split(",")) == 3


def test_q2_asks_what_else_when_no_class_splits_the_candidates(kn):
    # A and B have the same classes: no "is there a ...?" tells them apart
    q = GroundedQuestioner(kn)
    question = ask1(q, "the chair in the bedroom", Q2, cands(A=0.5, B=0.5))
    assert question == Question("Apart from the chair, what else is in the room?", Q2, "explore:chair")


# ------------------------------------------------------------------------------------------------ k = 1 (MERLIN)

def lamp(colour):
    return ("lamp", (4.2, 4.2, 0), (4.6, 4.6, 1.5), colour)


# Four bedrooms: E, F, G have a lamp (red, green, yellow), H has a desk instead; the beds are white, white, brown,
# brown. Over the gallery the lamp splits best (its colour: ln 4), but H cannot answer about a lamp.
BEDROOMS = [room("E", "Bedroom / Hotel", [bed("white"), lamp("red")]),
            room("F", "Bedroom / Hotel", [bed("white"), lamp("green")]),
            room("G", "Bedroom / Hotel", [bed("brown"), lamp("yellow")]),
            room("H", "Bedroom / Hotel", [bed("brown"), ("desk", (3, 0.1, 0), (4.4, 0.8, 0.75), "brown")])]


def test_k1_asks_about_a_class_the_top1_scene_has():
    kn = SceneKnowledge(BEDROOMS)
    assert kn.aspects[int(np.argmax(kn.prior_gain))] == "color:lamp"
    assert kn.prior_gain[kn.col["color:lamp"]] == pytest.approx(math.log(4))
    q = GroundedQuestioner(kn)
    # Q2: H has a desk, and no lamp; E has a lamp
    assert ask1(q, "the bed", Q2, cands(H=1.0)) == Question("Is there a desk in the room?", Q2, "has:desk")
    assert ask1(q, "the bed", Q2, cands(E=1.0)) == Question("Is there a lamp in the room?", Q2, "has:lamp")
    # Q1 of "the bed and the lamp": H cannot answer about the lamp; the bed's colour splits the gallery (ln 2)
    assert ask1(q, "the bed and the lamp", Q1, cands(H=1.0)).aspect == "color:bed"
    assert ask1(q, "the bed and the lamp", Q1, cands(E=1.0)).aspect == "color:lamp"
    for top1 in ("E", "F", "G", "H"):
        for kind in (Q1, Q2):
            question = ask1(q, "the bed", kind, cands(**{top1: 1.0}))
            if not question.aspect.startswith("explore"):
                j = kn.col[question.aspect]
                assert kn.answers[kn.row[top1], j] != kn.absent[j], (top1, question)


# ------------------------------------------------------------------------------------------------ no memory

MARKERS = {"zorblax", "piano", "turquoise", "chandelier", "magenta", "quokka", "purple"}


def marked_memories():
    """Each scene's fine memory plus sentences only a user could know: words no scene's 3D data has."""
    descs = [Description(f"{s.scene_id}/1", s.scene_id, 1, "x",
                         f"the {s.objects[1].label} next to the zorblax piano under the turquoise chandelier.")
             for s in SCENES]
    out = {}
    for s in SCENES:
        fine = build_memory(s, descs).fine + [
            "There is a piano in the room.", "The piano is next to the bed.", "The chair is magenta.",
            "There is a purple quokka on the bed.", "Apart from that there is a zorblax."]
        out[s.scene_id] = SceneMemory(s.scene_id, fine)
    return out


def test_questioner_sees_no_memory(kn):
    memories = marked_memories()
    assert not MARKERS & set(" ".join(kn.labels).split())  # the 3D data knows none of them
    # a questioner of scenes only: the knowledge is all it is given
    q = GroundedQuestioner(SceneKnowledge(SCENES))
    user = SimulatedAnswerer(GroundedAnswerWriter(support=1), memories, "fine", seed=3)
    kinds = [Q1, Q2, Q1, Q1, Q2, Q2, Q1, Q2]
    said_markers = set()
    questions = []
    for candidates in (AB_HEAVY, CD_HEAVY, [], cands(B=1.0)):
        states = [DialogState(query, round=0, dialog_id=f"{s.scene_id}/{i}", target=s.scene_id)
                  for s in SCENES for i, query in enumerate(["the chair", "a room", "the bed next to the chair"])]
        for kind in kinds:
            asked = q.ask(states, [kind] * len(states), [candidates] * len(states))
            questions += [x.text for x in asked]
            answers = user.answer(states, [x.text for x in asked])
            said_markers |= {w for a in answers for w in re.findall(r"[a-z]+", a.lower())} & MARKERS
            states = [st.with_(turns=st.turns + (Turn(x.text, a, x.kind, x.aspect),), round=st.round + 1)
                      for st, x, a in zip(states, asked, answers)]
    # the users did say the marker words: they were in the dialogs, yet no question repeats them
    assert said_markers, "the test needs answers that carry memory-only words"
    asked_words = {w for t in questions for w in re.findall(r"[a-z]+", t.lower())}
    assert not asked_words & MARKERS, asked_words & MARKERS


def test_questions_do_not_depend_on_the_target(kn):
    # the target (the scene the user has in mind) is in the DialogState for the simulated user only
    q = GroundedQuestioner(kn)
    turns = (Turn("What colour is the chair?", "The chair is brown."),)
    for kind in (Q1, Q2):
        for c in (AB_HEAVY, CD_HEAVY, []):
            out = q.ask([DialogState("the chair", turns=turns, round=1, dialog_id="x", target=s.scene_id)
                         for s in SCENES], [kind] * 4, [c] * 4)
            assert len(set(out)) == 1, out
