"""The synthetic benchmark: a deterministic stand-in for ScanNet + ScanRefer + ReferIt3D.

It writes the *published* formats, so synthetic and real data go through the same readers:

    OUT/scans/sceneXXXX_00/  sceneXXXX_00_vh_clean_2.ply, ..._vh_clean_2.0.010000.segs.json,
                             sceneXXXX_00.aggregation.json, sceneXXXX_00.txt
    OUT/ScanRefer_filtered_train.json, OUT/ScanRefer_filtered_val.json
    OUT/nr3d.csv, OUT/sr3d.csv                 (all scenes; split by the scene lists below)
    OUT/scannetv2_train.txt, OUT/scannetv2_val.txt
    OUT/scannetv2-labels.combined.tsv          (raw annotation label -> category)
    OUT/relations.jsonl                        (what each description states, for inspection/tests)
    OUT/meta.json                              (seed, sizes, generator version)

Scene i depends only on (seed, i), so a run can be resumed or sharded: finished scans are kept.

    python -m ideal.scenes.synthetic --out data/synthetic --scenes 1000 --seed 0

More training data, with val and dev unchanged: `ideal.scenes.synthetic_train`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import labelmap, referit3d, scanrefer, scannet
from .language import Utterance, describe_scene
from .layout import Placed, layout_room
from .rooms import KINDS
from .types import Description, Scene

GENERATOR_VERSION = 1
DEFAULT_SCENES = 400  # the quick default: ~100 val scenes, generated in well under a minute
DEFAULT_SEED = 0
VAL_FRACTION = 0.25
# How often each room type occurs, roughly as in ScanNet (bedrooms, offices and living rooms dominate).
ROOM_MIX = {
    "Bedroom / Hotel": 0.16, "Office": 0.16, "Living room / Lounge": 0.14, "Bathroom": 0.12, "Kitchen": 0.10,
    "Conference Room": 0.08, "Bookstore / Library": 0.07, "Dining Room": 0.06, "Classroom": 0.06,
    "Laundry Room": 0.05,
}
POINT_DENSITY = 60.0  # sampled vertices per m² of furniture surface
COLOR_NOISE = 0.04


@dataclass
class SyntheticScene:
    scene: Scene  # in the aligned frame, labels are categories
    placed: dict[int, Placed]
    utterances: list[Utterance]
    axis_alignment: np.ndarray  # (4, 4): raw -> aligned, as in ScanNet's .txt


def scene_id(index: int) -> str:
    return f"scene{index:04d}_00"


def generate_scene(seed: int, index: int) -> SyntheticScene:
    """Lay out and describe scene `index`; depends only on (seed, index)."""
    rng = np.random.default_rng([seed, index])
    types, weights = list(ROOM_MIX), np.array(list(ROOM_MIX.values()))
    scene_type = types[int(rng.choice(len(types), p=weights / weights.sum()))]
    scene, placed = layout_room(rng, scene_id(index), scene_type)
    utterances = describe_scene(scene, placed, rng)
    theta = rng.uniform(0, 2 * np.pi)
    c, s = np.cos(theta), np.sin(theta)
    align = np.array([[c, -s, 0, rng.uniform(-4, 4)], [s, c, 0, rng.uniform(-4, 4)], [0, 0, 1, 0], [0, 0, 0, 1]])
    return SyntheticScene(scene, placed, utterances, align)


def _box_points(rng, lo, hi, n):
    """The 8 corners plus n points uniform on the box surface (so the points' bounding box is the box)."""
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    size = hi - lo
    areas = np.array([size[1] * size[2], size[0] * size[2], size[0] * size[1]])
    axis = rng.choice(3, size=n, p=areas / areas.sum())
    pts = lo + rng.random((n, 3)) * size
    side = rng.integers(2, size=n)
    pts[np.arange(n), axis] = np.where(side == 1, hi[axis], lo[axis])
    return np.vstack([corners, pts])


# The 12 triangles of a box over its 8 corners (ordered as in _box_points).
_BOX_FACES = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                       [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])


