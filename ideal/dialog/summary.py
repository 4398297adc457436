"""The semantic-level fusion s (p̂3): the query and every response rewritten as one object-centric
reconstruction of the scene, chain-of-thought style in two steps (paper §3.2.2):

1. `extract_objects`: the objects the dialog mentions, each with what the dialog says of it (colours, places,
   neighbours), the query's objects first;
2. `reconstruct`: one sentence per object, after the room type.

"w/o CoT" writes the reconstruction in one step, straight from the responses (`one_step`): their sentences,
deduplicated, "I don't know" dropped, with no object extraction. The vocabulary of object classes is what the
system knows from the gallery's 3D data.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..scenes.words import article, join_words
from .aspects import _label_regex, labels_in, mentions
from .reading import RELATION, colors_of, places_of, room_named, sentences
from .types import DialogState, is_unknown


@dataclass
class ObjectNote:
    """Step 1's output for one object class: what the dialog says of it."""

    label: str
    colors: list[str] = field(default_factory=list)
    places: list[str] = field(default_factory=list)
    near: list[str] = field(default_factory=list)


def responses(st: DialogState) -> list[str]:
    """The query and the informative answers (the texts the reconstruction may use)."""
    return [st.query.strip(), *[a.strip() for a in st.answers if not is_unknown(a)]]


def extract_objects(texts: list[str], vocabulary) -> tuple[str, list[ObjectNote]]:
    """Step 1: (room type or "", the objects named in `texts` in order of first mention, with attributes)."""
    said = [s for t in texts for s in sentences(t)]
    room = next((r for r in map(room_named, said) if r), "")  # "This is a bedroom.", "It's a kitchen." ...
    text = " ".join(said).lower()
    notes = []
    for label in labels_in(text, vocabulary):
        near = []
        for s in said:
            if mentions(s, label) and RELATION.search(s.lower()):
                near += [x for x in labels_in(s, vocabulary) if x != label and x not in near]
        notes.append(ObjectNote(label, colors_of(label, said)[:2], places_of(label, said)[:2], near[:3]))
    # labels_in orders by length; the reconstruction follows the dialog (the query's target first)
    first = {n.label: _label_regex(n.label).search(text).start() for n in notes}
    return room, sorted(notes, key=lambda n: first[n.label])


def reconstruct(room: str, notes: list[ObjectNote]) -> str:
    """Step 2: "The room is a bedroom. There is a brown chair near a window, next to the desk. ..."."""
    parts = [f"The room is {article(room)}."] if room else []
    for n in notes:
        what = f"{n.colors[0]} {n.label}" if n.colors else n.label
        extra = n.places + ([f"next to {join_words([f'the {x}' for x in n.near])}"] if n.near else [])
        parts.append(f"There is {article(what)}" + (" " + ", ".join(extra) if extra else "") + ".")
    return " ".join(parts)


def one_step(texts: list[str]) -> str:
    """w/o CoT: the responses' sentences, deduplicated, in order."""
    return " ".join(dict.fromkeys(s if s.endswith((".", "!", "?")) else s + "."
                                  for t in texts for s in sentences(t)))


class GroundedSummariser:
    """s without an LLM: two steps (extract, reconstruct) with `cot`, else one step."""

    name = "grounded"

    def __init__(self, vocabulary=(), cot: bool = True):
        self.vocabulary, self.cot = sorted(vocabulary), cot

    def summarise(self, states: list[DialogState]) -> list[str]:
        out = []
        for st in states:
            texts = responses(st)
            if not self.cot:
                out.append(one_step(texts))
                continue
            room, notes = extract_objects(texts, self.vocabulary)
            out.append(reconstruct(room, notes) or one_step(texts))
        return out


def dialog_segments(st: DialogState) -> list[str]:
    """The query and every question and answer, unknowns included (ChatIR's text), one segment each."""
    return [st.query.strip(), *[x.strip() for t in st.turns for x in (t.question, t.answer) if x.strip()]]


def answers_segments(st: DialogState) -> list[str]:
    """The query and the informative answers, one segment each (SUM's merged description)."""
    return responses(st)
