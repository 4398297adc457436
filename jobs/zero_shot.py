"""Zero-shot check of the retriever on Nr3D-style descriptions in a phrasing it never trained on.

The retriever learns from `ideal/scenes/language.py`'s templates. This job writes new terse referring phrases for
the synthetic benchmark's scenes with a generator of its own ("grey armchair, left of the bookcase", "pick the lamp
near the couch", "smaller white box under desk"): its own relation words, colour words and sentence shapes, every
stated relation checked against the scene's geometry first. It writes them as a published-format Nr3D CSV, reads
the file back with the Nr3D reader and evaluates each retriever statically over the split's gallery, next to the
training-free bag-of-labels floor.

    python jobs/zero_shot.py                                     # val split, the shipped base and iat retrievers
    python jobs/zero_shot.py --weights base --weights runs/iat/final --per-scene 20
    python jobs/zero_shot.py --weights labels --limit 3          # the bag-of-labels floor only, on 3 scenes

Writes --out (the Nr3D CSV, default results/zero_shot/nr3d_novel.csv) and, beside it, results.json and results.md
(R@1/5/10, Rsum and each retriever's Rsum over the bag-of-labels floor's).
"""
from __future__ import annotations

import argparse
import json
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm import tqdm

from ideal import build
from ideal.evaluate import static_eval
from ideal.scenes import load_synthetic
from ideal.scenes import relations as rel
from ideal.scenes.colors import PALETTE, color_name
from ideal.scenes.dataset import SceneDataset
from ideal.scenes.referit3d import read_nr3d, write_nr3d
from ideal.scenes.synthetic import generate
from ideal.scenes.types import Description, Scene, SceneObject

DEFAULT_WEIGHTS = ["base", "iat"]
FLOOR = "bag-of-labels"
# A size word ("smaller box") is said only when the target is the smallest/largest of its class by this factor.
SIZE_MARGIN = 1.25
# How people call each palette colour here; language.py says the palette name itself ("gray", "beige").
COLOUR_WORDS = {
    "white": ("white",), "black": ("black",), "gray": ("grey",), "brown": ("brown",), "beige": ("cream", "tan"),
    "red": ("red",), "blue": ("blue",), "green": ("green",), "yellow": ("yellow",), "orange": ("orange",),
    "pink": ("pink",), "purple": ("violet", "purple"),
}
PALETTE_OF = {word: name for name, words in COLOUR_WORDS.items() for word in words}
# Relation phrases, {a} the anchor's noun phrase. Superlatives, sides and "across" need a one-of-a-kind anchor.
PHRASES = {
    "closest": ("by {a}", "on the {label} side of the room"),
    "farthest": ("far from {a}", "most distant from {a}", "on the far side from {a}"),
    "on": ("resting on {a}", "atop {a}", "up on {a}"),
    "under": ("under {a}", "below {a}", "beneath {a}", "underneath {a}"),
    "over": ("over {a}", "up over {a}"),
    "beside": ("beside {a}", "alongside {a}", "at the side of {a}"),
    "near": ("near {a}", "close by {a}", "within reach of {a}"),
    "left": ("left of {a}", "to the left of {a}", "on the left of {a}"),
    "right": ("right of {a}", "to the right of {a}", "on the right of {a}"),
    "across": ("across from {a}", "opposite {a}", "facing {a}"),
}
PAIR_PHRASES = {"closest": ("nearer {a}",), "farthest": ("away from {a}",)}  # with one distractor: comparatives
DEFINITE_ONLY = {"closest", "farthest", "left", "right", "across"}
# How often each relation is picked among a target's true ones ("near" is weak: it rarely picks a scene out).
RELATION_WEIGHT = {"near": 0.4, "beside": 0.8}
LEADS = ("pick", "find", "select", "click on", "grab", "look for")


@dataclass(frozen=True)
class Claim:
    """What a description states of its target: a relation to `anchors`, a colour `word`, or a size extreme."""

    name: str  # a PHRASES key, or colour | smaller | bigger
    anchors: tuple[int, ...] = ()
    word: str = ""


@dataclass(frozen=True)
class Novel:
    description: Description
    claims: tuple[Claim, ...]


# ---------------------------------------------------------------- geometry of the relations language.py never states


