"""The grounded answerer and the simulated user: answers come from the memory alone, "I don't know." otherwise.
A coarse user remembers only its own query (no answer adds a class, colour or relation the query lacks); a fine user
the target scene's fine memory, without repeating the dialog, in an order its seed varies."""
import functools
import re
import zlib

import numpy as np
import pytest

from ideal.dialog.answerer import GroundedAnswerWriter, SimulatedAnswerer
from ideal.dialog.aspects import COLORS, KINDS, aspect_key, mentions, question_text
from ideal.dialog.knowledge import SceneKnowledge
from ideal.dialog.types import DONT_KNOW, DialogState, Turn
from ideal.scenes import load_synthetic
from ideal.scenes.colors import PALETTE
from ideal.scenes.memory import build_memory, coarse_memory, room_summary
from ideal.scenes.synthetic import generate
from ideal.scenes.types import Description, Scene, SceneMemory, SceneObject

SCENE_ID = "scene0042_00"


def obj(oid, label, lo, hi, colour):
    c = tuple((a + b) / 2 for a, b in zip(lo, hi))
    return SceneObject(oid, label, c, tuple(b - a for a, b in zip(lo, hi)), PALETTE[colour])


def bedroom(scene_id=SCENE_ID, chair="brown"):
    """A 4 x 4 m bedroom: a white bed against the west wall with a yellow lamp on it, two chairs (one in the
    north-east corner), a black desk by the window."""
    return Scene(scene_id, "Bedroom / Hotel", [
        obj(0, "floor", (0, 0, -0.05), (4, 4, 0), "gray"),
        obj(1, "bed", (0.05, 1, 0), (1.7, 3, 0.5), "white"),
        obj(2, "chair", (3, 3, 0), (3.5, 3.5, 0.9), chair),
        obj(3, "chair", (2, 2, 0), (2.5, 2.5, 0.9), chair),
        obj(4, "lamp", (0.5, 1.5, 0.5), (0.8, 1.8, 0.9), "yellow"),
        obj(5, "window", (3.9, 1, 1), (4, 2, 2), "white"),
        obj(6, "desk", (2.6, 1.6, 0), (3.4, 2.4, 0.75), "black"),
    ])


DESCRIPTION = "the brown chair in the corner next to the window."
MEMORY = build_memory(bedroom(), [Description("d1", SCENE_ID, 2, "chair", DESCRIPTION)])
FINE = MEMORY.fine


@pytest.fixture(scope="module")
def text():
    from ideal.encoders.text import TextEncoder

    return TextEncoder()


def ask(questions, memory, **kw):
    return GroundedAnswerWriter(**kw).answer(list(questions), [memory] * len(questions))


# ------------------------------------------------------------------------------------------------ facts present

def test_room():
    assert ask(["What kind of room is it?"], FINE, support=0) == ["It is a bedroom."]
    assert ask(["Which room is this?"], ["This is an office."]) == ["It is an office."]


@pytest.mark.parametrize("question, expected", [
    ("How many chairs are there in the room?", "There are two chairs in the room."),
    ("How many beds are there in the room?", "There is one bed in the room."),
    ("Is there a lamp in the room?", "Yes, there is one lamp."),
    ("Are there any chairs?", "Yes, there are two chairs."),
    ("What colour is the lamp?", "The lamp is yellow."),
    ("What color is the desk?", "The desk is black."),
    ("Where is the lamp in the room?", "The lamp is on the bed."),
    ("Where is the bed in the room?", "The bed is against a wall."),
    ("Where is the desk?", "The desk is near a window."),
])
def test_facts_present(question, expected):
    assert ask([question], FINE, support=0) == [expected]


def test_two_colours_and_two_places():
    memory = ["There is a red chair.", "There is a red chair near the door.", "There is a blue chair in a corner."]
    assert ask(["What colour is the chair?"], memory) == ["The chairs are red and blue."]
    assert ask(["Where is the chair?"], memory) == ["There is a chair near the door, and another one in a corner."]


def test_near_answers_with_a_memory_sentence_about_the_label():
    (a,) = ask(["What is next to the desk?"], FINE)
    assert a in FINE or a[:1].lower() + a[1:] in FINE
    assert "desk" in a.lower() and "next to" in a.lower()


def test_support_sentence_is_a_description_from_memory():
    (short,) = ask(["What colour is the chair?"], FINE, support=0)
    (long,) = ask(["What colour is the chair?"], FINE, support=1)
    assert short == "The chair is brown."
    # the description the user remembers, capitalised, after the short answer
    assert long == "The chair is brown. The brown chair in the corner next to the window."


