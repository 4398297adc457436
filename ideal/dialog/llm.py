"""The `llm` backends of the questioner, answerer and summariser: prompts to a chat model, replies parsed back.

- `LLMQuestioner`: one question of the type the router chose (Q1 detail probe | Q2 diverge exploration), from
  the dialog and the candidate scenes' 3D-data summaries; never from a user's memory.
- `LLMAnswerWriter`: the simulated user, answering from its memory sentences only.
- `LLMSummariser`: the CoT reconstruction s (p̂3), two chat turns (list the objects, then describe them), or
  one turn without the extraction ("w/o CoT").

A reply that does not parse (empty, junk, a statement instead of a question), or a failed call, falls back to
another backend (the grounded one) for the dialogs concerned only; each role's `stats` counts conversations
sent (`calls`), outputs taken from the model (`parsed`) and from the fallback (`fallbacks`).

    client = make_chat_client("http://localhost:8000/v1", model="Qwen/Qwen2.5-1.5B-Instruct")
    questioner = LLMQuestioner(client, fallback=GroundedQuestioner(knowledge))
    questioner.ask(states, [Q1, Q2], candidates)
"""
from __future__ import annotations

import logging
from typing import Callable, Optional

from .aspects import aspect_key, labels_in, mentions
from .chat import ChatClient, Constraint, LocalChatClient, Message, OpenAIChatClient, make_chat_client
from .replies import (cap_words, parse_answer, parse_object_list, parse_objects, parse_question, parse_sentences,
                      parse_summary, repeats_question)
from .structured import (answer_constraint, description_constraint, objects_constraint, question_constraint,
                         reconstruction_constraint)
from .summary import responses
from .types import DONT_KNOW, Q1, Q2, Answerer, Candidate, DialogState, Question, Questioner, Summariser

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------- prompts

# The two question types (paper §3.2.1) as the model is told them: (name, instruction, worked examples). The
# examples' dialogs are written as the prompt writes a dialog.
_BED = "The user is looking for: a wooden bed next to a cabinet."
_SINK = ("The user is looking for: a sink below a mirror.\nQ: Is there anything near the sink?\n"
         "A: There is a towel near the sink.")
QUESTION_TYPES = {
    Q1: ("detail probe",
         "Ask about objects the dialog ALREADY mentions: their colour, material, size or shape, where they are, "
         "and what is on, under or next to them. Do not bring up objects the dialog has not mentioned.",
         [(_BED, "What colour are the bed and the cabinet, and is there anything on the bed?"),
          (_SINK, "Where is the towel, and what is next to the mirror?")]),
    Q2: ("diverge exploration",
         "Ask about what the dialog has NOT discussed yet: other objects in the room, or what is away from the "
         "area already described. Do not ask about the objects the dialog already describes.",
         [(_BED, "Are there other objects in the room that you have not mentioned?"),
          (_SINK, "What is on the other side of the room, away from the sink?")]),
}


# How the questioner's reply begins, per question type (see LLMQuestioner).
QUESTION_STARTS = {Q1: "Question: What", Q2: "Question: Is there"}


