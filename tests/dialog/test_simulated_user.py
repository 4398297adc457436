"""The simulated user (SimulatedAnswerer): a coarse user remembers only its own query (no answer adds a class,
colour or relation the query lacks); a fine user the target scene's fine memory, without repeating the dialog, in
an order its seed varies; an unreliable user answers some questions wrongly (another object or colour, another
scene) or not at all."""
import functools
import re

import pytest

from ideal.dialog.answerer import GroundedAnswerWriter, SimulatedAnswerer
from ideal.dialog.aspects import COLORS, KINDS, aspect_key, mentions, question_text
from ideal.dialog.knowledge import SceneKnowledge
from ideal.dialog.types import DONT_KNOW, DialogState, Turn
from ideal.scenes import load_synthetic
from ideal.scenes.memory import build_memory, coarse_memory
from ideal.scenes.types import SceneMemory

from .bedroom import DESCRIPTION, FINE, MEMORY, SCENE_ID, bedroom
from .fakes import hashed_words


# ------------------------------------------------------------------------------------------------ SimulatedAnswerer

QUESTIONS = ["What kind of room is it?", "Is there a lamp in the room?", "How many chairs are there in the room?",
             "What colour is the chair?", "Where is the lamp in the room?", "What is next to the desk?",
             "What is the scene id?", f"Is this {SCENE_ID}?", "Which scan is this?", "What is the name of this scene?"]


def state(query="the brown chair", target=SCENE_ID, dialog_id="d0", turns=()):
    return DialogState(query, turns=tuple(turns), target=target, dialog_id=dialog_id, round=len(turns))


@pytest.mark.parametrize("granularity", ["coarse", "fine"])
def test_answers_never_contain_the_scene_id(granularity, text_encoder):
    for embed in (None, text_encoder.embed_backbone):
        user = SimulatedAnswerer(GroundedAnswerWriter(embed=embed), {SCENE_ID: MEMORY}, granularity)
        answers = user.answer([state() for _ in QUESTIONS], QUESTIONS)
        assert len(answers) == len(QUESTIONS)
        for a in answers:
            assert SCENE_ID not in a and "0042" not in a and "scene0" not in a.lower(), a


def two_scenes():
    # the same room twice but for the chairs' colour
    return {SCENE_ID: build_memory(bedroom(SCENE_ID, chairs="brown"), []),
            "scene0007_00": build_memory(bedroom("scene0007_00", chairs="blue"), [])}


def test_an_honest_user_answers_from_the_target():
    user = SimulatedAnswerer(GroundedAnswerWriter(support=0), two_scenes(), "fine", varied=False)
    states = [state(dialog_id=str(i)) for i in range(10)]
    assert user.answer(states, ["What colour is the chair?"] * 10) == ["The chair is brown."] * 10
    other = [state(target="scene0007_00", dialog_id=str(i)) for i in range(3)]
    assert user.answer(other, ["What colour is the chair?"] * 3) == ["The chair is blue."] * 3


def test_every_answer_wrong_is_one_of_the_three_ways():
    user = SimulatedAnswerer(GroundedAnswerWriter(support=0), two_scenes(), "fine", wrong_answers=1.0, varied=False)
    states = [state(dialog_id=f"d{i}") for i in range(60)]
    answers = user.answer(states, ["What colour is the chair?"] * 60)
    plans = [user.plan(st) for st in states]
    assert set(plans) == set(SimulatedAnswerer.WRONG_KINDS)
    for p, a in zip(plans, answers):
        assert a != "The chair is brown.", (p, a)
        if p == "other scene":  # the other room's chairs are blue
            assert a == "The chair is blue."
        elif p == "color":  # the honest answer with another colour
            assert re.fullmatch(r"The chair is (\w+)\.", a) and a.split()[-1][:-1] in COLORS
        else:  # a remembered sentence about something other than the chair
            assert not mentions(a, "chair") and a != DONT_KNOW


