"""Benchmark: the simulated-user dialog loop, batched vs one dialog at a time, and peak memory for 10k dialogs.

    python jobs/bench_eval.py
    python jobs/bench_eval.py --dialogs 20 --rounds 2 --rss-dialogs 300      # a quick try

Everything is the `ideal` method as `jobs/eval.py` runs it (see `ideal.dialog_eval.run_shard`): the default
config, the shipped weights (TrainedRetriever), the grounded questioner, simulated answerer and summariser,
the val split of the default synthetic benchmark, ScanRefer-style queries; `--rounds` rounds after the
initial query, so rounds + 1 `run_round` calls per dialog. Torch runs on `--threads` threads, 1 by default
as in a shard (a Ray task with num_cpus=1 gets OMP_NUM_THREADS=1); with more threads than free cores (other
jobs running), small batches slow down far more than large ones, which skews the ratio.

1. Batched vs one at a time, on the first `--dialogs` queries: (a) every round of all dialogs in one
   `run_round` call; (b) each dialog alone through all its rounds (`run_round([state], ...)`), on the first
   `--single-dialogs` of them (default: all; a subset keeps the slow mode short, and the comparison is then
   per-dialog throughput). Each mode gets freshly built components (retriever, Gallery, questioner, user,
   summariser) so no cache warmed by one mode serves the other; the text encoder is shared (it holds no
   cache) and warmed up before either is timed. Prints dialogs/s for each, by wall time and by this
   process's CPU time (a check on how much other jobs on the machine took), the ratio (target >= 10x), what
   each mode asked of the text encoder (texts, tokens, share of the time: nearly all of it), and whether
   both modes end with the same target ranks (they should, up to float ties).
2. Peak RSS for `--rss-dialogs` dialogs (default 10k: the val queries cycled, with distinct dialog ids), run
   as a shard would, `dialog.batch_size` dialogs at a time keeping only the per-round target ranks. It runs
   in a fresh subprocess of this script (`--rss-only`) so part 1 does not inflate the figure; target <= 4 GiB.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

from ideal import build
from ideal.checkpoints import DEFAULT_WEIGHTS
from ideal.config import load_config
from ideal.dialog.methods import method_config
from ideal.dialog.round import run_round, start
from ideal.dialog_eval import queries
from ideal.metrics import recall_from_ranks, target_ranks

RSS_MARK = "RSS_RESULT "  # the line the --rss-only child prints for its parent


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB on Linux


def load_data(cfg):
    """The default synthetic benchmark's val gallery (encoded once, cached)."""
    return build.open_gallery(build.ensure_gallery(cfg))


def fresh_parts(cfg, g, text, weights):
    """Fresh components for one mode, built as run_shard builds them: (gallery, questioner, user, summariser)."""
    gallery = build.gallery(g, weights, text)
    roles = build.roles(cfg, gallery, g.memories(), text=text)
    return gallery, roles.questioner, roles.answerer, roles.summariser


def run_dialogs(descs, dialog_ids, parts, cfg, rounds: int, progress: str = "") -> np.ndarray:
    """All rounds of these dialogs as one batch; (n, rounds + 1) 0-based target ranks."""
    gallery, questioner, user, summariser = parts
    targets = [gallery.index_of[d.scene_id] for d in descs]
    states = start([d.text for d in descs], [d.scene_id for d in descs], dialog_ids)
    ranks = np.zeros((len(descs), rounds + 1), np.int64)
    for r in tqdm(range(rounds + 1), desc=progress, unit="round", disable=not progress):
        states = run_round(states, gallery, questioner, user, cfg, summariser, ask=r < rounds)
        ranks[:, r] = target_ranks(np.stack([st.scores for st in states]), targets)
    return ranks


class EncoderMeter:
    """Stands in for the shared text encoder's `embed_backbone` (which the retriever and the answerer both
    call): counts the texts each mode encodes and the time that takes, since that is where a round's time goes."""

    def __init__(self, text):
        self.text, self.embed = text, text.embed_backbone
        text.embed_backbone = self
        self.reset()

    def reset(self):
        self.texts, self.calls, self.seconds = [], 0, 0.0

    def __call__(self, texts, *args, **kwargs):
        t = time.perf_counter()
        out = self.embed(texts, *args, **kwargs)
        self.seconds += time.perf_counter() - t
        self.calls += 1
        self.texts.extend(texts)
        return out

    def summary(self) -> dict:
        ids = self.text.tokenizer(self.texts, truncation=True, max_length=self.text.max_length)["input_ids"]
        return {"calls": self.calls, "texts": len(self.texts), "tokens": sum(map(len, ids)), "seconds": self.seconds}


