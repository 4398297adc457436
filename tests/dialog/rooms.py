"""Hand-made rooms for the dialog tests: objects given by their box corners and a palette colour."""
from ideal.scenes.colors import PALETTE
from ideal.scenes.types import Scene, SceneObject


def obj(oid, label, lo, hi, colour):
    c = tuple((a + b) / 2 for a, b in zip(lo, hi))
    return SceneObject(oid, label, c, tuple(b - a for a, b in zip(lo, hi)), PALETTE[colour])


def room(scene_id, scene_type, items):
    """A 5 x 5 m room (floor) with the given (label, lo, hi, colour) objects."""
    return Scene(scene_id, scene_type, [obj(0, "floor", (0, 0, -0.05), (5, 5, 0), "gray")]
                 + [obj(i, *it) for i, it in enumerate(items, 1)])