def test_unknown_and_wrong_shares_repeat_with_the_seed():
    states = [state(dialog_id=f"d{i}") for i in range(200)]
    qs = ["What colour is the chair?"] * 200

    def run(seed, **kw):
        return SimulatedAnswerer(GroundedAnswerWriter(support=0), two_scenes(), "fine", seed=seed, **kw, varied=False).answer(states, qs)

    first = run(0, unknown_answers=0.3)
    assert first == run(0, unknown_answers=0.3) and first != run(1, unknown_answers=0.3)
    assert set(first) == {"The chair is brown.", DONT_KNOW}
    assert 30 <= first.count(DONT_KNOW) <= 90  # 200 draws at 0.3: P(outside) < 1e-4
    mixed = run(0, wrong_answers=0.2, unknown_answers=0.2)
    honest = mixed.count("The chair is brown.")
    assert 80 <= honest <= 160 and 15 <= mixed.count(DONT_KNOW) <= 65


def test_does_not_repeat_what_the_dialog_already_holds():
    user = SimulatedAnswerer(GroundedAnswerWriter(), {SCENE_ID: MEMORY}, "fine", varied=False)
    q = "What is next to the desk?"
    (first,) = user.answer([state()], [q])
    assert first != DONT_KNOW
    (second,) = user.answer([state(turns=[Turn(q, first)])], [q])
    assert second != first
    # a memory sentence the query already says is not said back either
    (a,) = user.answer([state(query=DESCRIPTION)], ["What is next to the chair?"])
    assert DESCRIPTION not in a.lower()
    assert a != DONT_KNOW and "chair" in a.lower()


def test_simulated_user_errors():
    memories = {SCENE_ID: MEMORY}
    with pytest.raises(ValueError, match="coarse"):
        SimulatedAnswerer(GroundedAnswerWriter(), memories, "medium")
    with pytest.raises(ValueError, match="wrong_answers"):
        SimulatedAnswerer(GroundedAnswerWriter(), memories, wrong_answers=1.5)
    with pytest.raises(ValueError, match="must be <= 1"):
        SimulatedAnswerer(GroundedAnswerWriter(), memories, wrong_answers=0.6, unknown_answers=0.6)
    user = SimulatedAnswerer(GroundedAnswerWriter(), memories, varied=False)
    with pytest.raises(ValueError, match="no target"):
        user.answer([state(target=None)], ["What kind of room is it?"])
    with pytest.raises(KeyError, match="scene9999_00"):
        user.memory_of(state(target="scene9999_00"))
    # a coarse user needs no target: it remembers its query
    coarse = SimulatedAnswerer(GroundedAnswerWriter(), memories, "coarse", varied=False)
    assert coarse.memory_of(state(query="the brown chair. it is by the desk", target=None)) == \
        ["The brown chair.", "It is by the desk."]


def test_coarse_memory_is_what_the_coarse_user_knows():
    # the query says kitchen, the target's fine memory bedroom: each user answers from its own memory
    memories = {SCENE_ID: SceneMemory(SCENE_ID, ["This is a bedroom.", "The chair is blue."])}
    st = state(query="This is a kitchen. The brown chair is by the table.")
    q = ["What kind of room is it?", "What colour is the chair?", "Is there a table in the room?"]
    coarse = SimulatedAnswerer(GroundedAnswerWriter(support=0), memories, "coarse", varied=False)
    assert coarse.memory_of(st) == coarse_memory(st.query) == ["This is a kitchen.", "The brown chair is by the table."]
    assert coarse.answer([st] * 3, q) == ["It is a kitchen.", "The chair is brown.", "Yes, there is a table."]
    fine = SimulatedAnswerer(GroundedAnswerWriter(support=0), memories, "fine", varied=False)
    assert fine.answer([st] * 3, q) == ["It is a bedroom.", "The chair is blue.", DONT_KNOW]


def test_coarse_user_knows_nothing_beyond_its_query():
    st = state(query="the brown chair in the corner.")
    user = SimulatedAnswerer(GroundedAnswerWriter(), {SCENE_ID: MEMORY}, "coarse", varied=False)
    # the target's fine memory knows all of these; the query does not
    qs = ["What kind of room is it?", "Is there a lamp in the room?", "How many chairs are there in the room?",
          "What colour is the desk?", "Where is the lamp in the room?", "What is next to the desk?"]
    assert all(GroundedAnswerWriter().answer([x], [FINE]) != [DONT_KNOW] for x in qs)
    assert user.answer([st] * len(qs), qs) == [DONT_KNOW] * len(qs)
    assert user.answer([st], ["What colour is the chair?"]) == ["The chair is brown. The brown chair in the corner."]


