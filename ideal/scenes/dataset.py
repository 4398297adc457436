"""Load a benchmark (scans + descriptions) into scenes, descriptions and memories; dataset statistics."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
from tqdm import tqdm

from . import labelmap, referit3d, scannet
from . import scanrefer as scanrefer_format
from .memory import build_memory
from .types import Description, FormatError, Scene, SceneMemory


@dataclass
class SceneDataset:
    scenes: dict[str, Scene]  # the gallery, in sorted scene-id order
    descriptions: list[Description]  # every description refers to a scene and an object in `scenes`
    memories: dict[str, SceneMemory]

    def descriptions_of(self, scene_id: str) -> list[Description]:
        return [d for d in self.descriptions if d.scene_id == scene_id]


def load(scannet_dir: str | Path, scanrefer: Optional[str | Path] = None, nr3d: Optional[str | Path] = None,
         sr3d: Optional[str | Path] = None, label_map: Optional[str | Path | dict] = None,
         label_column: str = "category", scene_ids: Optional[Iterable[str]] = None,
         points_per_object: int = 1024, progress: bool = False) -> SceneDataset:
    """Read ScanNet scans and their ScanRefer / Nr3D / Sr3D descriptions.

    `label_map` (a scannetv2-labels.combined.tsv or a dict) maps raw annotation labels to the names in
    `label_column` (category: ScanNet200-style; nyu40class: NYU40). The scenes loaded are `scene_ids` if given, else those the description files refer to, else every scan
    under `scannet_dir`. Descriptions of scenes outside `scene_ids` are dropped; a description naming a scan
    that is not on disk, or an object the scan does not have, is an error naming the file and the row.
    """
    scannet_dir = Path(scannet_dir)
    if isinstance(label_map, (str, Path)):
        label_map = labelmap.read_label_map(label_map, to_column=label_column)
    descriptions = read_descriptions(scanrefer, nr3d, sr3d)
    wanted = set(scene_ids) if scene_ids is not None else None
    if wanted is None:
        has_files = any(p is not None for p in (scanrefer, nr3d, sr3d))
        wanted = {d.scene_id for _, _, d in descriptions} if has_files else set(scannet.list_scans(scannet_dir))
    on_disk = set(scannet.list_scans(scannet_dir))
    for path, where, d in descriptions:
        if d.scene_id in wanted and d.scene_id not in on_disk:
            raise FormatError(path, where, f"scene {d.scene_id} is not in {scannet_dir}")
    missing = sorted(wanted - on_disk)
    if missing:
        raise FormatError(scannet_dir, "", f"scan(s) not found: {missing[:5]}{' ...' if len(missing) > 5 else ''}")

    scenes = {s.scene_id: s for s in tqdm(
        scannet.read_scans(scannet_dir, scene_ids=sorted(wanted), label_map=label_map,
                           points_per_object=points_per_object),
        total=len(wanted), desc="reading scans", unit="scan", disable=not progress)}
    kept = attach_descriptions(descriptions, scenes)
    return SceneDataset(scenes, kept, build_memories(scenes, kept))


def read_descriptions(scanrefer=None, nr3d=None, sr3d=None) -> list[tuple[Path, str, Description]]:
    """Every description of the given files, in file order (ScanRefer, Nr3D, Sr3D), with where it sits in its
    file in the readers' own words (JSON entries 0-based, CSV rows 1-based) for error messages."""
    out: list[tuple[Path, str, Description]] = []
    for path, reader in ((scanrefer, scanrefer_format.read_scanrefer), (nr3d, referit3d.read_nr3d),
                         (sr3d, referit3d.read_sr3d)):
        if path is not None:
            csv = str(path).endswith(".csv")
            out += [(Path(path), f"row {i + 1}" if csv else f"entry {i}", d) for i, d in enumerate(reader(path))]
    return out


def attach_descriptions(descriptions: list[tuple[Path, str, Description]], scenes: dict[str, Scene]
                        ) -> list[Description]:
    """The descriptions of `scenes` (others dropped); one naming an object the scene lacks is a FormatError."""
    objects = {sid: {o.object_id for o in s.objects} for sid, s in scenes.items()}
    kept = []
    for path, where, d in descriptions:
        if d.scene_id not in scenes:
            continue
        if d.object_id not in objects[d.scene_id]:
            raise FormatError(path, where, f"object_id {d.object_id} is not an object of {d.scene_id}")
        kept.append(d)
    return kept


def build_memories(scenes: dict[str, Scene], descriptions: list[Description]) -> dict[str, SceneMemory]:
    """Each scene's fine memory from its descriptions (in the given order) and its geometry."""
    by_scene: dict[str, list[Description]] = {}
    for d in descriptions:
        by_scene.setdefault(d.scene_id, []).append(d)
    return {sid: build_memory(s, by_scene.get(sid, [])) for sid, s in scenes.items()}


