"""The CoT summary (s_i, scored as p3), the concatenated dialog (w/o CoT) and the enriched query (ū, p2)."""
from ideal.dialog.answerer import GroundedAnswerer
from ideal.dialog.summary import ConcatSummariser, GroundedSummariser, concat_dialog, enriched_query, merge_facts
from ideal.dialog.types import DONT_KNOW, DialogState, Summariser, Turn

QUERY = "The brown chair next to the desk."


def test_merge_facts_writes_room_and_objects_into_templates():
    got = merge_facts(QUERY, ["It is a bedroom.", "Yes, there are two chairs.", "There is one bed in the room."])
    assert got == "The brown chair next to the desk. The room is a bedroom. The room has two chairs and a bed."


def test_merge_facts_article_of_the_room():
    assert merge_facts("a chair", ["It is an office."]) == "a chair The room is an office."
    assert merge_facts("a chair", ["It is a living room."]) == "a chair The room is a living room."


def test_merge_facts_drops_unknowns():
    answers = [DONT_KNOW, "I do not know.", "Not sure.", "unknown", "", "The lamp is yellow."]
    assert merge_facts(QUERY, answers) == QUERY + " The lamp is yellow."
    assert merge_facts(QUERY, [DONT_KNOW] * 3) == QUERY


def test_merge_facts_deduplicates():
    answers = [
        "Yes, there are two chairs.",
        "There are two chairs in the room.",  # the same fact in the count form
        "The bed is next to the chair.",
        "the bed is next to the chair.",  # the same sentence, other case
        "The lamp is yellow. The bed is next to the chair.",  # inside a longer answer
        "the brown chair next to the desk.",  # the query itself
        "It is a bedroom.",
        "It is a bedroom.",
    ]
    assert merge_facts(QUERY, answers) == (
        "The brown chair next to the desk. The room is a bedroom. The room has two chairs. "
        "The bed is next to the chair. The lamp is yellow.")


def test_merge_facts_keeps_free_sentences_in_order_and_ends_them():
    got = merge_facts("q.", ["The chair is brown", "It stands by the window!", "Is it? Maybe."])
    assert got == "q. The chair is brown. It stands by the window! Is it? Maybe."


def test_every_yes_answer_becomes_an_object_of_the_room():
    # the three forms the grounded answerer gives to "is there a ...?": from a count sentence (one / two) and
    # from a mere mention (coarse memory); all say the room has the object
    memory = ["There is a bed in the room.", "There are two chairs in the room.", "There is a window."]
    answers = GroundedAnswerer(support=0).answer(
        ["Is there a bed in the room?", "Are there any chairs?", "Is there a window in the room?"], [memory] * 3)
    assert answers == ["Yes, there is one bed.", "Yes, there are two chairs.", "Yes, there is a window."]
    assert merge_facts("q.", answers) == "q. The room has a bed, two chairs and a window."


def state(turns):
    return DialogState(QUERY, turns=tuple(Turn(q, a) for q, a in turns), round=len(turns))


TURNS = [("What kind of room is it?", "It is a bedroom."), ("What colour is the desk?", DONT_KNOW),
         ("Is there a bed in the room?", "Yes, there is one bed.")]


def test_grounded_summariser():
    s = GroundedSummariser()
    assert isinstance(s, Summariser)
    out = s.summarise([state(TURNS), state([])])
    assert out == [QUERY + " The room is a bedroom. The room has a bed.", QUERY]


def test_concat_summariser_keeps_questions_and_unknowns():
    s = ConcatSummariser()
    assert isinstance(s, Summariser) and s.name == "concat"
    (got,) = s.summarise([state(TURNS)])
    assert got == (f"{QUERY} What kind of room is it? It is a bedroom. What colour is the desk? {DONT_KNOW} "
                   "Is there a bed in the room? Yes, there is one bed.")
    assert concat_dialog(state(TURNS), with_questions=False) == \
        f"{QUERY} It is a bedroom. {DONT_KNOW} Yes, there is one bed."
    assert concat_dialog(state([])) == QUERY


def test_enriched_query_drops_unknowns():
    assert enriched_query(state(TURNS)) == f"{QUERY} It is a bedroom. Yes, there is one bed."
    assert enriched_query(state([("Q?", DONT_KNOW), ("Q2?", "Not sure.")])) == QUERY
    assert enriched_query(state([])) == QUERY
