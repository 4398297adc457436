"""The main job: simulated-user evaluation of interactive retrieval, on Ray.

With no flags it runs the embedded default: the synthetic benchmark (generated on first use), the shipped
weights (base retriever for static and the baselines, the IAT-tuned one for ideal/ir/sum), methods static,
chatir, merlin and ideal, 5 rounds, fine memory, every val query.

    python jobs/eval.py
    python jobs/eval.py --methods static,labels --rounds 0 --limit 200 --out results/quick
    python jobs/eval.py --ablations --out results/ablations
    python jobs/eval.py --scannet-dir ScanNet/scans --scanrefer ScanRefer_filtered_val.json --out results/scanrefer
    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python jobs/eval.py --out /tmp/results/default       # a cluster with token auth (README: Ray)

Dialogs run as Ray tasks over shards (a method x a slice of the queries). Each finished shard is stored under
OUT/shards/, so a killed job resubmitted with the same flags continues where it stopped, without losing or
repeating a dialog. Writes OUT/results.json (per method and round: R@1, R@5, R@10, Rsum), OUT/results.md,
OUT/recall_vs_round.png, OUT/transcripts.parquet and OUT/stats.json.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from ideal.config import load_config
from ideal.dialog.methods import ABLATIONS
from ideal.dialog_eval import (ALL_METHODS, IAT_REQUIRES, EvalSpec, check_methods, method_rounds, recall_per_round,
                               shard_plan)
from ideal.evaluate import DEFAULT_WEIGHTS, SHIPPED_IAT

DEFAULT_METHODS = "static,chatir,merlin,ideal"


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default=DEFAULT_METHODS,
                    help=f"comma-separated, from {', '.join(ALL_METHODS)} (labels = bag-of-labels)")
    ap.add_argument("--rounds", type=int, default=None, help="dialog rounds after the initial query (default 5)")
    ap.add_argument("--memory", choices=["coarse", "fine"], default=None, help="the simulated user's memory")
    ap.add_argument("--ablations", action="store_true", help=f"also run {', '.join(ABLATIONS)} (Table 3)")
    ap.add_argument("--scannet-dir", help="ScanNet scans folder (else: the synthetic benchmark)")
    ap.add_argument("--scanrefer", help="ScanRefer JSON (queries)")
    ap.add_argument("--nr3d", help="Nr3D CSV (queries)")
    ap.add_argument("--sr3d", help="Sr3D CSV (queries)")
    ap.add_argument("--label-map", help="scannetv2-labels.combined.tsv for raw label normalisation")
    ap.add_argument("--queries", default="scanrefer", help="synthetic: which description styles are queries")
    ap.add_argument("--limit", type=int, help="evaluate the first N queries")
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="base retriever checkpoint folder")
    ap.add_argument("--iat-weights", default=None,
                    help="IAT-tuned checkpoint for ideal/ir/sum (default: the shipped one; 'none': no IAT)")
    ap.add_argument("--iat-ablation-weights", nargs=2, metavar=("NO_LDIS", "NO_LDIV"), default=None,
                    help="checkpoints tuned without L_dis / without L_div (default: the shipped ones)")
    ap.add_argument("--config", help="YAML config (data.*, dialog.* ...)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--shard-size", type=int, default=100, help="dialogs per Ray task")
    ap.add_argument("--address", default=None, help="Ray address (default: RAY_ADDRESS, else a local Ray)")
    ap.add_argument("--out", default="results/default")
    args = ap.parse_args(argv)
    try:
        methods = check_methods([m.strip() for m in args.methods.split(",") if m.strip()])
    except ValueError as e:
        ap.error(str(e))
    if args.rounds is not None and args.rounds < 0:
        ap.error("--rounds must be >= 0")
    if args.scannet_dir and not (args.scanrefer or args.nr3d or args.sr3d):
        ap.error("--scannet-dir needs description files: --scanrefer, --nr3d and/or --sr3d")
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be >= 1")
    if args.shard_size < 1:
        ap.error("--shard-size must be >= 1")
    return args, methods


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


def main(argv=None) -> None:
    args, methods = parse(argv)
    try:
        cfg = load_config(args.config, args.set)
    except (ValueError, OSError) as e:
        sys.exit(f"eval.py: {e}")
    if args.rounds is not None:
        cfg.dialog.rounds = args.rounds
    if args.memory is not None:
        cfg.dialog.memory = args.memory
    rounds = cfg.dialog.rounds
    iat = {}
    if (args.iat_weights or "").lower() != "none":
        iat["iat"] = Path(args.iat_weights) if args.iat_weights else SHIPPED_IAT["iat"]
        no = args.iat_ablation_weights or (SHIPPED_IAT["iat_no_ldis"], SHIPPED_IAT["iat_no_ldiv"])
        iat["iat_no_ldis"], iat["iat_no_ldiv"] = Path(no[0]), Path(no[1])
    iat = {k: str(v.resolve()) for k, v in iat.items() if (v / "model.safetensors").is_file()}
    if args.iat_weights and args.iat_weights.lower() != "none" and "iat" not in iat:
        sys.exit(f"eval.py: --iat-weights {args.iat_weights}: not a checkpoint folder (no model.safetensors)")
    ablations = list(ABLATIONS) if args.ablations else []
    missing = [a for a in ablations if a in IAT_REQUIRES and IAT_REQUIRES[a] not in iat]
    if missing:
        print(f"note: no IAT checkpoints for {', '.join(missing)}: those ablations are left out", flush=True)
        ablations = [a for a in ablations if a not in missing]

    import ray
    from tqdm import tqdm

    from ideal.dialog_eval import context, run_shard
    from ideal.report import write_all
    from ideal.scenes import dataset_stats, format_stats
    from ideal.scenes.synthetic import generate

    if args.scannet_dir:
        data = {"scannet_dir": args.scannet_dir, "scanrefer": args.scanrefer, "nr3d": args.nr3d, "sr3d": args.sr3d,
                "label_map": args.label_map}
        dataset = args.scannet_dir
    else:
        root = generate(cfg.data.synthetic_root(), cfg.data.scenes, cfg.data.seed)
        data = {"synthetic": str(Path(root).resolve())}
        dataset = str(root)
    spec = EvalSpec(data=data, sources=tuple(s.strip() for s in args.queries.split(",")), limit=args.limit,
                    weights=str(Path(args.weights).resolve()), iat_weights=iat, config=cfg.to_dict())
    ctx = context(spec)  # the driver reads the data once too: stats, query count, early errors
    stats = dataset_stats(ctx.ds)
    print(f"\n== gallery and queries: {dataset} ==\n{format_stats(stats)}\n", flush=True)
    n = len(ctx.descs)

    out = Path(args.out)
    shard_dir = out / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = json.loads(spec.key())
    fp_path = shard_dir / "spec.json"
    if fp_path.exists() and json.loads(fp_path.read_text()) != fingerprint:
        sys.exit(f"eval.py: {shard_dir} holds shards of a different evaluation (data, config or weights differ); "
                 f"use another --out or delete that folder")
    fp_path.write_text(json.dumps(fingerprint, indent=1) + "\n")

    everything = methods + [a for a in ablations if a not in methods]
    plan = shard_plan(n, everything, args.shard_size)

    def shard_path(m, a, b):
        return shard_dir / slug(m) / f"{a:07d}-{b:07d}.json"

    todo = [p for p in plan if not shard_path(*p).exists()]
    print(f"{len(plan)} shards ({len(plan) - len(todo)} already done), {n} dialogs x {len(everything)} methods, "
          f"{rounds} rounds", flush=True)
    if todo:
        ray.init(address=args.address or os.environ.get("RAY_ADDRESS"), include_dashboard=False,
                 log_to_driver=False)
        task = ray.remote(num_cpus=1, max_retries=2)(run_shard)
        pending = {task.remote(spec, m, a, b, method_rounds(m, rounds)): (m, a, b) for m, a, b in todo}
        with tqdm(total=len(plan), initial=len(plan) - len(todo), desc="shards", unit="shard") as bar:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                m, a, b = pending.pop(done[0])
                res = ray.get(done[0])
                path = shard_path(m, a, b)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(res))
                tmp.replace(path)  # atomic: a shard file is either whole or absent
                bar.set_postfix_str(f"{m} {a}-{b}")
                bar.update(1)

    import numpy as np

    results, transcripts = {}, []
    for m in everything:
        ranks, ids = [], []
        for mm, a, b in plan:
            if mm == m:
                res = json.loads(shard_path(mm, a, b).read_text())
                ranks += res["ranks"]
                ids += res["dialog_ids"]
                transcripts += res["transcript"]
        if len(ids) != n or len(set(ids)) != n:
            sys.exit(f"eval.py: method {m}: {len(ids)} dialogs in shards, {len(set(ids))} distinct, expected {n}")
        results[m] = recall_per_round(np.array(ranks))
    meta = {"dataset": dataset, "queries": n, "gallery": len(ctx.ds.scenes), "memory": cfg.dialog.memory,
            "rounds": rounds, "weights": args.weights, "iat_weights": iat.get("iat"), "argv": sys.argv[1:] if argv is None else list(argv)}
    paths = write_all(out, results, meta, methods, [a for a in ablations if a not in methods], transcripts)
    (out / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    print("\n" + (out / "results.md").read_text())
    print("wrote " + ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
