"""Aspect keys, their English questions, and reading questions back (the grounded roles' shared vocabulary)."""
import pytest

from ideal.dialog.aspects import (KINDS, aspect_key, labels_in, mentions, parse_question, question_text, singular,
                                  split_aspect)
from ideal.scenes.rooms import KINDS as CATALOGUE


def test_keys():
    assert aspect_key("room") == "room"
    assert aspect_key("room", "chair") == "room"  # the room has no label
    assert aspect_key("color", "coffee table") == "color:coffee table"
    assert split_aspect("color:coffee table") == ("color", "coffee table")
    assert split_aspect("room") == ("room", "")


def test_question_text():
    assert question_text("room") == "What kind of room is it?"
    assert question_text("has:armchair") == "Is there an armchair in the room?"
    assert question_text("has:lamp") == "Is there a lamp in the room?"
    assert question_text("count:box") == "How many boxes are there in the room?"
    assert question_text("color:chair") == "What colour is the chair?"
    assert question_text("place:desk") == "Where is the desk in the room?"
    assert question_text("near:bed") == "What is next to the bed?"
    with pytest.raises(ValueError, match="size"):
        question_text("size:chair")


@pytest.mark.parametrize("question, expected", [
    ("What kind of room is it?", ("room", "")),
    ("Which room is this?", ("room", "")),
    ("Is there a lamp in the room?", ("has", "lamp")),
    ("Are there any chairs?", ("has", "chairs")),
    ("How many chairs are there in the room?", ("count", "chairs")),
    ("What color are the chairs?", ("color", "chairs")),  # US spelling, plural
    ("what colour is the coffee table?", ("color", "coffee table")),
    ("Where are the chairs located?", ("place", "chairs")),
    ("What is near the desk?", ("near", "desk")),
    ("Tell me about the lamp.", None),
    ("Is it cosy?", None),
])
def test_parse_question(question, expected):
    assert parse_question(question) == expected


@pytest.mark.parametrize("kind", KINDS)
def test_every_catalogue_question_reads_back_to_its_aspect(kind):
    # The questioner re-reads questions of an HTTP history (aspect unknown) this way, so the round trip must hold
    # for every label we can generate.
    labels = sorted(CATALOGUE)
    for label in labels:
        key = aspect_key(kind, label)
        parsed = parse_question(question_text(key))
        assert parsed is not None, key
        k, phrase = parsed
        assert aspect_key(k, phrase if phrase in labels else singular(phrase)) == key


def test_singular():
    assert [singular(w) for w in ("chairs", "boxes", "benches", "libraries", "glass", "lamp")] == \
        ["chair", "box", "bench", "library", "glass", "lamp"]


def test_mentions_whole_words_any_number():
    assert mentions("Two Chairs by the wall", "chair")
    assert mentions("a brown chair", "chairs")
    assert mentions("the boxes", "box")
    assert not mentions("an armchair", "chair")


def test_labels_in_longest_first_and_hides_inner_labels():
    vocab = ["table", "coffee table", "chair", "lamp"]
    assert labels_in("a coffee table and two chairs", vocab) == ["coffee table", "chair"]
    assert labels_in("a coffee table next to the table", vocab) == ["coffee table", "table"]
    assert labels_in("nothing here", vocab) == []
