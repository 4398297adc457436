"""The semantic-level fusion s (p̂3): CoT in two steps (extract_objects -> reconstruct), one step for w/o CoT, and
the texts the baselines retrieve on (the whole dialog, the query with the answers)."""
from ideal.dialog.answerer import GroundedAnswerWriter, answer_place, answer_room
from ideal.dialog.summary import (GroundedSummariser, ObjectNote, answers_segments, dialog_segments,
                                  extract_objects, one_step, reconstruct, responses, sentences)
from ideal.dialog.types import DONT_KNOW, DialogState, Turn

VOCAB = ["bed", "chair", "desk", "lamp", "window", "sofa"]
QUERY = "The brown chair is next to the desk."
# a hand-written dialog: the query, then what the user said (in the forms the memory sentences take)
TEXTS = [QUERY, "There is a red lamp in a corner.", "There is a window.", "The lamp is red."]


def state(turns, query=QUERY):
    return DialogState(query, turns=tuple(Turn(q, a) for q, a in turns), round=len(turns))


# ------------------------------------------------------------------------------------------------ step 1

def test_extract_objects_in_order_of_first_mention_with_what_is_said_of_them():
    room, notes = extract_objects(TEXTS, VOCAB)
    assert room == ""  # nothing says what the room is
    assert notes == [ObjectNote("chair", ["brown"], [], ["desk"]), ObjectNote("desk", [], [], ["chair"]),
                     ObjectNote("lamp", ["red"], ["in a corner"], []), ObjectNote("window")]


def test_extract_objects_keeps_only_vocabulary_classes_and_the_two_most_said_colours():
    room, notes = extract_objects(["The sofa is gray.", "There is a blue sofa.", "The sofa is gray.",
                                   "A white sofa.", "There is a plant."], VOCAB)
    assert notes == [ObjectNote("sofa", ["gray", "blue"], [], [])]  # no plant: not a class of the gallery


def test_extract_objects_reads_the_room_type():
    room, _ = extract_objects([QUERY, "This is an office."], VOCAB)
    assert room == "office"


def test_first_mention_is_of_the_object_not_of_a_longer_word():
    # "bedroom" is not a mention of the bed: the bed comes after the chair and the desk
    _, notes = extract_objects(["In the bedroom, the brown chair is next to the desk.", "There is a white bed."],
                               VOCAB)
    assert [n.label for n in notes] == ["chair", "desk", "bed"]


def test_extract_objects_reads_the_grounded_answerers_answers():
    # what the simulated user says to "What kind of room is it?" and "Where is the bed in the room?"
    memory = ["This is a bedroom.", "There is a white bed against a wall."]
    said = [answer_room(memory), answer_place("bed", memory)]
    assert said == ["It is a bedroom.", "The bed is against a wall."]
    room, notes = extract_objects(["the white bed", *said], VOCAB)
    assert room == "bedroom"
    assert notes == [ObjectNote("bed", ["white"], ["against a wall"], [])]


# ------------------------------------------------------------------------------------------------ step 2

def test_reconstruct_exact_text():
    notes = [ObjectNote("chair", ["brown", "black"], ["near a window"], ["desk", "lamp"]), ObjectNote("desk"),
             ObjectNote("armchair", [], ["in a corner", "on the rug"], []), ObjectNote("lamp", [], [], ["bed"])]
    assert reconstruct("office", notes) == (
        "The room is an office. There is a brown chair near a window, next to the desk and the lamp. "
        "There is a desk. There is an armchair in a corner, on the rug. There is a lamp next to the bed.")
    assert reconstruct("bedroom", []) == "The room is a bedroom."
    assert reconstruct("", [ObjectNote("bed", ["white"])]) == "There is a white bed."
    assert reconstruct("", []) == ""


# ------------------------------------------------------------------------------------------------ the summariser

TURNS = [("What colour is the lamp?", "The lamp is red. There is a red lamp in a corner."),
         ("Is there a sofa in the room?", DONT_KNOW),
         ("Is there a window in the room?", "Yes, there is a window."),
         ("What kind of room is it?", "Not sure."),
         ("What is next to the lamp?", "I do not know.")]


def test_cot_summary_is_the_reconstruction_of_the_extracted_objects():
    (s,) = GroundedSummariser(VOCAB).summarise([state(TURNS)])
    assert s == ("There is a brown chair next to the desk. There is a desk next to the chair. "
                 "There is a red lamp in a corner. There is a window.")
    assert s == reconstruct(*extract_objects(responses(state(TURNS)), VOCAB))


def test_cot_summary_of_a_dialog_that_names_the_room():
    (s,) = GroundedSummariser(VOCAB).summarise([state([("What else is in the room?", "This is an office.")])])
    assert s == "The room is an office. There is a brown chair next to the desk. There is a desk next to the chair."


def test_without_cot_the_summary_is_one_step():
    (s,) = GroundedSummariser(VOCAB, cot=False).summarise([state(TURNS)])
    # the responses' sentences in order, deduplicated, unknowns dropped, no object extraction
    assert s == f"{QUERY} The lamp is red. There is a red lamp in a corner. Yes, there is a window."
    assert s == one_step(responses(state(TURNS)))
    assert one_step(["a chair", "It is brown!", "a chair"]) == "a chair. It is brown!"


def test_unknown_answers_are_dropped():
    informative = [t for t in TURNS if t[1] not in (DONT_KNOW, "Not sure.", "I do not know.")]
    for cot in (True, False):
        summariser = GroundedSummariser(VOCAB, cot=cot)
        assert summariser.summarise([state(TURNS)]) == summariser.summarise([state(informative)])
    assert responses(state(TURNS)) == [QUERY, "The lamp is red. There is a red lamp in a corner.",
                                       "Yes, there is a window."]


def test_without_any_object_the_summary_falls_back_to_one_step():
    (s,) = GroundedSummariser(VOCAB).summarise([state([("What is there?", "Something blue.")], query="a thing")])
    assert s == "a thing. Something blue."
    assert GroundedSummariser(VOCAB).summarise([]) == []


def test_grounded_answers_to_the_questioner_survive_the_summary():
    memory = ["There is a bed in the room.", "There are two chairs in the room.", "There is a window."]
    answers = GroundedAnswerWriter(support=0).answer(
        ["Is there a bed in the room?", "Are there any chairs?", "Is there a window in the room?"], [memory] * 3)
    assert answers == ["Yes, there is one bed.", "Yes, there are two chairs.", "Yes, there is a window."]
    (s,) = GroundedSummariser(VOCAB).summarise([state(list(zip(["q1", "q2", "q3"], answers)), query="a room")])
    assert s == "There is a bed. There is a chair. There is a window."


# ------------------------------------------------------------------------------------------------ baselines' texts

def test_texts_of_the_baselines():
    st = state(TURNS[:2])
    assert dialog_segments(st) == [QUERY, "What colour is the lamp?",
                                   "The lamp is red. There is a red lamp in a corner.",
                                   "Is there a sofa in the room?", DONT_KNOW]
    # SUM: the query and the informative answers, one segment each
    assert answers_segments(st) == responses(st) == [QUERY, "The lamp is red. There is a red lamp in a corner."]
    assert sentences("One. Two!  Three?") == ["One.", "Two!", "Three?"]
