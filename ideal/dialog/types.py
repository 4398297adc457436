"""The dialog's data and the three roles' protocols (questioner, answerer, summariser).

A dialog is the user's initial query a⁰ plus (question, answer) turns; the retriever re-ranks the gallery
after every round. Each question has a type chosen by the router: Q1 (detail probe) or Q2 (diverge
exploration). Everything here is batch-first: each role takes a list of dialogs and returns a list.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Protocol

import numpy as np

DONT_KNOW = "I don't know."
Q1, Q2 = "Q1", "Q2"  # detail probe | diverge exploration (paper §3.2.1)


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str
    kind: Optional[str] = None  # Q1 | Q2: the type the question was asked as
    aspect: Optional[str] = None  # e.g. "color:table"; None for free-form (LLM) questions


@dataclass(frozen=True)
class Candidate:
    """What the questioner may know about one of the top-k scenes: its id, a retrieval weight and a few
    sentences read off the scene's 3D data (object labels, colours, placement; never a user's memory)."""

    scene_id: str
    weight: float
    summary: tuple[str, ...]


@dataclass(frozen=True)
class DialogState:
    """One dialog after `round` rounds (round 0 = ranking on the initial query alone).

    `scores` are this round's fused prediction p̂c over the gallery (in gallery order); nothing is carried
    from one round's scores to the next. `top` is the same ranking cut to its best (scene id, score) pairs:
    what crosses a network hop instead of `scores` (see `ideal.dialog.round.compact`). `target` is the scene
    the simulated user has in mind: only the simulated user reads it.
    """

    query: str
    turns: tuple[Turn, ...] = ()
    summary: str = ""
    scores: Optional[np.ndarray] = None
    top: tuple[tuple[str, float], ...] = ()
    round: int = -1
    dialog_id: str = ""
    target: Optional[str] = None
    question: Optional["Question"] = None  # asked after this round's ranking, awaiting its answer
    next_kind: Optional[str] = None  # the router's type (Q1 | Q2) for the next question, set after ranking

    def with_(self, **kw) -> "DialogState":
        return replace(self, **kw)

    @property
    def answers(self) -> list[str]:
        return [t.answer for t in self.turns]

    @property
    def asked_aspects(self) -> set[str]:
        return {t.aspect for t in self.turns if t.aspect}

    @property
    def kinds(self) -> list[str]:
        """The types of the questions asked so far (Q1 | Q2), oldest first."""
        return [t.kind or Q1 for t in self.turns]


@dataclass(frozen=True)
class Question:
    text: str
    kind: str = Q1  # Q1 | Q2
    aspect: Optional[str] = None


class Questioner(Protocol):
    name: str

    def ask(self, states: list[DialogState], kinds: list[str], candidates: list[list[Candidate]]
            ) -> list[Question]:
        """One question per dialog of the routed type (Q1 | Q2), from the dialog so far and what the system
        knows of its top-k candidate scenes (best first; may be empty). Never sees a user's memory."""


class Answerer(Protocol):
    """The user's side of a round: what `run_round` calls with each dialog's pending question."""

    def answer(self, states: list[DialogState], questions: list[str]) -> list[str]:
        """One answer per dialog to its pending question."""


class AnswerWriter(Protocol):
    """How an answer is written from a memory (grounded extraction or an LLM); an Answerer picks the memory."""

    name: str

    def answer(self, questions: list[str], memories: list[list[str]]) -> list[str]:
        """Answer each question only from the matching memory (a list of sentences); DONT_KNOW when the
        memory does not say."""


class Summariser(Protocol):
    name: str

    def summarise(self, states: list[DialogState]) -> list[str]:
        """The CoT reconstruction s: the query and every response rewritten as one object-centric
        description of the scene (p̂3 is scored on it)."""


def is_unknown(answer: str) -> bool:
    a = answer.strip().lower()
    return not a or a.startswith(("i don't know", "i do not know", "not sure", "unknown", "i'm not sure",
                                  "i am not sure", "i do not remember", "i don't remember"))


__all__ = ["AnswerWriter", "Answerer", "Candidate", "DONT_KNOW", "DialogState", "Q1", "Q2", "Question", "Questioner", "Summariser",
           "Turn", "is_unknown"]