# ------------------------------------------------------------------------------------------------ fine memory

def test_fine_user_remembers_the_target_fine_memory_minus_the_dialog():
    user = SimulatedAnswerer(GroundedAnswerWriter(), {SCENE_ID: MEMORY}, "fine", varied=False)
    assert sorted(user.memory_of(state(query="a room"))) == sorted(FINE)
    said = "There is a yellow lamp on the bed."
    assert said in FINE
    st = state(query="the brown chair in the corner next to the window.", turns=[Turn("Where is the lamp?", said)])
    assert sorted(user.memory_of(st)) == sorted(m for m in FINE if m not in (said, DESCRIPTION))


WHAT_ELSE = question_text("explore:")


def sentences(answer):
    return [s.strip() for s in re.split(r"(?<=\.)\s+", answer) if s.strip()]


def test_fine_answers_come_from_the_target_and_never_repeat_the_dialog():
    user = SimulatedAnswerer(GroundedAnswerWriter(support=1), two_scenes(), "fine", seed=1, varied=False)
    low = {m.lower() for m in two_scenes()[SCENE_ID].fine}
    st, said = state(query="a room"), []
    for _ in range(30):
        (a,) = user.answer([st], [WHAT_ELSE])
        if a == DONT_KNOW:
            break
        for s in sentences(a):
            assert s.lower() in low, s  # the brown-chair room's own memory, never the blue one's
            assert s.lower() not in said, (s, said)
            said.append(s.lower())
        st = st.with_(turns=st.turns + (Turn(WHAT_ELSE, a),), round=st.round + 1)
    # nothing named, so everything it remembers is "else": one sentence a round, each once, then it has run out
    assert a == DONT_KNOW and len(said) == len(low)


def test_seeds_change_what_is_remembered_first():
    states = [state(query="a room", dialog_id=f"d{i}") for i in range(5)]

    def run(seed):
        return SimulatedAnswerer(GroundedAnswerWriter(support=1), {SCENE_ID: MEMORY}, "fine", seed=seed, varied=False).answer(
            states, [WHAT_ELSE] * len(states))

    by_seed = {seed: run(seed) for seed in range(6)}
    assert all(run(seed) == answers for seed, answers in by_seed.items())  # a fixed seed is reproducible
    assert len({tuple(a) for a in by_seed.values()}) > 1  # different seeds: different remembered sentences
    low = {m.lower() for m in FINE}
    assert all(s.lower() in low for answers in by_seed.values() for a in answers for s in sentences(a))
    # the same seed, the same dialog, a later round: the order is drawn again
    later = [st.with_(turns=(Turn("What kind of room is it?", "It is a bedroom."),), round=1) for st in states]
    user = SimulatedAnswerer(GroundedAnswerWriter(support=1), {SCENE_ID: MEMORY}, "fine", seed=0, varied=False)
    assert user.answer(later, [WHAT_ELSE] * 5) == user.answer(later, [WHAT_ELSE] * 5)


# ------------------------------------------------------------------------------------------------ coarse: no leakage

# Words that state where something is: an answer that names one the query lacks adds information.
RELATION_WORDS = ("next to", "near", "nearest", "beside", "between", "left", "right", "on top", "under", "above",
                  "below", "behind", "in front", "facing", "close", "closest", "farthest", "corner", "wall", "against",
                  "middle", "center", "by the", "window", "door", "along", "hangs", "mounted", "on the", "in the corner")

HAND_QUERIES = [
    "the brown chair is by the desk, and it faces the window",
    "This is a kitchen. The black table is next to the fridge; a grey stool which is under the table.",
    "It has two chairs, a bed and a lamp. The lamp is on the nightstand.",
    "there are three pillows in the room. the red pillow is on the bed, and it is closest to the door.",
    "a white cabinet", "the sofa", "a room", "",
]


@pytest.fixture(scope="module")
def synthetic(bench_root):
    return load_synthetic(bench_root, "all", points_per_object=0)


