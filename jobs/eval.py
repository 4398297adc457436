"""The main job. With no flags it runs the embedded default: the synthetic benchmark.

Today it generates the benchmark (if not already on disk), loads it back through the ScanNet /
ScanRefer / ReferIt3D readers and prints its statistics; the retrieval evaluation (static, then
multi-round IDeal) lands on top of this with the retriever and dialog issues.

    python jobs/eval.py                       # synthetic default (400 scenes, seed 0)
    python jobs/eval.py --scenes 1000 --out results/synthetic-1000
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ideal.scenes import dataset_stats, format_stats, load_synthetic
from ideal.scenes.synthetic import DEFAULT_SCENES, DEFAULT_SEED, generate


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="benchmark folder (default: data/synthetic-<scenes>-s<seed>)")
    ap.add_argument("--scenes", type=int, default=DEFAULT_SCENES)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--out", default="results/default", help="where stats.json is written")
    args = ap.parse_args(argv)

    data = Path(args.data or f"data/synthetic-{args.scenes}-s{args.seed}")
    generate(data, args.scenes, args.seed)
    stats = {split: dataset_stats(load_synthetic(data, split=split, points_per_object=0, progress=True))
             for split in ("all", "val")}
    for split, s in stats.items():
        print(f"\n== synthetic benchmark, {split} ({data}) ==\n{format_stats(s)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    print(f"\nwrote {out / 'stats.json'}")


if __name__ == "__main__":
    main()
