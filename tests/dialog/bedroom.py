"""The answerer tests' bedroom, and what a user looking for its brown chair remembers of it."""
from ideal.scenes.memory import build_memory
from ideal.scenes.types import Description, Scene

from .rooms import obj

SCENE_ID = "scene0042_00"


def bedroom(scene_id=SCENE_ID, chairs="brown"):
    """A 4 x 4 m bedroom: a white bed against the west wall with a yellow lamp on it, two chairs (one in the
    north-east corner), a black desk by the window."""
    return Scene(scene_id, "Bedroom / Hotel", [
        obj(0, "floor", (0, 0, -0.05), (4, 4, 0), "gray"),
        obj(1, "bed", (0.05, 1, 0), (1.7, 3, 0.5), "white"),
        obj(2, "chair", (3, 3, 0), (3.5, 3.5, 0.9), chairs),
        obj(3, "chair", (2, 2, 0), (2.5, 2.5, 0.9), chairs),
        obj(4, "lamp", (0.5, 1.5, 0.5), (0.8, 1.8, 0.9), "yellow"),
        obj(5, "window", (3.9, 1, 1), (4, 2, 2), "white"),
        obj(6, "desk", (2.6, 1.6, 0), (3.4, 2.4, 0.75), "black"),
    ])


DESCRIPTION = "the brown chair in the corner next to the window."
MEMORY = build_memory(bedroom(), [Description("d1", SCENE_ID, 2, "chair", DESCRIPTION)])
FINE = MEMORY.fine