def question_messages(state: DialogState, kind: str, candidates: list[Candidate], top_k: int = 5,
                      max_words: int = 25, candidate_words: int = 40, avoid: tuple[str, ...] = ()) -> list[Message]:
    """The questioner's prompt for a question of type `kind` (Q1 | Q2): the type's instruction and examples,
    the dialog, and what the top-k candidates look like (never ids: they mean nothing to the model, and a
    question about "scene0011_00" means nothing to the user). `avoid`: questions the model must not ask (one it
    asked again)."""
    if kind not in QUESTION_TYPES:
        raise ValueError(f"question type must be {Q1} or {Q2}, got {kind!r}")
    name, instruction, examples = QUESTION_TYPES[kind]
    system = "\n".join([
        "You help a user find one 3D indoor scene by asking them about it. Ask ONE short question in natural "
        f"English (at most {max_words} words), a {name} question. {instruction} Never ask again about something "
        "the dialog already answered. Reply with the question only, ending with '?'.", "Examples:",
        *[f"{d}\nQuestion: {q}" for d, q in examples]])
    lines = [f"The user is looking for: {state.query.strip()}"]
    if state.turns:
        lines.append("Dialog so far:")
        for t in state.turns:
            lines += [f"Q: {t.question.strip()}", f"A: {t.answer.strip()}"]
    shown = candidates[:top_k]
    if shown:
        lines.append("The scenes that match best so far (the user's may be any of them, or none):")
        for n, c in enumerate(shown, 1):
            summary = cap_words(" ".join(c.summary).strip(), candidate_words, " ...")
            lines.append(f"{n}. {summary or '(no description)'}")
    if avoid:
        lines.append("Already asked, do not ask again: " + " ".join(q.strip() for q in avoid))
    lines.append(f"Your {name} question:")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]


def answer_messages(question: str, memory: list[str], max_words: int = 40) -> list[Message]:
    """The answerer's prompt: the memory sentences and the question, nothing else."""
    system = ("You are a person who remembers an indoor scene. Answer the question in one short sentence "
              f"(at most {max_words} words) using only your memory below. If your memory does not say, "
              f'answer exactly: {DONT_KNOW} Do not mention the memory or any ids. Reply with the answer only.')
    user = "\n".join(["Memory:", *[f"- {s.strip()}" for s in memory], f"Question: {question.strip()}", "Answer:"])
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


SUMMARY_SYSTEM = "You rewrite what a user said about the indoor scene they are looking for as one description."
EXTRACT = ("List the objects these sentences mention, as keywords separated by commas: the distinctive objects "
           "first, common ones (door, wall, floor, chair, table) last. Reply with the list only.")
EXTRACT_JSON = ("List the objects these sentences mention as a JSON list of object names, the distinctive objects "
                "first, common ones (door, wall, floor, chair, table) last. Reply with the list only.")
RECONSTRUCT = ("Reconstruct the scene in 2 to 5 short sentences (at most {max_words} words): the placement, colour "
               "and other properties of {which}. Use only details the sentences give; do not invent any. "
               "Reply with the description only.")


def _sentences_block(state: DialogState) -> str:
    return "Sentences:\n" + "\n".join(f"- {t}" for t in responses(state))


def extraction_messages(state: DialogState, as_json: bool = False) -> list[Message]:
    """CoT step 1: list the objects the query and the informative answers mention (`responses`), as keywords
    (or, `as_json`, a JSON list)."""
    return [{"role": "system", "content": SUMMARY_SYSTEM},
            {"role": "user", "content": f"{_sentences_block(state)}\n\n{EXTRACT_JSON if as_json else EXTRACT}"}]


def reconstruction_messages(first: list[Message], objects: list[str], max_words: int = 80,
                            per_object: bool = False) -> list[Message]:
    """CoT step 2: step 1's conversation, its reply (the object list), and the request to reconstruct (with
    `per_object`, one sentence per listed object)."""
    which = "those objects, in the order of your list" + (", one sentence per object" if per_object else "")
    ask = RECONSTRUCT.format(max_words=max_words, which=which)
    return [*first, {"role": "assistant", "content": ", ".join(objects)}, {"role": "user", "content": ask}]


def one_step_messages(state: DialogState, max_words: int = 80) -> list[Message]:
    """w/o CoT: the reconstruction straight from the sentences, without listing the objects first."""
    ask = RECONSTRUCT.format(max_words=max_words, which="the objects they mention")
    return [{"role": "system", "content": SUMMARY_SYSTEM},
            {"role": "user", "content": f"{_sentences_block(state)}\n\n{ask}"}]


# ----------------------------------------------------------------------------------------------- backends

def _new_stats() -> dict:
    # calls: conversations sent; parsed / fallbacks: outputs from the model / from the fallback
    return {"calls": 0, "parsed": 0, "fallbacks": 0}