def timed(fn):
    """fn(), its wall seconds and this process's CPU seconds (all threads; torch's spinning threads count too)."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def rss_only(args, full, cfg) -> dict:
    """Part 2, in its own process: N dialogs in shard-sized batches, only the ranks kept."""
    t0 = time.perf_counter()
    g = load_data(full)
    descs = queries(g.descriptions(), ("scanrefer",))
    text = build.text_encoder(full.text_encoder)
    parts = fresh_parts(cfg, g, text, args.weights)
    setup_s, setup_gib = time.perf_counter() - t0, peak_rss_gib()
    n, bs = args.rss_dialogs, cfg.batch_size
    picked = [descs[i % len(descs)] for i in range(n)]
    ids = [f"{d.desc_id}#{i // len(descs)}" for i, d in enumerate(picked)]  # cycled queries, distinct ids
    ranks = np.zeros((n, args.rounds + 1), np.int64)
    t = time.perf_counter()
    for s in tqdm(range(0, n, bs), desc=f"{n} dialogs (rss)", unit="batch"):
        ranks[s:s + bs] = run_dialogs(picked[s:s + bs], ids[s:s + bs], parts, cfg, args.rounds)
    wall = time.perf_counter() - t
    out = {"dialogs": n, "distinct_queries": min(n, len(descs)), "batch_size": bs, "rounds": args.rounds,
           "setup_s": setup_s, "setup_peak_gib": setup_gib, "wall_s": wall, "peak_gib": peak_rss_gib(),
           "final_rsum": recall_from_ranks(ranks[:, -1])["Rsum"]}
    print(f"{n} dialogs x {args.rounds} rounds in batches of {bs}: {wall:.1f} s ({n / wall:.1f} dialogs/s), "
          f"peak RSS {out['peak_gib']:.2f} GiB (after setup {setup_gib:.2f} GiB)")
    print(RSS_MARK + json.dumps(out), flush=True)
    return out


def rss_subprocess(args) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--rss-only", "--rss-dialogs", str(args.rss_dialogs),
           "--rounds", str(args.rounds), "--threads", str(args.threads), "--weights", args.weights]
    if args.config:
        cmd += ["--config", args.config]
    for s in args.set:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)  # stderr (progress bars) passes through
    lines = proc.stdout.splitlines()
    result = [json.loads(line[len(RSS_MARK):]) for line in lines if line.startswith(RSS_MARK)]
    if proc.returncode != 0 or not result:
        sys.exit(f"bench_eval.py: the --rss-only subprocess failed (exit {proc.returncode}):\n{proc.stdout}")
    return result[-1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dialogs", type=int, default=200, help="dialogs for the batched vs one-at-a-time comparison")
    ap.add_argument("--single-dialogs", type=int, default=None,
                    help="time the one-at-a-time loop on the first N of --dialogs only (default: all)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds after the initial query")
    ap.add_argument("--rss-dialogs", type=int, default=10_000, help="dialogs for the peak-RSS run (0: skip it)")
    ap.add_argument("--rss-only", action="store_true", help="only the peak-RSS run, in this process")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: a shard's Ray task has num_cpus=1, so Ray sets OMP_NUM_THREADS=1; "
                         "0: torch's default, all cores)")
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="retriever checkpoint folder")
    ap.add_argument("--config", help="YAML config (data.*, dialog.* ...)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = ap.parse_args(argv)
    if args.dialogs < 1 or args.rounds < 0 or args.rss_dialogs < 0:
        ap.error("--dialogs must be >= 1, --rounds and --rss-dialogs >= 0")
    n_single = min(args.single_dialogs or args.dialogs, args.dialogs)
    if n_single < 1:
        ap.error("--single-dialogs must be >= 1")
    if args.threads < 0:
        ap.error("--threads must be >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    full = load_config(args.config, args.set)
    cfg = method_config("ideal", full.dialog)
    if args.rss_only:
        if args.rss_dialogs < 1:
            ap.error("--rss-only needs --rss-dialogs >= 1")
        rss_only(args, full, cfg)
        return
    t_run = time.perf_counter()
    g = load_data(full)
    descs = queries(g.descriptions(), ("scanrefer",), args.dialogs)
    if len(descs) < args.dialogs:
        print(f"note: the val split has only {len(descs)} queries; comparing on those")
    n_single = min(n_single, len(descs))
    ids = [d.desc_id for d in descs]
    text = build.text_encoder(full.text_encoder)
    text.embed_backbone([d.text for d in descs[:64]])  # warm up torch once, outside both timings
    meter = EncoderMeter(text)

    # (a) batched: every round of all dialogs in one run_round call
    batched = fresh_parts(cfg, g, text, args.weights)
    meter.reset()
    ranks_b, t_b, c_b = timed(lambda: run_dialogs(descs, ids, batched, cfg, args.rounds, "batched"))
    enc_b = meter.summary()
    batched = None  # free it before the other mode
    # (b) one at a time: each dialog alone through all its rounds, on fresh components
    single = fresh_parts(cfg, g, text, args.weights)
    meter.reset()
    ranks_s, t_s, c_s = timed(lambda: np.concatenate([
        run_dialogs([d], [i], single, cfg, args.rounds)
        for d, i in tqdm(list(zip(descs, ids))[:n_single], desc="one at a time", unit="dialog")]))
    enc_s = meter.summary()
    single = None

    n = len(descs)
    rate_b, rate_s = n / t_b, n_single / t_s
    same = ranks_b[:n_single] == ranks_s
    final_same = same[:, -1]
    worst = int(np.abs(ranks_b[:n_single] - ranks_s).max())
    rss = rss_subprocess(args) if args.rss_dialogs else None

    print(f"\n== dialog loop benchmark: method ideal, {args.rounds} rounds (+ the initial query), "
          f"{len(g.ids)} val scenes ==")
    print(f"  machine: {os.cpu_count()} cores, torch threads {torch.get_num_threads()}")
    for name, k, t, c, enc in (("batched", n, t_b, c_b, enc_b), ("one at a time", n_single, t_s, c_s, enc_s)):
        print(f"  {name:<14} {k:5d} dialogs in {t:7.1f} s wall ({k / t:6.2f} dialogs/s), {c:7.1f} s CPU "
              f"({k / c:6.2f} dialogs/CPU-s)" + (f"  [subset: first {k} of {n}]" if k < n else ""))
        print(f"  {'':<14} text encoder: {enc['calls']} calls, {enc['texts']} texts, {enc['tokens']} tokens, "
              f"{enc['seconds']:.1f} s = {100 * enc['seconds'] / t:.0f}% of the wall time "
              f"({enc['tokens'] / max(enc['seconds'], 1e-9):.0f} tokens/s)")
    ratio = rate_b / rate_s
    print(f"  ratio batched / one at a time: {ratio:.1f}x wall, {(n / c_b) / (n_single / c_s):.1f}x CPU "
          f"(target >= 10x: {'PASS' if ratio >= 10 else 'FAIL'})")
    print(f"  same final target rank: {int(final_same.sum())}/{n_single} dialogs; same at every round: "
          f"{int(same.all(axis=1).sum())}/{n_single}; largest rank difference {worst}")
    rb, rs = recall_from_ranks(ranks_b[:n_single, -1]), recall_from_ranks(ranks_s[:, -1])
    print(f"  final-round Rsum on those dialogs: batched {rb['Rsum']:.1f}, one at a time {rs['Rsum']:.1f}")
    if rss:
        print(f"  peak RSS, {rss['dialogs']} dialogs ({rss['distinct_queries']} distinct queries cycled) in batches "
              f"of {rss['batch_size']}: {rss['peak_gib']:.2f} GiB (after setup {rss['setup_peak_gib']:.2f} GiB; "
              f"target <= 4 GiB: {'PASS' if rss['peak_gib'] <= 4 else 'FAIL'}), "
              f"wall {rss['wall_s']:.1f} s ({rss['dialogs'] / rss['wall_s']:.1f} dialogs/s) + setup {rss['setup_s']:.1f} s")
    print(f"  total wall time of this run {time.perf_counter() - t_run:.1f} s")


if __name__ == "__main__":
    main()
