"""Benchmark: a dialog round's LLM generation batched (transformers; vLLM) vs one conversation at a time.

    python jobs/bench_llm.py                     # SmolLM2 (dialog.llm=smollm2), 32 dialogs, the questioner
    python jobs/bench_llm.py --dialogs 16 --llm /path/to/model_dir --threads 2 --arms one,vllm

The prompts are what the eval job's `ideal-llm` questioner sends in round 1 (the routed question type, the query,
the top-5 candidates' 3D-data summaries) for the first `--dialogs` val descriptions of the default synthetic
benchmark. "one at a time" is the authors' loop: each conversation through transformers' `generate` on its own.
"batched" is what the dialog loop does with `dialog.llm_engine=transformers`: the round's conversations together,
length-sorted, left-padded, in batches of `--batch-size`. "vllm" is `dialog.llm_engine=vllm`: all of them in one
call to vLLM's offline engine, which batches continuously (needs `pip install -e ".[llm]"`). Same model directory,
same prompts, greedy decoding, all arms in this one run; prints tokens/s, dialogs/s and their ratio to the
authors' loop, and writes them to `--out` (JSON). The target is >= 8x.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


class _Recorder:
    """The grounded questioner, recording what it is asked (the states, question types and candidates)."""

    def __init__(self, questioner):
        self.questioner, self.name, self.asked = questioner, questioner.name, []

    def ask(self, states, kinds, candidates):
        self.asked.append((states, kinds, candidates))
        return self.questioner.ask(states, kinds, candidates)


def round_one_conversations(n: int) -> list[list[dict]]:
    """The llm questioner's conversations of round 1 for the first n val ScanRefer-style descriptions."""
    from ideal import build, checkpoints
    from ideal.config import load_config
    from ideal.dialog.llm import QUESTION_STARTS, question_messages
    from ideal.dialog.round import run_round, start
    from ideal.dialog_eval import EvalSpec, context

    cfg = load_config(None, [])
    spec = EvalSpec(gallery=str(build.ensure_gallery(cfg, "val")), limit=n, config=cfg.to_dict(),
                    iat_weights={"iat": str(checkpoints.SHIPPED["iat"])})
    ctx = context(spec)
    dcfg, gallery, questioner, summariser, user = ctx.parts("ideal")
    rec = _Recorder(questioner)
    descs = ctx.descs
    states = start([d.text for d in descs], [d.scene_id for d in descs], [d.desc_id for d in descs])
    run_round(states, gallery, rec, user, dcfg, summariser, ask=True)
    (states, kinds, cands), = rec.asked
    return [question_messages(st, kind, c) + [{"role": "assistant", "content": QUESTION_STARTS[kind]}]
            for st, kind, c in zip(states, kinds, cands)]


def timed(client, conversations, batch_size: int) -> dict:
    """One arm: `client.complete` over all conversations (LocalChatClient: `batch_size` per `generate`)."""
    client.batch_size = batch_size
    t = time.perf_counter()
    replies = client.complete(conversations)
    seconds = time.perf_counter() - t
    # every arm's tokens counted alike: the reply re-tokenized with the model's tokenizer
    tokens = sum(len(client.tokenizer(r, add_special_tokens=False)["input_ids"]) for r in replies)
    return {"seconds": round(seconds, 2), "tokens": tokens, "tokens_per_s": round(tokens / seconds, 2),
            "dialogs_per_s": round(len(conversations) / seconds, 3), "replies": replies}


def vllm_arm(model_dir: str, conversations, max_new_tokens: int, threads: int) -> dict:
    """vLLM's offline engine (`dialog.llm_engine=vllm`): every conversation in one call, continuous batching.
    Its model worker gets `threads` OpenMP threads (unbound), as the transformers arms get torch threads."""
    import os

    from ideal.dialog.vllm_client import VLLMChatClient

    os.environ["OMP_NUM_THREADS"] = str(threads)  # vLLM's worker inherits it (VLLMChatClient then does not bind)
    t = time.perf_counter()
    client = VLLMChatClient(model_dir, max_new_tokens=max_new_tokens)
    start_s = time.perf_counter() - t
    try:
        client.complete(conversations[:2])  # warm-up, as for the transformers arms
        out = timed(client, conversations, len(conversations))
    finally:
        client.close()
    return {**out, "engine_start_s": round(start_s, 1)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--llm", default="smollm2", help="a named model or a local model directory")
    ap.add_argument("--dialogs", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of the transformers arms and OpenMP threads of vLLM's worker "
                         "(1: what an eval task gets per CPU)")
    ap.add_argument("--arms", default="one,batched,vllm",
                    help="comma-separated from one (the authors' loop), batched (transformers, padded batches), "
                         "vllm (vLLM, continuous batching; needs `.[llm]`)")
    ap.add_argument("--out", default="results/bench_llm.json")
    args = ap.parse_args(argv)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if not arms or set(arms) - {"one", "batched", "vllm"}:
        ap.error(f"--arms: choose from one, batched, vllm; got {args.arms!r}")

    import torch

    from ideal.dialog.chat import LocalChatClient
    from ideal.dialog.llm import parse_question
    from ideal.dialog.models import resolve_llm

    torch.set_num_threads(args.threads)
    convs = round_one_conversations(args.dialogs)
    model_dir = resolve_llm(args.llm)
    report = {"model": args.llm, "dialogs": len(convs), "threads": args.threads, "batch_size": args.batch_size,
              "max_new_tokens": args.max_new_tokens}
    replies = {}
    if {"one", "batched"} & set(arms):
        client = LocalChatClient(model_dir, max_new_tokens=args.max_new_tokens)
        timed(client, convs[:2], 2)  # warm-up: weights paged in, kernels chosen
        if "one" in arms:
            report["one_at_a_time"] = timed(client, convs, 1)
        if "batched" in arms:
            report["batched"] = timed(client, convs, args.batch_size)
    if "vllm" in arms:
        report["vllm"] = vllm_arm(model_dir, convs, args.max_new_tokens, args.threads)
    names = [n for n in ("one_at_a_time", "batched", "vllm") if n in report]
    for n in names:
        replies[n] = report[n].pop("replies")
        report[n]["parsed_questions"] = sum(parse_question(c[-1]["content"] + r) is not None
                                            for c, r in zip(convs, replies[n]))
    print(f"{len(convs)} round-1 questioner prompts, {args.llm}, {args.threads} thread(s), "
          f"{args.max_new_tokens} new tokens at most")
    for n in names:
        r = report[n]
        extra = f"  (engine start {r['engine_start_s']} s, not counted)" if "engine_start_s" in r else ""
        print(f"  {n:14s} {r['seconds']:7.1f} s  {r['tokens_per_s']:7.1f} tokens/s  {r['dialogs_per_s']:6.2f} dialogs/s"
              f"  {r['parsed_questions']}/{len(convs)} questions{extra}")
    if "one_at_a_time" in report:
        one = report["one_at_a_time"]
        for n in names[1:]:
            report[f"ratio_{n}"] = {"tokens_per_s": round(report[n]["tokens_per_s"] / one["tokens_per_s"], 2),
                                    "dialogs_per_s": round(report[n]["dialogs_per_s"] / one["dialogs_per_s"], 2),
                                    "same_reply": sum(a == b for a, b in zip(replies["one_at_a_time"], replies[n]))}
            r = report[f"ratio_{n}"]
            print(f"  {n} / one at a time: {r['tokens_per_s']}x tokens/s, {r['dialogs_per_s']}x dialogs/s "
                  f"(target >= 8x); {r['same_reply']}/{len(convs)} replies identical")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