def _ask_model(who: str, client: ChatClient, conversations: list[list[Message]],
               parse: Callable[[str], Optional[object]], stats: dict,
               constraints: Optional[list[Optional[Constraint]]] = None) -> list:
    """Parsed replies, None where the reply is junk or (for all) where the call failed. A conversation that ends
    with an assistant message is continued from it (the reply parsed is that message and its continuation);
    `constraints` go to the client (structured outputs)."""
    if not conversations:
        return []
    stats["calls"] += len(conversations)
    try:
        replies = (client.complete(conversations, constraints) if constraints is not None
                   else client.complete(conversations))
        if len(replies) != len(conversations):
            raise RuntimeError(f"{len(conversations)} conversations but {len(replies)} replies")
    except Exception as e:  # the fallback answers instead; a dead endpoint must not stop an evaluation
        log.warning("llm %s: the model call failed, falling back for %d dialogs: %s", who, len(conversations), e)
        return [None] * len(conversations)
    replies = [c[-1]["content"] + r if c[-1]["role"] == "assistant" and isinstance(r, str) else r
               for c, r in zip(conversations, replies)]
    parsed = [parse(r) for r in replies]
    for r, p in zip(replies, parsed):
        if p is None:
            log.debug("llm %s: unusable reply %r", who, r)
    return parsed


def _fill(parsed: list, stats: dict, fallback_for: Callable[[list[int]], list]) -> list:
    """`parsed` with its Nones replaced by the fallback's outputs for those positions only."""
    todo = [i for i, p in enumerate(parsed) if p is None]
    stats["parsed"] += len(parsed) - len(todo)
    if todo:
        stats["fallbacks"] += len(todo)
        for i, v in zip(todo, fallback_for(todo)):
            parsed[i] = v
    return parsed


