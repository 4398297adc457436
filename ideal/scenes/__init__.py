"""Scenes, descriptions and memories: the data model, readers for the published formats, the synthetic
benchmark and the loader that ties them together."""
from .dataset import SceneDataset, dataset_stats, format_stats, load, load_synthetic
from .types import Description, FormatError, Scene, SceneMemory, SceneObject

__all__ = ["Description", "FormatError", "Scene", "SceneDataset", "SceneMemory", "SceneObject", "dataset_stats",
           "format_stats", "load", "load_synthetic"]
