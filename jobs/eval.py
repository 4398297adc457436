"""The main job: simulated-user evaluation of interactive retrieval, on Ray.

With no flags it runs the embedded default: the synthetic benchmark (generated on first use), the shipped
weights (base retriever for static and the baselines, the IAT-tuned one for ideal), methods static, chatir,
merlin and ideal, 5 rounds, fine memory, every ScanRefer-style val query. With `--set dialog.llm=MODEL` it
compares the roles on that chat model with the grounded ones: static, ideal and ideal-llm, both memories,
5 rounds each (a local model runs on vLLM when `.[llm]` is installed, else on transformers).

    python jobs/eval.py
    python jobs/eval.py --tables --out results/tables          # Tables 1-3 of the paper, both memories, 3 seeds
    python jobs/eval.py --methods static,labels --rounds 0 --limit 200 --out results/quick
    python jobs/eval.py --memory coarse --queries nr3d --out results/nr3d_coarse
    python jobs/eval.py --ablations --out results/ablations
    python jobs/eval.py --set dialog.llm=smollm2 --limit 200 --out results/smollm2   # SmolLM2 roles vs grounded
    python jobs/eval.py --set dialog.llm=smollm2 --llm-serving shared --limit 200 --out results/smollm2_shared
    python jobs/eval.py --split dev --out results/dev          # the dev split, where defaults are chosen
    python jobs/eval.py --gallery G --out results/scanrefer    # an encoded gallery (jobs/encode_scenes.py --out G)
    python jobs/eval.py --gallery G --scanrefer ScanRefer_filtered_val.json --out results/scanrefer   # other queries
    python jobs/eval.py --scannet-dir ScanNet/scans --scanrefer ScanRefer_filtered_val.json --out results/scanrefer
    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python jobs/eval.py --out /tmp/results/default       # a cluster with token auth (README: Ray)

Every evaluation starts from an encoded gallery directory (stored embeddings, scene tables, memories): --gallery
G, or one built here into OUT/gallery from --scannet-dir, or the embedded default's (built once, cached).
Dialogs run as Ray tasks over shards (a setting x a method x a slice of the queries; a setting is a query set,
a memory and a seed of the simulated user). Each finished shard is stored under OUT/shards/, so a killed job
resubmitted with the same flags continues where it stopped, without losing or repeating a dialog. Writes
OUT/results.json (per setting, method and round: R@1, R@5, R@10, Rsum, Hits@10, BRI, rounds to success, mean
and median rank; paired bootstrap intervals of every comparison the tables draw), OUT/results.md (Tables 1-3
with the paper's numbers, the rank metrics, the paired differences), OUT/recall_vs_round.png,
OUT/transcripts.parquet and OUT/stats.json.

A local model (`--set dialog.llm=smollm2` or a model directory) runs in each Ray task that needs it
(`--llm-serving per-task`, the default). With `--llm-serving shared` (vLLM) it is served once for the whole job
instead: a `ray.serve.llm` OpenAI app on the cluster that every shard's roles call, so the engine batches the
conversations of all shards in flight together (the LLM shards then take `--llm-shard-cpus` each, so several run
at once); on the 2-core machine it was slower than per-task engines (docs/llm.md).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from ideal.checkpoints import DEFAULT_WEIGHTS
from ideal.config import load_config
from ideal.dialog.chat import resolve_engine
from ideal.dialog.methods import ABLATIONS
from ideal.dialog.models import llm_label
from ideal.dialog_eval import (ALL_METHODS, IAT_REQUIRES, PLUG, EvalSpec, ShardStore, check_methods, iat_checkpoints,
                               method_rounds, recall_per_round, shard_plan)
from ideal.report import QUERY_SETS, setting

DEFAULT_METHODS = "static,chatir,merlin,ideal"
LLM_METHODS = "static,ideal,ideal-llm"  # the default when dialog.llm names a model: grounded vs llm roles
TABLE_METHODS = ["static", "bag-of-labels", "chatir", "rewrite", "merlin", "ir", "sum", "ideal"]
ROUNDS = {"fine": 5, "coarse": 3}  # the paper's dialog lengths per memory
LLM_ROUNDS = 5  # the LLM roles' comparison: both memories, 5 rounds each


def override(args, key: str):
    """The value the last `--set key=VALUE` gives, None when no --set names `key`."""
    values = [o.split("=", 1)[1].strip() for o in args.set if o.split("=", 1)[0].strip() == key and "=" in o]
    return values[-1] if values else None


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default=None,
                    help=f"comma-separated, from {', '.join(ALL_METHODS)} (labels = bag-of-labels; default "
                         f"{DEFAULT_METHODS}; with --set dialog.llm=MODEL: {LLM_METHODS})")
    ap.add_argument("--rounds", type=int, default=None,
                    help="dialog rounds after the initial query (default 5 for fine memory, 3 for coarse as in the "
                         f"paper; {LLM_ROUNDS} for both with --set dialog.llm=MODEL)")
    ap.add_argument("--memory", choices=["coarse", "fine", "both"], default=None,
                    help="the simulated user's memory (default dialog.memory, fine; both with --set dialog.llm=MODEL)")
    ap.add_argument("--ablations", action="store_true", help=f"also run {', '.join(ABLATIONS)} (Table 3)")
    ap.add_argument("--tables", action="store_true",
                    help="the paper's Tables 1-3: every method x {scanrefer, nr3d, sr3d} x {coarse, fine}, "
                         "plug-and-play, ablations, seeds for the headline rows")
    ap.add_argument("--seeds", type=int, default=None,
                    help="seeds of the simulated user for the headline (ideal) rows (default 1; 3 with --tables)")
    ap.add_argument("--split", default="val", choices=["val", "dev"], help="synthetic: the split evaluated")
    ap.add_argument("--gallery", help="an encoded gallery directory (jobs/encode_scenes.py --out G)")
    ap.add_argument("--scannet-dir", help="ScanNet scans folder, encoded into OUT/gallery first")
    ap.add_argument("--scanrefer", help="ScanRefer JSON (queries; default with --gallery: the gallery's own)")
    ap.add_argument("--nr3d", help="Nr3D CSV (queries)")
    ap.add_argument("--sr3d", help="Sr3D CSV (queries)")
    ap.add_argument("--label-map", help="scannetv2-labels.combined.tsv for raw label normalisation")
    ap.add_argument("--queries", default=None,
                    help=f"query sets, comma-separated, from {', '.join(QUERY_SETS)} (synthetic: description styles; "
                         "default scanrefer, with --tables all three)")
    ap.add_argument("--limit", type=int, help="evaluate the first N queries")
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="base retriever checkpoint folder")
    ap.add_argument("--iat-weights", default=None,
                    help="IAT-tuned checkpoint for ideal/ir/sum (default: the shipped one; 'none': no IAT)")
    ap.add_argument("--iat-ablation-weights", nargs=2, metavar=("NO_LDIS", "NO_LDIV"), default=None,
                    help="checkpoints tuned without L_dis / without L_div (default: the shipped ones)")
    ap.add_argument("--config", help="YAML config (data.*, dialog.* ...)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--shard-size", type=int, default=100, help="dialogs per Ray task")
    ap.add_argument("--llm-serving", choices=["shared", "per-task"], default="per-task",
                    help="a local dialog.llm on vLLM: one engine served for the job (shared) or one per Ray task")
    ap.add_argument("--llm-shard-cpus", type=float, default=0.25,
                    help="CPUs a shard with llm roles reserves when the engine is shared (it mostly waits for it)")
    ap.add_argument("--llm-threads", type=int, default=os.cpu_count() or 1,
                    help="the shared engine's OpenMP threads (default: this machine's cores)")
    ap.add_argument("--address", default=None, help="Ray address (default: RAY_ADDRESS, else a local Ray)")
    ap.add_argument("--out", default="results/default")
    args = ap.parse_args(argv)
    try:
        args.llm = (override(args, "dialog.llm") or "none").lower() not in ("none", "null")
        names = args.methods or (LLM_METHODS if args.llm else DEFAULT_METHODS)
        methods = check_methods([m.strip() for m in names.split(",") if m.strip()])
    except ValueError as e:
        ap.error(str(e))
    if args.rounds is not None and args.rounds < 0:
        ap.error("--rounds must be >= 0")
    if args.scannet_dir and not (args.scanrefer or args.nr3d or args.sr3d):
        ap.error("--scannet-dir needs description files: --scanrefer, --nr3d and/or --sr3d")
    if args.scannet_dir and args.gallery:
        ap.error("give --gallery or --scannet-dir, not both")
    if args.label_map and not args.scannet_dir:
        ap.error("--label-map goes with --scannet-dir")
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be >= 1")
    if args.shard_size < 1:
        ap.error("--shard-size must be >= 1")
    if not 0 < args.llm_shard_cpus <= 64 or args.llm_threads < 1:
        ap.error("--llm-shard-cpus must be in (0, 64] and --llm-threads >= 1")
    if args.seeds is not None and args.seeds < 1:
        ap.error("--seeds must be >= 1")
    bad = [q for q in (args.queries or "").split(",") if q.strip() and q.strip() not in QUERY_SETS]
    if bad:
        ap.error(f"--queries: unknown query sets {bad}; choose from {', '.join(QUERY_SETS)}")
    return args, methods


def dialog_rounds(args, memory: str) -> int:
    """Rounds after the initial query: --rounds, else the LLM comparison's 5, else the paper's for the memory."""
    if args.rounds is not None:
        return args.rounds
    return LLM_ROUNDS if getattr(args, "llm", False) else ROUNDS[memory]


def settings(args, cfg, methods: list[str], ablations: list[str]) -> list[tuple[str, str, int, list[str]]]:
    """(query set, memory, seed, methods) to run: the flags' one setting, or the whole of Tables 1-3."""
    if args.scannet_dir or (args.gallery and any(getattr(args, q) for q in QUERY_SETS)):
        sets = [q for q in QUERY_SETS if getattr(args, q)]
    elif args.queries:
        sets = [q.strip() for q in args.queries.split(",") if q.strip()]
    else:
        sets = list(QUERY_SETS) if args.tables else ["scanrefer"]
    if not args.tables:
        chosen = args.memory or ("both" if getattr(args, "llm", False) and override(args, "dialog.memory") is None
                                 else cfg.dialog.memory)
        seeds, head = range(args.seeds or 1), [m for m in methods if m == "ideal"]
        out = []
        for memory in (("fine", "coarse") if chosen == "both" else (chosen,)):
            out += [(q, memory, cfg.dialog.seed, methods + [a for a in ablations if a not in methods]) for q in sets]
            out += [(q, memory, cfg.dialog.seed + s, head) for q in sets for s in seeds if s and head]
        return out
    seeds = range(args.seeds or 3)
    out = []
    for memory in ("coarse", "fine"):
        for q in sets:
            # Tables 2 and 3 and the headline seeds are on ScanRefer-style queries, as in the paper
            main = q == ("scanrefer" if "scanrefer" in sets else sets[0])
            extra = ["static (pooled)"] + list(PLUG) if main else []
            extra += ablations if (main and memory == "fine") else []
            out.append((q, memory, cfg.dialog.seed, TABLE_METHODS + extra))
            out += [(q, memory, cfg.dialog.seed + s, ["ideal"]) for s in seeds if s and main]
    return out


