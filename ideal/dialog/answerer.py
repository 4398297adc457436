"""The answerer: the user, simulated from its memory alone.

`GroundedAnswerWriter` reads the question into an aspect (room, has, count, colour, place, near, explore) and
answers from the memory sentences that name it; questions it cannot read (and "what is next to ...") get the
memory sentence most relevant to the question under the text encoder; "what else is in the room" gets
remembered sentences about other objects. Whatever the memory does not say gets "I don't know."
`SimulatedAnswerer` gives each dialog its memory (coarse: the query's expansion; fine: the target scene's) and
makes it as unreliable as people are: `wrong_answers` (a different object or colour of the scene, or an object
of another scene) and `unknown_answers` ("I don't know").
"""
from __future__ import annotations

import re
import zlib
from typing import Callable, Optional

import numpy as np

from ..scenes.memory import coarse_memory
from ..scenes.types import SceneMemory
from ..scenes.words import article, plural
from .aspects import COLORS, mentions, parse_question, singular
from .reading import colors_of, places_of, room_named
from .types import DONT_KNOW, DialogState

_COUNT_RE = re.compile(r"\bthere (?:is|are) (?P<n>one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\d+|an?) "
                       r"(?P<noun>[a-z ]+?) in the room\b")
_RELATION_WORDS = re.compile(r"\b(next to|near|beside|between|left|right|on top|under|close|in front|behind|facing|by the)\b")
# memory.py writes facts as "There is/are ..." and "This is a <room>."; a supporting sentence should be
# something else the user remembers (a description), since the short answer already states the fact.
_FACT_SENTENCE = re.compile(r"^(?:there (?:is|are) |this is |it has |yes, |the room has )")


def _cap(s: str) -> str:
    s = s.strip()
    s = s[:1].upper() + s[1:]
    return s if s.endswith((".", "!", "?")) else s + "."


def _resolve_label(phrase: str, memory: list[str]) -> str:
    """The phrase as the memory names it: 'chairs' -> 'chair' when the memory says 'chair'."""
    for cand in dict.fromkeys((singular(phrase), phrase)):
        word = re.compile(rf"\b{re.escape(cand)}\b")
        if any(word.search(s.lower()) for s in memory):
            return cand
    return singular(phrase)


def answer_room(memory: list[str]) -> str:
    """From a sentence that says what the room is ("This is a bedroom."); object names never count
    ("an office chair" says nothing about the room)."""
    for s in memory:
        room = room_named(s)
        if room:
            return f"It is {article(room)}."
    return DONT_KNOW


_ITEM_RE = re.compile(r"^(?P<n>one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\d+|an?) (?P<noun>[a-z ]+)$")


def count_sentence(label: str, memory: list[str]) -> Optional[tuple[str, str]]:
    """(number word, noun) from "There are two chairs in the room." or a coarse "It has two chairs, a bed ..."."""
    for s in memory:
        low = s.lower()
        m = _COUNT_RE.search(low)
        if m and mentions(m.group("noun"), label) and len(m.group("noun").split()) <= len(label.split()) + 1:
            return m.group("n"), m.group("noun")
        if low.startswith("it has "):
            for item in re.split(r",\s*|\s+and\s+", low[len("it has "):].rstrip(".")):
                m = _ITEM_RE.match(item.strip())
                if m and mentions(m.group("noun"), label) and len(m.group("noun").split()) <= len(label.split()) + 1:
                    return m.group("n"), m.group("noun")
    return None


def answer_has(label: str, memory: list[str]) -> str:
    c = count_sentence(label, memory)
    if c is not None:
        n, noun = c
        return f"Yes, there {'is' if n in ('one', 'a', 'an', '1') else 'are'} {'one' if n in ('a', 'an') else n} {noun}."
    if any(mentions(s, label) for s in memory):
        return f"Yes, there is {article(label)}."
    return DONT_KNOW


def answer_count(label: str, memory: list[str]) -> str:
    c = count_sentence(label, memory)
    if c is None:
        return DONT_KNOW
    n, noun = c
    if n in ("one", "a", "an", "1"):
        return f"There is one {noun} in the room."
    return f"There are {n} {noun} in the room."


def answer_color(label: str, memory: list[str]) -> str:
    cols = list(dict.fromkeys(colors_of(label, memory)))
    if not cols:
        return DONT_KNOW
    if len(cols) == 1:
        return f"The {label} is {cols[0]}."
    shown = cols[:3]
    return f"The {plural(label)} are {', '.join(shown[:-1])} and {shown[-1]}."


def answer_place(label: str, memory: list[str]) -> str:
    places = places_of(label, memory)
    if not places:
        return DONT_KNOW
    if len(places) == 1:
        return f"The {label} is {places[0]}."
    return f"There is {article(label)} {places[0]}, and another one {places[1]}."