SPLITS = ("train", "dev", "val", "all")


def split_scene_ids(root: str | Path, split: str) -> list[str]:
    """Scene ids of a split as listed in `scannetv2_{train,val}.txt`, with `dev` carved out of train.

    train: the training scenes minus dev; dev: `dev_scene_ids` of the listed training scenes (defaults are
    chosen there); val: the reported split, as listed.
    """
    if split not in ("train", "dev", "val", "train+dev"):
        raise ValueError(f"split must be train, dev, val or train+dev, got {split!r}")
    listed = "val" if split == "val" else "train"
    path = Path(root) / f"scannetv2_{listed}.txt"
    ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if split in ("val", "train+dev"):
        return ids
    n_val = len(split_scene_ids(root, "val")) if (Path(root) / "scannetv2_val.txt").is_file() else 0
    dev = set(dev_scene_ids(ids, n_val))
    return [s for s in ids if (s in dev) == (split == "dev")]


def dev_scene_ids(train_ids: list[str], n: int, seed: int = 0) -> list[str]:
    """A seeded sample of `n` training scenes (at most a third of them): the dev split. As many scenes as
    val by default, so thresholds chosen on dev see a gallery of the reported size."""
    n = min(n, len(train_ids) // 3)
    rng = np.random.default_rng([seed, 7_919])
    ordered = sorted(train_ids)
    return sorted(ordered[int(i)] for i in rng.permutation(len(ordered))[:n])


def load_synthetic(root: str | Path, split: str = "val", points_per_object: int = 1024,
                   progress: bool = False) -> SceneDataset:
    """Load a benchmark written by `ideal.scenes.synthetic` (split: train | dev | val | all).

    dev is carved from the training scenes (`split_scene_ids`); train excludes it."""
    root = Path(root)
    if split == "all":
        ids = split_scene_ids(root, "train+dev") + split_scene_ids(root, "val")
        refs = None
    elif split in ("train", "dev", "val"):
        listed = "val" if split == "val" else "train"
        ids, refs = split_scene_ids(root, split), root / f"ScanRefer_filtered_{listed}.json"
    else:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    ds = load(root / "scans", scanrefer=refs, nr3d=root / "nr3d.csv", sr3d=root / "sr3d.csv",
              label_map=root / "scannetv2-labels.combined.tsv", scene_ids=ids,
              points_per_object=points_per_object, progress=progress)
    if split == "all":
        both = scanrefer_format.read_scanrefer(root / "ScanRefer_filtered_train.json")
        both += scanrefer_format.read_scanrefer(root / "ScanRefer_filtered_val.json")
        ds.descriptions = both + ds.descriptions
        ds.memories = build_memories(ds.scenes, ds.descriptions)
    return ds


def dataset_stats(ds: SceneDataset, ambiguous_min_scenes: int = 5) -> dict:
    """The numbers a reader of a retrieval paper asks for first."""
    n_obj = [len(s.furniture()) for s in ds.scenes.values()]
    scenes_with = Counter()
    for s in ds.scenes.values():
        scenes_with.update({o.label for o in s.furniture()})
    label_of = {(sid, o.object_id): o.label for sid, s in ds.scenes.items() for o in s.objects}
    target_labels = [label_of[(d.scene_id, d.object_id)] for d in ds.descriptions]
    words = [len(d.text.split()) for d in ds.descriptions]
    by_source = Counter(d.source for d in ds.descriptions)
    return {
        "scenes": len(ds.scenes),
        "scene_types": len({s.scene_type for s in ds.scenes.values()}),
        "objects_per_scene": {"mean": float(np.mean(n_obj)), "min": int(np.min(n_obj)), "max": int(np.max(n_obj))},
        "classes": len(scenes_with),
        "descriptions": len(ds.descriptions),
        "descriptions_by_source": dict(sorted(by_source.items())),
        "words_per_description": {
            src: float(np.mean([w for w, d in zip(words, ds.descriptions) if d.source == src])) for src in by_source
        },
        f"share_target_class_in_{ambiguous_min_scenes}+_scenes": float(np.mean(
            [scenes_with[label] >= ambiguous_min_scenes for label in target_labels])) if target_labels else 0.0,
    }


def format_stats(stats: dict) -> str:
    width = max(len(k) for k in stats)
    lines = []
    for k, v in stats.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}={b:.1f}" if isinstance(b, float) else f"{a}={b}" for a, b in v.items())
        elif isinstance(v, float):
            v = f"{v:.3f}"
        lines.append(f"{k:<{width}}  {v}")
    return "\n".join(lines)