@functools.lru_cache(maxsize=None)
def _named(text, vocabulary):
    """The object classes (of `vocabulary`), colours and relation words `text` names."""
    low = text.lower().replace("grey", "gray")
    return ({lab for lab in vocabulary if mentions(low, lab)}
            | {c for c in COLORS if re.search(rf"\b{c}\b", low)}
            | {w for w in RELATION_WORDS if re.search(rf"\b{w}\b", low)})


@pytest.mark.parametrize("embed", ["overlap", "hashed-words", "text-encoder"])
def test_coarse_answers_never_name_what_the_query_does_not(synthetic, embed, request):
    embed_fn = {"overlap": lambda: None, "hashed-words": lambda: functools.partial(hashed_words, dim=512),
                "text-encoder": lambda: request.getfixturevalue("text_encoder").embed_backbone}[embed]()
    scenes = list(synthetic.scenes.values())
    vocabulary = tuple(sorted(set(SceneKnowledge(scenes).labels) | {"sofa", "piano", "stool", "nightstand", "pillow"}))
    questions = [question_text("room"), question_text("explore:")]
    questions += [question_text(aspect_key(k, lab)) for k in KINDS if k not in ("room",) for lab in vocabulary]
    questions += [question_text("explore:" + ",".join(vocabulary[i:i + 2])) for i in range(0, len(vocabulary), 2)]
    questions += ["Tell me more about the room.", "What is on the bed?", "Is there anything next to the desk?"]
    queries = [d.text for d in synthetic.descriptions] + HAND_QUERIES
    assert len(queries) > 200 and len(vocabulary) > 20 and len(questions) > 150
    targets = [d.scene_id for d in synthetic.descriptions] + [scenes[0].scene_id] * len(HAND_QUERIES)
    # the users hold every scene's fine memory: a coarse one must not use it
    user = SimulatedAnswerer(GroundedAnswerWriter(embed=embed_fn, support=2), synthetic.memories, "coarse", varied=False)
    states = [DialogState(q, dialog_id=str(i), target=t) for i, (q, t) in enumerate(zip(queries, targets))]
    # one batch: the answerer embeds every text once
    pairs = [(st, question) for question in questions for st in states]
    said = 0
    for (st, question), a in zip(pairs, user.answer([st for st, _ in pairs], [q for _, q in pairs])):
        if a == DONT_KNOW:
            continue
        said += 1
        leaked = _named(a, vocabulary) - _named(st.query, vocabulary)
        assert not leaked, (question, st.query, a, leaked)
    # most questions are about what the query does not say, but many are answered from it
    assert said > 5 * len(queries)


def test_the_user_says_its_answers_in_its_own_words():
    """A varied user says what the writer would, in words drawn per seed, dialog and round: templates and synonyms
    ("beside" / "next to" / "right by", "grey" / "gray", "looks"), and "I don't know" several ways."""
    from ideal.dialog.answerer import UNKNOWN_SAYINGS, canonical
    from ideal.dialog.reading import colors_of, places_of
    from ideal.dialog.types import is_unknown

    states = [state(dialog_id=f"d{i}") for i in range(40)]
    plain = SimulatedAnswerer(GroundedAnswerWriter(support=0), two_scenes(), "fine", varied=False)
    varied = SimulatedAnswerer(GroundedAnswerWriter(support=0), two_scenes(), "fine")
    for q in ("What colour is the chair?", "Where is the bed in the room?", "What kind of room is it?"):
        said, words = plain.answer(states, [q] * 40), varied.answer(states, [q] * 40)
        assert len(set(words)) >= 3 and set(words) != set(said), (q, set(words))
        assert words == varied.answer(states, [q] * 40)  # the same seed says the same
        for a, w in zip(said, words):
            assert colors_of("chair", [w]) == colors_of("chair", [a])  # the neutral reader reads either
            assert places_of("bed", [w]) == places_of("bed", [a])
    unknown = SimulatedAnswerer(GroundedAnswerWriter(support=0), two_scenes(), "fine", unknown_answers=1.0)
    says = unknown.answer(states, ["What colour is the chair?"] * 40)
    assert set(says) == set(UNKNOWN_SAYINGS) and all(is_unknown(a) for a in says)
    assert canonical("The bed is beside the desk, up against the wall.") == "the bed is next to the desk, against a wall."