def facing_wall(obj: SceneObject, bounds: np.ndarray) -> int:
    """The wall obj stands against (0 west, 1 south, 2 east, 3 north: `rel.wall_gaps` order)."""
    return int(np.argmin(rel.wall_gaps(obj, bounds)))


# Looking at wall w from inside the room, your left hand points along this (x, y) axis.
_LEFT = {0: (1, -1), 1: (0, 1), 2: (1, 1), 3: (0, -1)}  # (axis, sign)


def side_of(target: SceneObject, anchor: SceneObject, bounds: np.ndarray) -> Optional[str]:
    """'left' / 'right' as seen facing `anchor` (which stands against a wall) from the room, when `target` is near
    it and its centre lies past the anchor's edge on that side; else None."""
    if not rel.is_against_wall(anchor, bounds) or not rel.is_near(target, anchor):
        return None
    axis, sign = _LEFT[facing_wall(anchor, bounds)]
    c = target.center[axis]
    if (sign < 0 and c < anchor.bbox_min[axis]) or (sign > 0 and c > anchor.bbox_max[axis]):
        return "left"
    if (sign < 0 and c > anchor.bbox_max[axis]) or (sign > 0 and c < anchor.bbox_min[axis]):
        return "right"
    return None


def across_from(target: SceneObject, anchor: SceneObject, bounds: np.ndarray) -> bool:
    """Both against opposite walls and overlapping along them: they face each other across the room."""
    if not (rel.is_against_wall(target, bounds) and rel.is_against_wall(anchor, bounds)):
        return False
    wt, wa = facing_wall(target, bounds), facing_wall(anchor, bounds)
    if abs(wt - wa) != 2:
        return False
    along = 1 if wt in (0, 2) else 0
    return bool(target.bbox_min[along] < anchor.bbox_max[along] and anchor.bbox_min[along] < target.bbox_max[along])


def volume(o: SceneObject) -> float:
    return float(np.prod(o.size))


# ---------------------------------------------------------------- the phrasing generator


class _Room:
    """A scene's furniture, by label, and the relation predicates over it."""

    def __init__(self, scene: Scene):
        self.bounds = rel.room_bounds(scene)
        self.objs = {o.object_id: o for o in scene.furniture()}
        self.by_label: dict[str, list[SceneObject]] = {}
        for o in self.objs.values():
            self.by_label.setdefault(o.label, []).append(o)

    def unique(self, label: str) -> bool:
        return len(self.by_label[label]) == 1

    def holds(self, name: str, t: SceneObject, a: SceneObject) -> bool:
        same = self.by_label[t.label]
        return {
            "closest": lambda: rel.is_closest(t, same, a), "farthest": lambda: rel.is_farthest(t, same, a),
            "on": lambda: rel.is_on(t, a), "under": lambda: rel.is_on(a, t) or rel.is_above(a, t),
            "over": lambda: rel.is_above(t, a), "beside": lambda: rel.is_next_to(t, a),
            "near": lambda: rel.is_near(t, a),
            "left": lambda: side_of(t, a, self.bounds) == "left", "right": lambda: side_of(t, a, self.bounds) == "right",
            "across": lambda: across_from(t, a, self.bounds),
        }[name]()

    def anchors(self, t: SceneObject) -> list[SceneObject]:
        # Never "the chair beside the office chair": an anchor shares no word with the target's class.
        words = set(t.label.split())
        return [a for a in self.objs.values() if a.label != t.label and not words & set(a.label.split())]

    def relations(self, t: SceneObject) -> list[Claim]:
        out = []
        for a in self.anchors(t):
            true = [name for name in PHRASES
                    if (name not in DEFINITE_ONLY or self.unique(a.label)) and self.holds(name, t, a)]
            # "near" only where it is all there is to say of the pair: a lamp on a desk is "on" it
            out += [Claim(name, (a.object_id,)) for name in true if name != "near" or true == ["near"]]
        return out

    def size(self, t: SceneObject) -> Optional[Claim]:
        others = [volume(o) for o in self.by_label[t.label] if o.object_id != t.object_id]
        if others and volume(t) * SIZE_MARGIN < min(others):
            return Claim("smaller")
        if others and volume(t) > max(others) * SIZE_MARGIN:
            return Claim("bigger")
        return None

    def singles_out(self, t: SceneObject, claims: tuple[Claim, ...]) -> bool:
        """No other object of t's class fits every claim (a relation counts for any anchor of the same label)."""
        for d in self.by_label[t.label]:
            if d.object_id == t.object_id:
                continue
            if all(self._fits(d, c) for c in claims):
                return False
        return True

    def _fits(self, d: SceneObject, c: Claim) -> bool:
        if c.name == "colour":
            return color_name(d.color_rgb) == PALETTE_OF[c.word]
        if c.name in ("smaller", "bigger"):
            return False  # an extreme by a margin is one object
        label = self.objs[c.anchors[0]].label
        return any(self.holds(c.name, d, a) for a in self.by_label[label])


