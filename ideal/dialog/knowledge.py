"""What the system knows about every gallery scene, read off its 3D data alone (object labels, colours of
their points, positions and sizes): never a description, never a user's memory, never the answerer's code.

For each scene and each aspect ("has:chair", "color:chair", "place:chair", "near:chair", "count:chair",
"room") the table holds an id of the scene's *geometric* value (equal ids = equal values): whether the class
is present, the set of its colour names, the set of its placements, the set of its neighbours' labels. The
grounded questioner asks what best splits its candidate scenes under this table; how a user will word the
answer is not modelled. The geometry is read here with the scene library's predicates (`ideal.scenes.relations`),
never with the simulated user's memory writer (`ideal.scenes.memory`), whose words and choices stay its own.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from ..scenes import relations as rel
from ..scenes.colors import color_name
from ..scenes.types import Scene
from ..scenes.words import OPENINGS as _OPENINGS, article, count_phrase, join_words, room_word
from .aspects import aspect_key, split_aspect

KINDS = ("room", "has", "count", "color", "place", "near")
ABSENT = "-"


def placements(scene: Scene) -> list[tuple]:
    """(object, colour name, {placements}) of every furniture object but windows and doors. A placement is a token:
    "on:<label>" (resting on another object), "corner", "wall" (standing against one), "wall-mounted",
    "window" / "door" (near one)."""
    objs = scene.furniture()
    bounds = rel.room_bounds(scene)
    openings = [o for o in objs if o.label in _OPENINGS]
    out = []
    for o in objs:
        if o.label in _OPENINGS:
            continue
        where = set()
        support = next((s for s in objs if s is not o and rel.is_on(o, s)), None)
        on_floor = o.bbox_min[2] < 0.05
        if support is not None:
            where.add(f"on:{support.label}")
        elif on_floor and rel.is_in_corner(o, bounds):
            where.add("corner")
        elif on_floor and rel.is_against_wall(o, bounds):
            where.add("wall")
        elif o.bbox_min[2] > 0.5 and rel.is_against_wall(o, bounds):
            where.add("wall-mounted")
        where |= {w.label for w in openings if rel.is_near(o, w)}
        out.append((o, color_name(o.color_rgb), where))
    return out


def neighbours(scene: Scene, label: str) -> list[str]:
    """Sorted labels of the objects standing next to any object called `label` (windows and doors aside)."""
    objs = [o for o in scene.furniture() if o.label not in _OPENINGS]
    return sorted({b.label for a in objs if a.label == label for b in objs
                   if b is not a and b.label != label and rel.is_next_to(a, b)})


def scene_summary(scene: Scene, max_items: int = 4) -> list[str]:
    """What the system shows of a candidate scene (e.g. to an LLM questioner): its room type, its most frequent
    furniture, its windows and doors."""
    counts = Counter(o.label for o in scene.furniture() if o.label not in _OPENINGS)
    out = [f"This is {article(room_word(scene.scene_type))}."]
    if counts:
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_items]
        out.append(f"It has {join_words([count_phrase(n, label) for label, n in top])}.")
    openings = Counter(o.label for o in scene.furniture() if o.label in _OPENINGS)
    if openings:
        items = sorted(openings.items())
        out.append(f"There {'is' if items[0][1] == 1 else 'are'} "
                   f"{join_words([count_phrase(n, lab) for lab, n in items])}.")
    return out


def scene_values(scene: Scene) -> dict[str, str]:
    """aspect -> the scene's value of it, from geometry (aspects of absent classes are left out)."""
    counts = Counter(o.label for o in scene.furniture())
    colours: dict[str, set] = {}
    places: dict[str, set] = {}
    for o, colour, where in placements(scene):
        colours.setdefault(o.label, set()).add(colour)
        places.setdefault(o.label, set()).update(where)
    out = {"room": scene.scene_type}
    for label, n in counts.items():
        out[aspect_key("has", label)] = "yes"
        out[aspect_key("count", label)] = str(n)
        if label in _OPENINGS:
            continue
        out[aspect_key("color", label)] = ",".join(sorted(colours.get(label, ())))
        out[aspect_key("place", label)] = ",".join(sorted(places.get(label, ())))
        out[aspect_key("near", label)] = ",".join(neighbours(scene, label))
    return out


