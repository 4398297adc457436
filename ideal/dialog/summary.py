"""The CoT summariser: the dialog so far rewritten as one description of the target and its room (s_i, p3).

Grounded: a deduplicated merge of facts. Answers are read back into facts (room type, objects present,
colours, places, free sentences); unknowns are dropped, repeats merged, and the facts written after the
query in a fixed order. `ConcatSummariser` (the "w/o CoT" ablation) only strings the turns together.
"""
from __future__ import annotations

import re

from .types import DialogState, is_unknown

from ..scenes.rooms import ROOM_WORDS

_ROOM = re.compile(r"^it is (?:a |an )?(?P<room>" + "|".join(sorted(set(ROOM_WORDS.values()), key=len, reverse=True))
                   + r")\.$")
_NUM = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\d+)"
# the answerer's "Yes, there is a window." / "Yes, there are two chairs." and "There are two chairs in the room."
_HAS = re.compile(rf"^yes, there (?:is|are) (?P<what>(?:{_NUM}|a|an) [a-z]+(?: [a-z]+)?)(?: in the room)?\.$"
                  rf"|^there (?:is|are) (?P<count>{_NUM} [a-z]+(?: [a-z]+)?) in the room\.$")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def merge_facts(query: str, answers: list[str]) -> str:
    room, has, other, seen = None, [], [], {query.strip().lower()}
    for a in answers:
        if is_unknown(a):
            continue
        for s in _sentences(a):
            low = s.lower()
            if low in seen:
                continue
            seen.add(low)
            if (m := _ROOM.match(low)) is not None:
                room = m.group("room")
            elif (m := _HAS.match(low)) is not None:
                what = m.group("what") or m.group("count")
                has.append(("a " + what[4:]) if what.startswith("one ") else what)
            else:
                other.append(s if s.endswith((".", "!", "?")) else s + ".")
    parts = [query.strip()]
    if room:
        parts.append(f"The room is {'an' if room[0] in 'aeiou' else 'a'} {room}.")
    if has:
        items = list(dict.fromkeys(has))
        joined = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
        parts.append(f"The room has {joined}.")
    parts += other
    return " ".join(parts)


class GroundedSummariser:
    name = "grounded"

    def summarise(self, states: list[DialogState]) -> list[str]:
        return [merge_facts(st.query, st.answers) for st in states]


def concat_dialog(st: DialogState, with_questions: bool = True) -> str:
    """The query followed by every turn ("Q? A."), unknowns included: the plain dialog text."""
    parts = [st.query.strip()]
    for t in st.turns:
        parts += [t.question.strip(), t.answer.strip()] if with_questions else [t.answer.strip()]
    return " ".join(p for p in parts if p)


def enriched_query(st: DialogState) -> str:
    """u-bar: the query enriched with the answers (unknowns dropped)."""
    return " ".join([st.query.strip(), *[a.strip() for a in st.answers if not is_unknown(a)]])


class ConcatSummariser:
    """w/o CoT: the summary is just the dialog strung together."""

    name = "concat"

    def summarise(self, states: list[DialogState]) -> list[str]:
        return [concat_dialog(st) for st in states]


def segments(text: str) -> list[str]:
    """A text as the sentences the retriever encodes one by one (Gallery.scores_composed)."""
    return _sentences(text) or [text]


def enriched_segments(st: DialogState) -> list[str]:
    return [st.query.strip(), *[s for a in st.answers if not is_unknown(a) for s in _sentences(a)]]


def dialog_segments(st: DialogState) -> list[str]:
    return [st.query.strip(), *[x.strip() for t in st.turns for x in (t.question, t.answer) if x.strip()]]
