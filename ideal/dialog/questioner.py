"""The grounded questioner: candidate-aware questions chosen by expected information gain.

Q1 (dialog grounding): never re-ask an aspect already answered, do not ask whether the room has an object
the dialog already named, and prefer the target object (its colour, place, neighbours).
Q2 (candidate grounding): weight the top-k candidates by softmax(score / beta) and ask the aspect whose
answer best splits them (knowledge.answer_entropy). Without Q2 the questioner only knows which aspects split
the gallery in general (a dialog-only questioner, as in ChatIR).
"""
from __future__ import annotations

import numpy as np

from .aspects import aspect_key, labels_in, parse_question, question_text, singular, split_aspect
from .answerer import count_sentence, colors_of, places_of
from .knowledge import SceneKnowledge, answer_entropy
from .types import Candidate, DialogState, Question

_TARGET_KINDS = ("color", "place", "near")
_SETTLED = (("color", lambda lab, said: bool(colors_of(lab, said))),
            ("count", lambda lab, said: count_sentence(lab, said) is not None),
            ("place", lambda lab, said: bool(places_of(lab, said))))


class GroundedQuestioner:
    name = "grounded"

    def __init__(self, knowledge: SceneKnowledge, use_q1: bool = True, use_q2: bool = True,
                 target_bonus: float = 0.1, prior_weight: float = 0.0, chunk: int = 128):
        self.knowledge, self.use_q1, self.use_q2 = knowledge, use_q1, use_q2
        # With k candidates most aspects split them completely (gain log k): ties. The gallery-wide gain,
        # weighted by prior_weight, breaks them towards questions that tell scenes apart in general.
        self.prior_weight = prior_weight
        self.target_bonus, self.chunk = target_bonus, chunk

    def gains(self, candidates: list[list[Candidate]]) -> np.ndarray:
        """(B, A) expected information gain of every aspect for each dialog's candidates."""
        kn = self.knowledge
        if not self.use_q2:
            return np.repeat(kn.prior_gain[None], len(candidates), axis=0)
        k = max((len(c) for c in candidates), default=0)
        out = np.zeros((len(candidates), len(kn.aspects)))
        for s in range(0, len(candidates), self.chunk):
            part = candidates[s:s + self.chunk]
            rows = np.zeros((len(part), k), np.int64)
            w = np.zeros((len(part), k))
            for b, cands in enumerate(part):
                rows[b, :len(cands)] = kn.rows([c.scene_id for c in cands])
                w[b, :len(cands)] = [c.weight for c in cands]
            w /= np.clip(w.sum(axis=1, keepdims=True), 1e-12, None)
            out[s:s + len(part)] = answer_entropy(kn.answers[rows], w) + self.prior_weight * kn.prior_gain
        # One candidate (MERLIN-style, "ask about the top-1"): no split to measure; ask what the top-1 scene
        # can answer, in order of how much it tells scenes apart in general.
        for b, cands in enumerate(candidates):
            if len(cands) == 1:
                known = kn.answers[kn.row[cands[0].scene_id]] != kn.unknown
                out[b] = np.where(known, 1e-3 * kn.prior_gain, 0.0)
        return out

    def ask(self, states: list[DialogState], candidates: list[list[Candidate]]) -> list[Question]:
        if len(states) != len(candidates):
            raise ValueError(f"{len(states)} dialogs but {len(candidates)} candidate lists")
        kn = self.knowledge
        gains = self.gains(candidates)
        out = []
        for st, g in zip(states, gains):
            score = g.copy()
            if self.use_q1:
                score += self._grounding(st)
            if not np.isfinite(score).any():  # every aspect settled: ask the most telling one again
                score = g
            j = int(np.argmax(score))
            out.append(Question(question_text(kn.aspects[j]), kn.aspects[j]))
        return out

    def _grounding(self, st: DialogState) -> np.ndarray:
        """Q1: -inf for aspects the dialog settled, a bonus for aspects of the target object."""
        kn = self.knowledge
        adj = np.zeros(len(kn.aspects))
        asked = set(st.asked_aspects)
        # a history from HTTP carries text only: read the aspects back from the questions
        for t in st.turns:
            if t.aspect is None and (p := parse_question(t.question)) is not None:
                kind, phrase = p
                asked.add(aspect_key(kind, phrase if phrase in kn.col or phrase in kn.labels else singular(phrase)))
        said = [st.query, *st.answers]
        named = set(labels_in(" ".join(said), kn.labels))
        found = labels_in(st.query, kn.labels)
        target = found[0] if found else None
        # what the dialog already says about a named object: its colour, count, place
        settled = {aspect_key(kind, lab) for lab in named for kind, fn in _SETTLED if fn(lab, said)}
        for j, a in enumerate(kn.aspects):
            kind, label = split_aspect(a)
            if a in asked or a in settled or (kind == "has" and label in named):
                adj[j] = -np.inf
            elif label and label == target and kind in _TARGET_KINDS:
                adj[j] += self.target_bonus
        return adj
