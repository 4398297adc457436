"""Benchmark: TextEncoder.encode vs the bare AutoModel forward on the same texts, measured in one run.

    python jobs/bench_encode.py --n 2000 --batch-size 64

Both use the same tokenizer, batch size, inference mode and mean pooling; ours also sorts texts by length
into batches and applies the projection head. Prints texts/s for each and the ratio (target ≥ 0.8x).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ideal.encoders.text import TextEncoder

WORDS = ("the a chair table desk brown wooden black white next to near window door bed lamp is it in on of "
         "corner wall room small large between closest farthest painting couch kitchen office there this").split()


def texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(5, 61)))) + "." for _ in range(n)]


def bare(enc: TextEncoder, data: list[str], batch_size: int) -> None:
    with torch.inference_mode():
        for s in range(0, len(data), batch_size):
            tok = enc.tokenizer(data[s:s + batch_size], padding=True, truncation=True, max_length=enc.max_length,
                                return_tensors="pt")
            h = enc.backbone(**tok).last_hidden_state
            m = tok["attention_mask"].unsqueeze(-1).float()
            torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    enc = TextEncoder()
    data = texts(args.n, args.seed)
    enc.encode(data[:128], batch_size=args.batch_size)  # warm up both paths
    bare(enc, data[:128], args.batch_size)
    results = {}
    for name, fn in (("bare AutoModel", lambda: bare(enc, data, args.batch_size)),
                     ("TextEncoder.encode", lambda: enc.encode(data, batch_size=args.batch_size))):
        t = time.perf_counter()
        fn()
        results[name] = len(data) / (time.perf_counter() - t)
        print(f"{name:<20} {results[name]:8.1f} texts/s", flush=True)
    print(f"ratio ours / bare: {results['TextEncoder.encode'] / results['bare AutoModel']:.2f}x "
          f"({args.n} texts of 5-60 words, batch {args.batch_size}, torch threads {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
