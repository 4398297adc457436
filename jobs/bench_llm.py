"""Benchmark: a dialog round's LLM generation batched vs one conversation at a time.

    python jobs/bench_llm.py                     # SmolLM2 (dialog.llm=smollm2), 32 dialogs, the questioner
    python jobs/bench_llm.py --dialogs 16 --llm /path/to/model_dir --threads 2

The prompts are what the eval job's `ideal-llm` questioner sends in round 1 (the routed question type, the query,
the top-5 candidates' 3D-data summaries) for the first `--dialogs` val descriptions of the default synthetic
benchmark. "one at a time" is the authors' loop: each conversation through `generate` on its own. "batched" is
what the dialog loop does: the round's conversations together, length-sorted, left-padded, in batches of
`--batch-size`. Same model, same prompts, greedy decoding, both in this one run; prints tokens/s, dialogs/s and
their ratio, and writes them to `--out` (JSON). The target is >= 8x.
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
    client.batch_size = batch_size
    t = time.perf_counter()
    replies = client.complete(conversations)
    seconds = time.perf_counter() - t
    tokens = sum(len(client.tokenizer(r, add_special_tokens=False)["input_ids"]) for r in replies)
    return {"seconds": round(seconds, 2), "tokens": tokens, "tokens_per_s": round(tokens / seconds, 2),
            "dialogs_per_s": round(len(conversations) / seconds, 3), "replies": replies}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--llm", default="smollm2", help="a named model or a local model directory")
    ap.add_argument("--dialogs", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: what an eval task gets per CPU)")
    ap.add_argument("--out", default="results/bench_llm.json")
    args = ap.parse_args(argv)

    import torch

    from ideal.dialog.chat import LocalChatClient
    from ideal.dialog.llm import parse_question
    from ideal.dialog.models import resolve_llm

    torch.set_num_threads(args.threads)
    convs = round_one_conversations(args.dialogs)
    client = LocalChatClient(resolve_llm(args.llm), max_new_tokens=args.max_new_tokens)
    timed(client, convs[:2], 2)  # warm-up: weights paged in, kernels chosen
    one = timed(client, convs, 1)
    batched = timed(client, convs, args.batch_size)
    same = sum(a == b for a, b in zip(one.pop("replies"), batched["replies"]))
    asked = sum(parse_question(c[-1]["content"] + r) is not None for c, r in zip(convs, batched.pop("replies")))
    report = {"model": args.llm, "dialogs": len(convs), "threads": args.threads, "batch_size": args.batch_size,
              "max_new_tokens": args.max_new_tokens, "one_at_a_time": one, "batched": batched,
              "ratio_tokens_per_s": round(batched["tokens_per_s"] / one["tokens_per_s"], 2),
              "ratio_dialogs_per_s": round(batched["dialogs_per_s"] / one["dialogs_per_s"], 2),
              "same_reply": same, "parsed_questions": asked}
    print(f"{len(convs)} round-1 questioner prompts, {args.llm}, {args.threads} torch thread(s)")
    for name in ("one_at_a_time", "batched"):
        r = report[name]
        print(f"  {name:14s} {r['seconds']:7.1f} s  {r['tokens_per_s']:7.1f} tokens/s  {r['dialogs_per_s']:6.2f} dialogs/s")
    print(f"  ratio: {report['ratio_tokens_per_s']}x tokens/s, {report['ratio_dialogs_per_s']}x dialogs/s (target >= 8x); "
          f"{same}/{len(convs)} replies identical; {asked}/{len(convs)} parse as questions")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
