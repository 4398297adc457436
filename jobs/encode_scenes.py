"""Encode a gallery of scenes with Ray Data: scans -> scene embeddings (parquet) -> a faiss index file.

    python jobs/encode_scenes.py --out results/gallery                       # the synthetic default, val split
    python jobs/encode_scenes.py --scannet-dir ScanNet/scans --label-map scannetv2-labels.combined.tsv --out g
    python jobs/encode_scenes.py --scenes-parquet scenes.parquet --out g     # ideal.scenes.parquet's scene table
    ray job submit --working-dir . -- python jobs/encode_scenes.py --scannet-dir /data/scans --actors 8 --out /data/g

Shards of scene ids go through `map_batches` with an actor class holding the scene encoder (one per actor,
`--actors`; one GPU each when the cluster has GPUs). Each actor writes its shard to OUT/embeddings/part-*.parquet
whole or not at all, so a re-run skips finished shards (OUT/embeddings/plan.json records the shard plan: a
re-run with other scenes, shard size or weights for the same OUT is refused). Ray Data shows streaming
progress. Then OUT/embeddings.parquet and OUT/index.faiss.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ideal.evaluate import DEFAULT_WEIGHTS
from ideal.retrieval.encode import ShardEncoder, files_digest, merge_shards, plan_shards


class EncodeActor:
    """Ray Data actor: the ShardEncoder built once, then one shard per row."""

    def __init__(self, weights, scannet_dir, label_map, retriever, scenes_parquet):
        self.encoder = ShardEncoder(weights, scannet_dir, label_map, retriever, scenes_parquet)

    def __call__(self, batch):
        counts = [self.encoder.encode(list(ids), path) for ids, path in zip(batch["scene_ids"], batch["path"])]
        return {"path": list(batch["path"]), "scenes": counts}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scannet-dir", help="ScanNet scans folder (default: the synthetic benchmark's scans)")
    ap.add_argument("--label-map", help="scannetv2-labels.combined.tsv")
    ap.add_argument("--scenes-parquet", help="a scenes parquet file (one row per object, ideal.scenes.parquet)")
    ap.add_argument("--split", default="val", choices=["train", "dev", "val", "all"], help="synthetic: which scenes")
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    ap.add_argument("--retriever", default="trained", choices=["trained", "labels"])
    ap.add_argument("--shard-size", type=int, default=64, help="scenes per shard")
    ap.add_argument("--actors", type=int, default=2, help="encoder actors")
    ap.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per actor")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (data.*)")
    ap.add_argument("--out", default="results/gallery")
    args = ap.parse_args(argv)
    if args.shard_size < 1 or args.actors < 1:
        ap.error("--shard-size and --actors must be >= 1")
    if args.scenes_parquet and (args.scannet_dir or args.label_map):
        ap.error("--scenes-parquet holds mapped labels already: give it without --scannet-dir / --label-map")

    import ray

    from ideal.config import load_config
    from ideal.retrieval.embeddings import write_embeddings
    from ideal.retrieval.index import SceneIndex
    from ideal.scenes import parquet, scannet
    from ideal.scenes.dataset import split_scene_ids
    from ideal.scenes.synthetic import generate

    scenes_parquet = str(Path(args.scenes_parquet).resolve()) if args.scenes_parquet else None
    if scenes_parquet:
        scan_dir, label_map = None, None
        try:
            ids = parquet.list_scene_ids(scenes_parquet)
        except ValueError as e:
            sys.exit(f"encode_scenes.py: {e}")
        source = scenes_parquet
    elif args.scannet_dir:
        scan_dir, label_map = Path(args.scannet_dir), args.label_map
        ids = scannet.list_scans(scan_dir)
    else:
        cfg = load_config(None, args.set)
        root = Path(generate(cfg.data.synthetic_root(), cfg.data.scenes, cfg.data.seed))
        scan_dir, label_map = root / "scans", str(root / "scannetv2-labels.combined.tsv")
        ids = (split_scene_ids(root, "train+dev") + split_scene_ids(root, "val") if args.split == "all"
               else split_scene_ids(root, args.split))
    if not scenes_parquet:
        source = str(Path(scan_dir).resolve())
    if not ids:
        sys.exit(f"encode_scenes.py: no scenes found in {source}")
    ids = sorted(ids)
    out = Path(args.out)
    shards = [ids[i:i + args.shard_size] for i in range(0, len(ids), args.shard_size)]
    try:
        paths = plan_shards(out / "embeddings", shards, source=source,
                            label_map=Path(label_map).resolve() if label_map else None,
                            weights=Path(args.weights).resolve() if args.retriever == "trained" else None,
                            weights_sha256=files_digest(args.weights) if args.retriever == "trained" else None,
                            retriever=args.retriever)
    except ValueError as e:
        sys.exit(f"encode_scenes.py: {e}")
    todo = [{"scene_ids": s, "path": str(p)} for s, p in zip(shards, paths) if not p.exists()]
    print(f"{len(ids)} scenes in {len(shards)} shards; {len(shards) - len(todo)} already encoded", flush=True)
    if todo:
        ray.init(ignore_reinit_error=True, include_dashboard=False)
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        done = ray.data.from_items(todo).map_batches(
            EncodeActor, batch_size=1, concurrency=min(args.actors, len(todo)), num_cpus=args.num_cpus,
            num_gpus=gpus, fn_constructor_kwargs={"weights": args.weights, "label_map": label_map,
                                                  "scannet_dir": str(scan_dir) if scan_dir else None,
                                                  "retriever": args.retriever, "scenes_parquet": scenes_parquet},
        ).take_all()
        print(f"encoded {sum(r['scenes'] for r in done)} scenes in {len(done)} shards", flush=True)
    all_ids, vectors = merge_shards(paths)
    write_embeddings(out / "embeddings.parquet", all_ids, vectors)
    SceneIndex.build(all_ids, vectors).save(out / "index.faiss")
    print(f"wrote {out / 'embeddings.parquet'} and {out / 'index.faiss'} ({len(all_ids)} scenes)")


if __name__ == "__main__":
    main()
