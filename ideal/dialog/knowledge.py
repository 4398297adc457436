"""What the system knows about every gallery scene, read off the scene data (objects, colours, placement;
never descriptions, never a user's memory): the answer each scene would give to each aspect.

The grounded questioner uses it to predict how a question would split the candidates (Q2). Predictions
come from the same `GroundedAnswerer` the simulated user runs, applied to the scene's own facts, so the
questioner and the answerer agree on what a question can reveal.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from ..scenes.memory import _OPENINGS, coarse_memory, fine_memory, neighbours_of
from ..scenes.types import Scene
from .answerer import GroundedAnswerer
from .aspects import aspect_key, question_text
from .types import DONT_KNOW



def scene_facts(scene: Scene) -> list[str]:
    """Room type, object counts and per-object colour/placement sentences, from geometry only."""
    return fine_memory(scene, [])


def neighbour_key(scene: Scene, label: str) -> str:
    """What is near the objects called `label`: the sorted set of neighbour labels (or DONT_KNOW)."""
    near = neighbours_of(scene, label)
    return ",".join(near) if near else DONT_KNOW


class SceneKnowledge:
    """answers[i, j]: an integer id of scene i's answer to aspect j (equal ids = equal answers)."""

    def __init__(self, scenes: list[Scene], kinds=("room", "has", "count", "color", "place", "near")):
        self.ids = [s.scene_id for s in scenes]
        self.row = {sid: i for i, sid in enumerate(self.ids)}
        labels = sorted({o.label for s in scenes for o in s.furniture()})
        self.labels = labels
        self.aspects = (["room"] if "room" in kinds else []) + [
            aspect_key(k, lab) for k in kinds if k != "room" for lab in labels
            if not (k in ("color", "place", "near") and lab in _OPENINGS)]
        self.col = {a: j for j, a in enumerate(self.aspects)}
        answerer = GroundedAnswerer(embed=None, support=0)
        vocab: dict[tuple[int, str], int] = {}
        table = np.zeros((len(scenes), len(self.aspects)), np.int32)
        unknown = {j: vocab.setdefault((j, DONT_KNOW), len(vocab)) for j in range(len(self.aspects))}
        self.summaries: list[tuple[str, ...]] = []
        for i, scene in enumerate(scenes):
            facts = scene_facts(scene)
            present = {o.label for o in scene.furniture()}
            table[i, :] = [unknown[j] for j in range(len(self.aspects))]
            asks, cols = [], []
            for j, a in enumerate(self.aspects):
                kind, _, lab = a.partition(":")
                if kind == "near":
                    if lab in present:
                        table[i, j] = vocab.setdefault((j, neighbour_key(scene, lab)), len(vocab))
                elif kind == "room" or lab in present:
                    asks.append(question_text(a))
                    cols.append(j)
            for j, ans in zip(cols, answerer.answer(asks, [facts] * len(asks))):
                table[i, j] = vocab.setdefault((j, ans), len(vocab))
            counts = Counter(o.label for o in scene.furniture())
            self.summaries.append(tuple(coarse_memory(scene)) + (
                "Objects: " + ", ".join(f"{n} {lab}" for lab, n in sorted(counts.items())) + ".",))
        self.answers = table
        self.unknown = np.array([unknown[j] for j in range(len(self.aspects))], np.int32)
        self.prior_gain = answer_entropy(table[None], np.full((1, len(scenes)), 1.0 / max(len(scenes), 1)))[0]

    def rows(self, scene_ids: list[str]) -> np.ndarray:
        return np.array([self.row[s] for s in scene_ids], np.int64)


def answer_entropy(answers: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Expected information gain of each aspect over weighted candidates.

    answers: (B, k, A) answer ids of k candidates; weights: (B, k), rows summing to 1. The answer is a
    function of the candidate, so the gain equals the entropy of the answer distribution:
    H = -sum_i w_i log P(answer_i), P(answer_i) = sum_j w_j [answer_j == answer_i]. Returns (B, A) in nats.
    """
    answers = np.asarray(answers)
    w = np.asarray(weights, np.float64)
    same = answers[:, :, None, :] == answers[:, None, :, :]  # (B, k, k, A)
    p = np.einsum("bj,bija->bia", w, same)
    return -np.einsum("bi,bia->ba", w, np.log(np.clip(p, 1e-12, None)))
