"""Aspects: what a question is about, as a short key ("room", "has:window", "color:table", ...).

The grounded questioner picks aspects and writes them as English questions; the grounded answerer reads
any question back into an aspect (or none: then it answers by relevance). Keys are also how the questioner
remembers what was already asked (Q1), even for a dialog history that arrives over HTTP as plain text.
"""
from __future__ import annotations

import re
from typing import Optional

from ..scenes.colors import PALETTE
from ..scenes.words import article, join_words as _join, plural

KINDS = ("room", "has", "count", "color", "place", "near", "detail", "explore")
# Q1 (detail probe) asks these of objects the dialog already names (then an open "detail" request); Q2
# (diverge exploration) asks "has" of objects it does not name, or "explore": what else is in the room.
DETAIL_KINDS = ("color", "place", "near")
# Colour words people use; "grey" is read as "gray".
COLORS = tuple(PALETTE) + ("grey",)


def aspect_key(kind: str, label: str = "") -> str:
    return kind if kind == "room" else f"{kind}:{label}"


def split_aspect(key: str) -> tuple[str, str]:
    kind, _, label = key.partition(":")
    return kind, label


def question_text(key: str) -> str:
    """Natural English for an aspect key."""
    kind, label = split_aspect(key)
    if kind == "room":
        return "What kind of room is it?"
    if kind == "explore":
        named = [n for n in label.split(",") if n]
        if not named:
            return "What else is in the room, away from the area you described?"
        return f"Apart from {_join([f'the {n}' for n in named])}, what else is in the room?"
    if kind == "has":
        return f"Is there {article(label)} in the room?"
    if kind == "detail":
        return f"Can you describe the {label or 'object'} and what is around it in more detail?"
    if kind == "count":
        return f"How many {plural(label)} are there in the room?"
    if kind == "color":
        return f"What colour is the {label}?"
    if kind == "place":
        return f"Where is the {label} in the room?"
    if kind == "near":
        return f"What is next to the {label}?"
    raise ValueError(f"unknown aspect kind {kind!r} in {key!r}; kinds are {KINDS}")


_PATTERNS = [
    ("explore", re.compile(r"^apart from (?P<label>[a-z ,]+?), what else\b|\bwhat else is (?:there )?in the room\b")),
    ("detail", re.compile(r"^can you describe (?:the )?(?P<label>[a-z][a-z ]*?) and what is around it\b")),
    ("room", re.compile(r"\bwhat (?:kind|type|sort) of (?:a )?room\b|\bwhich room\b")),
    ("count", re.compile(r"\bhow many (?P<label>[a-z][a-z ]*?)(?: are there| do you see| in\b| is there|\?|$)")),
    ("has", re.compile(r"^(?:is|are) there (?:a |an |any |some )?(?P<label>[a-z][a-z ]*?)(?: in the room| in it| there)?\s*\?")),
    ("color", re.compile(r"\bwhat colou?r (?:is|are) (?:the )?(?P<label>[a-z][a-z ]*?)\s*\?")),
    ("place", re.compile(r"^where (?:is|are) (?:the )?(?P<label>[a-z][a-z ]*?)(?: in the room| located)?\s*\?")),
    ("near", re.compile(r"^what (?:is|are|else is) (?:next to|near|beside|close to|by) (?:the )?(?P<label>[a-z][a-z ]*?)\s*\?")),
]


def singular(phrase: str) -> str:
    """'chairs' -> 'chair', 'shelves' stays (labels are matched with `mentions`, which allows plurals)."""
    if phrase.endswith("ies") and len(phrase) > 4:
        return phrase[:-3] + "y"
    if phrase.endswith(("ches", "shes", "xes", "sses")):
        return phrase[:-2]
    if phrase.endswith("s") and not phrase.endswith("ss"):
        return phrase[:-1]
    return phrase


def parse_question(question: str) -> Optional[tuple[str, str]]:
    """(kind, label phrase) of a question we can read, else None. The label phrase is as written (maybe plural)."""
    q = " ".join(question.lower().replace("'", "'").split())
    for kind, pat in _PATTERNS:
        m = pat.search(q)
        if m:
            label = m.groupdict().get("label") or ""
            if kind == "explore":  # "the chair and the desk" -> "chair,desk"
                names = re.split(r",\s*|\s+and\s+", label)
                return kind, ",".join(re.sub(r"^(?:a|an|the) ", "", n.strip()) for n in names if n.strip())
            label = re.sub(r"^(?:a|an|the|any|some) ", "", label.strip())
            if kind != "room" and not label:
                continue
            return kind, label
    return None


def _label_regex(label: str) -> re.Pattern:
    forms = {label, plural(label), singular(label)}
    alts = "|".join(sorted((re.escape(f) for f in forms), key=len, reverse=True))
    return re.compile(rf"\b(?:{alts})\b")


_REGEX_CACHE: dict[str, re.Pattern] = {}


def mentions(text: str, label: str) -> bool:
    """Whether `text` names `label` (singular or plural, whole words, case-insensitive)."""
    pat = _REGEX_CACHE.get(label)
    if pat is None:
        pat = _REGEX_CACHE[label] = _label_regex(label)
    return pat.search(text.lower()) is not None


def labels_in(text: str, vocabulary) -> list[str]:
    """Labels of `vocabulary` named in `text`, longest first, without labels inside longer ones
    ("coffee table" hides "table")."""
    low = text.lower()
    found, spans = [], []
    for label in sorted(vocabulary, key=len, reverse=True):
        pat = _REGEX_CACHE.get(label) or _REGEX_CACHE.setdefault(label, _label_regex(label))
        for m in pat.finditer(low):
            if not any(a <= m.start() < b for a, b in spans):
                spans.append((m.start(), m.end()))
                if label not in found:
                    found.append(label)
    return found