def write_scene(syn: SyntheticScene, scans_dir: Path, seed: int) -> None:
    """Sample the mesh and write the scan folder atomically (a half-written scan is never left behind)."""
    sid = syn.scene.scene_id
    rng = np.random.default_rng([seed, zlib.crc32(sid.encode()), 7])
    xyz, rgb, segs, faces, groups = [], [], [], [], []
    n_total, next_seg = 0, int(rng.integers(1, 1000))
    for obj in syn.scene.objects:
        p = syn.placed[obj.object_id]
        area = 2 * (p.hi - p.lo)[[0, 0, 1]] @ (p.hi - p.lo)[[1, 2, 2]]
        n = int(np.clip(area * POINT_DENSITY, 24, 600))
        pts = _box_points(rng, p.lo, p.hi, n)
        col = np.clip(np.asarray(obj.color_rgb) + rng.normal(0, COLOR_NOISE, (len(pts), 3)), 0, 1)
        # Split the object into over-segments along its longest axis, like ScanNet's segmentation.
        k = max(1, len(pts) // 80)
        order = np.argsort(np.argsort(pts[:, int(np.argmax(p.hi - p.lo))]))
        seg_local = (order * k) // len(pts)
        seg_ids = next_seg + np.arange(k) * int(rng.integers(3, 40))
        next_seg = int(seg_ids[-1]) + int(rng.integers(1, 50))
        xyz.append(pts)
        rgb.append(np.round(col * 255).astype(np.uint8))
        segs.append(seg_ids[seg_local])
        faces.append(_BOX_FACES + n_total)
        groups.append({"objectId": obj.object_id, "label": p.raw, "segments": [int(s) for s in seg_ids]})
        n_total += len(pts)
    xyz_raw = scannet.apply_transform(np.linalg.inv(syn.axis_alignment), np.vstack(xyz))
    final = scans_dir / sid
    tmp = scans_dir / f".{sid}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    scannet.write_scan(tmp, sid, syn.scene.scene_type, xyz_raw, np.vstack(rgb), np.concatenate(segs), groups,
                       syn.axis_alignment, faces=np.vstack(faces))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)


def scan_complete(scans_dir: Path, sid: str) -> bool:
    """All four files of scan `sid` are on disk (write_scene moves a scan in whole, so it is finished)."""
    d = scans_dir / sid
    names = [f"{sid}_vh_clean_2.ply", f"{sid}_vh_clean_2.0.010000.segs.json", f"{sid}.aggregation.json", f"{sid}.txt"]
    return all((d / n).is_file() for n in names)


ANNOTATIONS = ("ScanRefer_filtered_train.json", "ScanRefer_filtered_val.json", "scannetv2_train.txt",
               "scannetv2_val.txt", "nr3d.csv", "sr3d.csv", "scannetv2-labels.combined.tsv", "relations.jsonl")


def _complete(out: Path, n_scenes: int) -> bool:
    return (all((out / n).is_file() for n in ANNOTATIONS)
            and all(scan_complete(out / "scans", scene_id(i)) for i in range(n_scenes)))


def val_scenes(n_scenes: int, seed: int) -> set[str]:
    rng = np.random.default_rng([seed, 1_000_003])
    n_val = max(1, round(n_scenes * VAL_FRACTION))
    return {scene_id(int(i)) for i in rng.permutation(n_scenes)[:n_val]}


