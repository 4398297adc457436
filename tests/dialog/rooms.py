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


def bed(colour="white"):
    return ("bed", (0.1, 1, 0), (1.7, 3, 0.5), colour)


def chair(colour):
    return ("chair", (2.5, 2.5, 0), (3, 3, 0.9), colour)  # mid-room: no placement, no neighbour


# A and B differ only in the chair's colour; C is a kitchen, D an office (each with a brown chair).
A = room("A", "Bedroom / Hotel", [bed(), chair("brown")])
B = room("B", "Bedroom / Hotel", [bed(), chair("blue")])
C = room("C", "Kitchen", [("table", (2, 2, 0), (3.2, 3, 0.75), "black"), ("chair", (3.5, 3.5, 0), (4, 4, 0.9), "brown")])
D = room("D", "Office", [("desk", (2, 0.1, 0), (3.4, 0.8, 0.75), "brown"), ("chair", (2.5, 1.2, 0), (3, 1.7, 0.9), "brown")])
SCENES = [A, B, C, D]
