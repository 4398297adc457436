"""Benchmark: Ray Data scene encoding with N actors vs the same shards encoded in one plain process.

    python jobs/bench_encode_scenes.py                 # the default synthetic benchmark, all 400 scenes, 2 actors

Both read the scans from disk and run the shipped scene encoder; the Ray side is `jobs/encode_scenes.py`
itself (fresh output folders, so nothing is skipped), timed end to end including actor start-up; the
in-process side builds one ShardEncoder and encodes every shard. One thread per actor / process
(OMP_NUM_THREADS=1), as Ray gives a 1-CPU actor. Prints both wall times and the ratio (target >= 1.7x).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--shard-size", type=int, default=25)
    args = ap.parse_args()

    import torch

    from ideal.config import load_config
    from ideal.evaluate import DEFAULT_WEIGHTS
    from ideal.retrieval.encode import ShardEncoder
    from ideal.scenes.dataset import split_scene_ids
    from ideal.scenes.synthetic import generate

    torch.set_num_threads(1)
    cfg = load_config()
    root = Path(generate(cfg.data.synthetic_root(), cfg.data.scenes, cfg.data.seed))
    ids = sorted(split_scene_ids(root, "train") + split_scene_ids(root, "val"))
    shards = [ids[i:i + args.shard_size] for i in range(0, len(ids), args.shard_size)]
    tmp = Path(tempfile.mkdtemp())
    try:
        t = time.perf_counter()
        enc = ShardEncoder(str(DEFAULT_WEIGHTS), str(root / "scans"), str(root / "scannetv2-labels.combined.tsv"))
        for i, s in enumerate(shards):
            enc.encode(s, tmp / f"single-{i}.parquet")
        single = time.perf_counter() - t

        t = time.perf_counter()
        p = subprocess.run([sys.executable, str(Path(__file__).parent / "encode_scenes.py"), "--split", "all",
                            "--shard-size", str(args.shard_size), "--actors", str(args.actors), "--out",
                            str(tmp / "ray")], capture_output=True, text=True)
        ray_time = time.perf_counter() - t
        if p.returncode != 0:
            sys.exit(p.stderr[-3000:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n== scene encoding: {len(ids)} scenes in {len(shards)} shards, {os.cpu_count()} cores ==")
    print(f"  one process (1 thread)        {single:7.1f} s  ({len(ids) / single:6.1f} scenes/s)")
    print(f"  Ray Data, {args.actors} actors (end to end) {ray_time:7.1f} s  ({len(ids) / ray_time:6.1f} scenes/s)")
    print(f"  ratio {single / ray_time:.2f}x (target >= 1.7x)")


if __name__ == "__main__":
    main()
