"""The data model: scenes, their objects, referring descriptions and scene memories.

Coordinates are metres in the axis-aligned ScanNet frame (z up). Colours are RGB in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

Vec3 = tuple[float, float, float]

# Labels of the room's shell: present in ScanNet aggregations, never the target of a description.
STRUCTURE_LABELS = frozenset({"wall", "floor", "ceiling"})


@dataclass
class SceneObject:
    """One annotated object instance of a scan.

    `points` is an optional (N, 6) float32 array of x, y, z, r, g, b (rgb in [0, 1]).
    """

    object_id: int
    label: str
    center: Vec3
    size: Vec3
    color_rgb: Vec3
    points: Optional[np.ndarray] = field(default=None, repr=False, compare=False)

    @property
    def bbox_min(self) -> np.ndarray:
        return np.asarray(self.center, dtype=np.float64) - np.asarray(self.size) / 2

    @property
    def bbox_max(self) -> np.ndarray:
        return np.asarray(self.center, dtype=np.float64) + np.asarray(self.size) / 2


@dataclass
class Scene:
    """A scan: `scene_type` uses ScanNet's sceneType strings ("Bedroom / Hotel", "Kitchen", ...)."""

    scene_id: str
    scene_type: str
    objects: list[SceneObject]

    def object(self, object_id: int) -> SceneObject:
        for obj in self.objects:
            if obj.object_id == object_id:
                return obj
        raise KeyError(f"{self.scene_id}: no object with object_id={object_id}")

    def furniture(self) -> list[SceneObject]:
        """Objects a person would refer to: everything but walls, floor and ceiling."""
        return [o for o in self.objects if o.label not in STRUCTURE_LABELS]


@dataclass(frozen=True)
class Description:
    """A referring description of one object. `source` is scanrefer, nr3d or sr3d."""

    desc_id: str
    scene_id: str
    object_id: int
    object_name: str
    text: str
    source: str = "scanrefer"


@dataclass
class SceneMemory:
    """What a simulated user with fine memory knows about a scene: every description of it plus facts read
    off its geometry. (Coarse memory depends on the query, not the scene: `ideal.scenes.memory.coarse_memory`.)
    """

    scene_id: str
    fine: list[str]


class FormatError(ValueError):
    """Bad input in a data file. The message names the file and the row or field at fault."""

    def __init__(self, path, where: str, problem: str):
        self.path, self.where, self.problem = str(path), where, problem
        super().__init__(f"{path}: {where}: {problem}" if where else f"{path}: {problem}")
