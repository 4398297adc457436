"""Benchmark: Ray Data scene encoding with N actors vs the same shards encoded in one plain process.

    python jobs/bench_encode_scenes.py                 # the default synthetic benchmark, all 400 scans, 2 actors
    python jobs/bench_encode_scenes.py --scenes 8000   # a larger gallery (generated on first use, ~4 min)

Both read the scans from disk, run the shipped base scene encoder and write the encoded gallery (tables, embeddings,
density, faiss index).
The Ray side is `jobs/encode_scenes.py`'s own `main` (fresh output folder, so nothing is skipped), timed from
the call: actor start-up (each loads the text encoder and weights) and Ray Data planning included. Ray itself
is started once before either side and timed apart: a cluster is up before `ray job submit` sends the job.
One thread per actor and in the plain process (OMP_NUM_THREADS=1), as Ray gives a 1-CPU actor.
Prints both wall times and the ratio (target >= 1.7x), the ratio with Ray's start-up counted too, and the
steady-state ratio: the Ray side's scenes/s between the first shard each actor finished and the last shard
(from the shard files' write times), which leaves out the actors' start-up and the last shard's tail.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--shard-size", type=int, default=100)
    ap.add_argument("--scenes", type=int, default=None, help="synthetic benchmark size (default: the config's, 400)")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()

    import ray
    import torch

    import encode_scenes
    from ideal import build
    from ideal.config import load_config
    from ideal.retrieval.encode import Source
    from ideal.scenes.synthetic import generate

    torch.set_num_threads(1)
    overrides = [f"data.{k}={v}" for k, v in (("scenes", args.scenes), ("seed", args.seed)) if v is not None]
    cfg = load_config(None, overrides)
    root = Path(generate(cfg.data.synthetic_root(), cfg.data.scenes, cfg.data.seed))
    files = {"scannet_dir": str(root / "scans"), "label_map": str(root / "scannetv2-labels.combined.tsv"),
             "scanrefer": str(root / "ScanRefer_filtered_val.json")}
    source = Source(**files)
    ids = source.list_scene_ids()
    shards = [ids[i:i + args.shard_size] for i in range(0, len(ids), args.shard_size)]
    tmp = Path(tempfile.mkdtemp())
    try:
        t = time.perf_counter()
        build.build_gallery(source, tmp / "single", {"base": "base"}, args.shard_size, progress=False)
        single = time.perf_counter() - t

        t = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - t
        t = time.perf_counter()
        encode_scenes.main(["--scannet-dir", files["scannet_dir"], "--label-map", files["label_map"], "--scanrefer",
                            files["scanrefer"], "--weights", "base", "--shard-size", str(args.shard_size),
                            "--actors", str(args.actors), "--out", str(tmp / "ray")])
        ray_time = time.perf_counter() - t
        ray.shutdown()
        done = sorted(p.stat().st_mtime for p in (tmp / "ray" / "shards" / "base").glob("part-*.parquet"))
        # the first `actors` shards carry the start-up; the rest were encoded at full speed
        steady = ((len(done) - args.actors) * args.shard_size / (done[-1] - done[args.actors - 1])
                  if len(done) > args.actors + 1 and done[-1] > done[args.actors - 1] else float("nan"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n== scene encoding: {len(ids)} scenes in {len(shards)} shards, {os.cpu_count()} cores ==")
    print(f"  one process (1 thread)            {single:7.1f} s  ({len(ids) / single:6.1f} scenes/s)")
    print(f"  Ray Data, {args.actors} actors (from the call) {ray_time:7.1f} s  ({len(ids) / ray_time:6.1f} scenes/s)")
    print(f"  ratio {single / ray_time:.2f}x (target >= 1.7x); with Ray's start-up ({ray_start:.1f} s) counted "
          f"{single / (ray_time + ray_start):.2f}x")
    print(f"  steady state: {steady:.1f} scenes/s with {args.actors} actors = {steady / (len(ids) / single):.2f}x one "
          f"process; start-up and tail ~{ray_time - len(ids) / steady:.1f} s")


if __name__ == "__main__":
    main()