class GroundedAnswerWriter:
    """Answers from memory sentences; `embed` (texts -> L2-normalised rows) ranks sentences by relevance for
    questions that are not about a room/has/count/colour/place aspect. Without `embed`, word overlap ranks them."""

    name = "grounded"

    def __init__(self, embed: Optional[Callable[[list[str]], np.ndarray]] = None, min_relevance: float = 0.35,
                 support: int = 1):
        self.embed, self.min_relevance, self.support = embed, min_relevance, support
        self._cache: dict[str, np.ndarray] = {}

    def answer(self, questions: list[str], memories: list[list[str]]) -> list[str]:
        if len(questions) != len(memories):
            raise ValueError(f"{len(questions)} questions but {len(memories)} memories")
        out: list[Optional[str]] = []
        pending = []  # (index, question, candidate sentences) answered by relevance
        supports = []  # (index, question, candidate sentences): a memory sentence backing a short answer
        for i, (q, memory) in enumerate(zip(questions, memories)):
            parsed = parse_question(q)
            if parsed is None:
                pending.append((i, q, list(memory)))
                out.append(None)
                continue
            kind, phrase = parsed
            label = _resolve_label(phrase, memory) if phrase else ""
            if kind == "explore":
                out.append(self._explore(phrase, memory))
                continue
            if kind == "detail":
                out.append(self._detail(_resolve_label(phrase, memory), memory))
                continue
            if kind == "room":
                out.append(answer_room(memory))
            elif kind == "has":
                out.append(answer_has(label, memory))
            elif kind == "count":
                out.append(answer_count(label, memory))
            elif kind == "color":
                out.append(answer_color(label, memory))
            elif kind == "place":
                out.append(answer_place(label, memory))
            else:  # near: a sentence about the label and what is around it
                cands = [s for s in memory if mentions(s, label) and _RELATION_WORDS.search(s.lower())]
                pending.append((i, q, cands))
                out.append(None)
            # A person answering from what they remember also says the sentence that came to mind
            # ("The chair is brown. It is the one next to the desk by the window.").
            if self.support > 0 and out[-1] is not None and out[-1] != DONT_KNOW:
                cands = [s for s in memory if (not label or mentions(s, label)) and not _FACT_SENTENCE.match(s.lower())]
                supports.append((i, q, cands))
        for (i, _, _), a in zip(pending, self._by_relevance([(q, c) for _, q, c in pending])):
            out[i] = a
        for (i, _, _), a in zip(supports, self._by_relevance([(q, c) for _, q, c in supports], self.support)):
            if a != DONT_KNOW:
                out[i] = f"{out[i]} {a}"
        return [a if a is not None else DONT_KNOW for a in out]

    def _explore(self, named: str, memory: list[str]) -> str:
        """Remembered sentences about objects other than `named` ("chair,desk"): descriptions first, then
        facts, in memory order (the simulated user shuffles its memory per dialog and round)."""
        names = [n for n in named.split(",") if n]
        others = [m for m in memory if not any(mentions(m, n) for n in names)]
        picked = sorted(others, key=lambda m: bool(_FACT_SENTENCE.match(m.lower())))[:max(1, self.support)]
        return " ".join(_cap(m) for m in picked) if picked else DONT_KNOW

    def _detail(self, label: str, memory: list[str]) -> str:
        """Remembered sentences about `label`: descriptions first, then facts, in memory order."""
        about = [m for m in memory if mentions(m, label)]
        picked = sorted(about, key=lambda m: bool(_FACT_SENTENCE.match(m.lower())))[:max(1, self.support)]
        return " ".join(_cap(m) for m in picked) if picked else DONT_KNOW

    def _by_relevance(self, items: list[tuple[str, list[str]]], top: int = 1) -> list[str]:
        """For each (question, candidate sentences): the `top` most relevant sentences above min_relevance,
        joined, or DONT_KNOW."""
        if not items:
            return []
        if self.embed is None:
            return [self._overlap_pick(q, cands) for q, cands in items]
        texts = {q for q, _ in items} | {s for _, cands in items for s in cands}
        todo = [t for t in texts if t not in self._cache]
        if todo:
            for t, e in zip(todo, self.embed(todo)):
                self._cache[t] = e
        out = []
        for q, cands in items:
            if not cands:
                out.append(DONT_KNOW)
                continue
            sims = np.stack([self._cache[s] for s in cands]) @ self._cache[q]
            best = [int(j) for j in np.argsort(-sims, kind="stable")[:top] if sims[j] >= self.min_relevance]
            out.append(" ".join(_cap(cands[j]) for j in best) if best else DONT_KNOW)
        return out

    @staticmethod
    def _overlap_pick(question: str, cands: list[str]) -> str:
        words = set(re.findall(r"[a-z]+", question.lower())) - {"what", "is", "the", "a", "an", "there", "to", "of"}
        best, best_score = None, 0.0
        for s in cands:
            sw = set(re.findall(r"[a-z]+", s.lower()))
            score = len(words & sw) / (len(words) or 1)
            if score > best_score:
                best, best_score = s, score
        return _cap(best) if best is not None and best_score >= 0.5 else DONT_KNOW