def uses_llm(method: str, cfg) -> bool:
    """Whether a method's dialogs call dialog.llm (any role on the model)."""
    from ideal.dialog.methods import method_config

    try:
        c = method_config(method, cfg.dialog)
    except ValueError:  # static methods and plug-and-play rows: grounded
        return False
    return "llm" in (c.questioner, c.answerer, c.summariser)


def shared_llm(args, cfg, methods: list[str]):
    """{"url", "model", "timeout"} of the job's shared engine, started here (`deployments.llm.serve_openai`) when
    some shard to run has llm roles, dialog.llm is a local model on vLLM and --llm-serving is shared; else None."""
    from ideal.dialog.models import resolve_llm

    if args.llm_serving != "shared" or not cfg.dialog.llm or not any(uses_llm(m, cfg) for m in methods):
        return None
    path = resolve_llm(cfg.dialog.llm)
    if not Path(path).is_dir() or cfg.dialog.llm_engine != "vllm":
        if Path(path).is_dir():
            print("note: the shared engine needs vLLM (pip install -e '.[llm]'): each task loads its own model",
                  flush=True)
        return None
    from deployments.llm import serve_openai

    print(f"serving {cfg.dialog.llm} ({cfg.dialog.llm_dtype}, {args.llm_threads} threads) for every shard",
          flush=True)
    url, model = serve_openai(path, dtype=cfg.dialog.llm_dtype, threads=args.llm_threads)
    # a reply waits behind every conversation in flight (all shards' rounds): generous, so no role falls back
    return {"url": url, "model": model, "timeout": 1800.0}


