"""Benchmark: the Serve app over loopback HTTP on a local Ray.

    python jobs/bench_serve.py                       # everything (≈6 min on 2 cores)
    python jobs/bench_serve.py --parts batch,latency --seconds 10

Parts (each on freshly started replicas, so no cache warmed by one part serves another):
1. batch    `POST /v1/rounds` throughput at `--clients` (32) concurrent clients, with @serve.batch
            (max_batch_size 32) vs without (max_batch_size 1), `--seconds` each; target >= 3x. Beside it, the
            ceiling batching has on this machine: the same roles in-process on 1 torch thread (what the
            Retriever replica gets), 192 of the requests in batches of 32 vs one at a time.
2. latency  one client, one request at a time: p50/p99 over HTTP vs the same roles called in-process
            (`RetrieverService.rank` + `QuestionerService.ask`: `replay_batch` → `run_round` + the questioner) on 1 torch thread, as
            the Retriever replica (1 CPU) runs them; target p50 <= 1.5x. Also: the front door alone (a request
            refused with 422 before any inner call) and the roles' own batch time in the replicas.
3. soak     `--soak-seconds` (60) at `--soak-clients` (200) concurrent clients: status counts (target: no 5xx),
            p50/p99, RSS of the Serve replicas before and after.
4. eval     simulated dialogs through the Serve handles (`Ingress.simulate`: the stateless API, one dialog per
            call) vs `run_shard` in one process (the eval job's Ray task), dialogs/s.

Serve mode: whatever the environment sets before Ray starts; `RAY_SERVE_THROUGHPUT_OPTIMIZED=1 python
jobs/bench_serve.py` measures Serve's throughput-optimized mode (direct ingress, gRPC between replicas, user
code on the replica's main loop), the mode the README recommends for serving; printed at the start.

Requests: the val ScanRefer-style descriptions of the default synthetic benchmark, each with 0, 1 or 2
answered turns (questions and answers of a simulated dialog), so the work is a real mix of rounds. The
deployments get the CPU shares of deployments/serve_config.yaml with one replica each (no autoscaling:
a fixed configuration is what a ratio can be measured on).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import ray
import yaml
from ray import serve

from deployments.app import build_app
from deployments.roles import BATCH
from ideal.config import load_config
from ideal.dialog_eval import EvalSpec, context, run_shard
from ideal.checkpoints import DEFAULT_WEIGHTS
from ideal.serving import QuestionerService, RoundRequest, RetrieverService, ServiceSpec

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deployment_options(simulated_user: bool) -> dict:
    """serve_config.yaml's CPU shares and queue limits, one replica each."""
    d = yaml.safe_load((ROOT / "deployments" / "serve_config.yaml").read_text())
    out = {}
    for dep in d["applications"][0]["deployments"]:
        o = {k: v for k, v in dep.items() if k not in ("name", "autoscaling_config")}
        o["num_replicas"] = 1 if simulated_user or dep["name"] != "Answerer" else 0
        out[dep["name"]] = o
    return out


def workload(spec: ServiceSpec, n: int, seed: int = 0) -> list[dict]:
    """n request bodies: val queries with 0-2 answered turns of their own simulated dialog (made in-process)."""
    from ideal.serving import AnswererService

    search, ask, user = RetrieverService(spec), QuestionerService(spec), AnswererService(spec)
    every = spec.open().descriptions()
    descs = [d for d in every if d.source == "scanrefer"] or every
    rng = np.random.default_rng(seed)
    bodies = []
    for i in range(n):
        d = descs[i % len(descs)]
        history = []
        for _ in range(int(rng.integers(0, 3))):
            (st,) = ask.ask(search.rank([RoundRequest(d.text, tuple(history))]))
            st = st.with_(target=d.scene_id, dialog_id=d.desc_id)
            history.append((st.question.text, user.answer([st])[0]))
        bodies.append({"query": d.text, "history": [{"question": q, "answer": a} for q, a in history], "k": 10})
    return bodies


BATCH_WAIT = [BATCH["batch_wait_timeout_s"]]  # --batch-wait


