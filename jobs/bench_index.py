"""Benchmark: approximate (IVF / HNSW) vs exact (flat) scene search, measured in one run.

    python jobs/bench_index.py                       # 1,000,000 x 384 random unit vectors, 1,000 queries
    python jobs/bench_index.py --n 200000 --kind both

Prints, per setting: recall@10 against flat, ms/query, speed-up over flat, build time and index memory;
then the fastest setting that reaches the target recall. Random unit vectors have no cluster structure,
the hardest case for IVF; `--queries-near` also reports queries drawn near database vectors, closer to how
text queries sit near their scenes.
"""
from __future__ import annotations

import argparse
import resource
import time

import faiss
import numpy as np

from ideal.retrieval.index import SceneIndex


def unit_vectors(rng, n, d, chunk=100_000):
    out = np.empty((n, d), np.float32)
    for s in range(0, n, chunk):
        x = rng.standard_normal((min(chunk, n - s), d), dtype=np.float32)
        out[s:s + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def timed_search(index: SceneIndex, q, k=10):
    t = time.perf_counter()
    ids, _ = index.search(q, k)
    return ids, (time.perf_counter() - t) * 1000 / len(q)


def recall(ids, truth) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(ids, truth)]))


def index_bytes(index: SceneIndex) -> int:
    return int(faiss.serialize_index(index.index).nbytes)


def sweep(name, index, settings, apply, queries, truth, flat_ms, build_s, target, rows):
    size = index_bytes(index) / 1024**3
    best = None
    for s in settings:
        apply(s)
        ids, ms = timed_search(index, queries)
        r = recall(ids, truth)
        rows.append((f"{name} {s}", r, ms, flat_ms / ms, build_s, size))
        print(f"{name:<6}{s:>12}  recall@10 {r:.3f}  {ms:8.3f} ms/query  {flat_ms / ms:7.1f}x  "
              f"build {build_s:6.1f}s  index {size:.2f} GB", flush=True)
        if r >= target and (best is None or ms < best[2]):
            best = (s, r, ms)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kind", choices=["ivf", "hnsw", "both"], default="ivf")
    ap.add_argument("--target-recall", type=float, default=0.95)
    ap.add_argument("--queries-near", action="store_true", help="also: queries = database vectors + small noise")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    db = unit_vectors(rng, args.n, args.d)
    ids = [str(i) for i in range(args.n)]
    print(f"{args.n:,} x {args.d} unit vectors in {time.perf_counter() - t:.1f}s; faiss threads "
          f"{faiss.omp_get_max_threads()}", flush=True)
    query_sets = {"random": unit_vectors(rng, args.queries, args.d)}
    if args.queries_near:
        # Noise of norm ~0.3: a query at cosine ~0.95 to its database vector.
        near = db[rng.choice(args.n, args.queries, replace=False)] + (0.3 / np.sqrt(args.d)) * rng.standard_normal(
            (args.queries, args.d), dtype=np.float32)
        query_sets["near"] = near / np.linalg.norm(near, axis=1, keepdims=True)

    t = time.perf_counter()
    flat = SceneIndex.build(ids, db, kind="flat", use_gpu=False)
    flat_build = time.perf_counter() - t
    built = {}
    if args.kind in ("ivf", "both"):
        t = time.perf_counter()
        nlist = 4096 if args.n >= 500_000 else max(16, int(4 * np.sqrt(args.n)))
        built["ivf"] = (SceneIndex.build(ids, db, kind="ivf", nlist=nlist, use_gpu=False),
                        time.perf_counter() - t, nlist)
        print(f"ivf built: nlist {nlist}, {built['ivf'][1]:.1f}s, RSS {rss_gb():.1f} GB", flush=True)
    if args.kind in ("hnsw", "both"):
        t = time.perf_counter()
        built["hnsw"] = (SceneIndex.build(ids, db, kind="hnsw", hnsw_m=32), time.perf_counter() - t, None)
        print(f"hnsw built: {built['hnsw'][1]:.1f}s, RSS {rss_gb():.1f} GB", flush=True)

    for qname, q in query_sets.items():
        truth, flat_ms = timed_search(flat, q)
        print(f"\n== queries: {qname} ==\nflat: {flat_ms:.3f} ms/query, build {flat_build:.1f}s, "
              f"index {index_bytes(flat) / 1024**3:.2f} GB", flush=True)
        rows = []
        for kind, (index, build_s, nlist) in built.items():
            if kind == "ivf":
                settings = [p for p in (8, 16, 32, 64, 128, 256, 512, 1024, 2048) if p <= nlist]
                best = sweep("ivf", index, [f"nprobe={p}" for p in settings],
                             lambda s, ix=index: ix.set_nprobe(int(s.split("=")[1])), q, truth, flat_ms, build_s,
                             args.target_recall, rows)
            else:
                def set_ef(s, ix=index):
                    ix.index.hnsw.efSearch = int(s.split("=")[1])
                best = sweep("hnsw", index, [f"ef={e}" for e in (32, 64, 128, 256, 512, 1024)], set_ef, q, truth,
                             flat_ms, build_s, args.target_recall, rows)
            if best:
                print(f"-> {kind}: fastest with recall@10 ≥ {args.target_recall}: {best[0]}, recall {best[1]:.3f}, "
                      f"{flat_ms / best[2]:.1f}x faster than flat", flush=True)
            else:
                print(f"-> {kind}: no setting reached recall@10 ≥ {args.target_recall}", flush=True)
    print(f"\npeak RSS {rss_gb():.1f} GB")


if __name__ == "__main__":
    main()
