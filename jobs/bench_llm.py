"""Benchmark: dialog rounds with every role on the model, batched (transformers; vLLM) vs one conversation at a time.

    python jobs/bench_llm.py                     # SmolLM2 (dialog.llm=smollm2), 32 dialogs, rounds 0 and 1
    python jobs/bench_llm.py --dialogs 100 --threads 2 --arms one,vllm --llm /path/to/model_dir

Each arm runs the same dialogs of the `ideal-llm` method through the dialog loop (`run_round`) for rounds 0 to
`--rounds`: the questioner writes each round's question (the routed type, the query, the top-5 candidates' 3D-data
summaries), the simulated user answers from its memory, and the CoT reconstruction takes two calls (list the
objects, then describe them), all on the model, built as the eval job builds them. The dialogs are the first
`--dialogs` ScanRefer-style val descriptions of the default synthetic benchmark (the eval job sends a round of its
shard, 100 dialogs by default, as one batch). Arms:
- "one at a time" is the authors' loop: each conversation through transformers' `generate` on its own;
- "batched" is `dialog.llm_engine=transformers`: a role's conversations of a round together, length-sorted,
  left-padded, in batches of `--batch-size`;
- "vllm" is `dialog.llm_engine=vllm`: a role's conversations of a round in one call to vLLM's offline engine,
  which batches continuously and caches shared prompt prefixes (needs `pip install -e ".[llm]"`).
Same model directory and `--dtype` in every arm, greedy decoding, all arms in this one run, each after a warm-up
on two other dialogs. Only the model calls are timed (retrieval is the same in every arm). Prints per role and in
total: seconds, tokens/s, dialogs/s, the ratio to the authors' loop (target >= 8x) and how many replies are identical
to its; writes them to `--out` (JSON). docs/llm.md explains the figures.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

ROLES = ("questioner", "answerer", "summariser")


class _Timed:
    """A chat client whose `complete` calls are timed and recorded under a role name."""

    def __init__(self, client, role: str, log: list):
        self.client, self.role, self.log = client, role, log

    def complete(self, conversations, constraints=None):
        t = time.perf_counter()
        replies = self.client.complete(conversations, constraints)
        self.log.append({"role": self.role, "seconds": time.perf_counter() - t, "replies": list(replies)})
        return replies


def setup(n: int, gallery_dir=None):
    """(the `ideal-llm` dialog config, the gallery, the memories, the sentence embedder, the first n + 2
    ScanRefer-style descriptions: two for the warm-up, then the n timed) of an encoded gallery directory (default:
    the embedded default's val split)."""
    from ideal import build, checkpoints
    from ideal.config import load_config
    from ideal.dialog.methods import method_config
    from ideal.dialog_eval import EvalSpec, context

    cfg = load_config(None, [])
    spec = EvalSpec(gallery=str(gallery_dir or build.ensure_gallery(cfg, "val")), limit=n + 2, config=cfg.to_dict(),
                    iat_weights={"iat": str(checkpoints.SHIPPED["iat"])})
    ctx = context(spec)
    if len(ctx.descs) < n + 2:
        raise SystemExit(f"bench_llm.py: {spec.gallery} has {len(ctx.descs)} ScanRefer-style descriptions; "
                         f"--dialogs {n} needs {n + 2} (two for the warm-up)")
    _, gallery, _, _, _ = ctx.parts("ideal")
    return method_config("ideal-llm", ctx.cfg.dialog), gallery, ctx.ds.memories, ctx.embed, ctx.descs


def run_dialogs(client, descs, setup_parts, rounds: int) -> tuple[list, dict]:
    """Rounds 0..`rounds` of `descs` with the three roles on `client` (the eval job's reply caps per role):
    (the timed calls in order, each role's stats: conversations sent, parsed, fallbacks)."""
    from ideal.dialog.build import REPLY_TOKENS, build_answerer, build_questioner, build_summariser
    from ideal.dialog.round import run_round, start

    cfg, gallery, memories, embed, _ = setup_parts
    log: list = []
    role = lambda name: _Timed(client.limited(REPLY_TOKENS[name]), name, log)  # noqa: E731
    questioner = build_questioner(cfg, gallery, client=role("questioner"))
    summariser = build_summariser(cfg, gallery, client=role("summariser"))
    user = build_answerer(cfg, memories, client=role("answerer"), embed=embed)
    states = start([d.text for d in descs], [d.scene_id for d in descs], [d.desc_id for d in descs])
    for r in range(rounds + 1):
        states = run_round(states, gallery, questioner, user, cfg, summariser)
    return log, {"questioner": questioner.stats, "answerer": user.writer.stats, "summariser": summariser.stats}


def timed_arm(client, setup_parts, rounds: int) -> dict:
    """One arm: a warm-up on the first two dialogs (weights paged in, kernels chosen), then the timed dialogs."""
    descs = setup_parts[4]
    run_dialogs(client, descs[:2], setup_parts, rounds)
    log, stats = run_dialogs(client, descs[2:], setup_parts, rounds)
    n = len(descs) - 2
    # every arm's tokens counted alike: the replies re-tokenized with the model's tokenizer
    def count(replies):
        return sum(len(client.tokenizer(r, add_special_tokens=False)["input_ids"]) for r in replies)

    out = {}
    for name in ROLES + ("total",):
        calls = [c for c in log if name in (c["role"], "total")]
        seconds, tokens = sum(c["seconds"] for c in calls), sum(count(c["replies"]) for c in calls)
        out[name] = {"seconds": round(seconds, 2), "conversations": sum(len(c["replies"]) for c in calls),
                     "tokens": tokens, "tokens_per_s": round(tokens / seconds, 2) if seconds else 0.0,
                     "dialogs_per_s": round(n / seconds, 3) if seconds else 0.0}
        if name in stats:
            out[name]["fallbacks"] = stats[name]["fallbacks"]
    out["replies"] = [r for c in log for r in c["replies"]]
    return out


def vllm_client(model_dir: str, threads: int, dtype: str):
    """vLLM's offline engine (`dialog.llm_engine=vllm`); its model worker gets `threads` OpenMP threads (unbound),
    as the transformers arms get torch threads. (client, engine start seconds)"""
    import os

    from ideal.dialog.vllm_client import VLLMChatClient

    os.environ["OMP_NUM_THREADS"] = str(threads)  # vLLM's worker inherits it (VLLMChatClient then does not bind)
    t = time.perf_counter()
    client = VLLMChatClient(model_dir, dtype=dtype)
    return client, time.perf_counter() - t


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--llm", default="smollm2", help="a named model or a local model directory")
    ap.add_argument("--dialogs", type=int, default=32)
    ap.add_argument("--gallery", help="an encoded gallery directory (default: the embedded default's val split)")
    ap.add_argument("--rounds", type=int, default=1, help="dialog rounds after the initial query (round 0)")
    ap.add_argument("--batch-size", type=int, default=32, help="conversations per `generate` (batched arm)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of the transformers arms and OpenMP threads of vLLM's worker "
                         "(1: what an eval task gets per CPU)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                    help="every arm's weights and activations (dialog.llm_dtype)")
    ap.add_argument("--arms", default="one,batched,vllm",
                    help="comma-separated from one (the authors' loop), batched (transformers, padded batches), "
                         "vllm (vLLM, continuous batching; needs `.[llm]`)")
    ap.add_argument("--out", default="results/bench_llm.json")
    args = ap.parse_args(argv)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if not arms or set(arms) - {"one", "batched", "vllm"}:
        ap.error(f"--arms: choose from one, batched, vllm; got {args.arms!r}")
    if args.dialogs < 1 or args.rounds < 0 or args.batch_size < 1 or args.threads < 1:
        ap.error("--dialogs, --batch-size and --threads must be >= 1, --rounds >= 0")

    import torch

    from ideal.dialog.chat import LocalChatClient
    from ideal.dialog.models import resolve_llm

    torch.set_num_threads(args.threads)
    parts = setup(args.dialogs, args.gallery)
    n = len(parts[4]) - 2
    model_dir = resolve_llm(args.llm)
    report = {"model": args.llm, "dialogs": n, "rounds": args.rounds, "threads": args.threads, "dtype": args.dtype,
              "batch_size": args.batch_size}
    if {"one", "batched"} & set(arms):
        local = LocalChatClient(model_dir, dtype=args.dtype)
        for arm, size in (("one_at_a_time", 1), ("batched", args.batch_size)):
            if arm.split("_")[0] in arms:
                client = copy.copy(local)
                client.batch_size = size
                report[arm] = timed_arm(client, parts, args.rounds)
    if "vllm" in arms:
        client, start_s = vllm_client(model_dir, args.threads, args.dtype)
        try:
            report["vllm"] = {**timed_arm(client, parts, args.rounds), "engine_start_s": round(start_s, 1)}
        finally:
            client.close()
    names = [a for a in ("one_at_a_time", "batched", "vllm") if a in report]
    replies = {a: report[a].pop("replies") for a in names}
    print(f"{n} dialogs, rounds 0-{args.rounds}, every role on {args.llm} ({args.dtype}), {args.threads} thread(s); "
          "model calls only")
    for a in names:
        r = report[a]
        extra = f"  (engine start {r['engine_start_s']} s, not counted)" if "engine_start_s" in r else ""
        print(f"  {a:14s} " + "  ".join(f"{k} {r[k]['seconds']:.1f} s" for k in ROLES)
              + f"  | total {r['total']['seconds']:.1f} s, {r['total']['tokens_per_s']:.1f} tokens/s, "
              f"{r['total']['dialogs_per_s']:.3f} dialogs/s{extra}")
    if "one_at_a_time" in report:
        one = report["one_at_a_time"]
        for a in names[1:]:
            ratio = {k: round(one[k]["seconds"] / report[a][k]["seconds"], 2) for k in ROLES + ("total",)
                     if report[a][k]["seconds"]}
            same = sum(x == y for x, y in zip(replies["one_at_a_time"], replies[a]))
            report[f"ratio_{a}"] = {**ratio, "same_reply": same, "replies": len(replies[a])}
            print(f"  {a} / one at a time: total {ratio['total']}x dialogs/s (target >= 8x); "
                  + ", ".join(f"{k} {ratio[k]}x" for k in ROLES if k in ratio)
                  + f"; {same}/{len(replies[a])} replies identical")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
