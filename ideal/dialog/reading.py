"""Reading what people say about a room: its type, an object's colours and places, relation words.

Neutral ground between the roles: the questioner (what a dialog has already settled), the reconstruction s
(what to write about each object) and the grounded answer writer (what its memory says) all read text with
these functions. They accept the ways people put things ("beside", "by", "next to"; "near", "close to", "not far
from"; "grey" and "gray"; "the chair looks brown", "a brown chair") and return the reader's own canonical words.
Nothing here writes what a simulated user says.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Optional

from ..scenes.rooms import ROOM_WORDS
from .aspects import COLORS, _label_regex

_ROOMS = sorted(set(ROOM_WORDS.values()), key=len, reverse=True)
# ScanNet scene types beyond ROOM_WORDS ("This is an apartment."): a room is named by one of these words.
ROOM_NOUNS = {"room", "apartment", "lobby", "hallway", "storage", "closet", "office", "kitchen", "bathroom",
              "bedroom", "library", "classroom", "gym", "stairs", "garage", "lounge", "studio", "hall"}
_ROOM_RE = re.compile(r"^(?:this|it|the room) is (?:a |an )?(?P<room>[a-z ]+?)\s*[.,!]?$|"
                      r"^(?:it's|looks like|i think it is|i think it's) (?:a |an )?(?P<room2>[a-z ]+?)\s*[.,!]?$")
# relation words people use for "next to" and "near"
RELATION = re.compile(r"\b(next to|near|beside|between|close to|not far from|by|right by|on top of|under|"
                      r"in front of|behind|facing|left|right)\b")
_COLS = "|".join(sorted(COLORS, key=len, reverse=True))
_LINK = r"(?:is|are|looks|look|seems|seem|appears|appear)\s+(?:to be\s+)?"
# a place phrase and the canonical place it means (first match wins: "by the wall" is a wall, not "next to")
_PLACES = [
    (re.compile(r"^(?:in|into) (?:a|the) corner|^tucked (?:in|into) (?:a|the) corner"), "in a corner"),
    (re.compile(r"^(?:up )?against (?:a|the) wall|^by (?:a|the) wall"), "against a wall"),
    (re.compile(r"^(?:on|mounted on) (?:a|the) wall"), "on a wall"),
    (re.compile(r"^(?:near|close to|not far from|by) (?:a|the) window"), "near a window"),
    (re.compile(r"^(?:near|close to|not far from|by) (?:a|the) door"), "near the door"),
    (re.compile(r"^(?:on top of|on) (?:the|a|an) (?P<what>[a-z]+(?: [a-z]+)?)"), "on the {what}"),
]
_PLACE_START = re.compile(r"\s+(?:is\s+|are\s+|sits\s+|stands\s+)?((?:on|in|into|tucked|against|up|near|close|not|by|"
                          r"mounted)\b[^.,;]*)")


_PLACE_SPLIT = re.compile(r"\s+and\s+|,?\s+(?=(?:near|close to|not far from|against|up against|in a corner|in the corner|"
                          r"tucked|by the|by a|on a wall|on the wall)\b)")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def room_named(text: str) -> str:
    """The room a sentence says it is ("This is a bedroom.", "It's a kitchen.", "The room is an office."), or ""
    (object names never count: "an office chair" says nothing about the room)."""
    m = _ROOM_RE.match(" ".join(text.lower().split()))
    if not m:
        return ""
    room = (m.group("room") or m.group("room2") or "").strip()
    return room if room in _ROOMS or (room and room.split()[-1] in ROOM_NOUNS) else ""


def colors_of(label: str, texts: list[str]) -> list[str]:
    """Colours the texts give `label`, most often said first ("a brown wooden chair", "the chair is brown",
    "the chair looks grey" -> gray)."""
    forms = _label_regex(label).pattern
    before = re.compile(rf"\b({_COLS})\s+(?:[a-z]+\s+)?{forms}")
    after = re.compile(rf"{forms}\s+{_LINK}(?:[a-z]+\s+)?({_COLS})\b")
    counts: Counter = Counter()
    for s in texts:
        low = s.lower()
        for pat in (before, after):
            for m in pat.finditer(low):
                counts["gray" if m.group(1) == "grey" else m.group(1)] += 1
    return [c for c, _ in counts.most_common()]


def canonical_place(phrase: str) -> Optional[str]:
    """'close to the window' -> 'near a window', 'by the wall' -> 'against a wall', 'on top of the desk' ->
    'on the desk'; None for a phrase that is not a place."""
    p = " ".join(phrase.lower().split())
    for pat, out in _PLACES:
        m = pat.match(p)
        if m:
            what = m.groupdict().get("what")
            if what in ("room", "floor", "left", "right"):
                return None
            return out.format(what=what) if what else out
    return None


def places_of(label: str, texts: list[str]) -> list[str]:
    """Where the texts put `label`, in the reader's words: 'near a window', 'on the desk', 'against a wall' ..."""
    forms = _label_regex(label).pattern
    pat = re.compile(rf"{forms}{_PLACE_START.pattern}")
    out = []
    for s in texts:
        for m in pat.finditer(s.lower()):
            # a phrase may hold two places: "in a corner and near a window"
            for part in _PLACE_SPLIT.split(m.group(1).strip()):
                place = canonical_place(part)
                if place and place not in out:
                    out.append(place)
    return out
