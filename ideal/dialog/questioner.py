"""The grounded questioner: writes a question of the type the router chose, without an LLM.

- Q1, detail probe: the attributes and spatial relations of objects the dialog already names (their colour,
  where they are, what is next to them), the query's target object first; when all are asked, an open
  request for more detail about that object and its surroundings.
- Q2, diverge exploration: objects and arrangements the dialog has not discussed: "Is there a sofa in the
  room?" for a class the dialog does not name, or "Apart from the bed and the desk, what else is in the room?".

Among the questions of the routed type it picks the one whose answer best splits the candidate scenes under
what the system knows of their 3D data (`SceneKnowledge`); with no candidates (a dialog-only questioner) it
follows the dialog's order of objects and asks Q2 as an open "what else" question. It reads the dialog, the
type and the candidates' 3D data, and nothing of any user's memory.
"""
from __future__ import annotations

import numpy as np

from .aspects import DETAIL_KINDS, _label_regex, aspect_key, labels_in, parse_question, question_text, singular
from .knowledge import SceneKnowledge, answer_entropy
from .reading import colors_of, places_of
from .types import Q1, Q2, Candidate, DialogState, Question

_SETTLED = {"color": lambda lab, said: bool(colors_of(lab, said)),
            "place": lambda lab, said: bool(places_of(lab, said))}


def _in_order(text: str, vocabulary) -> list[str]:
    """The classes `text` names, in order of first mention (the query's target first)."""
    low = text.lower()
    return sorted(labels_in(text, vocabulary), key=lambda lab: _label_regex(lab).search(low).start())


class GroundedQuestioner:
    name = "grounded"

    def __init__(self, knowledge: SceneKnowledge, explore_below: float = 1e-2):
        self.knowledge = knowledge
        # Q2 falls back to the open "what else" question when no class splits the candidates
        self.explore_below = explore_below

    def gains(self, candidates: list[list[Candidate]]) -> np.ndarray:
        """(B, A) expected information gain of every aspect over each dialog's weighted candidates; ties (and
        dialogs without candidates) fall back to a small share of the aspect's gain over the whole gallery."""
        kn = self.knowledge
        out = np.repeat(1e-3 * kn.prior_gain[None], len(candidates), axis=0)
        for b, cands in enumerate(candidates):
            if len(cands) == 1:  # the top-1 alone (MERLIN): what it has, by how well that splits the gallery
                present = kn.answers[kn.row[cands[0].scene_id]] != kn.absent
                out[b] = np.where(present, kn.prior_gain, 0.0)
            if len(cands) < 2:
                continue
            w = np.array([c.weight for c in cands], np.float64)
            w /= max(w.sum(), 1e-12)
            out[b] += answer_entropy(kn.answers[kn.rows([c.scene_id for c in cands])][None], w[None])[0]
        return out

    def ask(self, states: list[DialogState], kinds: list[str], candidates: list[list[Candidate]]
            ) -> list[Question]:
        if not len(states) == len(kinds) == len(candidates):
            raise ValueError(f"{len(states)} dialogs, {len(kinds)} question types, {len(candidates)} candidate lists")
        gains = self.gains(candidates)
        out = []
        for st, kind, g, cands in zip(states, kinds, gains, candidates):
            if kind not in (Q1, Q2):
                raise ValueError(f"question type must be {Q1} or {Q2}, got {kind!r}")
            named, asked = self._read_dialog(st)
            out.append(self._detail(st, named, asked, g) if kind == Q1 else self._diverge(named, asked, g, bool(cands)))
        return out

    def _read_dialog(self, st: DialogState) -> tuple[list[str], set[str]]:
        """Classes the dialog names (the query's first), and the aspects already asked (read back from the
        question text too, for histories that arrive over HTTP)."""
        kn = self.knowledge
        named = list(dict.fromkeys(_in_order(st.query, kn.labels) + _in_order(" ".join(st.answers), kn.labels)))
        asked = set(st.asked_aspects)
        for t in st.turns:
            if t.aspect is None and (p := parse_question(t.question)) is not None:
                kind, phrase = p
                asked.add(aspect_key(kind, phrase if kind == "explore" or phrase in kn.labels else singular(phrase)))
        return named, asked

    def _detail(self, st: DialogState, named: list[str], asked: set[str], g: np.ndarray) -> Question:
        """Q1: the most splitting unasked colour/place/neighbour aspect of a named object, else an open
        request for more detail about the first named object."""
        kn = self.knowledge
        said = [st.query, *st.answers]
        best, best_score = None, -np.inf
        for rank, label in enumerate(named):
            for kind in DETAIL_KINDS:
                a = aspect_key(kind, label)
                if a in asked or a not in kn.col or (kind in _SETTLED and _SETTLED[kind](label, said)):
                    continue
                score = g[kn.col[a]] - 1e-6 * rank  # equal gains: the object named first (the query's target)
                if score > best_score:
                    best, best_score = a, score
        if best is None:  # every attribute asked or said: an open probe of a named object not yet probed
            fresh = [lab for lab in named if aspect_key("detail", lab) not in asked]
            best = aspect_key("detail", (fresh or named or [""])[0])
        return Question(question_text(best), Q1, best)

    def _diverge(self, named: list[str], asked: set[str], g: np.ndarray, has_candidates: bool) -> Question:
        """Q2: whether a class the dialog does not name is there (the most splitting one), else what else."""
        kn = self.knowledge
        if has_candidates:
            best, best_gain = None, self.explore_below
            for label in kn.labels:
                a = aspect_key("has", label)
                if label not in named and a not in asked and g[kn.col[a]] > best_gain:
                    best, best_gain = a, g[kn.col[a]]
            if best is not None:
                return Question(question_text(best), Q2, best)
        a = aspect_key("explore", ",".join(named[:3]))
        return Question(question_text(a), Q2, a)


__all__ = ["GroundedQuestioner"]
