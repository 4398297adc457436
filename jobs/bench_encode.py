"""Benchmark: TextEncoder.encode vs the bare AutoModel forward on the same texts, measured in one run.

    python jobs/bench_encode.py --n 2000 --batch-size 64

Both use the same tokenizer, batch size, max_length, inference mode and mean pooling; the bare loop takes
the texts in the order given, ours sorts them by length into batches and applies the projection head.
Prints texts/s for each (best of --repeats, the two interleaved) and the ratio; the target is >= 0.8x.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

from ideal.encoders.text import TextEncoder, resolve_model_dir

WORDS = ("the a an chair table desk brown wooden black white grey blue red green next to near window door bed "
         "lamp is it in on of at by under above below behind front left right corner wall room small large tall "
         "between closest farthest painting couch sofa kitchen office bathroom toilet sink cabinet shelf there "
         "this that with two three pillows monitor computer keyboard trash can rug carpet curtain").split()


def make_texts(n: int, seed: int) -> list[str]:
    """n seeded pseudo-descriptions of 5-60 words (ScanRefer descriptions span about that range)."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(5, 61)))).capitalize() + "." for _ in range(n)]


def bare_encode(tokenizer, model, texts: list[str], batch_size: int, max_length: int) -> np.ndarray:
    """What a user writes by hand from the model card: unsorted batches, forward, masked mean, normalise."""
    out = []
    with torch.inference_mode():
        for s in range(0, len(texts), batch_size):
            tok = tokenizer(texts[s:s + batch_size], padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
            h = model(**tok).last_hidden_state
            m = tok["attention_mask"].unsqueeze(-1).to(h.dtype)
            out.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1).numpy())
    return np.concatenate(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="number of texts")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per method, interleaved; best is kept")
    ap.add_argument("--model-dir", default=None, help="a local HF model directory (default: bundled MiniLM)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    enc = TextEncoder(args.model_dir, max_length=args.max_length)
    path, _ = resolve_model_dir(args.model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
    texts = make_texts(args.n, args.seed)

    methods = {
        "bare AutoModel": lambda data: bare_encode(tokenizer, model, data, args.batch_size, args.max_length),
        "TextEncoder.encode": lambda data: enc.encode(data, batch_size=args.batch_size),
    }
    outputs = {name: fn(texts[:4 * args.batch_size]) for name, fn in methods.items()}  # warm up both
    cos = (outputs["bare AutoModel"] * outputs["TextEncoder.encode"]).sum(1).min()
    best = {name: 0.0 for name in methods}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            t = time.perf_counter()
            fn(texts)
            best[name] = max(best[name], len(texts) / (time.perf_counter() - t))

    words = [len(t.split()) for t in texts]
    print(f"{args.n} texts of {min(words)}-{max(words)} words (mean {np.mean(words):.1f}), batch {args.batch_size}, "
          f"max_length {args.max_length}, torch threads {torch.get_num_threads()}, best of {args.repeats}")
    for name, rate in best.items():
        print(f"  {name:<20} {rate:8.1f} texts/s")
    ratio = best["TextEncoder.encode"] / best["bare AutoModel"]
    print(f"  ratio ours / bare: {ratio:.2f}x (target >= 0.8x: {'PASS' if ratio >= 0.8 else 'FAIL'}); "
          f"min cosine between the two on the warm-up texts: {cos:.6f}")


if __name__ == "__main__":
    main()