class LLMQuestioner:
    """Questions of the routed type written by a chat model from the dialog and the top-k candidates' 3D-data
    summaries; `fallback` (the grounded questioner) asks for the dialogs whose reply holds no usable question.

    With `knowledge` (the gallery's SceneKnowledge) and `structured`, each reply is constrained while decoding
    (`question_constraint`): a Q1 names an object the dialog has named; a Q2 a class of the candidates the dialog
    has not named, or is the open "Is there anything ...?"; the other words are the model's. A Q1 that names any
    other class of the gallery is not used. A question the dialog already asked (normalised) is asked for again
    once, with that question listed as asked (and, structured, beginning with another question word, so it cannot
    come back); a second repeat falls back. `stats` adds `repeats` (questions the
    model asked again) and `retries` (conversations sent again) to calls / parsed / fallbacks."""

    name = "llm"

    def __init__(self, client: ChatClient, fallback: Questioner, top_k: int = 5, max_words: int = 25,
                 candidate_words: int = 40, starts: Optional[dict] = None, knowledge=None, structured: bool = False):
        if structured and knowledge is None:
            raise ValueError("a structured llm questioner needs the gallery's knowledge (its object classes)")
        self.client, self.fallback, self.knowledge, self.structured = client, fallback, knowledge, structured
        self.top_k, self.max_words, self.candidate_words = top_k, max_words, candidate_words
        # the reply is begun for the model ("Question: What"), per question type: small models asked for a
        # question otherwise often state instead of asking; {} leaves the whole reply to the model. A structured
        # reply is a question by construction, so it is not begun.
        self.starts = {} if structured else (QUESTION_STARTS if starts is None else starts)
        self.stats = {**_new_stats(), "repeats": 0, "retries": 0}
        self._classes: dict[str, list[str]] = {}

    def named(self, state: DialogState) -> list[str]:
        """The gallery's classes the dialog names (the query and the answers)."""
        said = " ".join([state.query, *(t.answer for t in state.turns)])
        return labels_in(said, self.knowledge.labels)

    def classes(self, scene_id: str) -> list[str]:
        """The object classes of a gallery scene, from its 3D data."""
        if scene_id not in self._classes:
            kn, out = self.knowledge, []
            row = kn.row.get(scene_id)
            for lab in kn.labels if row is not None else ():
                j = kn.col.get(aspect_key("has", lab))
                if j is not None and kn.answers[row, j] != kn.absent[j]:
                    out.append(lab)
            self._classes[scene_id] = out
        return self._classes[scene_id]

    def constraint(self, state: DialogState, kind: str, candidates: list[Candidate], not_starting: str = ""
                   ) -> tuple[Constraint, set]:
        """(the reply's constraint, the classes the question may name): a Q1 names what the dialog named; a Q2
        a class of the candidates the dialog has not named (or asks the open question), and may name what the
        dialog named besides."""
        named = self.named(state)
        vocab = tuple(self.knowledge.labels)
        if kind == Q1:
            return question_constraint(named, vocabulary=vocab, not_starting=not_starting), set(named)
        shown = {lab for c in candidates[:self.top_k] for lab in self.classes(c.scene_id)}
        new = sorted(shown - set(named))
        return (question_constraint(new, open_question=True, also=tuple(named), vocabulary=vocab,
                                    not_starting=not_starting), set(new) | set(named))

    def _conversation(self, state, kind, cands, avoid=()) -> list[Message]:
        conv = question_messages(state, kind, cands, self.top_k, self.max_words, self.candidate_words, avoid)
        start = self.starts.get(kind)
        return conv + ([{"role": "assistant", "content": start}] if start else [])

    def _valid(self, text: Optional[str], allowed: Optional[set]) -> Optional[str]:
        """`text` when it names no gallery class outside `allowed` (None: any), else None."""
        if text is None or allowed is None:
            return text
        return text if set(labels_in(text, self.knowledge.labels)) <= allowed else None

    def ask(self, states: list[DialogState], kinds: list[str], candidates: list[list[Candidate]]
            ) -> list[Question]:
        if not len(states) == len(kinds) == len(candidates):
            raise ValueError(f"{len(states)} dialogs, {len(kinds)} question types, {len(candidates)} candidate lists")
        parse = lambda r: parse_question(r, self.max_words)  # noqa: E731
        convs = [self._conversation(st, kind, c) for st, kind, c in zip(states, kinds, candidates)]
        cons: list = [None] * len(states)
        allowed: list = [None] * len(states)
        if self.structured:
            pairs = [self.constraint(st, kind, c) for st, kind, c in zip(states, kinds, candidates)]
            cons, allowed = [c for c, _ in pairs], [a for _, a in pairs]
        texts = _ask_model("questioner", self.client, convs, parse, self.stats,
                           cons if self.structured else None)
        texts = [self._valid(t, a) for t, a in zip(texts, allowed)]
        again = [i for i, t in enumerate(texts) if t is not None and repeats_question(states[i].turns, t)]
        if again:
            self.stats["repeats"] += len(again)
            self.stats["retries"] += len(again)
            # asked again with the question listed as asked, and (structured) beginning with another word
            retry = _ask_model("questioner", self.client,
                               [self._conversation(states[i], kinds[i], candidates[i], (texts[i],)) for i in again],
                               parse, self.stats,
                               [self.constraint(states[i], kinds[i], candidates[i], texts[i].split()[0])[0]
                                for i in again] if self.structured else None)
            for i, t in zip(again, retry):
                t = self._valid(t, allowed[i])
                texts[i] = None if t is None or repeats_question(states[i].turns, t) else t
        out = [None if t is None else Question(t, kind) for t, kind in zip(texts, kinds)]
        return _fill(out, self.stats, lambda idx: self.fallback.ask(
            [states[i] for i in idx], [kinds[i] for i in idx], [candidates[i] for i in idx]))


