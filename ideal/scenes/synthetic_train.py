"""A training-only extension of the synthetic benchmark: ScanRefer-scale training data, val and dev untouched.

The benchmark `ideal.scenes.synthetic.generate(root, n_scenes, seed)` has scenes 0 .. n_scenes-1; its val and
dev splits are what every number is reported on. The extension is a separate folder, in the same published
formats, holding only NEW scenes n_scenes .. n_scenes+extra-1 (`generate_scene(seed, i)` depends only on
(seed, i), so it never repeats a benchmark scene), each described by `passes` independent description passes:

    EXT/scans/sceneXXXX_00/            as in the benchmark
    EXT/ScanRefer_filtered_train.json  (no _val file: every scene is for training)
    EXT/nr3d.csv, EXT/sr3d.csv, EXT/scannetv2_train.txt, EXT/scannetv2-labels.combined.tsv, EXT/relations.jsonl
    EXT/meta.json                      written last; a folder with it and every file is complete

Training reads `load_training_set(root, EXT)`: the benchmark's train split plus every extension scene.
The default EXT is `train_extension_root(root, extra, passes)`, i.e. `<root>-train<extra>x<passes>`:

    python -m ideal.scenes.synthetic_train --base data/synthetic-400-s0 --extra 1400 --passes 2
"""
from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .dataset import SceneDataset, dataset_stats, format_stats, load, load_synthetic, split_scene_ids
from .language import Utterance, describe_scene
from .synthetic import (GENERATOR_VERSION, DescriptionTable, SyntheticScene, generate_scene, scan_complete,
                        scene_id, write_scene)
from .types import Scene

DEFAULT_EXTRA_SCENES = 1400  # with 2 passes and the 200 benchmark training scenes: > ScanRefer's 36,665 train
DEFAULT_PASSES = 2
FILES = ("ScanRefer_filtered_train.json", "scannetv2_train.txt", "nr3d.csv", "sr3d.csv",
         "scannetv2-labels.combined.tsv", "relations.jsonl")
# Nr3D/Sr3D ids restart at 0 in every folder ("nr3d/{n}", "sr3d/{row}"); in the merged set the extension's
# carry this prefix so that every desc_id (a dialog id downstream) stays unique.
EXTENSION_ID_PREFIX = "ext/"


def train_extension_root(root: str | Path, extra: int = DEFAULT_EXTRA_SCENES, passes: int = DEFAULT_PASSES) -> Path:
    """Where the extension of benchmark `root` lives by default: beside it, `<root>-train<extra>x<passes>`
    (data/synthetic-400-s0 -> data/synthetic-400-s0-train1400x2)."""
    root = Path(root)
    return root.with_name(f"{root.name}-train{extra}x{passes}")


def extension_utterances(syn: SyntheticScene, seed: int, index: int, passes: int) -> list[Utterance]:
    """Pass 0 is `generate_scene`'s own utterances; pass p >= 1 describes the scene again from the rng
    (seed, index, p), so other targets and other wording. A later utterance that repeats an earlier one of
    the scene (same object, style and text) is dropped: it would only weigh that example twice."""
    out = list(syn.utterances)
    said = {(u.object_id, u.style, u.text) for u in out}
    for p in range(1, passes):
        for u in describe_scene(syn.scene, syn.placed, np.random.default_rng([seed, index, p])):
            key = (u.object_id, u.style, u.text)
            if key not in said:
                said.add(key)
                out.append(u)
    return out


def _complete(out: Path, indices: range) -> bool:
    return (all((out / n).is_file() for n in FILES)
            and all(scan_complete(out / "scans", scene_id(i)) for i in indices))


def generate_train_extension(out: str | Path, base_scenes: int = 400, extra_scenes: int = DEFAULT_EXTRA_SCENES,
                             seed: int = 0, passes: int = DEFAULT_PASSES, progress: bool = True) -> Path:
    """Write training scenes base_scenes .. base_scenes+extra_scenes-1 of the benchmark `(base_scenes, seed)`
    to `out`, each with `passes` description passes. Deterministic and resumable like `generate`: finished
    scans are kept, meta.json is written last, and a complete folder is returned at the cost of file checks."""
    if extra_scenes < 1 or passes < 1 or base_scenes < 1:
        raise ValueError(f"base_scenes, extra_scenes and passes must be >= 1, got {base_scenes}, {extra_scenes}, "
                         f"{passes}")
    if base_scenes + extra_scenes > 10000:
        raise ValueError(f"base_scenes + extra_scenes must be <= 10000 (ScanNet ids have 4 digits), "
                         f"got {base_scenes + extra_scenes}")
    out = Path(out)
    scans_dir = out / "scans"
    scans_dir.mkdir(parents=True, exist_ok=True)
    meta_path = out / "meta.json"
    meta = {"generator_version": GENERATOR_VERSION, "seed": seed, "base_scenes": base_scenes,
            "extra_scenes": extra_scenes, "passes": passes}
    if meta_path.exists() and json.loads(meta_path.read_text()) != meta:
        shutil.rmtree(scans_dir)  # made for other settings: nothing on disk is ours to reuse
        scans_dir.mkdir()
        meta_path.unlink()
    indices = range(base_scenes, base_scenes + extra_scenes)
    if meta_path.exists() and _complete(out, indices):
        return out
    meta_path.unlink(missing_ok=True)

    scenes: dict[str, Scene] = {}
    descs = DescriptionTable()
    for i in tqdm(indices, desc="training scenes", unit="scene", disable=not progress):
        syn = generate_scene(seed, i)
        sid = syn.scene.scene_id
        if not scan_complete(scans_dir, sid):
            write_scene(syn, scans_dir, seed)
        scenes[sid] = syn.scene
        descs.add(syn, extension_utterances(syn, seed, i, passes))
    descs.write(out, scenes, {"train": set(scenes)})
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return out