def _article(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _render(room: _Room, t: SceneObject, claims: tuple[Claim, ...], rng: np.random.Generator) -> str:
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    n_same = len(room.by_label[t.label])
    size = next((c for c in claims if c.name in ("smaller", "bigger")), None)
    size_word = "" if size is None else (size.name if n_same == 2 else {"smaller": "smallest", "bigger": "biggest"}[
        size.name])
    colour = next((c.word for c in claims if c.name == "colour"), "")
    relation = next((c for c in claims if c.anchors), None)
    adjs = " ".join(w for w in (size_word, colour) if w)
    if relation is None:
        return pick([f"{pick(LEADS)} the {adjs} {t.label}", f"{t.label}, the {adjs} one"])
    a = room.objs[relation.anchors[0]]
    anchor = f"the {a.label}" if room.unique(a.label) else _article(a.label)
    options = PAIR_PHRASES.get(relation.name, ()) if n_same == 2 else ()
    # "by the window" is one of language.py's Nr3D phrases
    options += tuple(p for p in PHRASES[relation.name] if not (p == "by {a}" and a.label in ("door", "window")))
    option = pick(options)
    phrase, terse = option.format(a=anchor, label=a.label), option.format(a=a.label, label=a.label)
    # language.py's Nr3D says "{palette colour} {noun}": a phrase starting with one would start like it
    noun = f"{adjs} {t.label}" if size_word or colour not in PALETTE else f"{colour} colored {t.label}"
    forms = [f"{pick(LEADS)} the {adjs} {t.label} {phrase}", f"{noun}, {phrase}",
             f"{noun} {terse}"]
    if adjs:
        forms.append(f"{t.label}, the {adjs} one, {phrase}")
    if relation.name in ("left", "right") and not size_word:
        forms.append(f"facing the {a.label}, the {adjs} {t.label} on the {relation.name}")
    return pick(forms)


def _claim_sets(room: _Room, t: SceneObject, rng: np.random.Generator) -> tuple[list[tuple[Claim, ...]], np.ndarray]:
    """Every set of claims that picks t out of its class, with how readily each is said."""
    palette = color_name(t.color_rgb)
    colour = Claim("colour", word=COLOUR_WORDS[palette][int(rng.integers(len(COLOUR_WORDS[palette])))])
    size = room.size(t)
    attrs = [(), (colour,)] + ([(size,), (size, colour)] if size else [])
    sets, weights = [], []
    for r in room.relations(t):
        w = RELATION_WEIGHT.get(r.name, 1.0)
        for extra in attrs:
            sets.append((r,) + extra)
            weights.append(w * (1.0 if not extra else 0.4))
    sets += [extra for extra in attrs if extra]
    weights += [0.6 for extra in attrs if extra]
    keep = [i for i, s in enumerate(sets) if room.singles_out(t, s)]
    return [sets[i] for i in keep], np.array([weights[i] for i in keep])


def scene_descriptions(scene: Scene, n: int, seed: int) -> list[tuple[int, str, tuple[Claim, ...]]]:
    """Up to n (object id, text, claims) for one scene, each text different; depends only on (seed, scene id)."""
    rng = np.random.default_rng([seed, zlib.crc32(scene.scene_id.encode())])
    room = _Room(scene)
    order = [sorted(room.objs)[i] for i in rng.permutation(len(room.objs))]
    out, seen = [], set()
    for oid in (order * 4)[:4 * max(n, len(order))]:  # each target in turn, a few passes for small rooms
        if len(out) >= n:
            break
        t = room.objs[oid]
        sets, w = _claim_sets(room, t, rng)
        if not sets:
            continue
        claims = sets[int(rng.choice(len(sets), p=w / w.sum()))]
        text = " ".join(_render(room, t, claims, rng).split())
        if text not in seen:
            seen.add(text)
            out.append((oid, text, claims))
    return out


def novel_descriptions(scenes: dict[str, Scene], per_scene: int, seed: int) -> list[Novel]:
    """`per_scene` new Nr3D-style descriptions of each scene (fewer where a room has too little to say), ids
    "nr3d/{n}" in scene-id order. A scene's texts do not depend on which other scenes are given."""
    out = []
    for sid in sorted(scenes):
        for oid, text, claims in scene_descriptions(scenes[sid], per_scene, seed):
            label = scenes[sid].object(oid).label
            out.append(Novel(Description(f"nr3d/{len(out)}", sid, oid, label, text, "nr3d"), claims))
    return out


# ---------------------------------------------------------------- the job


def results_table(results: dict[str, dict]) -> str:
    cols = ["R@1", "R@5", "R@10", "Rsum"]
    lines = ["| retriever | " + " | ".join(cols) + f" | Rsum / {FLOOR} |", "|---|" + "---:|" * (len(cols) + 1)]
    for name, r in results.items():
        ratio = "n/a" if r["ratio_to_floor"] is None else f"{r['ratio_to_floor']:.2f}"
        lines.append(f"| {name} | " + " | ".join(f"{r[c]:.1f}" for c in cols) + f" | {ratio} |")
    return "\n".join(lines)


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="results/zero_shot/nr3d_novel.csv",
                    help="the Nr3D CSV written; results.json and results.md go beside it")
    ap.add_argument("--per-scene", type=int, default=12, help="descriptions per scene")
    ap.add_argument("--seed", type=int, default=0, help="seed of the phrasing generator")
    ap.add_argument("--weights", action="append", default=None,
                    help="a retriever checkpoint (shipped name or folder), repeatable; default base and iat. "
                         f"The {FLOOR} floor is always evaluated; --weights labels alone evaluates only it")
    ap.add_argument("--limit", type=int, default=None, help="only the first N scenes of the split (by id)")
    ap.add_argument("--split", default="val", choices=["val", "dev", "train"], help="synthetic split")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = ap.parse_args(argv)
    if args.per_scene < 1 or (args.limit is not None and args.limit < 1):
        ap.error("--per-scene and --limit must be at least 1")
    return args


