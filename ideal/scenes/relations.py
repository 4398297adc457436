"""Spatial relations between objects, decided from axis-aligned boxes (z up, metres).

These are the relations our descriptions and memory facts state (on, above, next to, near,
closest, farthest, between, against the wall, in the corner). The synthetic generator only writes a
relation that `holds(...)` says is true, so every generated sentence is true of the geometry.
"""
from __future__ import annotations

import numpy as np

from .types import Scene, SceneObject

# Thresholds in metres. "next to" is close enough to touch or almost; "near" is within reach.
ON_TOLERANCE = 0.04
NEXT_TO_GAP = 0.45
NEAR_GAP = 1.0
WALL_GAP = 0.15
CORNER_GAP = 0.6
# closest/farthest are only stated when the runner-up is this much farther/closer (unambiguous).
EXTREME_MARGIN = 0.15


def horizontal_gap(a: SceneObject, b: SceneObject) -> float:
    """Distance between the xy footprints of two boxes (0 if they overlap)."""
    d = np.maximum(0.0, np.maximum(a.bbox_min[:2] - b.bbox_max[:2], b.bbox_min[:2] - a.bbox_max[:2]))
    return float(np.linalg.norm(d))


def center_distance(a: SceneObject, b: SceneObject) -> float:
    return float(np.linalg.norm(np.subtract(a.center, b.center)))


def _center_inside_footprint(a: SceneObject, b: SceneObject) -> bool:
    c = np.asarray(a.center[:2])
    return bool(np.all(c >= b.bbox_min[:2]) and np.all(c <= b.bbox_max[:2]))


def is_on(a: SceneObject, b: SceneObject) -> bool:
    """a rests on top of b: a's bottom at b's top and a's centre over b's footprint."""
    return abs(a.bbox_min[2] - b.bbox_max[2]) <= ON_TOLERANCE and _center_inside_footprint(a, b)


def is_above(a: SceneObject, b: SceneObject) -> bool:
    """a is higher than b, not resting on it, and over or right beside b (a picture above a bed)."""
    return (
        a.bbox_min[2] > b.bbox_max[2] + ON_TOLERANCE
        and horizontal_gap(a, b) <= 0.1
        and _overlap_1d(a, b, _wall_axis(a, b))
    )


def _wall_axis(a: SceneObject, b: SceneObject) -> int:
    # The axis along which the wider object extends; overlap along it means "over it".
    return 0 if max(a.size[0], b.size[0]) >= max(a.size[1], b.size[1]) else 1


def _overlap_1d(a: SceneObject, b: SceneObject, axis: int) -> bool:
    return bool(a.bbox_min[axis] < b.bbox_max[axis] and b.bbox_min[axis] < a.bbox_max[axis])


def _vertical_overlap(a: SceneObject, b: SceneObject) -> bool:
    return _overlap_1d(a, b, 2)


def is_next_to(a: SceneObject, b: SceneObject) -> bool:
    """Side by side: footprints within NEXT_TO_GAP, heights overlapping, neither on the other."""
    return (
        horizontal_gap(a, b) <= NEXT_TO_GAP
        and _vertical_overlap(a, b)
        and not is_on(a, b)
        and not is_on(b, a)
    )


def is_near(a: SceneObject, b: SceneObject) -> bool:
    return horizontal_gap(a, b) <= NEAR_GAP and not is_on(a, b) and not is_on(b, a)


def is_closest(target: SceneObject, same_class: list[SceneObject], anchor: SceneObject) -> bool:
    """Of the objects of target's class (including target), target is nearest to anchor, by a margin."""
    return _is_extreme(target, same_class, anchor, nearest=True)


def is_farthest(target: SceneObject, same_class: list[SceneObject], anchor: SceneObject) -> bool:
    return _is_extreme(target, same_class, anchor, nearest=False)


def _is_extreme(target, same_class, anchor, nearest: bool) -> bool:
    others = [o for o in same_class if o.object_id != target.object_id and o.object_id != anchor.object_id]
    if not others:
        return False
    d = center_distance(target, anchor)
    rest = [center_distance(o, anchor) for o in others]
    if nearest:
        return d * (1 + EXTREME_MARGIN) < min(rest)
    return d > max(rest) * (1 + EXTREME_MARGIN)


def is_between(t: SceneObject, a: SceneObject, b: SceneObject) -> bool:
    """t's centre lies in the middle of the segment a-b (in the floor plane), close to the line."""
    p, q, c = (np.asarray(o.center[:2]) for o in (a, b, t))
    ab = q - p
    length = float(np.linalg.norm(ab))
    if length < 0.5:
        return False
    s = float(np.dot(c - p, ab) / length**2)
    off_line = abs(float(ab[0] * (c - p)[1] - ab[1] * (c - p)[0])) / length
    return 0.2 <= s <= 0.8 and off_line <= 0.25 * length


def room_bounds(scene: Scene) -> np.ndarray:
    """(xmin, ymin, xmax, ymax) of the room's inside: the floor's box if annotated, else all objects'."""
    floors = [o for o in scene.objects if o.label == "floor"]
    objs = floors or scene.objects
    lo = np.min([o.bbox_min[:2] for o in objs], axis=0)
    hi = np.max([o.bbox_max[:2] for o in objs], axis=0)
    return np.concatenate([lo, hi])


def wall_gaps(obj: SceneObject, bounds: np.ndarray) -> np.ndarray:
    """Gaps from obj's footprint to the four room sides: west, south, east, north."""
    lo, hi = bounds[:2], bounds[2:]
    return np.array([
        obj.bbox_min[0] - lo[0], obj.bbox_min[1] - lo[1], hi[0] - obj.bbox_max[0], hi[1] - obj.bbox_max[1]
    ])


def is_against_wall(obj: SceneObject, bounds: np.ndarray) -> bool:
    return bool(np.min(wall_gaps(obj, bounds)) <= WALL_GAP)


def is_in_corner(obj: SceneObject, bounds: np.ndarray) -> bool:
    g = wall_gaps(obj, bounds) <= CORNER_GAP
    # Two adjacent sides: (west or east) and (south or north).
    return bool((g[0] or g[2]) and (g[1] or g[3]))
