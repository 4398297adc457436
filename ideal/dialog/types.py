"""The dialog's data and the three roles' protocols (questioner, answerer, summariser).

A dialog is the user's initial query u plus (question, answer) turns; the retriever re-ranks the gallery
after every round. Everything here is batch-first: each role takes a list of dialogs and returns a list.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Protocol, runtime_checkable

import numpy as np

DONT_KNOW = "I don't know."


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str
    aspect: Optional[str] = None  # e.g. "color:table"; None for free-form (LLM) questions


@dataclass(frozen=True)
class Candidate:
    """What the questioner may know about one of the top-k scenes: its id, a retrieval weight and a few
    sentences read off the scene data (never the target's memory)."""

    scene_id: str
    weight: float
    summary: tuple[str, ...]


@dataclass(frozen=True)
class DialogState:
    """One dialog after `round` rounds (round 0 = ranking on the initial query alone).

    `scores` are this round's fused scores over the gallery (in gallery order); the next round mixes them
    in with weight alpha. `target` is the scene the simulated user has in mind: only the answerer's
    memory lookup reads it.
    """

    query: str
    turns: tuple[Turn, ...] = ()
    summary: str = ""
    scores: Optional[np.ndarray] = None
    round: int = -1
    dialog_id: str = ""
    target: Optional[str] = None
    question: Optional["Question"] = None  # asked after this round's ranking, awaiting its answer

    def with_(self, **kw) -> "DialogState":
        return replace(self, **kw)

    @property
    def answers(self) -> list[str]:
        return [t.answer for t in self.turns]

    @property
    def asked_aspects(self) -> set[str]:
        return {t.aspect for t in self.turns if t.aspect}


@dataclass(frozen=True)
class Question:
    text: str
    aspect: Optional[str] = None


@runtime_checkable
class Questioner(Protocol):
    name: str

    def ask(self, states: list[DialogState], candidates: list[list[Candidate]]) -> list[Question]:
        """One question per dialog, given the dialog so far and its top-k candidates (best first)."""


@runtime_checkable
class Answerer(Protocol):
    name: str

    def answer(self, questions: list[str], memories: list[list[str]]) -> list[str]:
        """Answer each question only from the matching memory (a list of sentences); DONT_KNOW when the
        memory does not say."""


@runtime_checkable
class Summariser(Protocol):
    name: str

    def summarise(self, states: list[DialogState]) -> list[str]:
        """The dialog so far as one description of the target (the CoT step; p3 is scored on it)."""


def is_unknown(answer: str) -> bool:
    a = answer.strip().lower()
    return not a or a.startswith(("i don't know", "i do not know", "not sure", "unknown"))


__all__ = ["Answerer", "Candidate", "DONT_KNOW", "DialogState", "Question", "Questioner", "Summariser", "Turn",
           "is_unknown"]
