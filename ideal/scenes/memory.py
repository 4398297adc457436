"""Memory: what the (simulated) user knows about the scene they are looking for (paper §4.1).

- coarse: an expansion of the user's own query: its sentences and clauses restated, nothing the query does
  not already say (no leakage); the user answers anything else with "I don't know";
- fine: fine-grained descriptions of the whole scene: every description of it, then facts read off the
  geometry (counts, colours, placement, neighbours). It leaks information beyond the query (the paper's †).

Built from a Scene, its descriptions and the query only, so real and synthetic data get the same memory. This is
the simulated user's side: no module of the questioner, the reconstruction or the retriever imports it.
"""
from __future__ import annotations

import re
from collections import Counter

from . import relations as rel
from .colors import color_name
from .types import Description, Scene, SceneMemory
from .words import OPENINGS, article, count_phrase, join_words, plural, room_word  # noqa: F401  (re-exported)

_OPENINGS = OPENINGS
_join = join_words


_CLAUSE_SPLIT = re.compile(r"[,;]\s*(?:and\s+)?|\s+and\s+(?=(?:it|its|the|there|this|a|an)\b)|\s+(?:which|that|where)\s+(?=is|are|has|sits|stands)")


def coarse_memory(query: str) -> list[str]:
    """The coarse memory of a dialog: the query's sentences, then each sentence's clauses as sentences of their
    own ("the brown chair is by the desk, and it faces the window" -> + "The brown chair is by the desk.",
    "It faces the window."). Only words of the query appear, so no answer can add information."""
    out: list[str] = []
    for sent in re.split(r"(?<=[.!?])\s+", query.strip()):
        sent = sent.strip().rstrip(".!?").strip()
        if not sent:
            continue
        out.append(_sentence(sent))
        clauses = [c.strip() for c in _CLAUSE_SPLIT.split(sent) if c and c.strip()]
        if len(clauses) > 1:
            # a relative clause ("which is near the door") is about the same object: "It is near the door."
            out += [_sentence(("it " + c) if c.split()[0] in _VERBS else c) for c in clauses if len(c.split()) >= 2]
    return list(dict.fromkeys(out))


_VERBS = {"is", "are", "has", "sits", "stands"}


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + "."


def object_places(scene: Scene) -> list[tuple]:
    """(object, colour name, [places]) for every furniture object but windows and doors; a place is one of
    "on the <label>", "in a corner", "against a wall", "on a wall", "near a window", "near the door"."""
    objs = scene.furniture()
    bounds = rel.room_bounds(scene)
    windows = [o for o in objs if o.label == "window"]
    doors = [o for o in objs if o.label == "door"]
    out = []
    for o in objs:
        if o.label in _OPENINGS:
            continue
        where = []
        support = next((s for s in objs if s is not o and rel.is_on(o, s)), None)
        if support is not None:
            where.append(f"on the {support.label}")
        elif o.bbox_min[2] < 0.05 and rel.is_in_corner(o, bounds):
            where.append("in a corner")
        elif o.bbox_min[2] < 0.05 and rel.is_against_wall(o, bounds):
            where.append("against a wall")
        elif o.bbox_min[2] > 0.5 and rel.is_against_wall(o, bounds):
            where.append("on a wall")
        if any(rel.is_near(o, w) for w in windows):
            where.append("near a window")
        if any(rel.is_near(o, d) for d in doors):
            where.append("near the door")
        out.append((o, color_name(o.color_rgb), where))
    return out


def object_facts(scene: Scene) -> list[str]:
    """One sentence per object: its colour and where it is (on what, against a wall, near a window)."""
    facts = []
    for o, colour, where in object_places(scene):
        place = (" " + " and ".join(where)) if where else ""
        facts.append(f"There is {article(colour)} {o.label}{place}.")
    return facts


def neighbours_of(scene: Scene, label: str) -> list[str]:
    """Sorted labels of the objects next to any object called `label` (windows and doors aside)."""
    objs = [o for o in scene.furniture() if o.label not in _OPENINGS]
    return sorted({b.label for a in objs if a.label == label for b in objs
                   if b is not a and b.label != label and rel.is_next_to(a, b)})


def neighbour_facts(scene: Scene) -> list[str]:
    """Per object class, what stands next to its objects: "The chair is next to the desk and the lamp."."""
    out = []
    for label in sorted({o.label for o in scene.furniture() if o.label not in _OPENINGS}):
        near = neighbours_of(scene, label)
        if near:
            out.append(f"The {label} is next to {_join([f'the {n}' for n in near])}.")
    return out


def fine_memory(scene: Scene, descriptions: list[Description]) -> list[str]:
    seen, out = set(), []
    for d in descriptions:
        if d.scene_id == scene.scene_id and d.text not in seen:
            seen.add(d.text)
            out.append(d.text)
    counts = Counter(o.label for o in scene.furniture())
    out.append(f"This is {article(room_word(scene.scene_type))}.")
    out += [f"There {'is' if n == 1 else 'are'} {count_phrase(n, label)} in the room." for label, n in sorted(counts.items())]
    return out + object_facts(scene) + neighbour_facts(scene)


def build_memory(scene: Scene, descriptions: list[Description]) -> SceneMemory:
    """The fine memory of `scene` (descriptions of other scenes are ignored); coarse memory is per query."""
    return SceneMemory(scene.scene_id, fine_memory(scene, descriptions))