# ------------------------------------------------------------------------------------------------ the user's words

# How the simulated user may put a phrase its memory or the writer words one way: each occurrence is said one of
# these ways (the first is the memory's own). Nothing outside the answerer reads this table.
_SAY = [
    ("next to", ("next to", "beside", "right by")),
    ("near", ("near", "close to", "not far from")),
    ("against a wall", ("against a wall", "up against the wall", "by the wall")),
    ("in a corner", ("in a corner", "in the corner", "tucked into a corner")),
    ("gray", ("gray", "grey")),
]
_SAY_RE = re.compile(r"\b(" + "|".join(re.escape(k) for k, _ in sorted(_SAY, key=lambda kv: -len(kv[0]))) + r")\b")
_SAY_MAP = dict(_SAY)
# whole-answer templates: (pattern over the writer's sentence, ways to say it)
_TEMPLATES = [
    (re.compile(r"^The (?P<x>[a-z ]+) is (?P<c>[a-z]+)\.$"),
     ("The {x} is {c}.", "The {x} looks {c}.", "It is {ac} {x}.", "I think the {x} is {c}.")),
    (re.compile(r"^It is (?:a|an) (?P<r>[a-z ]+)\.$"),
     ("It is {ar}.", "It's {ar}.", "The room is {ar}.", "Looks like {ar}.")),
    (re.compile(r"^There is (?P<a>a|an) "), ("There is {a} ", "I remember {a} ", "I saw {a} ")),
    (re.compile(r"^Yes, there is "), ("Yes, there is ", "Yes, I saw ", "Yes, I remember ")),
]
UNKNOWN_SAYINGS = (DONT_KNOW, "I'm not sure.", "I do not remember.")
# the other way: every saying back to the memory's words (to tell what the dialog already holds)
_CANON = sorted(((v, k) for k, vs in _SAY for v in vs if v != k), key=lambda kv: -len(kv[0]))
_CANON_RE = re.compile(r"\b(" + "|".join(re.escape(v) for v, _ in _CANON) + r")\b")
_CANON_MAP = dict(_CANON)
_OPENERS = re.compile(r"\b(?:i remember|i saw)\b")


def reword(answer: str, rng: np.random.Generator) -> str:
    """The simulated user's way of saying `answer` (the writer's words): each sentence through one of its
    templates, each listed phrase one of its synonyms, chosen by `rng`; "I don't know" one of UNKNOWN_SAYINGS."""
    if answer == DONT_KNOW:
        return UNKNOWN_SAYINGS[int(rng.integers(len(UNKNOWN_SAYINGS)))]
    out = []
    for sent in re.split(r"(?<=[.!?])\s+", answer.strip()):
        for pat, ways in _TEMPLATES:
            m = pat.search(sent)
            if m:
                g = m.groupdict()
                fill = {**g, "ac": article(g["c"]) if "c" in g else "", "ar": article(g["r"]) if "r" in g else ""}
                sent = ways[int(rng.integers(len(ways)))].format(**fill) + sent[m.end():]
                break
        sent = _SAY_RE.sub(lambda m: _SAY_MAP[m.group(1)][int(rng.integers(len(_SAY_MAP[m.group(1)])))], sent)
        out.append(sent[:1].upper() + sent[1:])
    return " ".join(out)


def canonical(text: str) -> str:
    """`text` lower-cased with the user's sayings mapped back to the memory's words (see `reword`)."""
    low = _CANON_RE.sub(lambda m: _CANON_MAP[m.group(1)], " ".join(text.lower().split()))
    return _OPENERS.sub("there is", low)


