from ideal.scenes.memory import build_memory, plural
from ideal.scenes.types import Description, Scene, SceneObject


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


def test_coarse_is_short_and_room_level():
    m = build_memory(SCENE, DESCS)
    assert 2 <= len(m.coarse) <= 3
    assert m.coarse[0] == "This is a bedroom."
    assert m.coarse[1] == "It has two chairs, a bed and a lamp."
    assert m.coarse[2] == "There is a window."


def test_fine_has_descriptions_once_counts_and_placement_facts():
    m = build_memory(SCENE, DESCS)
    assert m.fine.count("a brown chair in the corner.") == 1
    assert "a bed in another scene." not in m.fine  # only this scene's descriptions
    assert "There are two chairs in the room." in m.fine
    assert "There is a yellow lamp on the bed." in m.fine
    assert "There is a brown chair in a corner." in m.fine
    assert "There is a blue chair." in m.fine  # in the middle: no placement words
    assert m.sentences("fine") is m.fine and m.sentences("coarse") is m.coarse


def test_plural():
    assert [plural(w) for w in ("chair", "box", "bench", "shelf", "toy", "library", "glass")] == \
        ["chairs", "boxes", "benches", "shelfs", "toys", "libraries", "glass"]