class SceneKnowledge:
    """answers[i, j]: an integer id of scene i's value of aspect j (ABSENT where the class is missing).

    Built from scenes, or (`from_values`) from what `scene_knowledge` read off them, as an encoded gallery
    stores it (so a large gallery's table is not recomputed where it is served)."""

    def __init__(self, scenes: list[Scene]):
        ids, values, summaries = scene_knowledge(scenes)
        self._build(ids, values, summaries)

    @classmethod
    def from_values(cls, ids: list[str], values: list[dict[str, str]], summaries: list[tuple[str, ...]]
                    ) -> "SceneKnowledge":
        """values[i]: scene ids[i]'s `scene_values`; summaries[i]: its `scene_summary` sentences."""
        out = cls.__new__(cls)
        out._build(list(ids), values, summaries)
        return out

    def _build(self, ids: list[str], values: list[dict[str, str]], summaries: list[tuple[str, ...]]) -> None:
        if not (len(ids) == len(values) == len(summaries)):
            raise ValueError(f"{len(ids)} scenes, {len(values)} value sets and {len(summaries)} summaries")
        self.ids = ids
        self.row = {sid: i for i, sid in enumerate(self.ids)}
        self.labels = sorted({split_aspect(a)[1] for v in values for a in v if a.startswith("has:")})
        self.aspects = ["room"] + [aspect_key(k, lab) for k in KINDS if k != "room" for lab in self.labels
                                   if not (k in ("color", "place", "near") and lab in _OPENINGS)]
        self.col = {a: j for j, a in enumerate(self.aspects)}
        vocab: dict[tuple[int, str], int] = {}
        absent = np.array([vocab.setdefault((j, ABSENT), len(vocab)) for j in range(len(self.aspects))], np.int32)
        table = np.tile(absent, (len(ids), 1))
        for i, scene_values_i in enumerate(values):
            for a, value in scene_values_i.items():
                j = self.col.get(a)
                if j is not None:
                    table[i, j] = vocab.setdefault((j, value), len(vocab))
        self.answers, self.absent = table, absent
        self.summaries = [tuple(s) for s in summaries]
        self.prior_gain = value_entropy(table)

    def rows(self, scene_ids: list[str]) -> np.ndarray:
        return np.array([self.row[s] for s in scene_ids], np.int64)


def scene_knowledge(scenes: list[Scene]) -> tuple[list[str], list[dict[str, str]], list[tuple[str, ...]]]:
    """(scene ids, each scene's `scene_values`, each scene's `scene_summary`): what SceneKnowledge is built of."""
    return ([s.scene_id for s in scenes], [scene_values(s) for s in scenes],
            [tuple(scene_summary(s)) for s in scenes])


def labels_of(scenes: list[Scene]) -> list[str]:
    """The object classes of a gallery (furniture, not walls and floors), sorted."""
    return sorted({o.label for s in scenes for o in s.furniture()})


def value_entropy(table: np.ndarray) -> np.ndarray:
    """Each column's entropy over all rows equally weighted, in nats: `answer_entropy` of the whole gallery with
    uniform weights, in O(S·A) rather than O(S²·A)."""
    n = max(len(table), 1)
    out = np.zeros(table.shape[1])
    for j in range(table.shape[1]):
        p = np.unique(table[:, j], return_counts=True)[1] / n
        out[j] = -(p * np.log(p)).sum()
    return out


def answer_entropy(answers: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Expected information gain of each aspect over weighted candidates.

    answers: (B, k, A) value ids of k candidates; weights: (B, k), rows summing to 1. The value is a function
    of the candidate, so the gain equals the entropy of the value distribution:
    H = -sum_i w_i log P(value_i), P(value_i) = sum_j w_j [value_j == value_i]. Returns (B, A) in nats.
    """
    answers = np.asarray(answers)
    w = np.asarray(weights, np.float64)
    same = answers[:, :, None, :] == answers[:, None, :, :]  # (B, k, k, A)
    p = np.einsum("bj,bija->bia", w, same)
    return -np.einsum("bi,bia->ba", w, np.log(np.clip(p, 1e-12, None)))