def load_training_set(root: str | Path, extension_root: str | Path, points_per_object: int = 0,
                      progress: bool = False) -> SceneDataset:
    """The benchmark's `train` split (dev and val left out) plus every scene and description of the extension,
    with memories for all scenes. Extension Nr3D/Sr3D desc_ids get `EXTENSION_ID_PREFIX`.

    Raises ValueError if an extension scene id is also a scene of the benchmark (any split)."""
    root, extension_root = Path(root), Path(extension_root)
    if not (extension_root / "meta.json").is_file():
        raise ValueError(f"{extension_root}: no meta.json, not a finished training extension "
                         f"(python -m ideal.scenes.synthetic_train --base {root})")
    ext_ids = (extension_root / "scannetv2_train.txt").read_text().split()
    base_ids = set(split_scene_ids(root, "train+dev")) | set(split_scene_ids(root, "val"))
    clash = sorted(base_ids.intersection(ext_ids))
    if clash:
        raise ValueError(f"{extension_root}: {len(clash)} scene id(s) are also scenes of the benchmark {root}, "
                         f"e.g. {clash[:3]}; an extension must hold only new scenes")
    base = load_synthetic(root, "train", points_per_object=points_per_object, progress=progress)
    ext = load(extension_root / "scans", scanrefer=extension_root / "ScanRefer_filtered_train.json",
               nr3d=extension_root / "nr3d.csv", sr3d=extension_root / "sr3d.csv",
               label_map=extension_root / "scannetv2-labels.combined.tsv", scene_ids=ext_ids,
               points_per_object=points_per_object, progress=progress)
    ext_descs = [d if d.source == "scanrefer" else replace(d, desc_id=EXTENSION_ID_PREFIX + d.desc_id)
                 for d in ext.descriptions]
    descriptions = base.descriptions + ext_descs
    if len({d.desc_id for d in descriptions}) != len(descriptions):
        raise ValueError(f"{root} + {extension_root}: description ids repeat in the merged training set")
    scenes = dict(sorted({**base.scenes, **ext.scenes}.items()))
    return SceneDataset(scenes, descriptions, {**base.memories, **ext.memories})


def training_set(root: str | Path, n_scenes: int, seed: int, extra: int = DEFAULT_EXTRA_SCENES,
                 passes: int = DEFAULT_PASSES, points_per_object: int = 0, progress: bool = True) -> SceneDataset:
    """What the retriever trains on: the benchmark `root`'s train split, plus (extra > 0) its extension of `extra`
    new scenes described `passes` times, generated beside it on first use (`train_extension_root`)."""
    if extra <= 0:
        return load_synthetic(root, "train", points_per_object=points_per_object, progress=progress)
    ext = generate_train_extension(train_extension_root(root, extra, passes), n_scenes, extra, seed, passes,
                                   progress=progress)
    return load_training_set(root, ext, points_per_object=points_per_object, progress=progress)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ideal.scenes.synthetic_train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="the benchmark folder (python -m ideal.scenes.synthetic --out)")
    ap.add_argument("--extra", type=int, default=DEFAULT_EXTRA_SCENES, help="new training scenes")
    ap.add_argument("--passes", type=int, default=DEFAULT_PASSES, help="description passes per scene")
    ap.add_argument("--out", help="extension folder (default: <base>-train<extra>x<passes>)")
    args = ap.parse_args(argv)
    base = Path(args.base)
    if not (base / "meta.json").is_file():
        ap.error(f"{base}: no meta.json; generate the benchmark first: python -m ideal.scenes.synthetic --out {base}")
    meta = json.loads((base / "meta.json").read_text())
    out = Path(args.out) if args.out else train_extension_root(base, args.extra, args.passes)
    try:
        generate_train_extension(out, meta["scenes"], args.extra, meta["seed"], args.passes)
    except ValueError as e:
        ap.error(str(e))
    print(f"{out}\n" + format_stats(dataset_stats(load_training_set(base, out))))


if __name__ == "__main__":
    main()
