"""Benchmark: serving from an encoded gallery directory. Start-up from G vs re-encoding the gallery at start, and
a round's latency on a large gallery (faiss IVF) vs the 100-scene default.

    python jobs/bench_gallery.py                                  # 10,000 scenes for start-up, 100,000 for latency
    python jobs/bench_gallery.py --startup-scenes 2000 --large-scenes 20000 --requests 30    # a quick try

Large galleries are the default synthetic benchmark's 400 scenes repeated under new scene ids (object boxes
jittered so that no two scenes are equal), written as a scenes parquet file and encoded once with
`ideal.build.build_gallery` (not timed).
1. Start-up: a Retriever replica's work before its first request, both in this process with the text encoder
   already loaded: (a) from G: `RetrieverService(ServiceSpec(gallery=G))` (read the embeddings, k-NN distances
   and scene tables); (b) today's path before G existed: read the scenes and encode every one with the
   retriever, then build the same Gallery and summariser. (b) reads a scenes parquet, not scans, so it is a
   lower bound of re-encoding from scans (which adds mesh reading). Prints both and the ratio (target >= 5x).
2. Latency: `RetrieverService.rank` + `QuestionerService.ask` of one request at a time (0-2 answered turns of
   the default val queries, as jobs/bench_serve.py's workload), p50 and p90, on the 100-scene default gallery
   and on the large one served from its IVF index (`index.candidates` scenes per text); ratio (target <= 2x).
   Serve's proxy and hops add the same few ms to both and are left out.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def replicated(scenes, n: int, seed: int = 0):
    """n scenes: `scenes` cycled under new ids, each copy's boxes jittered by up to 5 cm."""
    import numpy as np

    from ideal.scenes.types import Scene, SceneObject

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        s = scenes[i % len(scenes)]
        objs = [SceneObject(o.object_id, o.label, tuple(np.add(o.center, rng.uniform(-0.05, 0.05, 3))), o.size,
                            o.color_rgb) for o in s.objects]
        out.append(Scene(f"scene{i // 100:05d}_{i % 100:02d}", s.scene_type, objs))
    return out


def large_gallery(n: int, tmp: Path, cfg, base) -> Path:
    from ideal import build
    from ideal.retrieval.encode import Source
    from ideal.scenes.parquet import write_scenes

    path = tmp / f"scenes-{n}.parquet"
    write_scenes(replicated(base, n), path, with_points=False)
    t = time.perf_counter()
    out = build.build_gallery(Source(scenes_parquet=str(path)), tmp / f"g{n}", {"iat": "iat"}, shard_size=4096,
                              density_k=cfg.dialog.density_k, index=cfg.index)
    print(f"  built a {n}-scene gallery in {time.perf_counter() - t:.0f} s (not timed below)", flush=True)
    return out


def part_startup(n: int, tmp: Path, cfg, base, text) -> dict:
    from ideal import build
    from ideal.dialog.methods import method_config
    from ideal.retrieval.gallery import Gallery
    from ideal.scenes.parquet import read_scenes
    from ideal.serving import RetrieverService, ServiceSpec

    g = large_gallery(n, tmp, cfg, base)
    t = time.perf_counter()
    RetrieverService(ServiceSpec(gallery=str(g), weights="iat"), text_encoder=text)
    from_g = time.perf_counter() - t
    t = time.perf_counter()
    scenes = read_scenes(tmp / f"scenes-{n}.parquet")
    gallery = Gallery(build.retriever("iat", text), sorted(scenes, key=lambda s: s.scene_id))
    gallery.density(cfg.dialog.density_k, cfg.dialog.density_eps)
    build.roles(method_config("ideal", cfg.dialog), gallery, questioner=False)
    reencode = time.perf_counter() - t
    print(f"  start-up, {n} scenes: from G {from_g:.1f} s, re-encoding {reencode:.1f} s -> {reencode / from_g:.1f}x "
          f"(target >= 5x)", flush=True)
    return {"scenes": n, "from_gallery_s": from_g, "reencode_s": reencode, "ratio": reencode / from_g}


def latencies(gallery: str, requests, text) -> list[float]:
    from ideal.serving import QuestionerService, RetrieverService, ServiceSpec

    spec = ServiceSpec(gallery=gallery, weights="iat")
    retriever, questioner = RetrieverService(spec, text_encoder=text), QuestionerService(spec)
    questioner.ask(retriever.rank(requests[:4]))  # warm-up
    out = []
    for r in requests:
        t = time.perf_counter()
        questioner.ask(retriever.rank([r]))
        out.append(time.perf_counter() - t)
    return out


def part_latency(n: int, n_requests: int, tmp: Path, cfg, base, text) -> dict:
    import numpy as np

    from ideal import build
    from ideal.serving import AnswererService, QuestionerService, RetrieverService, RoundRequest, ServiceSpec

    small = str(build.ensure_gallery(cfg))
    spec = ServiceSpec(gallery=small, weights="iat")
    r, q, a = RetrieverService(spec, text_encoder=text), QuestionerService(spec), AnswererService(spec, text)
    descs = [d for d in spec.open().descriptions() if d.source == "scanrefer"]
    rng = np.random.default_rng(0)
    requests = []
    for d in descs[:n_requests]:  # 0-2 answered turns of the query's own simulated dialog
        history = []
        for _ in range(int(rng.integers(0, 3))):
            (st,) = q.ask(r.rank([RoundRequest(d.text, tuple(history))]))
            history.append((st.question.text, a.answer([st.with_(target=d.scene_id, dialog_id=d.desc_id)])[0]))
        requests.append(RoundRequest(d.text, tuple(history)))
    big = str(large_gallery(n, tmp, cfg, base))
    out = {}
    for name, g in (("default", small), ("large", big)):
        lat = np.array(latencies(g, requests, text)) * 1000
        out[name] = {"p50_ms": float(np.percentile(lat, 50)), "p90_ms": float(np.percentile(lat, 90))}
    ratio = out["large"]["p50_ms"] / out["default"]["p50_ms"]
    print(f"  rank + ask, one request at a time ({len(requests)} requests): 100 scenes p50 "
          f"{out['default']['p50_ms']:.1f} ms (p90 {out['default']['p90_ms']:.1f}); {n} scenes (IVF, "
          f"{cfg.index.candidates} candidates) p50 {out['large']['p50_ms']:.1f} ms (p90 {out['large']['p90_ms']:.1f})"
          f" -> {ratio:.2f}x (target <= 2x)", flush=True)
    return {**out, "scenes": n, "ratio": ratio}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--startup-scenes", type=int, default=10_000)
    ap.add_argument("--large-scenes", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--parts", default="startup,latency")
    args = ap.parse_args(argv)

    import torch

    from ideal import build
    from ideal.config import Config

    torch.set_num_threads(1)  # a Retriever replica has num_cpus 1
    cfg, text = Config(), build.text_encoder()
    base = build.open_gallery(build.ensure_gallery(cfg, "train")).scenes()
    base += build.open_gallery(build.ensure_gallery(cfg)).scenes()
    parts = [p.strip() for p in args.parts.split(",")]
    print(f"== serving from an encoded gallery ({os.cpu_count()} cores, 1 torch thread) ==", flush=True)
    with tempfile.TemporaryDirectory() as d:
        if "startup" in parts:
            part_startup(args.startup_scenes, Path(d), cfg, base, text)
        if "latency" in parts:
            part_latency(args.large_scenes, args.requests, Path(d), cfg, base, text)


if __name__ == "__main__":
    main()
