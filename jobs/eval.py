"""The main job: evaluate retrieval. With no flags it runs the embedded default: the synthetic benchmark
(generated on first use), the shipped weights, the val split.

    python jobs/eval.py                                        # synthetic default
    python jobs/eval.py --methods static,labels --limit 200 --out results/quick
    python jobs/eval.py --scannet-dir ScanNet/scans --scanrefer ScanRefer_filtered_val.json --out results/scanrefer

Methods: `static` (the trained retriever, one round) and `labels` (the training-free bag-of-labels floor).
Writes OUT/results.json (per method and round: R@1, R@5, R@10, Rsum), OUT/results.md and OUT/stats.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ideal.config import load_config
from ideal.encoders.text import TextEncoder
from ideal.evaluate import DEFAULT_WEIGHTS, queries, static_eval
from ideal.metrics import format_table
from ideal.retrieval.retriever import BagOfLabelsRetriever, TrainedRetriever
from ideal.scenes import dataset_stats, format_stats, load, load_synthetic
from ideal.scenes.synthetic import generate

METHODS = ("static", "labels")
NAMES = {"static": "static", "labels": "bag-of-labels"}


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default="static,labels", help=f"comma-separated, from {', '.join(METHODS)}")
    ap.add_argument("--rounds", type=int, default=0, help="dialog rounds after the initial query (0: static)")
    ap.add_argument("--memory", choices=["coarse", "fine"], default="fine", help="simulated user's memory")
    ap.add_argument("--scannet-dir", help="ScanNet scans folder (else: the synthetic benchmark)")
    ap.add_argument("--scanrefer", help="ScanRefer JSON (queries)")
    ap.add_argument("--nr3d", help="Nr3D CSV (queries)")
    ap.add_argument("--sr3d", help="Sr3D CSV (queries)")
    ap.add_argument("--label-map", help="scannetv2-labels.combined.tsv for raw label normalisation")
    ap.add_argument("--queries", default="scanrefer", help="synthetic: which description styles are queries")
    ap.add_argument("--limit", type=int, help="evaluate the first N queries")
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="retriever checkpoint folder")
    ap.add_argument("--config", help="YAML config (data.*, index.* ...)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--out", default="results/default")
    args = ap.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        ap.error(f"unknown method(s) {bad}; available now: {', '.join(METHODS)}")
    if args.rounds != 0:
        ap.error("--rounds > 0 needs the dialog loop (questioner/answerer), which is not built yet; use --rounds 0")
    if args.scannet_dir and not (args.scanrefer or args.nr3d or args.sr3d):
        ap.error("--scannet-dir needs description files: --scanrefer, --nr3d and/or --sr3d")
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be ≥ 1")
    return args, methods


def main(argv=None) -> None:
    args, methods = parse(argv)
    cfg = load_config(args.config, args.set)
    if args.scannet_dir:
        ds = load(args.scannet_dir, scanrefer=args.scanrefer, nr3d=args.nr3d, sr3d=args.sr3d,
                  label_map=args.label_map, points_per_object=0, progress=True)
        sources = ("scanrefer", "nr3d", "sr3d")
        dataset = args.scannet_dir
    else:
        root = generate(cfg.data.synthetic_root(), cfg.data.scenes, cfg.data.seed)
        ds = load_synthetic(root, "val", points_per_object=0, progress=True)
        sources = tuple(s.strip() for s in args.queries.split(","))
        dataset = str(root)
    stats = dataset_stats(ds)
    print(f"\n== gallery and queries: {dataset} ==\n{format_stats(stats)}\n", flush=True)

    text = TextEncoder(cfg.text_encoder.model_dir, max_length=cfg.text_encoder.max_length)
    descs = queries(ds, sources, args.limit)
    results = {}
    for m in methods:
        retriever = (TrainedRetriever.from_checkpoint(args.weights, text) if m == "static"
                     else BagOfLabelsRetriever(text))
        results[NAMES[m]] = {"0": static_eval(retriever, ds, descs, cfg.index.kind)}
        print(f"{NAMES[m]}: {results[NAMES[m]]['0']}", flush=True)

    table = format_table({name: rounds["0"] for name, rounds in results.items()})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({
        "dataset": dataset, "queries": len(descs), "gallery": len(ds.scenes), "weights": args.weights,
        "argv": sys.argv[1:], "results": results}, indent=1) + "\n")
    (out / "results.md").write_text(f"# Static retrieval ({len(descs)} queries, {len(ds.scenes)} scenes)\n\n"
                                    f"Dataset: `{dataset}`\n\n{table}\n")
    (out / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    print(f"\n{table}\n\nwrote {out / 'results.json'}, {out / 'results.md'}")


if __name__ == "__main__":
    main()
