"""The llm roles' reply parsers: what a chat model's reply becomes (a question, an answer, a summary, an object
list), and the junk each refuses so that its role falls back."""
import pytest

from ideal.dialog.replies import parse_answer, parse_objects, parse_question, parse_summary
from ideal.dialog.types import DONT_KNOW

NATO = ("alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november oscar papa quebec "
        "romeo sierra tango uniform victor whiskey xray yankee zulu").split()


@pytest.mark.parametrize("reply, expected", [
    ("Is there a window in the room?", "Is there a window in the room?"),
    ("Question: What colour is the sofa?", "What colour is the sofa?"),
    ('"Where is the bed in the room?"', "Where is the bed in the room?"),
    ("- **Question:** Are there two chairs by the desk?", "Are there two chairs by the desk?"),
    ("Sure! Here is my question: how many lamps are there?", "How many lamps are there?"),
    ("Okay?\nAssistant: Is the table made of wood?? I think that helps.", "Is the table made of wood?"),
    ("1. In which room is the piano? 2. Is it black?", "In which room is the piano?"),
])
def test_parse_question_good(reply, expected):
    assert parse_question(reply) == expected


@pytest.mark.parametrize("reply", [
    None, "", "   ", "!!!", "???", "The room has a chair.", "Question:", "Is it?",
    "¿Qué color tiene la silla grande?", "##ep could could could?", "selector polling polling polling?",
    "chair table window lamp?", "<|im_end|> is there a lamp?",
])
def test_parse_question_junk(reply):
    assert parse_question(reply) is None


def test_parse_question_caps_words():
    q = parse_question("Is there " + " ".join(NATO) + " in the room?", max_words=10)
    assert q == "Is there alpha bravo charlie delta echo foxtrot golf hotel?"
    assert len(q.split()) == 10


@pytest.mark.parametrize("reply, expected", [
    ("Yes, there is a window. It is on the left wall. The bed is red.",
     "Yes, there is a window. It is on the left wall."),
    ("Answer: No.", "No."),
    ("A: 'The sofa is blue.'", "The sofa is blue."),
    ("\n\nUser: The chair is next to the desk", "The chair is next to the desk."),  # cut by the token limit
    ("I don't know", DONT_KNOW),
    ("Not sure, the memory does not say.", DONT_KNOW),
])
def test_parse_answer_good(reply, expected):
    assert parse_answer(reply) == expected


@pytest.mark.parametrize("reply", [None, "", "  \n ", "!!!", "Answer:", "1934 ##ly ...", "椅子是棕色的。",
                                   "polling polling polling polling."])
def test_parse_answer_junk(reply):
    assert parse_answer(reply) is None


def test_parse_answer_caps_words():
    a = parse_answer("The chair is very " + " ".join(NATO) + " brown.", max_words=6)
    assert a == "The chair is very alpha bravo."


def test_parse_summary():
    reply = "Summary: A brown chair next to the desk in an office. The office has a window. The desk is"
    assert parse_summary(reply) == "A brown chair next to the desk in an office. The office has a window."
    assert parse_summary("A brown chair in an office with " + " ".join(NATO * 2), max_words=8) == \
        "A brown chair in an office with alpha."
    for junk in (None, "", "!!!", "Chair.", "##ep ##ep ##ep", "Description:", "a chair and a chair and a chair and",
                 " ".join(NATO[:3] * 5)):
        assert parse_summary(junk) is None


@pytest.mark.parametrize("reply", ["Ask about the colour of the bed.", "Ask the user what is on the desk.",
                                   "The bed is brown."])
def test_parse_question_statements_are_not_questions(reply):
    assert parse_question(reply) is None  # the questioner falls back instead


@pytest.mark.parametrize("reply, expected", [
    ("piano, black chairs, door", ["piano", "black chairs", "door"]),
    ("Objects:\n1. piano\n2. the black chairs\n3. Door", ["piano", "black chairs", "door"]),
    ("Sure! Here are the objects mentioned:\n- bed\n- nightstand and lamp", ["bed", "nightstand", "lamp"]),
    ("The objects mentioned are the bed and the lamp.", ["bed", "lamp"]),
    ("Keywords: TV; sofa; coffee table; sofa", ["tv", "sofa", "coffee table"]),
])
def test_parse_objects_good(reply, expected):
    assert parse_objects(reply) == expected


@pytest.mark.parametrize("reply", [None, "", "!!!", "Here are the objects:", "##ep could could",
                                   "selector polling polling polling", "椅子, 桌子"])
def test_parse_objects_junk(reply):
    assert parse_objects(reply) is None