def main(argv=None) -> None:
    args, methods = parse(argv)
    try:
        cfg = load_config(args.config, args.set)
    except (ValueError, OSError) as e:
        sys.exit(f"eval.py: {e}")
    try:
        if cfg.dialog.llm:  # the engine of a local model, settled here: shards are keyed by it, results name it
            cfg.dialog.llm_engine = resolve_engine(cfg.dialog.llm_engine)
        iat = iat_checkpoints(args.iat_weights, args.iat_ablation_weights)
    except ValueError as e:
        sys.exit(f"eval.py: {e}")
    ablations = list(ABLATIONS) if (args.ablations or args.tables) else []
    missing = [a for a in ablations if a in IAT_REQUIRES and IAT_REQUIRES[a] not in iat]
    if missing:
        print(f"note: no IAT checkpoints for {', '.join(missing)}: those ablations are left out", flush=True)
        ablations = [a for a in ablations if a not in missing]

    import ray
    from tqdm import tqdm

    from ideal import build
    from ideal.dialog_eval import context, run_shard
    from ideal.report import comparison_pairs, paired_intervals, write_all
    from ideal.retrieval.encode import Source
    from ideal.scenes import dataset_stats, format_stats

    out = Path(args.out)
    query_files = {q: getattr(args, q) for q in QUERY_SETS if getattr(args, q)}
    try:
        if args.gallery:
            gallery = Path(args.gallery)
        elif args.scannet_dir:
            print(f"encoding {args.scannet_dir} into {out / 'gallery'}", flush=True)
            gallery = build.build_gallery(Source(args.scannet_dir, args.label_map, **query_files), out / "gallery",
                                          density_k=cfg.dialog.density_k, index=cfg.index)
            query_files = {}  # the gallery holds exactly these descriptions
        else:
            gallery = build.ensure_gallery(cfg, args.split)
        dataset = str(gallery.resolve())
        jobs, specs, n_queries, stores, stats = [], {}, {}, {}, None
        for q, memory, seed, names in settings(args, cfg, methods, ablations):
            c = dataclasses.replace(cfg, dialog=dataclasses.replace(cfg.dialog, memory=memory, seed=seed))
            rounds = dialog_rounds(args, memory)
            c.dialog.rounds = rounds
            spec = EvalSpec(gallery=dataset, query_files=query_files, sources=(q,), limit=args.limit,
                            weights=str(Path(args.weights).resolve()), iat_weights=iat, config=c.to_dict())
            ctx = context(spec)  # the driver reads the data once too: stats, query count, early errors
            ctx.check(names)
            if stats is None:
                stats = dataset_stats(ctx.ds)
                print(f"\n== gallery and queries: {dataset} ==\n{format_stats(stats)}\n", flush=True)
            key = setting(q, memory, seed)
            specs[key], n_queries[key], stores[key] = spec, len(ctx.descs), ShardStore(out, key, spec)
            for m, a, b in shard_plan(len(ctx.descs), names, args.shard_size):
                jobs.append((key, m, a, b, method_rounds(m, rounds)))
    except ValueError as e:
        sys.exit(f"eval.py: {e}")

    todo = [j for j in jobs if not stores[j[0]].path(*j[1:4]).exists()]
    print(f"{len(jobs)} shards ({len(jobs) - len(todo)} already done) over {len(specs)} settings", flush=True)
    if todo:
        ray.init(address=args.address or os.environ.get("RAY_ADDRESS"), include_dashboard=False,
                 log_to_driver=False)
        task = ray.remote(num_cpus=1, max_retries=2)(run_shard)
        server = shared_llm(args, cfg, [j[1] for j in todo])
        if server:
            specs = {k: dataclasses.replace(s, llm_server=server) for k, s in specs.items()}
        cpus = {m: args.llm_shard_cpus if server and uses_llm(m, cfg) else 1 for m in {j[1] for j in todo}}
        pending = {task.options(num_cpus=cpus[m]).remote(specs[key], m, a, b, r): (key, m, a, b)
                   for key, m, a, b, r in todo}
        with tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="shards", unit="shard") as bar:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                key, m, a, b = pending.pop(done[0])
                stores[key].save(m, a, b, ray.get(done[0]))
                bar.set_postfix_str(f"{key} {m} {a}-{b}")
                bar.update(1)

    results, transcripts, llm, all_ranks = {}, [], {}, {}
    for key in specs:
        for m in dict.fromkeys(j[1] for j in jobs if j[0] == key):
            try:
                ranks, rows = stores[key].collect(m, [(a, b) for k2, mm, a, b, _ in jobs if (k2, mm) == (key, m)],
                                                  n_queries[key])
            except ValueError as e:
                sys.exit(f"eval.py: {e}")
            transcripts += [{**row, "setting": key} for row in rows]
            results.setdefault(key, {})[m] = recall_per_round(ranks)
            all_ranks.setdefault(key, {})[m] = ranks
            if stores[key].llm_counts(m):
                llm.setdefault(key, {})[m] = stores[key].llm_counts(m)
    shown = [m for m in (TABLE_METHODS + ["static (pooled)"] + list(PLUG) if args.tables else methods)]
    meta = {"dataset": dataset, "split": "" if (args.gallery or args.scannet_dir) else args.split, "queries": n_queries, "gallery": stats["scenes"],
            "rounds": {k: specs[k].config["dialog"]["rounds"] for k in specs}, "weights": args.weights,
            "iat_weights": iat.get("iat"), "argv": sys.argv[1:] if argv is None else list(argv)}
    if llm:
        meta.update(llm=llm, llm_model=llm_label(cfg.dialog.llm), llm_engine=cfg.dialog.llm_engine,
                    llm_dtype=cfg.dialog.llm_dtype, llm_serving=args.llm_serving)
    plug = [("object-level + IAT", "static", "ideal"), ("pooled", "static (pooled)", "ideal (pooled)"),
            ("bag-of-labels", "bag-of-labels", "ideal (bag-of-labels)")]
    shown = [m for m in shown if m not in ablations]
    intervals = paired_intervals(all_ranks, comparison_pairs(shown, ablations, plug))
    paths = write_all(out, results, meta, shown, ablations, transcripts, plug, intervals)
    (out / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    print("\n" + (out / "results.md").read_text())
    print("wrote " + ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
