"""The constraints the llm roles' replies are decoded under (structured outputs, `dialog.llm_structured`): each a
`ideal.dialog.chat.Constraint` ({"regex": ...}), the same on every engine.

    question_constraint(["chair"], vocabulary=labels)   # a question naming the chair and no other object
    answer_constraint(memory)                           # the memory's words, or "I don't know."
    objects_constraint(labels)                          # CoT step 1: ["sofa", "lamp"], the gallery's classes
    reconstruction_constraint(["sofa", "lamp"])         # CoT step 2: one sentence per object, in order
"""
from __future__ import annotations

import re
from typing import Optional

from ..scenes.words import plural
from .chat import Constraint, escape_regex
from .types import DONT_KNOW

# What the constrained replies are made of. A word is up to 16 lowercase letters (or two such joined by a hyphen);
# the first word of a question or sentence is capitalised. Bounded repetitions keep every reply finite (and the
# grammars small).
_WORD = "[a-z']{1,16}(?:-[a-z']{1,16})?"  # a word, or two joined by a hyphen ("high-end")
_STARTS = ("What", "Where", "Which", "How", "Is", "Are", "Does", "Do", "Can", "Could")
_OPEN = ("Is there anything", "Are there any other objects", "Are there other objects", "What else")
# The words a question may use besides the objects it may name: asking, pointing, placing and describing, no
# object class. A question is these and its objects only, so it cannot name an object it may not.
QUESTION_WORDS = tuple(sorted(set("""
what where which how is are was were does do did can could would there any anything else other others another
it its they them their this that these those the a an some and or of on in at to by with without near next
beside behind under underneath below above over between against across from away around inside outside onto
into front side sides left right corner middle center centre top bottom end part closest farthest nearest close
far colour colours color colors material materials made size shape shapes kind type big small large tall short
long wide high low round square rectangular look looks like located placed place put stand stands standing sit
sits sitting hang hangs hanging lie lies lying many much more most one two three four several also same
different not no have has you your see notice remember mentioned described describe about room rooms wall walls
floor ceiling white black brown grey gray red blue green yellow orange pink purple beige dark light wooden wood
metal glass plastic fabric leather stone
""".split())))


def _alt(options) -> str:
    return "(?:" + "|".join(escape_regex(o) for o in sorted(set(options), key=len, reverse=True)) + ")"


def _forms(labels) -> list[str]:
    return [f for lab in labels for f in (lab, plural(lab))]


def _words_after(n: int) -> str:
    return f"(?:,? {_WORD}){{0,{n}}}"


def question_constraint(objects: list[str], open_question: bool = False, also: tuple[str, ...] = (),
                        vocabulary: tuple[str, ...] = (), max_words: int = 12, not_starting: str = "") -> Constraint:
    """A question in the model's words that names one of `objects` (singular or plural) and no other object:
    a question word, then up to `max_words` words on each side of the object, each a `QUESTION_WORDS` word that is
    no class of `vocabulary`, one of `objects` or one of `also` (objects it may name besides), then '?'. With
    `open_question`, also "Is there anything ...?" / "What else ...?" in those words; with no objects, only that.
    `not_starting`: a first word the question may not have (so it cannot be a question asked before)."""
    names = set(_forms(objects)) | set(_forms(also))
    words = _alt(set(QUESTION_WORDS) - set(_forms(vocabulary)) | names)
    free = f"(?:,? {words}){{0,{max_words}}}"
    starts = [w for w in _STARTS if w != not_starting] or list(_STARTS)
    opens = [o for o in _OPEN if o.split()[0] != not_starting] or list(_OPEN)
    alts = []
    if objects:
        alts.append(f"{_alt(starts)}{free} {_alt(_forms(objects))}{free}\\?")
    if open_question or not objects:
        alts.append(f"{_alt(opens)}{free}\\?")
    return {"regex": "|".join(f"(?:{a})" for a in alts)}


def answer_constraint(memory: list[str], max_words: int = 30) -> Constraint:
    """An answer of one sentence made of the memory's words only, or "I don't know."."""
    words = sorted(set(re.findall("[a-z']+(?:-[a-z']+)*", " ".join(memory).lower())))
    if not words:
        return {"choice": [DONT_KNOW]}
    first = _alt(w[:1].upper() + w[1:] for w in words)
    return {"regex": f"(?:{escape_regex(DONT_KNOW)})|(?:{first}(?:,? {_alt(words)}){{0,{max_words}}}\\.)"}


def objects_constraint(vocabulary: list[str], max_objects: int = 5) -> Constraint:
    """CoT step 1: a JSON list of 1 to `max_objects` labels of the gallery's vocabulary, written compactly
    (`["sofa", "lamp"]`: a regex rather than a JSON schema, which would let a small model pad with whitespace)."""
    item = '"' + _alt(vocabulary) + '"'
    return {"regex": f"\\[{item}(?:, {item}){{0,{max_objects - 1}}}\\]"}


def _sentence(obj: Optional[str] = None, max_words: int = 12) -> str:
    if obj is None:
        return f"[A-Z][a-z']{{0,15}}{_words_after(max_words)}\\."
    return f"[A-Z][a-z']{{0,15}}{_words_after(max_words)} {_alt(_forms([obj]))}{_words_after(max_words)}\\."


def reconstruction_constraint(objects: list[str], max_words: int = 8) -> Constraint:
    """CoT step 2: one sentence per listed object, in the list's order, each naming its object."""
    return {"regex": " ".join(_sentence(o, max_words) for o in objects)}


def description_constraint(max_sentences: int = 5, max_words: int = 16) -> Constraint:
    """w/o CoT: 1 to `max_sentences` plain sentences."""
    one = _sentence(None, max_words)
    return {"regex": f"{one}(?: {one}){{0,{max_sentences - 1}}}"}


__all__ = ["QUESTION_WORDS", "answer_constraint", "description_constraint", "objects_constraint",
           "question_constraint", "reconstruction_constraint"]
