"""ideal.scenes.memory: coarse memory (the query's sentences and clauses, nothing else), fine memory (the scene's
descriptions then facts read off its geometry), and the room summary the system reads off the 3D data."""
import dataclasses
import re

import pytest

from ideal.dialog.knowledge import scene_summary as room_summary
from ideal.scenes.memory import build_memory, coarse_memory, fine_memory, plural
from ideal.scenes.types import Description, Scene, SceneMemory, SceneObject


def obj(oid, label, lo, hi, rgb=(0.45, 0.28, 0.14)):
    c = tuple((a + b) / 2 for a, b in zip(lo, hi))
    return SceneObject(oid, label, c, tuple(b - a for a, b in zip(lo, hi)), rgb)


SCENE = Scene("scene0001_00", "Bedroom / Hotel", [
    obj(0, "floor", (0, 0, -0.05), (4, 4, 0)),
    obj(1, "bed", (0.05, 1, 0), (1.7, 3, 0.5), rgb=(0.93, 0.93, 0.91)),
    obj(2, "chair", (3, 3, 0), (3.5, 3.5, 0.9)),
    obj(3, "chair", (2, 2, 0), (2.5, 2.5, 0.9), rgb=(0.16, 0.28, 0.72)),
    obj(4, "lamp", (0.5, 1.5, 0.5), (0.8, 1.8, 0.9), rgb=(0.93, 0.84, 0.16)),
    obj(5, "window", (3.9, 1, 1), (4, 2, 2)),
])
DESCS = [Description("d1", "scene0001_00", 2, "chair", "a brown chair in the corner."),
         Description("d2", "scene0001_00", 2, "chair", "a brown chair in the corner."),  # duplicate text
         Description("d3", "scene0099_00", 1, "bed", "a bed in another scene.")]


@pytest.mark.parametrize("query, expected", [
    ("the brown chair is by the desk, and it faces the window",
     ["The brown chair is by the desk, and it faces the window.", "The brown chair is by the desk.",
      "It faces the window."]),
    # sentences first, then each sentence's clauses; a relative clause is about the same object: "It is ..."
    ("a white bed which is near the door. there are two chairs in the room; the lamp sits on the desk",
     ["A white bed which is near the door.", "A white bed.", "It is near the door.",
      "There are two chairs in the room; the lamp sits on the desk.", "There are two chairs in the room.",
      "The lamp sits on the desk."]),
    ("This is a kitchen. The brown chair is by the table.", ["This is a kitchen.", "The brown chair is by the table."]),
    ("the chair", ["The chair."]),
    ("  the chair.  The chair! ", ["The chair."]),  # once each
    ("", []),
])
def test_coarse_memory_is_the_query_in_sentences_and_clauses(query, expected):
    assert coarse_memory(query) == expected


def test_coarse_memory_says_only_words_of_the_query():
    queries = ["the brown chair is by the desk, and it faces the window",
               "there is a big gray glass mirror. it is close to the door.",
               "the bed is located between the bag and the box. it is in the corner of the room, which is small.",
               "a beige cushion; it is the cushion closest to the wastebasket"]
    for q in queries:
        words = set(re.findall(r"[a-z]+", q.lower()))
        said = set(re.findall(r"[a-z]+", " ".join(coarse_memory(q)).lower()))
        # "which is near the door" -> "It is near the door.": the one word it may add
        assert said - words <= {"it"}, q


def test_room_summary_is_short_and_room_level():
    # not a memory: what the system reads off the 3D data (never a description)
    assert room_summary(SCENE) == ["This is a bedroom.", "It has two chairs, a bed and a lamp.", "There is a window."]
    assert room_summary(SCENE, max_items=1) == ["This is a bedroom.", "It has two chairs.", "There is a window."]


def test_fine_has_descriptions_once_counts_and_placement_facts():
    m = build_memory(SCENE, DESCS)
    assert m.fine.count("a brown chair in the corner.") == 1
    assert "a bed in another scene." not in m.fine  # only this scene's descriptions
    assert "There are two chairs in the room." in m.fine
    assert "There is a yellow lamp on the bed." in m.fine
    assert "There is a brown chair in a corner." in m.fine
    assert "There is a blue chair." in m.fine  # in the middle: no placement words
    # descriptions first, then the facts
    assert m.fine[0] == "a brown chair in the corner." and m.fine[1] == "This is a bedroom."


def test_build_memory_is_the_fine_memory():
    m = build_memory(SCENE, DESCS)
    assert m == SceneMemory("scene0001_00", fine_memory(SCENE, DESCS))
    assert [f.name for f in dataclasses.fields(SceneMemory)] == ["scene_id", "fine"]
    # without descriptions: the facts alone
    assert fine_memory(SCENE, []) == m.fine[1:]


def test_plural():
    assert [plural(w) for w in ("chair", "box", "bench", "shelf", "toy", "library", "glass")] == \
        ["chairs", "boxes", "benches", "shelfs", "toys", "libraries", "glass"]