def test_plural_question_gets_a_grammatical_answer():
    # "chairs" must be read as the memory's "chair" (_resolve_label's docstring): not "The chairs is brown."
    (colour, place) = ask(["What colour are the chairs?", "Where are the chairs?"], ["There is a brown chair in a corner."],
                          support=0)
    assert colour in ("The chair is brown.", "The chairs are brown.")
    assert place in ("The chair is in a corner.", "The chairs are in a corner.")


def test_count_is_read_from_a_room_summary():
    # what the system reads off the 3D data states the counts ("It has two chairs, ..."; "There is a window.")
    summary = room_summary(bedroom())
    assert summary == ["This is a bedroom.", "It has two chairs, a bed, a desk and a lamp.", "There is a window."]
    assert ask(["How many chairs are there in the room?", "How many desks are there?", "What kind of room is it?"],
               summary, support=0) == ["There are two chairs in the room.", "There is one desk in the room.",
                                       "It is a bedroom."]


def test_count_is_read_from_a_query_that_says_it():
    memory = coarse_memory("There are two chairs in the room, and the lamp is on the bed. It has a desk and a bed.")
    assert ask(["How many chairs are there in the room?", "How many desks are there?", "How many lamps are there?"],
               memory, support=0) == ["There are two chairs in the room.", "There is one desk in the room.", DONT_KNOW]


# ------------------------------------------------------------------------------------------------ facts absent

NO_SOFA_NO_ROOM = [s for s in FINE if not s.startswith("This is")]


@pytest.mark.parametrize("question", [
    "What kind of room is it?",
    "Is there a sofa in the room?",
    "How many sofas are there in the room?",
    "What colour is the sofa?",
    "Where is the sofa in the room?",
    "What is next to the sofa?",
    "Who painted the ceiling?",
    "What is the weather like outside today?",
])
def test_absent_fact_is_dont_know(question):
    assert ask([question], NO_SOFA_NO_ROOM) == [DONT_KNOW]


@pytest.mark.parametrize("question", ["What colour is the bed?", "Where is the chair?"])
def test_fact_not_said_about_a_present_object_is_dont_know(question):
    # the memory names the objects, but not their colour / place
    memory = ["This is a bedroom.", "It has a bed, a chair and a lamp."]
    assert ask([question], memory) == [DONT_KNOW]


def test_count_not_said_is_dont_know():
    # "a lamp near the bed" says there is a lamp, not how many
    assert ask(["How many lamps are there?"], ["There is a lamp near the bed."]) == [DONT_KNOW]


def test_empty_memory_knows_nothing():
    qs = ["What kind of room is it?", "Is there a bed in the room?", "What colour is the bed?", "Tell me more."]
    assert ask(qs, []) == [DONT_KNOW] * 4


def test_room_is_not_guessed_from_an_object_name():
    # the memory never says what room this is; an "office chair" does not make it an office
    assert ask(["What kind of room is it?"], ["There is a black office chair."]) == [DONT_KNOW]


def test_room_from_memory_of_an_unlisted_room_type():
    # a ScanNet "Apartment" with kitchen cabinets: the memory says it is an apartment, not a kitchen
    scene = Scene("scene0100_00", "Apartment", [
        obj(0, "floor", (0, 0, -0.05), (5, 5, 0), "gray"),
        obj(1, "kitchen cabinets", (0, 0, 0), (2, 0.6, 0.9), "white"),
        obj(2, "couch", (2, 3, 0), (4, 4, 0.8), "gray"),
    ])
    memory = build_memory(scene, []).fine
    assert "This is an apartment." in memory
    (a,) = ask(["What kind of room is it?"], memory, support=0)
    assert a in (DONT_KNOW, "It is an apartment.")


def test_free_question_by_relevance_with_the_text_encoder(text):
    a = GroundedAnswerWriter(embed=text.embed_backbone)
    unrelated, near_sofa, near_desk = a.answer(
        ["What is the weather like outside today?", "What is next to the sofa?", "What is next to the desk?"],
        [FINE] * 3)
    assert unrelated == DONT_KNOW and near_sofa == DONT_KNOW
    assert "desk" in near_desk.lower() and near_desk != DONT_KNOW


def test_lengths_must_match():
    with pytest.raises(ValueError, match="2 questions but 1 memories"):
        GroundedAnswerWriter().answer(["a?", "b?"], [FINE])


# ------------------------------------------------------------------------------------------------ SimulatedAnswerer

QUESTIONS = ["What kind of room is it?", "Is there a lamp in the room?", "How many chairs are there in the room?",
             "What colour is the chair?", "Where is the lamp in the room?", "What is next to the desk?",
             "What is the scene id?", f"Is this {SCENE_ID}?", "Which scan is this?", "What is the name of this scene?"]


