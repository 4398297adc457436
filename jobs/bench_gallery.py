"""Benchmark: serving from an encoded gallery directory. Start-up from G vs re-encoding the gallery at start, and
`POST /v1/rounds` latency on a large gallery (faiss IVF) vs the 100-scene default.

    python jobs/bench_gallery.py                                  # 10,000 scenes for start-up, 100,000 for latency
    python jobs/bench_gallery.py --startup-scenes 2000 --large-scenes 20000 --requests 30    # a quick try

Large galleries are the default synthetic benchmark's 400 scenes repeated under new scene ids (object boxes
jittered so that no two scenes are equal), written as a scenes parquet file and encoded once with
`ideal.build.build_gallery` (not timed) into the benchmark's folder (`galleries/large-N`), where later runs find them.
1. Start-up: a Retriever replica's work before its first request, both in this process with the text encoder
   already loaded: (a) from G: `RetrieverService(ServiceSpec(gallery=G))` (read the embeddings, k-NN distances
   and scene tables); (b) the path before G existed: read the scenes and encode every one with the
   retriever, then build the same Gallery and summariser. (b) reads a scenes parquet, not scans, so it is a
   lower bound of re-encoding from scans (which adds mesh reading). Prints both and the ratio (target >= 5x).
2. Latency: the Serve app (serve_config.yaml's CPU shares, one replica per role, a local Ray) over loopback
   HTTP, one `POST /v1/rounds` at a time (0-2 answered turns of the default val queries, as jobs/bench_serve.py's
   workload), p50 and p90, on the 100-scene default gallery and on the large one, served from its IVF index
   (`index.candidates` scenes per text); ratio (target <= 2x). The same requests in-process
   (`RetrieverService.rank` + `QuestionerService.ask` on 1 torch thread) are printed beside them.
"""
from __future__ import annotations

import argparse
import json
import os
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


def large_gallery(n: int, cfg, base) -> Path:
    """The n-scene gallery, built on first use under the benchmark's folder (a half-built one is finished)."""
    from ideal import build
    from ideal.retrieval.encode import Source
    from ideal.scenes.parquet import write_scenes

    where = cfg.data.synthetic_root() / "galleries" / f"large-{n}"
    where.mkdir(parents=True, exist_ok=True)
    path = where / "scenes.parquet"
    if not path.is_file():
        write_scenes(replicated(base, n), where / "scenes.tmp.parquet", with_points=False)
        (where / "scenes.tmp.parquet").replace(path)
    t = time.perf_counter()
    out = build.build_gallery(Source(scenes_parquet=str(path)), where / "gallery", {"iat": "iat"}, shard_size=4096,
                              density_k=cfg.dialog.density_k, index=cfg.index)
    print(f"  the {n}-scene gallery: {out} ({time.perf_counter() - t:.0f} s to build or check; not timed)",
          flush=True)
    return out


def part_startup(n: int, cfg, base, text) -> dict:
    from ideal import build
    from ideal.dialog.methods import method_config
    from ideal.retrieval.gallery import Gallery
    from ideal.scenes.parquet import read_scenes
    from ideal.serving import RetrieverService, ServiceSpec

    g = large_gallery(n, cfg, base)
    t = time.perf_counter()
    RetrieverService(ServiceSpec(gallery=str(g), weights="iat"), text_encoder=text)
    from_g = time.perf_counter() - t
    t = time.perf_counter()
    scenes = read_scenes(g.parent / "scenes.parquet")
    gallery = Gallery(build.retriever("iat", text), sorted(scenes, key=lambda s: s.scene_id))
    gallery.density(cfg.dialog.density_k, cfg.dialog.density_eps)
    build.roles(method_config("ideal", cfg.dialog), gallery, questioner=False)
    reencode = time.perf_counter() - t
    print(f"  start-up, {n} scenes: from G {from_g:.1f} s, re-encoding {reencode:.1f} s -> {reencode / from_g:.1f}x "
          f"(target >= 5x)", flush=True)
    return {"scenes": n, "from_gallery_s": from_g, "reencode_s": reencode, "ratio": reencode / from_g}


def over_http(spec, bodies: list[dict], port: int) -> list[float]:
    """Seconds per `POST /v1/rounds` after the first 4 (the warm-up), one at a time, from a freshly deployed app."""
    import httpx
    from bench_serve import deploy
    from ray import serve

    t = time.perf_counter()
    url = deploy(spec, port, 32)
    print(f"    deployed in {time.perf_counter() - t:.0f} s", flush=True)
    out = []
    with httpx.Client(base_url=url, timeout=120) as c:
        for b in bodies[:4]:  # warm-up
            c.post("/v1/rounds", json=b).raise_for_status()
        for b in bodies[4:]:
            t = time.perf_counter()
            c.post("/v1/rounds", json=b).raise_for_status()
            out.append(time.perf_counter() - t)
    serve.delete("ideal")
    return out


def part_latency(n: int, n_requests: int, cfg, base, text) -> dict:
    import numpy as np
    import ray
    from bench_serve import free_port, in_process_latency, workload
    from ray import serve

    from ideal import build
    from ideal.serving import ServiceSpec

    small = str(build.ensure_gallery(cfg))
    bodies = workload(ServiceSpec(gallery=small, weights="iat").resolved(), n_requests + 4)
    big = str(large_gallery(n, cfg, base))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    out = {"scenes": n, "requests": n_requests, "candidates": cfg.index.candidates}
    try:
        for name, g in (("default", small), ("large", big)):
            spec = ServiceSpec(gallery=g, weights="iat").resolved()
            for how, run in (("http", lambda: over_http(spec, bodies, port)),
                             ("in_process", lambda: in_process_latency(spec, bodies, text))):
                lat = np.array(run()) * 1000
                out[f"{name}_{how}"] = {"p50_ms": float(np.percentile(lat, 50)),
                                        "p90_ms": float(np.percentile(lat, 90))}
                print(f"  {name} gallery ({100 if name == 'default' else n} scenes), {how}: "
                      f"p50 {out[f'{name}_{how}']['p50_ms']:.1f} ms, p90 {out[f'{name}_{how}']['p90_ms']:.1f} ms",
                      flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()
    for how in ("http", "in_process"):
        out[f"ratio_{how}"] = out[f"large_{how}"]["p50_ms"] / out[f"default_{how}"]["p50_ms"]
    print(f"  /v1/rounds p50, {n} scenes (IVF, {cfg.index.candidates} candidates) vs 100: {out['ratio_http']:.2f}x "
          f"(target <= 2x); in-process {out['ratio_in_process']:.2f}x", flush=True)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--startup-scenes", type=int, default=10_000)
    ap.add_argument("--large-scenes", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--parts", default="startup,latency")
    ap.add_argument("--out", default="results/bench_gallery.json")
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
    results = {}
    if "startup" in parts:
        results["startup"] = part_startup(args.startup_scenes, cfg, base, text)
    if "latency" in parts:
        results["latency"] = part_latency(args.large_scenes, args.requests, cfg, base, text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), **results}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