class DescriptionTable:
    """Utterances of many scenes as Descriptions with the published ids, written as the annotation files.

    ScanRefer ids are "{scene}/{object}/{ann}" with ann counting up per object over every `add` of its scene;
    Nr3D and Sr3D ids are "nr3d/{n}" and "sr3d/{row}", n and row counting over the whole table (file order).
    """

    def __init__(self):
        self.rows: dict[str, list[tuple[Description, Utterance]]] = {"scanrefer": [], "nr3d": [], "sr3d": []}
        self._last_ann: dict[tuple[str, int], int] = {}

    def add(self, syn: SyntheticScene, utterances: list[Utterance]) -> None:
        sid = syn.scene.scene_id
        for u in utterances:
            raw = syn.placed[u.object_id].raw
            if u.style == "scanrefer":
                a = self._last_ann[sid, u.object_id] = self._last_ann.get((sid, u.object_id), -1) + 1
                d = Description(f"{sid}/{u.object_id}/{a}", sid, u.object_id, raw, u.text, "scanrefer")
            else:
                d = Description(f"{u.style}/{len(self.rows[u.style])}", sid, u.object_id, raw, u.text, u.style)
            self.rows[u.style].append((d, u))

    def write(self, out: Path, scenes: dict[str, Scene], splits: dict[str, set[str]]) -> None:
        """ScanRefer_filtered_{split}.json and scannetv2_{split}.txt for each of `splits` (name -> scene ids);
        nr3d.csv, sr3d.csv (every scene), the label map and relations.jsonl."""
        for split, ids in splits.items():
            rows = [d for d, _ in self.rows["scanrefer"] if d.scene_id in ids]
            scanrefer.write_scanrefer(out / f"ScanRefer_filtered_{split}.json", rows)
            (out / f"scannetv2_{split}.txt").write_text("".join(f"{s}\n" for s in sorted(ids)))
        referit3d.write_nr3d(out / "nr3d.csv", [d for d, _ in self.rows["nr3d"]], scenes)
        sr3d = self.rows["sr3d"]
        referit3d.write_sr3d(out / "sr3d.csv", [d for d, _ in sr3d], scenes,
                             [list(u.relations[0].anchors) for _, u in sr3d], [u.reference_type for _, u in sr3d])
        labelmap.write_label_map(out / "scannetv2-labels.combined.tsv", _label_rows())
        with open(out / "relations.jsonl", "w") as f:
            for style, rows in self.rows.items():
                for d, u in rows:
                    f.write(json.dumps({"desc_id": d.desc_id, "scene_id": d.scene_id, "object_id": d.object_id,
                                        "style": style, "color": u.color,
                                        "relations": [{"name": r.name, "anchors": list(r.anchors)}
                                                      for r in u.relations]}) + "\n")


def generate(out: str | Path, n_scenes: int = DEFAULT_SCENES, seed: int = DEFAULT_SEED,
             progress: bool = True) -> Path:
    """Write the benchmark to `out`. Re-running keeps finished scans and rewrites the annotation files."""
    if not 1 <= n_scenes <= 10000:
        raise ValueError(f"--scenes must be between 1 and 10000 (ScanNet ids have 4 digits), got {n_scenes}")
    out = Path(out)
    scans_dir = out / "scans"
    scans_dir.mkdir(parents=True, exist_ok=True)
    meta_path = out / "meta.json"
    meta = {"generator_version": GENERATOR_VERSION, "seed": seed, "scenes": n_scenes}
    if meta_path.exists() and json.loads(meta_path.read_text()) != meta:
        # Different seed/version: scans on disk are not ours to reuse.
        shutil.rmtree(scans_dir)
        scans_dir.mkdir()
        meta_path.unlink()
    if meta_path.exists() and _complete(out, n_scenes):
        # meta.json is written last: a finished benchmark (every job and Serve replica calls this) costs
        # file checks, not a regeneration
        return out
    # from here until meta.json is written again the benchmark is incomplete: a killed rebuild is redone
    meta_path.unlink(missing_ok=True)

    val = val_scenes(n_scenes, seed)
    scenes: dict[str, Scene] = {}
    descs = DescriptionTable()
    for i in tqdm(range(n_scenes), desc="synthetic scenes", unit="scene", disable=not progress):
        syn = generate_scene(seed, i)
        sid = syn.scene.scene_id
        if not scan_complete(scans_dir, sid):
            write_scene(syn, scans_dir, seed)
        scenes[sid] = syn.scene
        descs.add(syn, syn.utterances)
    descs.write(out, scenes, {"train": set(scenes) - val, "val": val})
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return out


def _label_rows() -> list[dict]:
    rows, i = [], 1
    for kind in KINDS.values():
        for raw in kind.raw:
            rows.append({"id": i, "raw_category": raw, "category": kind.category, "nyu40class": kind.nyu40})
            i += 1
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ideal.scenes.synthetic", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--scenes", type=int, default=DEFAULT_SCENES, help="number of scenes (1000 ≈ ScanNet)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = ap.parse_args(argv)
    try:
        out = generate(args.out, args.scenes, args.seed)
    except ValueError as e:
        ap.error(str(e))
    from .dataset import load_synthetic, format_stats, dataset_stats

    print(format_stats(dataset_stats(load_synthetic(out, split="all"))))


if __name__ == "__main__":
    main()
