"""Encode a gallery with Ray Data: scans + description files -> an encoded gallery directory G (ideal.store):
scene, description and memory tables, and each retriever's scene embeddings, density and faiss index.

    python jobs/encode_scenes.py --out results/gallery                       # the synthetic default, val split
    python jobs/encode_scenes.py --scannet-dir ScanNet/scans --label-map scannetv2-labels.combined.tsv \
        --scanrefer ScanRefer_filtered_val.json --nr3d nr3d.csv --sr3d sr3d.csv --out G
    python jobs/encode_scenes.py --scenes-parquet scenes.parquet --scanrefer F --out G   # ideal.scenes.parquet's table
    python jobs/encode_scenes.py --scannet-dir ... --weights runs/iat/final --out G      # add an encoding to G
    ray job submit --working-dir . -- python jobs/encode_scenes.py --scannet-dir /data/scans --actors 8 --out /data/G

`jobs/eval.py --gallery G` and the Serve app (`gallery: G`) start from G: neither reads a scan or re-encodes.
Shards of scene ids go through `map_batches` with an actor class holding the retrievers (one per actor,
`--actors`; one GPU each when the cluster has GPUs). Each shard's outputs are written whole or not at all, so a
re-run skips finished work (plan.json files record what made it: a re-run with other scenes, shard size or
weights for the same OUT is refused). Ray Data shows streaming progress.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


class EncodeActor:
    """Ray Data actor: the ShardEncoder built once, then one shard per row."""

    def __init__(self, source: dict, encodings: dict):
        from ideal.retrieval.encode import ShardEncoder

        self.encoder = ShardEncoder(source, encodings)

    def __call__(self, batch):
        # rows travel as JSON: Arrow would turn a missing table folder (None) into NaN and an empty dict into null
        rows = [json.loads(w) for w in batch["work"]]
        return {"scenes": [self.encoder.encode(r["scene_ids"], r["tables"], r["encodings"]) for r in rows]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scannet-dir", help="ScanNet scans folder (default: the synthetic benchmark's scans)")
    ap.add_argument("--label-map", help="scannetv2-labels.combined.tsv")
    ap.add_argument("--scenes-parquet", help="a scenes parquet file (one row per object, ideal.scenes.parquet)")
    ap.add_argument("--scanrefer", help="ScanRefer JSON: queries and fine memories")
    ap.add_argument("--nr3d", help="Nr3D CSV")
    ap.add_argument("--sr3d", help="Sr3D CSV")
    ap.add_argument("--split", default="val", choices=["train", "dev", "val"], help="synthetic: which scenes")
    ap.add_argument("--weights", action="append", metavar="CHECKPOINT",
                    help="a retriever checkpoint folder, a shipped name or 'labels' (repeatable; default: every "
                         "shipped checkpoint and labels)")
    ap.add_argument("--shard-size", type=int, default=64, help="scenes per shard")
    ap.add_argument("--actors", type=int, default=2, help="encoder actors")
    ap.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per actor")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--out", default="results/gallery")
    args = ap.parse_args(argv)
    if args.shard_size < 1 or args.actors < 1:
        ap.error("--shard-size and --actors must be >= 1")
    if args.scenes_parquet and (args.scannet_dir or args.label_map):
        ap.error("--scenes-parquet holds mapped labels already: give it without --scannet-dir / --label-map")
    real = args.scannet_dir or args.scenes_parquet
    if real and not (args.scanrefer or args.nr3d or args.sr3d):
        ap.error("give the description files too (--scanrefer, --nr3d, --sr3d): they are the queries and memories")

    import ray

    from ideal import build, checkpoints
    from ideal.config import load_config
    from ideal.retrieval.encode import Source, finish_gallery, gallery_plan, pending_work
    from ideal.scenes.synthetic import generate

    try:
        cfg = load_config(None, args.set)
        if real:
            source = Source(args.scannet_dir, args.label_map, args.scenes_parquet, args.scanrefer, args.nr3d, args.sr3d)
        else:
            source = build.synthetic_source(generate(cfg.data.synthetic_root(), cfg.data.scenes, cfg.data.seed),
                                            args.split)
        encodings = ({Path(str(checkpoints.resolve(w))).name if w != checkpoints.LABELS else w:
                      str(checkpoints.resolve(w)) for w in args.weights} if args.weights else build.default_encodings())
        shards, tables, embedded = gallery_plan(args.out, source, encodings, args.shard_size)
    except ValueError as e:
        sys.exit(f"encode_scenes.py: {e}")
    todo = pending_work(shards, tables, embedded)
    print(f"{sum(map(len, shards))} scenes in {len(shards)} shards, encodings {', '.join(encodings)}; "
          f"{len(shards) - len(todo)} shards already done", flush=True)
    if todo:
        ray.init(ignore_reinit_error=True, include_dashboard=False)
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        needed = {n: encodings[n] for n in {k for row in todo for k in row["encodings"]}}
        done = ray.data.from_items([{"work": json.dumps(r)} for r in todo]).map_batches(
            EncodeActor, batch_size=1, concurrency=min(args.actors, len(todo)), num_cpus=args.num_cpus,
            num_gpus=gpus, fn_constructor_kwargs={"source": source.to_dict(), "encodings": needed},
        ).take_all()
        print(f"encoded {sum(r['scenes'] for r in done)} scenes in {len(done)} shards", flush=True)
    try:
        finish_gallery(args.out, source, tables, embedded, encodings, cfg.dialog.density_k, cfg.index.kind,
                       cfg.index.ivf_threshold)
    except ValueError as e:
        sys.exit(f"encode_scenes.py: {e}")
    print(f"wrote the gallery {args.out} ({sum(map(len, shards))} scenes; encodings {', '.join(encodings)})")


if __name__ == "__main__":
    main()
