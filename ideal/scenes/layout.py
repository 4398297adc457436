"""Lay out one synthetic room: walls, floor, door, windows and furniture from a room template.

Everything is an axis-aligned box in the room frame: x in [0, W], y in [0, D], z up from the floor.
Furniture stands against walls, in corners, around tables, on other furniture or hangs on walls, and
never intersects anything else, so the relations in `relations.py` read as a person would expect.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .colors import PALETTE
from .rooms import FILLERS, KINDS, ROOMS, Kind
from .types import Scene, SceneObject

MIN_OBJECTS, MAX_OBJECTS = 8, 40
WALL_THICKNESS = 0.1
TRIES = 40


@dataclass
class Placed:
    """A laid-out object with what the generator knows beyond geometry."""

    object_id: int
    kind: Kind
    lo: np.ndarray  # (3,) box min
    hi: np.ndarray  # (3,) box max
    color: str
    material: str
    raw: str  # the raw annotation label written to aggregation.json
    wall: Optional[int] = None  # 0 west (x=0), 1 south (y=0), 2 east (x=W), 3 north (y=D)
    support: Optional[int] = None  # object_id this object rests on

    def to_object(self, rgb) -> SceneObject:
        c, s = (self.lo + self.hi) / 2, self.hi - self.lo
        return SceneObject(self.object_id, self.kind.category, tuple(map(float, c)), tuple(map(float, s)),
                           tuple(map(float, rgb)))


class _Room:
    def __init__(self, rng: np.random.Generator, width: float, depth: float, height: float):
        self.rng, self.W, self.D, self.H = rng, width, depth, height
        self.placed: list[Placed] = []
        self.obstacles: list[tuple[np.ndarray, np.ndarray]] = []  # keep-clear zones (door swing)

    # -- geometry -------------------------------------------------------------------------
    def wall_box(self, wall, along_lo, width, depth, z_lo, height, gap):
        """Box standing against `wall`: `along_lo` along the wall, `gap` off it, `depth` into the room."""
        lo, hi = np.zeros(3), np.zeros(3)
        a, p = (1, 0) if wall in (0, 2) else (0, 1)
        lo[a], hi[a] = along_lo, along_lo + width
        if wall in (0, 1):
            lo[p], hi[p] = gap, gap + depth
        else:
            extent = self.W if wall == 2 else self.D
            lo[p], hi[p] = extent - gap - depth, extent - gap
        lo[2], hi[2] = z_lo, z_lo + height
        return lo, hi

    def wall_length(self, wall) -> float:
        return self.D if wall in (0, 2) else self.W

    def fits(self, lo, hi, margin=0.05) -> bool:
        if lo[0] < -1e-9 or lo[1] < -1e-9 or hi[0] > self.W + 1e-9 or hi[1] > self.D + 1e-9 or hi[2] > self.H - 0.05:
            return False
        m = np.array([margin, margin, 0.0])
        # The shell is outside the floor rectangle checked above, so only furniture can collide.
        boxes = [(p.lo, p.hi) for p in self.placed if p.kind.category not in ("wall", "floor")]
        boxes += self.obstacles
        for blo, bhi in boxes:
            if np.all(lo - m < bhi - 1e-6) and np.all(blo < hi + m - 1e-6):
                return False
        return True

    def add(self, kind: Kind, lo, hi, wall=None, support=None) -> Placed:
        color = str(self.rng.choice(kind.colors))
        material = str(self.rng.choice(kind.materials))
        raw = str(self.rng.choice(kind.raw))
        p = Placed(len(self.placed), kind, np.asarray(lo, float), np.asarray(hi, float), color, material, raw, wall,
                   support)
        self.placed.append(p)
        return p

    def dims(self, kind: Kind) -> np.ndarray:
        return np.asarray(kind.size) * self.rng.uniform(0.88, 1.12, size=3)

    def instances(self, category: str) -> list[Placed]:
        return [p for p in self.placed if p.kind.category == category]

    # -- placements -----------------------------------------------------------------------
    def on_wall(self, kind, z_range, gap=(0.01, 0.08), wall=None, margin=0.05):
        w, d, h = self.dims(kind)
        for _ in range(TRIES):
            wl = int(self.rng.integers(4)) if wall is None else wall
            length = self.wall_length(wl)
            if w >= length:
                continue
            z_lo = self.rng.uniform(*z_range) if z_range else 0.0
            box = self.wall_box(wl, self.rng.uniform(0, length - w), w, d, z_lo, h, self.rng.uniform(*gap))
            if self.fits(*box, margin=margin):
                return self.add(kind, *box, wall=wl)
        return None

    def on_floor(self, kind, margin=0.15):
        w, d, h = self.dims(kind)
        if self.rng.random() < 0.5:
            w, d = d, w
        for _ in range(TRIES):
            lo = np.array([self.rng.uniform(0.3, max(0.31, self.W - w - 0.3)),
                           self.rng.uniform(0.3, max(0.31, self.D - d - 0.3)), 0.0])
            hi = lo + [w, d, h]
            if self.fits(lo, hi, margin=margin):
                return self.add(kind, lo, hi)
        return None

    def in_corner(self, kind):
        w, d, h = self.dims(kind)
        for _ in range(TRIES):
            cx, cy = self.rng.integers(2, size=2)
            gx, gy = self.rng.uniform(0.02, 0.2, size=2)
            x0 = gx if cx == 0 else self.W - gx - w
            y0 = gy if cy == 0 else self.D - gy - d
            lo, hi = np.array([x0, y0, 0.0]), np.array([x0 + w, y0 + d, h])
            if self.fits(lo, hi):
                return self.add(kind, lo, hi, wall=0 if cx == 0 else 2)
        return None

    def anchored(self, kind, anchors: list[Placed], propose, margin=0.02):
        """Try boxes proposed next to random anchors; propose(anchor, w, d, h) -> (lo, hi, tags) or None."""
        w, d, h = self.dims(kind)
        for _ in range(TRIES if anchors else 0):
            t = anchors[int(self.rng.integers(len(anchors)))]
            lo, hi, extra = propose(t, w, d, h)
            if self.fits(lo, hi, margin=margin):
                return self.add(kind, lo, hi, **extra)
        return None

    def resting_on(self, kind, anchor_cat):
        def propose(s, w, d, h):
            span = s.hi[:2] - s.lo[:2]
            fw, fd = (w, d) if self.rng.random() < 0.5 else (d, w)
            fw, fd = min(fw, span[0] * 0.9), min(fd, span[1] * 0.9)
            x0 = self.rng.uniform(s.lo[0], s.hi[0] - fw)
            y0 = self.rng.uniform(s.lo[1], s.hi[1] - fd)
            return np.array([x0, y0, s.hi[2]]), np.array([x0 + fw, y0 + fd, s.hi[2] + h]), {"support": s.object_id}
        return self.anchored(kind, self.instances(anchor_cat), propose)

    def around(self, kind, anchor_cat, front_only=False):
        def propose(t, w, d, h):
            if front_only:
                # The open side of a desk: away from its wall; free-standing desks face south.
                side = (t.wall + 2) % 4 if t.wall is not None else 1
            else:
                side = int(self.rng.integers(4))
            gap = self.rng.uniform(0.03, 0.25)
            a = 1 if side in (0, 2) else 0  # axis along the anchor's side
            p = 1 - a
            lo, hi = np.zeros(3), np.array([0.0, 0.0, h])
            lo[a] = self.rng.uniform(t.lo[a] - w * 0.3, t.hi[a] - w * 0.7)
            hi[a] = lo[a] + w
            if side in (0, 1):
                hi[p] = t.lo[p] - gap
                lo[p] = hi[p] - d
            else:
                lo[p] = t.hi[p] + gap
                hi[p] = lo[p] + d
            return lo, hi, {}
        return self.anchored(kind, self.instances(anchor_cat), propose)

    def beside(self, kind, anchor_cat):
        def propose(t, w, d, h):
            wall = t.wall if t.wall is not None else int(self.rng.integers(4))
            a = 1 if wall in (0, 2) else 0
            gap = self.rng.uniform(0.02, 0.2)
            along_lo = t.hi[a] + gap if self.rng.random() < 0.5 else t.lo[a] - gap - w
            wall_gap = t.lo[1 - a] if wall in (0, 1) else (self.W if wall == 2 else self.D) - t.hi[1 - a]
            if t.wall is None:
                wall_gap = self.rng.uniform(0.02, 0.08)
            return (*self.wall_box(wall, along_lo, w, d, 0.0, h, max(0.01, min(wall_gap, 0.1))), {"wall": wall})
        return self.anchored(kind, self.instances(anchor_cat), propose)

    def above(self, kind, anchor_cat):
        def propose(t, w, d, h):
            a = 1 if t.wall in (0, 2) else 0
            mid = (t.lo[a] + t.hi[a]) / 2 + self.rng.uniform(-0.1, 0.1)
            z_lo = t.hi[2] + self.rng.uniform(0.25, 0.6)
            return (*self.wall_box(t.wall, mid - w / 2, w, d, z_lo, h, 0.01), {"wall": t.wall})
        return self.anchored(kind, [t for t in self.instances(anchor_cat) if t.wall is not None], propose)

    def by_window(self, kind):
        def propose(win, w, d, h):
            a = 1 if win.wall in (0, 2) else 0
            along_lo = win.hi[a] + 0.02 if self.rng.random() < 0.5 else win.lo[a] - 0.02 - w
            return (*self.wall_box(win.wall, along_lo, w, d, self.rng.uniform(0.05, 0.3), h, 0.12), {"wall": win.wall})
        return self.anchored(kind, self.instances("window"), propose)

    def place(self, category: str, placement: str):
        kind = KINDS[category]
        how, _, anchor = placement.partition(":")
        if how == "wall":
            return self.on_wall(kind, None)
        if how == "floor":
            return self.on_floor(kind)
        if how == "corner":
            return self.in_corner(kind)
        if how == "mount":
            return self.on_wall(kind, (0.9, 1.7), gap=(0.0, 0.01), margin=0.05)
        if how == "window":
            return self.by_window(kind)
        if how == "on":
            return self.resting_on(kind, anchor)
        if how == "around":
            return self.around(kind, anchor)
        if how == "front":
            return self.around(kind, anchor, front_only=True)
        if how == "beside":
            return self.beside(kind, anchor)
        if how == "above":
            return self.above(kind, anchor)
        raise ValueError(f"unknown placement {placement!r} for {category!r}")


def layout_room(rng: np.random.Generator, scene_id: str, scene_type: str) -> tuple[Scene, dict[int, Placed]]:
    """Lay out a room of `scene_type` (a key of rooms.ROOMS). Returns the scene and its placed objects."""
    template = ROOMS[scene_type]
    (wmin, wmax), (dmin, dmax) = template["size"]
    room = _Room(rng, rng.uniform(wmin, wmax), rng.uniform(dmin, dmax), rng.uniform(2.5, 3.0))
    W, D, H, t = room.W, room.D, room.H, WALL_THICKNESS

    # The shell: four walls just outside the floor, as ScanNet annotates them.
    wall_kind, floor_kind = KINDS["wall"], KINDS["floor"]
    for lo, hi in [((-t, -t, 0), (0, D + t, H)), ((0, -t, 0), (W, 0, H)),
                   ((W, -t, 0), (W + t, D + t, H)), ((0, D, 0), (W, D + t, H))]:
        room.placed.append(Placed(len(room.placed), wall_kind, np.array(lo, float), np.array(hi, float),
                                  str(rng.choice(wall_kind.colors)), "painted", "wall"))
    room.placed.append(Placed(len(room.placed), floor_kind, np.array([0, 0, -0.05]), np.array([W, D, 0.0]),
                              str(rng.choice(floor_kind.colors)), str(rng.choice(["wooden", "carpeted", "tiled"])),
                              "floor"))
    structure = {p.object_id for p in room.placed}

    door = room.on_wall(KINDS["door"], None, gap=(0.0, 0.0))
    # Keep the door's swing clear.
    a = 1 if door.wall in (0, 2) else 0
    lo, hi = door.lo.copy(), door.hi.copy()
    if door.wall in (0, 1):
        hi[1 - a] = lo[1 - a] + 0.9
    else:
        lo[1 - a] = hi[1 - a] - 0.9
    room.obstacles.append((lo, hi))
    for _ in range(int(rng.integers(0, 4))):
        room.on_wall(KINDS["window"], (0.8, 1.0), gap=(0.0, 0.0), margin=0.1)

    for category, lo_n, hi_n, placement in template["objects"]:
        for _ in range(int(rng.integers(lo_n, hi_n + 1))):
            if len(room.placed) - len(structure) >= MAX_OBJECTS:
                break
            room.place(category, placement)
    tries = 0
    while len(room.placed) - len(structure) < MIN_OBJECTS and tries < 50:
        category, placement = FILLERS[int(rng.integers(len(FILLERS)))]
        room.place(category, placement)
        tries += 1

    objects, placed = [], {}
    for p in room.placed:
        rgb = np.clip(np.asarray(PALETTE[p.color]) + rng.normal(0, 0.015, 3), 0, 1)
        objects.append(p.to_object(rgb))
        placed[p.object_id] = p
    return Scene(scene_id, scene_type, objects), placed
