"""Reading a chat model's replies: the question, answer, reconstruction or object list in a reply, or None when
there is none (junk, a statement, a loop); and whether a dialog asks a question again.

    parse_question("Sure! Question: Is there a window?")     # -> "Is there a window?"
    parse_object_list('["sofa", "piano"]', ["sofa", "bed"])  # -> ["sofa"]
"""
from __future__ import annotations

import json
import re
from typing import Optional

from .types import DONT_KNOW, DialogState, is_unknown

# "Question:", "A:", "**Answer 2:**", "Assistant:" ... at the start of a line
_PREFIX = re.compile(r"^\s*(?:\*\*|__)?(?:question|answer|summary|description|response|output|assistant|user|"
                     r"questioner|answerer|system|q|a)\s*\d*\s*(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*", re.I)
_BULLET = re.compile(r"^\s*(?:[-*•>#]+|\d+[.)])\s+")
_QUOTES = "\"'`“”‘’*_ "
_PUNCT = ".,;:!?'\"-()/%"
_MARKERS = ("##", "[unused", "<|", "|>", "</s>", "<s>", "[PAD]", "[CLS]", "[SEP]", "[UNK]", "\ufffd")
# A question starts with one of these within its first three words ("In which room ...", "And is there ...").
_ASKING = {"is", "are", "was", "were", "does", "do", "did", "can", "could", "would", "will", "should", "has", "have",
           "had", "what", "which", "where", "how", "who", "whose", "when", "why", "any"}


def _clean_lines(text) -> list[str]:
    """Lines with role prefixes, bullets and surrounding quotes stripped; empty lines dropped."""
    if not isinstance(text, str):
        return []
    out = []
    for line in text.replace("\r", "\n").split("\n"):
        prev = None
        while prev != line:  # "- Assistant: Answer: ..." carries several
            prev = line
            line = _PREFIX.sub("", _BULLET.sub("", line)).strip(_QUOTES)
        if line:
            out.append(line)
    return out


def _words(s: str) -> list[str]:
    return s.split()


def _is_language(s: str) -> bool:
    """Plain English-looking text: mostly ASCII letters, no tokenizer debris, no word stuck in a loop.
    Greedy decoding from a broken or tiny model repeats itself ("polling polling polling")."""
    chars = [c for c in s if not c.isspace()]
    if not chars or any(m in s for m in _MARKERS):
        return False
    letters = sum(c.isascii() and c.isalpha() for c in chars)
    plain = sum(c.isascii() and (c.isalnum() or c in _PUNCT) for c in chars)
    if letters < 0.5 * len(chars) or plain < 0.95 * len(chars):
        return False
    words = [w.strip(".,;:!?\"'()").lower() for w in _words(s)]
    words = [w for w in words if w]
    if not words or _loops(words):
        return False
    return len(words) < 10 or len(set(words)) >= 0.3 * len(words)


def _loops(words: list[str], max_period: int = 3, repeats: int = 3) -> bool:
    """A run of 1 to `max_period` words said `repeats` times in a row ("a b a b a b")."""
    for p in range(1, max_period + 1):
        run = 0
        for i in range(len(words) - p):
            run = run + 1 if words[i] == words[i + p] else 0
            if run >= p * (repeats - 1):
                return True
    return False


def cap_words(s: str, max_words: int, end: str) -> str:
    words = _words(s)
    if len(words) > max_words:
        s = " ".join(words[:max_words]).rstrip(",;:-–") + end
    return s


_SENTENCE = re.compile(r"[^.!?]+[.!?]+")


def _sentences(line: str) -> tuple[list[str], str]:
    """(complete sentences, the unterminated rest) of one line."""
    done = [m.group().strip() for m in _SENTENCE.finditer(line)]
    rest = _SENTENCE.sub("", line).strip()
    return [s for s in done if s], rest


def parse_question(text, max_words: int = 25) -> Optional[str]:
    """The first well-formed question in a reply ("Sure! Question: Is there a window?" -> "Is there a window?"),
    capped at `max_words` words; None when there is none (junk, a statement, fewer than 3 words)."""
    for line in _clean_lines(text):
        # a question runs back from its '?' to the previous sentence end or colon
        for m in re.finditer(r"[^.!?:]*\?", line):
            q = m.group().strip().lstrip(_QUOTES + "-•>#").strip()
            q = re.sub(r"\?+$", "?", q)
            words = _words(q)
            if len(words) < 3 or not _is_language(q):
                continue
            if not _ASKING & {w.strip(",").lower() for w in words[:3]}:
                continue
            return cap_words(q[:1].upper() + q[1:], max_words, "?")
    return None