class LLMAnswerWriter:
    """The simulated user as a chat model that sees only the target's memory sentences and the question.
    With `structured`, the reply is one sentence of the memory's own words, or "I don't know." (`answer_constraint`)."""

    name = "llm"

    def __init__(self, client: ChatClient, fallback: Answerer, max_words: int = 40, structured: bool = False):
        self.client, self.fallback, self.max_words, self.structured = client, fallback, max_words, structured
        self.stats = _new_stats()

    def answer(self, questions: list[str], memories: list[list[str]]) -> list[str]:
        if len(questions) != len(memories):
            raise ValueError(f"{len(questions)} questions but {len(memories)} memories")
        convs = [answer_messages(q, m, self.max_words) for q, m in zip(questions, memories)]
        cons = [answer_constraint(m) for m in memories] if self.structured else None
        out = _ask_model("answerer", self.client, convs, lambda r: parse_answer(r, self.max_words), self.stats,
                         cons)
        return _fill(out, self.stats, lambda idx: self.fallback.answer([questions[i] for i in idx],
                                                                       [memories[i] for i in idx]))


class LLMSummariser:
    """The CoT reconstruction s (p̂3) written by a chat model. With `cot`, two batched calls: every dialog's
    object list (step 1), then, in the same conversation, every reconstruction (step 2); without, one call.
    A dialog whose step 1 or step 2 reply does not parse is summarised by `fallback`.

    With `structured` (needs `vocabulary`, the gallery's object classes), step 1 is a JSON list of up to five of
    those classes (`objects_constraint`), step 2 one sentence per listed object that names it
    (`reconstruction_constraint`); without CoT, plain sentences (`description_constraint`)."""

    name = "llm"

    def __init__(self, client: ChatClient, fallback: Summariser, cot: bool = True, max_words: int = 80,
                 vocabulary: Optional[list[str]] = None, structured: bool = False, max_objects: int = 5):
        if structured and not vocabulary:
            raise ValueError("a structured llm summariser needs the gallery's object classes (vocabulary)")
        self.client, self.fallback, self.cot, self.max_words = client, fallback, cot, max_words
        self.vocabulary, self.structured, self.max_objects = sorted(set(vocabulary or ())), structured, max_objects
        self.stats = _new_stats()

    def summarise(self, states: list[DialogState]) -> list[str]:
        summary = lambda r: parse_summary(r, self.max_words)  # noqa: E731
        st_ = self.structured
        if not self.cot:
            convs = [one_step_messages(st, self.max_words) for st in states]
            out = _ask_model("summariser", self.client, convs, summary, self.stats,
                             [description_constraint()] * len(convs) if st_ else None)
        else:
            first = [extraction_messages(st, as_json=st_) for st in states]
            if st_:
                objects = _ask_model("summariser", self.client, first,
                                     lambda r: parse_object_list(r, self.vocabulary, self.max_objects), self.stats,
                                     [objects_constraint(self.vocabulary, self.max_objects)] * len(first))
            else:
                objects = _ask_model("summariser", self.client, first, parse_objects, self.stats)
            idx = [i for i, o in enumerate(objects) if o is not None]
            second = _ask_model("summariser", self.client,
                                [reconstruction_messages(first[i], objects[i], self.max_words, per_object=st_)
                                 for i in idx],
                                (lambda r: parse_sentences(r, self.max_words)) if st_ else summary, self.stats,
                                [reconstruction_constraint(objects[i]) for i in idx] if st_ else None)
            out = [None] * len(states)
            for i, s in zip(idx, second):
                # a reconstruction that names none of the listed objects is not about this dialog
                out[i] = s if s is not None and any(mentions(s, o.split()[-1]) for o in objects[i]) else None
        return _fill(out, self.stats, lambda idx: self.fallback.summarise([states[i] for i in idx]))


__all__ = ["ChatClient", "LLMAnswerWriter", "LLMQuestioner", "LLMSummariser", "LocalChatClient", "OpenAIChatClient",
           "QUESTION_TYPES", "answer_messages", "extraction_messages", "make_chat_client", "one_step_messages",
           "parse_answer", "parse_objects", "parse_question", "parse_summary", "question_messages",
           "reconstruction_messages"]