class SimulatedAnswerer:
    """The user in an evaluation: answers each dialog's question from that dialog's memory.

    memory "coarse": the expansion of the dialog's own query (`coarse_memory`); "fine": the target scene's
    fine memory, minus what the dialog already holds (a user does not repeat itself), in an order shuffled per
    (seed, dialog, round) so seeds vary which remembered sentences come up.
    unknown_answers: the share of questions answered "I don't know" whatever the memory holds. wrong_answers: the
    share answered wrongly, each one way of three (equally likely): another object of the scene described instead
    of the one asked about, the colours of the honest answer changed, or the answer given from a random other
    scene's fine memory (a plausible object that is not there). Both are drawn per (seed, dialog, round).
    varied: the user says each answer in its own words (`reword`: templates and synonyms drawn per seed, dialog
    and round), so no reader can rely on the writer's exact wording; False keeps the writer's words (tests)."""

    WRONG_KINDS = ("object", "color", "other scene")

    def __init__(self, writer, memories: dict[str, SceneMemory], granularity: str = "fine",
                 wrong_answers: float = 0.0, unknown_answers: float = 0.0, seed: int = 0, varied: bool = True):
        if granularity not in ("coarse", "fine"):
            raise ValueError(f"memory must be 'coarse' or 'fine', got {granularity!r}")
        for name, p in (("wrong_answers", wrong_answers), ("unknown_answers", unknown_answers)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        if wrong_answers + unknown_answers > 1.0:
            raise ValueError(f"wrong_answers + unknown_answers must be <= 1, got {wrong_answers + unknown_answers}")
        self.writer, self.memories, self.granularity = writer, memories, granularity
        self.wrong_answers, self.unknown_answers, self.seed = wrong_answers, unknown_answers, seed
        self.varied = varied
        self._ids = sorted(memories)

    def _rng(self, state: DialogState, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(state.dialog_id.encode()), len(state.turns), stream])

    def memory_of(self, state: DialogState, scene: Optional[str] = None) -> list[str]:
        """What the user of this dialog remembers (see the class docstring); `scene`: another scene's instead."""
        if self.granularity == "coarse" and scene is None:
            return coarse_memory(state.query)
        if state.target is None:
            raise ValueError(f"dialog {state.dialog_id!r} has no target scene: a simulated user needs one")
        rng = np.random.default_rng([self.seed, zlib.crc32(state.dialog_id.encode()), len(state.turns)])
        sid = scene or state.target
        if sid not in self.memories:
            raise KeyError(f"no memory for scene {sid!r}")
        said = canonical(" ".join([state.query, *state.answers]))
        memory = [m for m in self.memories[sid].fine if canonical(m.strip()) not in said]
        return [memory[i] for i in rng.permutation(len(memory))]

    def plan(self, state: DialogState) -> str:
        """How this dialog's user answers this round: "honest", "unknown" or one of WRONG_KINDS."""
        if not (self.wrong_answers or self.unknown_answers):
            return "honest"
        rng = self._rng(state, 1)
        u = rng.random()
        if u < self.unknown_answers:
            return "unknown"
        if u < self.unknown_answers + self.wrong_answers:
            kinds = self.WRONG_KINDS if len(self._ids) > 1 and state.target is not None else self.WRONG_KINDS[:2]
            return kinds[int(rng.integers(len(kinds)))]
        return "honest"

    def answer(self, states: list[DialogState], questions: list[str]) -> list[str]:
        plans = [self.plan(st) for st in states]
        memories = [self.memory_of(st, self._other_scene(st) if p == "other scene" else None)
                    for st, p in zip(states, plans)]
        answers = self.writer.answer(list(questions), memories)
        out = []
        for st, q, p, a, memory in zip(states, questions, plans, answers, memories):
            if p == "unknown":
                a = DONT_KNOW
            elif p == "color":
                a = _recolour(a, self._rng(st, 2)) or _other_object(q, a, memory) or a
            elif p == "object":
                a = _other_object(q, a, memory) or a
            out.append(reword(a, self._rng(st, 4)) if self.varied else a)
        return out

    def _other_scene(self, state: DialogState) -> str:
        others = [s for s in self._ids if s != state.target]
        return others[int(self._rng(state, 3).integers(len(others)))]


_COLOR_RE = re.compile(r"\b(" + "|".join(sorted(COLORS, key=len, reverse=True)) + r")\b", re.IGNORECASE)


def _recolour(answer: str, rng: np.random.Generator) -> Optional[str]:
    """`answer` with every colour word changed to another colour; None when it names no colour."""
    if not _COLOR_RE.search(answer):
        return None

    def swap(m: re.Match) -> str:
        word = m.group(0)
        choices = [c for c in COLORS if c != word.lower() and {c, word.lower()} != {"gray", "grey"}]
        new = choices[int(rng.integers(len(choices)))]
        return new.capitalize() if word[0].isupper() else new

    return _COLOR_RE.sub(swap, answer)


def _other_object(question: str, answer: str, memory: list[str]) -> Optional[str]:
    """A remembered sentence about something other than what the question asks (and the honest answer says):
    the user recalls the wrong object. None when the memory has none."""
    parsed = parse_question(question)
    asked = [singular(x) for x in parsed[1].split(",") if x] if parsed and parsed[1] else []
    for m in memory:
        if m.strip().lower() in answer.lower() or any(mentions(m, a) for a in asked):
            continue
        return _cap(m)
    return None