def state(query="the brown chair", target=SCENE_ID, dialog_id="d0", turns=()):
    return DialogState(query, turns=tuple(turns), target=target, dialog_id=dialog_id, round=len(turns))


@pytest.mark.parametrize("granularity", ["coarse", "fine"])
def test_answers_never_contain_the_scene_id(granularity, text):
    for embed in (None, text.embed_backbone):
        user = SimulatedAnswerer(GroundedAnswerWriter(embed=embed), {SCENE_ID: MEMORY}, granularity)
        answers = user.answer([state() for _ in QUESTIONS], QUESTIONS)
        assert len(answers) == len(QUESTIONS)
        for a in answers:
            assert SCENE_ID not in a and "0042" not in a and "scene0" not in a.lower(), a


def two_scenes():
    # the same room twice but for the chairs' colour
    return {SCENE_ID: build_memory(bedroom(SCENE_ID, "brown"), []),
            "scene0007_00": build_memory(bedroom("scene0007_00", "blue"), [])}


def test_noise_zero_answers_from_the_target():
    user = SimulatedAnswerer(GroundedAnswerWriter(support=0), two_scenes(), "fine", noise=0.0)
    states = [state(dialog_id=str(i)) for i in range(10)]
    assert user.answer(states, ["What colour is the chair?"] * 10) == ["The chair is brown."] * 10
    other = [state(target="scene0007_00", dialog_id=str(i)) for i in range(3)]
    assert user.answer(other, ["What colour is the chair?"] * 3) == ["The chair is blue."] * 3


def test_noise_one_answers_from_another_scene():
    user = SimulatedAnswerer(GroundedAnswerWriter(support=0), two_scenes(), "fine", noise=1.0)
    states = [state(dialog_id=str(i)) for i in range(10)]
    assert user.answer(states, ["What colour is the chair?"] * 10) == ["The chair is blue."] * 10


def test_noise_half_is_a_mix_and_repeats_with_the_seed():
    states = [state(dialog_id=f"d{i}") for i in range(40)]
    qs = ["What colour is the chair?"] * 40

    def run(seed):
        return SimulatedAnswerer(GroundedAnswerWriter(support=0), two_scenes(), "fine", noise=0.5, seed=seed).answer(states, qs)

    first = run(0)
    assert first == run(0)
    assert set(first) == {"The chair is brown.", "The chair is blue."}
    assert 5 <= first.count("The chair is blue.") <= 35  # 40 fair coins: P(outside) < 1e-4


def test_does_not_repeat_what_the_dialog_already_holds():
    user = SimulatedAnswerer(GroundedAnswerWriter(), {SCENE_ID: MEMORY}, "fine")
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
    with pytest.raises(ValueError, match="noise"):
        SimulatedAnswerer(GroundedAnswerWriter(), memories, noise=1.5)
    user = SimulatedAnswerer(GroundedAnswerWriter(), memories)
    with pytest.raises(ValueError, match="no target"):
        user.answer([state(target=None)], ["What kind of room is it?"])
    with pytest.raises(KeyError, match="scene9999_00"):
        user.memory_of(state(target="scene9999_00"))
    # a coarse user needs no target: it remembers its query
    coarse = SimulatedAnswerer(GroundedAnswerWriter(), memories, "coarse")
    assert coarse.memory_of(state(query="the brown chair. it is by the desk", target=None)) == \
        ["The brown chair.", "It is by the desk."]


def test_coarse_memory_is_what_the_coarse_user_knows():
    # the query says kitchen, the target's fine memory bedroom: each user answers from its own memory
    memories = {SCENE_ID: SceneMemory(SCENE_ID, ["This is a bedroom.", "The chair is blue."])}
    st = state(query="This is a kitchen. The brown chair is by the table.")
    q = ["What kind of room is it?", "What colour is the chair?", "Is there a table in the room?"]
    coarse = SimulatedAnswerer(GroundedAnswerWriter(support=0), memories, "coarse")
    assert coarse.memory_of(st) == coarse_memory(st.query) == ["This is a kitchen.", "The brown chair is by the table."]
    assert coarse.answer([st] * 3, q) == ["It is a kitchen.", "The chair is brown.", "Yes, there is a table."]
    fine = SimulatedAnswerer(GroundedAnswerWriter(support=0), memories, "fine")
    assert fine.answer([st] * 3, q) == ["It is a bedroom.", "The chair is blue.", DONT_KNOW]


