"""The grounded answer writer: answers come from the memory alone, "I don't know." otherwise."""
import pytest

from ideal.dialog.answerer import GroundedAnswerWriter
from ideal.dialog.types import DONT_KNOW
from ideal.dialog.knowledge import scene_summary as room_summary
from ideal.scenes.memory import build_memory, coarse_memory
from ideal.scenes.types import Scene

from .bedroom import FINE, bedroom
from .rooms import obj


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


def test_free_question_by_relevance_with_the_text_encoder(text_encoder):
    a = GroundedAnswerWriter(embed=text_encoder.embed_backbone)
    unrelated, near_sofa, near_desk = a.answer(
        ["What is the weather like outside today?", "What is next to the sofa?", "What is next to the desk?"],
        [FINE] * 3)
    assert unrelated == DONT_KNOW and near_sofa == DONT_KNOW
    assert "desk" in near_desk.lower() and near_desk != DONT_KNOW


def test_lengths_must_match():
    with pytest.raises(ValueError, match="2 questions but 1 memories"):
        GroundedAnswerWriter().answer(["a?", "b?"], [FINE])


# ------------------------------------------------------------------------------------------------ open questions

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