def main(argv=None) -> dict:
    args = parse(argv)
    start = time.perf_counter()
    cfg = build.config(None, args.set)
    root = generate(cfg.data.synthetic_root(), cfg.data.scenes, cfg.data.seed)
    ds = load_synthetic(root, args.split)
    ids = sorted(ds.scenes)[:args.limit]
    scenes = {s: ds.scenes[s] for s in ids}

    novel = novel_descriptions(scenes, args.per_scene, args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_nr3d(out, [n.description for n in novel], scenes)
    queries = read_nr3d(out)
    if queries != [n.description for n in novel]:
        raise RuntimeError(f"{out}: the Nr3D reader gives back other descriptions than were written")

    weights = list(dict.fromkeys(w for w in (args.weights or DEFAULT_WEIGHTS) if w != "labels"))
    text = build.text_encoder(cfg.text_encoder)
    gallery = SceneDataset(scenes, queries, {})
    results = {}
    for name in tqdm(weights + ["labels"], desc="retrievers", unit="retriever"):
        results[FLOOR if name == "labels" else name] = static_eval(build.retriever(name, text), gallery, queries)
    floor = results[FLOOR]["Rsum"]
    for r in results.values():
        r["ratio_to_floor"] = r["Rsum"] / floor if floor > 0 else None

    table = results_table(results)
    seconds = time.perf_counter() - start
    report = {"split": args.split, "scenes": len(scenes), "queries": len(queries), "per_scene": args.per_scene,
              "seed": args.seed, "benchmark": str(root), "csv": str(out), "seconds": round(seconds, 1),
              "results": results}
    (out.parent / "results.json").write_text(json.dumps(report, indent=1) + "\n")
    (out.parent / "results.md").write_text(
        f"# Zero-shot: {len(queries)} novel Nr3D-style descriptions, {len(scenes)} {args.split} scenes "
        f"(generator seed {args.seed}, `{out.name}`)\n\n{table}\n")
    print(table)
    print(f"{len(queries)} queries over {len(scenes)} scenes in {seconds:.0f} s; wrote {out.parent}/results.json")
    return report


if __name__ == "__main__":
    main()