def deploy(spec: ServiceSpec, port: int, max_batch_size: int, simulated_user: bool = False) -> str:
    serve.run(build_app({"gallery": spec.gallery, "weights": spec.weights, "overrides": list(spec.overrides),
                         "max_batch_size": max_batch_size, "simulated_user": simulated_user,
                         "batch_wait_timeout_s": BATCH_WAIT[0],
                         "deployment_options": deployment_options(simulated_user)}),
              name="ideal", route_prefix="/")
    return f"http://127.0.0.1:{port}"


async def hammer(url: str, bodies: list[dict], clients: int, seconds: float, cycle: bool = True) -> dict:
    """`clients` concurrent clients sending bodies in turn for `seconds`; latencies and status counts.
    cycle=False: each body at most once (a repeated dialog would find the replica's sentence cache warm)."""
    lat, status, nxt = [], {}, iter(range(10**9))
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        async def client():
            while time.perf_counter() < stop:
                i = next(nxt)
                if not cycle and i >= len(bodies):
                    break
                body = bodies[i % len(bodies)]
                t = time.perf_counter()
                try:
                    code = (await c.post("/v1/rounds", json=body)).status_code
                except httpx.HTTPError as e:
                    code = type(e).__name__
                lat.append(time.perf_counter() - t)
                status[code] = status.get(code, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.perf_counter() - t0
    lat = np.array(lat) * 1000
    return {"requests": len(lat), "rps": len(lat) / wall, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "status": status}


_LOOP: list = []


def on_loop(coro):
    """Run a coroutine on the driver's one long-lived event loop (a thread) and return its result. Handle calls
    go through it: RAY_SERVE_THROUGHPUT_OPTIMIZED=1 handles refuse blocking `.result()` outside a loop and stay
    bound to the loop they were first used on."""
    if not _LOOP:
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        _LOOP.append(loop)
    return asyncio.run_coroutine_threadsafe(coro, _LOOP[0]).result()


def awaited(make_response):
    """A handle call's result (see on_loop)."""
    async def wait():
        return await make_response()
    return on_loop(wait())


def replica_rss_gib() -> float:
    """Summed RSS of the Serve processes (replicas, proxy, controller), read from /proc."""
    total = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            if b"ServeReplica" in cmd or b"ServeController" in cmd or b"ProxyActor" in cmd:
                rss = next(line for line in (proc / "status").read_text().splitlines() if line.startswith("VmRSS"))
                total += int(rss.split()[1]) * 1024
        except (OSError, StopIteration):
            continue
    return total / 2**30


def part_batch(spec, port, bodies, args):
    out = {}
    for name, size in (("batched", 32), ("unbatched", 1)):
        url = deploy(spec, port, size)
        asyncio.run(hammer(url, bodies[:64], 8, 3))  # warm-up: model pages, first batches
        out[name] = asyncio.run(hammer(url, bodies[64:], args.clients, args.seconds, cycle=False))
        if out[name]["requests"] >= len(bodies) - 64:
            print(f"  note: all {len(bodies) - 64} distinct requests were used up before {args.seconds} s: "
                  f"raise --requests", flush=True)
        out[name]["retriever"] = awaited(lambda: serve.get_deployment_handle("Retriever", "ideal").stats.remote())
        serve.delete("ideal")
        print(f"  {name:9s} (max_batch_size {size:2d}): {out[name]['rps']:.1f} req/s, p50 {out[name]['p50_ms']:.0f} ms,"
              f" p99 {out[name]['p99_ms']:.0f} ms, status {out[name]['status']}; Retriever batches: mean"
              f" {out[name]['retriever']['mean_batch']:.1f}, per call {out[name]['retriever']['call_weighted_batch']:.1f},"
              f" largest {out[name]['retriever']['largest_batch']}", flush=True)
    ratio = out["batched"]["rps"] / out["unbatched"]["rps"]
    ceiling = in_process_ceiling(spec, bodies[64:64 + 192])
    print(f"  -> @serve.batch {ratio:.2f}x the throughput at {args.clients} clients (target >= 3x); in-process, batches"
          f" of 32 vs one at a time: {ceiling['ratio']:.2f}x ({ceiling['batched_ms_per_request']:.1f} vs"
          f" {ceiling['single_ms_per_request']:.1f} ms per request)", flush=True)
    return {**out, "ratio": ratio, "in_process": ceiling}


def in_process_ceiling(spec, bodies: list[dict], batch: int = 32) -> dict:
    """ms per request of RetrieverService.rank + QuestionerService.ask in batches of `batch` vs one at a time, fresh roles (cold caches)
    for each, on 1 torch thread."""
    import torch

    reqs = [RoundRequest(b["query"], tuple((t["question"], t["answer"]) for t in b["history"]), b["k"]) for b in bodies]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = {}
    for name, size in (("batched", batch), ("single", 1)):
        search, ask = RetrieverService(spec), QuestionerService(spec)
        t = time.perf_counter()
        for i in range(0, len(reqs), size):
            ask.ask(search.rank(reqs[i:i + size]))
        out[f"{name}_ms_per_request"] = (time.perf_counter() - t) * 1000 / len(reqs)
    torch.set_num_threads(threads)
    out["ratio"] = out["single_ms_per_request"] / out["batched_ms_per_request"]
    return out


def in_process_latency(spec: ServiceSpec, bodies: list[dict], text_encoder=None) -> list[float]:
    """Seconds of `RetrieverService.rank` + `QuestionerService.ask` per request body after the first 4 (the
    warm-up, as the HTTP runs warm up too), one at a time, on 1 torch thread: what the Retriever replica gets
    (num_cpus 1 -> OMP_NUM_THREADS=1)."""
    import torch

    reqs = [RoundRequest(b["query"], tuple((t["question"], t["answer"]) for t in b["history"]), b["k"])
            for b in bodies]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    search, ask = RetrieverService(spec, text_encoder=text_encoder), QuestionerService(spec)
    ask.ask(search.rank(reqs[:4]))
    out = []
    for r in reqs[4:]:
        t = time.perf_counter()
        ask.ask(search.rank([r]))
        out.append(time.perf_counter() - t)
    torch.set_num_threads(threads)
    return out


def part_latency(spec, port, bodies, args):
    n = args.latency_requests
    local = in_process_latency(spec, bodies[:n])
    url = deploy(spec, port, 32)
    http, front = [], []
    with httpx.Client(base_url=url, timeout=60) as c:
        for b in bodies[:4]:
            c.post("/v1/rounds", json=b)
        for b in bodies[4:n]:
            t = time.perf_counter()
            assert c.post("/v1/rounds", json=b).status_code == 200
            http.append(time.perf_counter() - t)
            # the front door alone: proxy, Ingress, body, parse; refused (k out of range) before any inner call
            t = time.perf_counter()
            assert c.post("/v1/rounds", json={"query": b["query"], "k": 0}).status_code == 422
            front.append(time.perf_counter() - t)
    roles = {name: awaited(lambda: serve.get_deployment_handle(name, "ideal").stats.remote())["batch_p50_ms"]
             for name in ("Retriever", "Questioner")}
    serve.delete("ideal")
    res = {}
    for name, xs in (("in_process", local), ("http", http), ("front_door", front)):
        xs = np.array(xs) * 1000
        res[name] = {"p50_ms": float(np.percentile(xs, 50)), "p99_ms": float(np.percentile(xs, 99))}
        print(f"  {name:10s}: p50 {res[name]['p50_ms']:.1f} ms, p99 {res[name]['p99_ms']:.1f} ms ({len(xs)} requests)")
    res["replica_batch_p50_ms"] = roles
    print(f"  in the replicas (batch p50): Retriever {roles['Retriever']:.1f} ms, Questioner {roles['Questioner']:.1f} ms")
    res["ratio_p50"] = res["http"]["p50_ms"] / res["in_process"]["p50_ms"]
    print(f"  -> HTTP p50 {res['ratio_p50']:.2f}x in-process (target <= 1.5x)", flush=True)
    return res


def part_soak(spec, port, bodies, args):
    url = deploy(spec, port, 32)
    asyncio.run(hammer(url, bodies[:64], 8, 3))
    before = replica_rss_gib()
    res = asyncio.run(hammer(url, bodies, args.soak_clients, args.soak_seconds))
    after = replica_rss_gib()
    serve.delete("ideal")
    fivexx = sum(v for k, v in res["status"].items() if not isinstance(k, int) or k >= 500)
    res.update(rss_before_gib=before, rss_after_gib=after, errors_5xx=fivexx)
    print(f"  {args.soak_seconds:.0f} s at {args.soak_clients} clients: {res['requests']} requests, {res['rps']:.1f} req/s,"
          f" status {res['status']}, p50 {res['p50_ms']:.0f} ms, p99 {res['p99_ms']:.0f} ms; Serve RSS"
          f" {before:.2f} -> {after:.2f} GiB", flush=True)
    return res


def part_eval(spec, port, args):
    cfg = load_config(None, list(spec.overrides))
    es = EvalSpec(gallery=spec.gallery, limit=args.eval_dialogs, weights=str(DEFAULT_WEIGHTS),
                  iat_weights={"iat": spec.weights}, config=cfg.to_dict())
    ctx = context(es)
    ctx.parts("ideal")
    t = time.perf_counter()
    shard = run_shard(es, "ideal", 0, len(ctx.descs), args.rounds)
    local = time.perf_counter() - t
    deploy(spec, port, 32, simulated_user=True)

    async def through_handles():
        ingress = serve.get_app_handle("ideal")
        await ingress.simulate.remote(ctx.descs[0].text, ctx.descs[0].scene_id, 1)  # warm-up
        t = time.perf_counter()
        got = await asyncio.wait_for(asyncio.gather(
            *(ingress.simulate.remote(d.text, d.scene_id, args.rounds, d.desc_id) for d in ctx.descs)), 600)
        return got, time.perf_counter() - t

    got, served = on_loop(through_handles())
    serve.delete("ideal")
    # through the API a rank is known within the top k = 10 (enough for R@1/5/10): compare ranks cut there
    same = sum(g["ranks"] == [min(x, 10) for x in r] for g, r in zip(got, shard["ranks"]))
    n = len(ctx.descs)
    res = {"dialogs": n, "rounds": args.rounds, "run_shard_dialogs_per_s": n / local,
           "serve_handles_dialogs_per_s": n / served, "same_ranks": same}
    print(f"  {n} dialogs x {args.rounds} rounds: run_shard {n / local:.1f} dialogs/s, Serve handles"
          f" {n / served:.1f} dialogs/s ({local / served:.2f}x); same target ranks in {same}/{n}", flush=True)
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", default="batch,latency,soak,eval")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--latency-requests", type=int, default=204)
    ap.add_argument("--soak-clients", type=int, default=200)
    ap.add_argument("--soak-seconds", type=float, default=60)
    ap.add_argument("--eval-dialogs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=1200, help="distinct request bodies in the workload")
    ap.add_argument("--batch-wait", type=float, default=BATCH["batch_wait_timeout_s"],
                    help="@serve.batch batch_wait_timeout_s")
    ap.add_argument("--out", default="results/bench_serve.json")
    args = ap.parse_args(argv)
    BATCH_WAIT[0] = args.batch_wait
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]

    spec = ServiceSpec().resolved()
    t = time.perf_counter()
    bodies = workload(spec, args.requests) if set(parts) & {"batch", "latency", "soak"} else []
    print(f"workload: {len(bodies)} requests ({sum(len(b['history']) for b in bodies)} answered turns) in "
          f"{time.perf_counter() - t:.0f} s; gallery {spec.gallery}", flush=True)
    mode = "throughput-optimized" if os.environ.get("RAY_SERVE_THROUGHPUT_OPTIMIZED") == "1" else "default"
    print(f"Serve mode: {mode}", flush=True)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    results = {}
    for part in parts:
        print(f"\n== {part} ==", flush=True)
        if part == "eval":
            results[part] = part_eval(spec, port, args)
        else:
            results[part] = {"batch": part_batch, "latency": part_latency, "soak": part_soak}[part](spec, port, bodies, args)
    serve.shutdown()
    ray.shutdown()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "serve_mode": mode, **results}, indent=1, default=str) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
