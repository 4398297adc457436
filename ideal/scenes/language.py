"""Referring descriptions for synthetic scenes, in the three published styles.

- ScanRefer-like: free-form, several sentences, attributes plus 1-3 spatial relations, varied wording.
- Nr3D-like: one terse phrase that tells the target apart from same-class distractors.
- Sr3D-like: a template relation (closest / farthest / between / on / next to / above) to a unique anchor.

Every relation a sentence states is first checked against the geometry (`relations.py`), and is
returned with the text, so tests and the relations sidecar can verify it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import relations as rel
from .layout import Placed
from .rooms import ROOM_WORDS
from .types import Scene, SceneObject

# Doors and windows are referred to, but less often than furniture (as in ScanRefer).
SHELL_LIKE = {"door", "window"}
# How readily a free-form description states each relation (people say "next to" more than "between").
RELATION_WEIGHT = {"between": 0.35, "closest": 0.5, "farthest": 0.35}


@dataclass(frozen=True)
class Relation:
    """`name` holds between the target and `anchors` (object ids), e.g. ("between", (4, 9))."""

    name: str
    anchors: tuple[int, ...] = ()


@dataclass
class Utterance:
    object_id: int
    text: str
    style: str  # scanrefer | nr3d | sr3d
    relations: list[Relation]
    color: Optional[str] = None
    reference_type: str = ""  # Sr3D: closest | farthest | between | supported-by | next to | above


class _Describer:
    def __init__(self, scene: Scene, placed: dict[int, Placed], rng: np.random.Generator):
        self.scene, self.placed, self.rng = scene, placed, rng
        self.objs = {o.object_id: o for o in scene.furniture()}
        self.bounds = rel.room_bounds(scene)
        self.by_cat: dict[str, list[SceneObject]] = {}
        for o in self.objs.values():
            self.by_cat.setdefault(o.label, []).append(o)
        self._facts: dict[int, list[Relation]] = {}

    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def name(self, oid: int) -> str:
        return self.pick(self.placed[oid].kind.names)

    def unique(self, oid: int) -> bool:
        return len(self.by_cat[self.objs[oid].label]) == 1

    def ref(self, oid: int) -> str:
        """'the lamp' for a one-of-a-kind anchor, 'a chair' otherwise."""
        return f"the {self.name(oid)}" if self.unique(oid) else f"a {self.name(oid)}"

    # -- which relations are true for a target --------------------------------------------
    def facts(self, oid: int) -> list[Relation]:
        if oid not in self._facts:
            self._facts[oid] = self._true_relations(oid)
        return self._facts[oid]

    def _true_relations(self, oid: int) -> list[Relation]:
        t, p = self.objs[oid], self.placed[oid]
        out = []
        # Anchors never share a name with the target ("the chair closest to the chair").
        names = set(p.kind.names)
        others = [o for o in self.objs.values()
                  if o.object_id != oid and o.label != t.label and not names & set(self.placed[o.object_id].kind.names)]
        if p.support is not None and p.support in self.objs and rel.is_on(t, self.objs[p.support]):
            out.append(Relation("on", (p.support,)))
        for o in others:
            if rel.is_on(o, t):
                out.append(Relation("supports", (o.object_id,)))
            elif o.label in SHELL_LIKE:
                if rel.is_near(t, o):
                    out.append(Relation(f"near_{o.label}", (o.object_id,)))
            elif rel.is_above(t, o):
                out.append(Relation("above", (o.object_id,)))
            elif rel.is_above(o, t):
                out.append(Relation("below", (o.object_id,)))
            elif rel.is_next_to(t, o) and p.support is None:
                out.append(Relation("next_to", (o.object_id,)))
        grounded = self.grounded(oid)
        if grounded and rel.is_in_corner(t, self.bounds):
            out.append(Relation("in_corner"))
        elif grounded and rel.is_against_wall(t, self.bounds):
            out.append(Relation("against_wall"))
        same = self.by_cat[t.label]
        if len(same) >= 2:
            for a in others:
                if not self.unique(a.object_id):
                    continue
                if rel.is_closest(t, same, a):
                    out.append(Relation("closest", (a.object_id,)))
                elif rel.is_farthest(t, same, a):
                    out.append(Relation("farthest", (a.object_id,)))
        # "between" is said of things standing on the floor, between two other such things.
        uniq = [a for a in others if self.unique(a.object_id) and self.grounded(a.object_id)] if grounded else []
        for i, a in enumerate(uniq):
            for b in uniq[i + 1:]:
                if rel.is_between(t, a, b):
                    out.append(Relation("between", (a.object_id, b.object_id)))
        return out

    def grounded(self, oid: int) -> bool:
        t = self.objs[oid]
        return self.placed[oid].support is None and t.bbox_min[2] < 0.05 and t.label not in SHELL_LIKE

    # -- rendering --------------------------------------------------------------------------
    def size_word(self, oid: int) -> str:
        p = self.placed[oid]
        ratio = float(np.prod(p.hi - p.lo) / np.prod(p.kind.size))
        if ratio > 1.12:
            return self.pick(["large", "big"])
        if ratio < 0.88:
            return self.pick(["small", "little"])
        return ""

    def relation_sentence(self, r: Relation, noun: str) -> str:
        a = r.anchors
        options = {
            "on": [f"it is on {self.ref(a[0])}.", f"it sits on top of {self.ref(a[0])}.",
                   f"the {noun} is placed on {self.ref(a[0])}."] if a else [],
            "supports": [f"there is {self.ref(a[0])} on it." if not self.unique(a[0]) else
                         f"{self.ref(a[0])} is sitting on top of it."] if a else [],
            "above": [f"it hangs above {self.ref(a[0])}.", f"it is mounted on the wall above {self.ref(a[0])}."]
            if a else [],
            "below": [f"above it there is {self.ref(a[0]).replace('the ', 'a ', 1)}.",
                      f"{self.ref(a[0])} hangs above it."] if a else [],
            "next_to": [f"it is next to {self.ref(a[0])}.", f"it is beside {self.ref(a[0])}.",
                        f"the {noun} is right by {self.ref(a[0])}."] if a else [],
            "near_window": ["it is close to the window.", "it is by the window.", "it is near a window."],
            "near_door": ["it is near the door.", "it is close to the door.", "you can see it near the door."],
            "against_wall": ["it is against the wall.", "it is pushed against the wall.",
                             "it stands along the wall."],
            "in_corner": ["it is in the corner of the room.", "it sits in a corner of the room."],
            "closest": [f"it is the {noun} closest to the {self.name(a[0])}.",
                        f"of all the {noun}s, it is the nearest to the {self.name(a[0])}."] if a else [],
            "farthest": [f"it is the {noun} farthest from the {self.name(a[0])}.",
                         f"it is the {noun} that is farthest away from the {self.name(a[0])}."] if a else [],
            "between": [f"it is between the {self.name(a[0])} and the {self.name(a[1])}.",
                        f"the {noun} is located between the {self.name(a[0])} and the {self.name(a[1])}."]
            if len(a) == 2 else [],
        }[r.name]
        return self.pick(options)

    def scanrefer(self, oid: int) -> Optional[Utterance]:
        facts = self.facts(oid)
        if not facts:
            return None
        p = self.placed[oid]
        noun, color, material, size = self.name(oid), p.color, p.material, self.size_word(oid)
        adj = " ".join(w for w in (size, color) if w)
        art = "an" if adj[:1] in "aeiou" and adj else "a"
        opening = self.pick([
            f"this is {art} {adj} {noun}.",
            f"there is {art} {adj} {material} {noun}." if material not in noun else f"there is {art} {adj} {noun}.",
            f"the {noun} is {color} and {material}." if material not in ("potted", "framed", "round") else
            f"the {noun} is {color}.",
            f"it is {art} {adj} {noun} made of {material}." if material in ("wooden", "metal", "plastic")
            else f"it is {art} {adj} {noun}.",
            f"a {color} {noun}.",
        ]).replace("wooden made", "wood made").replace("made of wooden", "made of wood")
        chosen = self.choose_relations(facts, int(self.rng.integers(1, 4)))
        sentences = [opening] + [self.relation_sentence(r, noun) for r in chosen]
        if self.rng.random() < 0.15:
            sentences.append(f"the {noun} is in the {ROOM_WORDS.get(self.scene.scene_type, 'room')}.")
        text = " ".join(" ".join(s.split()) for s in sentences)
        return Utterance(oid, text, "scanrefer", chosen, color=color)

    def choose_relations(self, facts: list[Relation], n: int) -> list[Relation]:
        """Up to n relations, each kind at most once; the geometric superlatives less often."""
        w = np.array([RELATION_WEIGHT.get(r.name, 1.0) for r in facts])
        chosen, seen = [], set()
        for i in self.rng.choice(len(facts), size=len(facts), replace=False, p=w / w.sum()):
            if facts[i].name not in seen and len(chosen) < n:
                chosen.append(facts[i])
                seen.add(facts[i].name)
        return chosen

    def nr3d(self, oid: int) -> Optional[Utterance]:
        t = self.objs[oid]
        same = [o for o in self.by_cat[t.label] if o.object_id != oid]
        if not same or len(same) > 6:
            return None
        noun, color = self.name(oid), self.placed[oid].color
        options = []
        if all(self.placed[o.object_id].color != color for o in same):
            options.append((self.pick([f"the {color} {noun}", f"{color} {noun}",
                                       f"choose the {color} {noun}, not the other ones"]), [], color))
        mine = {r.name: r for r in self.facts(oid)}
        for name in ("closest", "farthest"):
            if name in mine:
                a = self.name(mine[name].anchors[0])
                phrase = {"closest": [f"the {noun} closest to the {a}", f"{noun} nearest the {a}"],
                          "farthest": [f"the {noun} farthest from the {a}", f"{noun} furthest from the {a}"]}
                options.append((self.pick(phrase[name]), [mine[name]], None))
        for name, words in (("against_wall", "against the wall"), ("in_corner", "in the corner"),
                            ("near_window", "by the window"), ("near_door", "near the door")):
            if name in mine and not any(self._has(o.object_id, name) for o in same):
                options.append((self.pick([f"the {noun} {words}", f"{noun} that is {words}"]), [mine[name]], None))
        if not options:
            return None
        text, rels, c = options[int(self.rng.integers(len(options)))]
        return Utterance(oid, text, "nr3d", list(rels), color=c)

    def _has(self, oid: int, name: str) -> bool:
        return any(r.name == name for r in self.facts(oid))

    def sr3d(self, oid: int) -> Optional[Utterance]:
        t = self.objs[oid]
        same = [o for o in self.by_cat[t.label] if o.object_id != oid]
        if not same:
            return None
        # Sr3D names objects by their annotation label, as ReferIt3D's templates do.
        noun = self.placed[oid].raw
        options = []
        for r in self.facts(oid):
            if r.name in ("closest", "farthest"):
                verb = "closest to" if r.name == "closest" else "farthest from"
                options.append((f"the {noun} that is {verb} the {self.anchor_cat(r, 0)}", r, r.name))
            elif r.name == "between":
                options.append((f"the {noun} that is between the {self.anchor_cat(r, 0)} and the "
                                f"{self.anchor_cat(r, 1)}", r, "between"))
            elif r.name in ("on", "next_to", "above") and self.unique(r.anchors[0]) and not any(
                    self._relates(o.object_id, r.name, self.objs[r.anchors[0]].label) for o in same):
                words = {"on": "on top of", "next_to": "next to", "above": "above"}[r.name]
                kind = {"on": "supported-by", "next_to": "next to", "above": "above"}[r.name]
                options.append((f"the {noun} that is {words} the {self.anchor_cat(r, 0)}", r, kind))
        if not options:
            return None
        text, r, kind = options[int(self.rng.integers(len(options)))]
        return Utterance(oid, text, "sr3d", [r], reference_type=kind)

    def anchor_cat(self, r: Relation, i: int) -> str:
        return self.placed[r.anchors[i]].raw

    def _relates(self, oid: int, name: str, anchor_label: str) -> bool:
        return any(r.name == name and self.objs[r.anchors[0]].label == anchor_label
                   for r in self.facts(oid) if r.anchors)


def describe_scene(scene: Scene, placed: dict[int, Placed], rng: np.random.Generator,
                   n_targets: int = 6, per_target: int = 2, n_nr3d: int = 4, n_sr3d: int = 4) -> list[Utterance]:
    """Descriptions of a scene's objects in all three styles, every stated relation true."""
    d = _Describer(scene, placed, rng)
    ids = sorted(d.objs)
    weights = np.array([0.3 if d.objs[i].label in SHELL_LIKE else 1.0 for i in ids])
    order = [ids[i] for i in rng.choice(len(ids), size=len(ids), replace=False, p=weights / weights.sum())]
    out: list[Utterance] = []
    targets = 0
    for oid in order:
        if targets >= n_targets:
            break
        made = [u for u in (d.scanrefer(oid) for _ in range(per_target)) if u is not None]
        out += made
        targets += bool(made)
    for style, limit in (("nr3d", n_nr3d), ("sr3d", n_sr3d)):
        made = 0
        for oid in order:
            if made >= limit:
                break
            u = getattr(d, style)(oid)
            if u is not None:
                out.append(u)
                made += 1
    return out
