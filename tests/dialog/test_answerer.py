"""The grounded answerer and the simulated user: answers come from the memory alone, "I don't know." otherwise."""
import pytest

from ideal.dialog.answerer import GroundedAnswerer, SimulatedUser
from ideal.dialog.types import DONT_KNOW, Answerer, DialogState, Turn
from ideal.scenes.colors import PALETTE
from ideal.scenes.memory import build_memory
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
    return GroundedAnswerer(**kw).answer(list(questions), [memory] * len(questions))


# ------------------------------------------------------------------------------------------------ facts present

def test_is_an_answerer():
    assert isinstance(GroundedAnswerer(), Answerer)


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


def test_count_is_read_from_coarse_memory():
    # coarse memory states the counts ("It has two chairs, ..."; "There is a window.")
    coarse = MEMORY.coarse
    assert coarse == ["This is a bedroom.", "It has two chairs, a bed, a desk and a lamp.", "There is a window."]
    assert ask(["How many chairs are there in the room?"], coarse, support=0) == ["There are two chairs in the room."]


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
    a = GroundedAnswerer(embed=text.embed_backbone)
    unrelated, near_sofa, near_desk = a.answer(
        ["What is the weather like outside today?", "What is next to the sofa?", "What is next to the desk?"],
        [FINE] * 3)
    assert unrelated == DONT_KNOW and near_sofa == DONT_KNOW
    assert "desk" in near_desk.lower() and near_desk != DONT_KNOW


def test_lengths_must_match():
    with pytest.raises(ValueError, match="2 questions but 1 memories"):
        GroundedAnswerer().answer(["a?", "b?"], [FINE])


# ------------------------------------------------------------------------------------------------ SimulatedUser

QUESTIONS = ["What kind of room is it?", "Is there a lamp in the room?", "How many chairs are there in the room?",
             "What colour is the chair?", "Where is the lamp in the room?", "What is next to the desk?",
             "What is the scene id?", f"Is this {SCENE_ID}?", "Which scan is this?", "What is the name of this scene?"]


def state(query="the brown chair", target=SCENE_ID, dialog_id="d0", turns=()):
    return DialogState(query, turns=tuple(turns), target=target, dialog_id=dialog_id, round=len(turns))


@pytest.mark.parametrize("granularity", ["coarse", "fine"])
def test_answers_never_contain_the_scene_id(granularity, text):
    for embed in (None, text.embed_backbone):
        user = SimulatedUser(GroundedAnswerer(embed=embed), {SCENE_ID: MEMORY}, granularity)
        answers = user.answer([state() for _ in QUESTIONS], QUESTIONS)
        assert len(answers) == len(QUESTIONS)
        for a in answers:
            assert SCENE_ID not in a and "0042" not in a and "scene0" not in a.lower(), a


def two_scenes():
    # the same room twice but for the chairs' colour
    return {SCENE_ID: build_memory(bedroom(SCENE_ID, "brown"), []),
            "scene0007_00": build_memory(bedroom("scene0007_00", "blue"), [])}


def test_noise_zero_answers_from_the_target():
    user = SimulatedUser(GroundedAnswerer(support=0), two_scenes(), "fine", noise=0.0)
    states = [state(dialog_id=str(i)) for i in range(10)]
    assert user.answer(states, ["What colour is the chair?"] * 10) == ["The chair is brown."] * 10
    other = [state(target="scene0007_00", dialog_id=str(i)) for i in range(3)]
    assert user.answer(other, ["What colour is the chair?"] * 3) == ["The chair is blue."] * 3


def test_noise_one_answers_from_another_scene():
    user = SimulatedUser(GroundedAnswerer(support=0), two_scenes(), "fine", noise=1.0)
    states = [state(dialog_id=str(i)) for i in range(10)]
    assert user.answer(states, ["What colour is the chair?"] * 10) == ["The chair is blue."] * 10


def test_noise_half_is_a_mix_and_repeats_with_the_seed():
    states = [state(dialog_id=f"d{i}") for i in range(40)]
    qs = ["What colour is the chair?"] * 40

    def run(seed):
        return SimulatedUser(GroundedAnswerer(support=0), two_scenes(), "fine", noise=0.5, seed=seed).answer(states, qs)

    first = run(0)
    assert first == run(0)
    assert set(first) == {"The chair is brown.", "The chair is blue."}
    assert 5 <= first.count("The chair is blue.") <= 35  # 40 fair coins: P(outside) < 1e-4


def test_does_not_repeat_what_the_dialog_already_holds():
    user = SimulatedUser(GroundedAnswerer(), {SCENE_ID: MEMORY}, "fine")
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
        SimulatedUser(GroundedAnswerer(), memories, "medium")
    with pytest.raises(ValueError, match="noise"):
        SimulatedUser(GroundedAnswerer(), memories, noise=1.5)
    user = SimulatedUser(GroundedAnswerer(), memories)
    with pytest.raises(ValueError, match="no target"):
        user.answer([state(target=None)], ["What kind of room is it?"])
    with pytest.raises(KeyError, match="scene9999_00"):
        user.memory_of("scene9999_00")
    assert user.memory_of(SCENE_ID) is MEMORY.fine


def test_coarse_memory_is_what_the_coarse_user_knows():
    memories = {SCENE_ID: SceneMemory(SCENE_ID, ["This is a kitchen."], ["This is a bedroom."])}
    q = ["What kind of room is it?"]
    assert SimulatedUser(GroundedAnswerer(), memories, "coarse").answer([state()], q) == ["It is a kitchen."]
    assert SimulatedUser(GroundedAnswerer(), memories, "fine").answer([state()], q) == ["It is a bedroom."]