def _prose(text, max_sentences: Optional[int], max_words: int, min_words: int) -> Optional[str]:
    """The first `max_sentences` complete sentences (all when None); an unterminated reply counts as one
    sentence only when nothing complete precedes it (a reply cut by the token limit mid-sentence)."""
    sentences: list[str] = []
    for line in _clean_lines(text):
        done, rest = _sentences(line)
        sentences += done
        if rest and not sentences:
            sentences.append(rest.rstrip(",;:-–") + ".")
        if rest or (max_sentences and len(sentences) >= max_sentences):
            break
    sentences = [re.sub(r"([.!?])[.!?]+$", r"\1", s.strip(_QUOTES)) for s in sentences[:max_sentences]]
    out = " ".join(s for s in sentences if s)
    if len(_words(out)) < min_words or not _is_language(out):
        return None
    return cap_words(out, max_words, ".")


def parse_answer(text, max_words: int = 40) -> Optional[str]:
    """The first one or two sentences of a reply, without "Answer:" and quotes, capped at `max_words` words;
    DONT_KNOW for any "I don't know"; None for empty or junk."""
    out = _prose(text, 2, max_words, min_words=1)
    if out is not None and is_unknown(out):
        return DONT_KNOW
    return out


def parse_summary(text, max_words: int = 80) -> Optional[str]:
    """A reply's sentences without "Summary:" and quotes, capped at `max_words` words; None for junk or
    fewer than 3 words."""
    return _prose(text, None, max_words, min_words=3)


def parse_sentences(text, max_words: int = 80) -> Optional[str]:
    """A constrained reconstruction (one sentence per object): its sentences that read as language, the others
    (a small model looping: "white, white, white") dropped, capped at `max_words` words; None when none is left."""
    if not isinstance(text, str):
        return None
    done, _ = _sentences(" ".join(_clean_lines(text)))
    kept = [x for x in done if _is_language(x)]
    return parse_summary(" ".join(kept), max_words) if kept else None


_NOT_OBJECTS = {"is", "are", "here", "there", "object", "objects", "mentioned", "sentence", "sentences", "keyword",
                "keywords", "list", "none"}


def parse_objects(text, max_objects: int = 12) -> Optional[list[str]]:
    """CoT step 1: the object keywords of a reply ("1. piano\\n2. the black chairs" -> ["piano", "black chairs"]),
    in order, deduplicated, at most `max_objects`; None when there are none."""
    out: list[str] = []
    for line in _clean_lines(text):
        head, colon, tail = line.rpartition(":")  # "The objects mentioned are: a, b" -> "a, b"
        if colon and len(_words(head)) <= 6:
            line = tail
        for item in re.split(r"[,;]|\band\b|\s\d+[.)]\s", line):
            words = _BULLET.sub("", item).strip(_QUOTES + ".!").lower().split()
            # "the objects mentioned are the bed" -> "the bed"
            cut = max((n + 1 for n, w in enumerate(words) if w in _NOT_OBJECTS), default=0)
            item = re.sub(r"^(?:a|an|the|some|two|three)\s+", "", " ".join(words[cut:]))
            if item and len(_words(item)) <= 4 and item not in out and re.fullmatch(r"[a-z][a-z -]*", item) \
                    and _is_language(item):
                out.append(item)
    return out[:max_objects] or None


def parse_object_list(text, vocabulary, max_objects: int = 5) -> Optional[list[str]]:
    """CoT step 1 under the JSON constraint: the labels of a JSON list that are in `vocabulary`, in order,
    deduplicated, at most `max_objects`; None when the reply is not such a list or names none."""
    try:
        items = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if not isinstance(items, list):
        return None
    vocab, out = set(vocabulary), []
    for it in items:
        if isinstance(it, str) and it in vocab and it not in out:
            out.append(it)
    return out[:max_objects] or None


def normalise_question(q: str) -> str:
    """A question reduced to its words ("Is there a  Window?" -> "is there a window"): equal questions compare equal."""
    return " ".join(re.findall(r"[a-z0-9']+", q.lower()))


def repeats_question(turns, question: str) -> bool:
    """Whether `question` equals (normalised) the question of one of a dialog's `turns`."""
    q = normalise_question(question)
    return any(normalise_question(t.question) == q for t in turns)


def repeated_dialogs(states: list[DialogState]) -> int:
    """How many dialogs asked some question twice (normalised)."""
    n = 0
    for st in states:
        asked = [normalise_question(t.question) for t in st.turns]
        n += len(set(asked)) < len(asked)
    return n


__all__ = ["cap_words", "normalise_question", "parse_answer", "parse_object_list", "parse_objects",
           "parse_question", "parse_sentences", "parse_summary", "repeated_dialogs", "repeats_question"]