def test_coarse_user_knows_nothing_beyond_its_query():
    st = state(query="the brown chair in the corner.")
    user = SimulatedAnswerer(GroundedAnswerWriter(), {SCENE_ID: MEMORY}, "coarse")
    # the target's fine memory knows all of these; the query does not
    qs = ["What kind of room is it?", "Is there a lamp in the room?", "How many chairs are there in the room?",
          "What colour is the desk?", "Where is the lamp in the room?", "What is next to the desk?"]
    assert all(ask([x], FINE) != [DONT_KNOW] for x in qs)
    assert user.answer([st] * len(qs), qs) == [DONT_KNOW] * len(qs)
    assert user.answer([st], ["What colour is the chair?"]) == ["The chair is brown. The brown chair in the corner."]


# ------------------------------------------------------------------------------------------------ fine memory

def test_fine_user_remembers_the_target_fine_memory_minus_the_dialog():
    user = SimulatedAnswerer(GroundedAnswerWriter(), {SCENE_ID: MEMORY}, "fine")
    assert sorted(user.memory_of(state(query="a room"))) == sorted(FINE)
    said = "There is a yellow lamp on the bed."
    assert said in FINE
    st = state(query="the brown chair in the corner next to the window.", turns=[Turn("Where is the lamp?", said)])
    assert sorted(user.memory_of(st)) == sorted(m for m in FINE if m not in (said, DESCRIPTION))


WHAT_ELSE = question_text("explore:")


def sentences(answer):
    return [s.strip() for s in re.split(r"(?<=\.)\s+", answer) if s.strip()]


def test_fine_answers_come_from_the_target_and_never_repeat_the_dialog():
    user = SimulatedAnswerer(GroundedAnswerWriter(support=1), two_scenes(), "fine", seed=1)
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
        return SimulatedAnswerer(GroundedAnswerWriter(support=1), {SCENE_ID: MEMORY}, "fine", seed=seed).answer(
            states, [WHAT_ELSE] * len(states))

    by_seed = {seed: run(seed) for seed in range(6)}
    assert all(run(seed) == answers for seed, answers in by_seed.items())  # a fixed seed is reproducible
    assert len({tuple(a) for a in by_seed.values()}) > 1  # different seeds: different remembered sentences
    low = {m.lower() for m in FINE}
    assert all(s.lower() in low for answers in by_seed.values() for a in answers for s in sentences(a))
    # the same seed, the same dialog, a later round: the order is drawn again
    later = [st.with_(turns=(Turn("What kind of room is it?", "It is a bedroom."),), round=1) for st in states]
    user = SimulatedAnswerer(GroundedAnswerWriter(support=1), {SCENE_ID: MEMORY}, "fine", seed=0)
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
def synthetic(tmp_path_factory):
    root = generate(tmp_path_factory.mktemp("syn"), n_scenes=12, seed=3, progress=False)
    return load_synthetic(root, "all", points_per_object=0)


@functools.lru_cache(maxsize=None)
def _named(text, vocabulary):
    """The object classes (of `vocabulary`), colours and relation words `text` names."""
    low = text.lower().replace("grey", "gray")
    return ({lab for lab in vocabulary if mentions(low, lab)}
            | {c for c in COLORS if re.search(rf"\b{c}\b", low)}
            | {w for w in RELATION_WORDS if re.search(rf"\b{w}\b", low)})


def hashed_words(texts):
    """A cheap stand-in for the text encoder: L2-normalised bags of hashed words."""
    out = np.zeros((len(texts), 512), np.float32)
    for i, t in enumerate(texts):
        for w in re.findall(r"[a-z]+", t.lower()):
            out[i, zlib.crc32(w.encode()) % 512] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


@pytest.mark.parametrize("embed", ["overlap", "hashed-words", "text-encoder"])
def test_coarse_answers_never_name_what_the_query_does_not(synthetic, embed, request):
    embed_fn = {"overlap": lambda: None, "hashed-words": lambda: hashed_words,
                "text-encoder": lambda: request.getfixturevalue("text").embed_backbone}[embed]()
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
    user = SimulatedAnswerer(GroundedAnswerWriter(embed=embed_fn, support=2), synthetic.memories, "coarse")
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


def test_open_detail_probe_and_explore_answer_from_memory_sentences():
    memory = ["a brown chair. it is next to the desk.", "the lamp is on the desk.", "There is a red chair in a corner.",
              "a green sofa faces the window."]
    a = GroundedAnswerWriter(embed=None, support=2)
    # detail: sentences about the named object, descriptions before facts
    (ans,) = a.answer(["Can you describe the chair and what is around it in more detail?"], [memory])
    assert ans == "A brown chair. it is next to the desk. There is a red chair in a corner."
    # explore: sentences about anything but the named objects
    (ans,) = a.answer(["Apart from the chair and the desk, what else is in the room?"], [memory])
    assert ans == "A green sofa faces the window."
    (ans,) = a.answer(["Can you describe the bed and what is around it in more detail?"], [memory])
    assert ans == DONT_KNOW
