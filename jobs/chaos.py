"""Chaos soak: the Serve app under N clients for M minutes, a replica killed every K s, the HTTP proxy once.

Replicas of the Retriever, Questioner, Answerer and Ingress in turn, the proxy as the last fault; a table row per
fault.

    python jobs/chaos.py                                          # 200 clients, 10 minutes, a kill every 60 s
    python jobs/chaos.py --clients 60 --minutes 2 --kill-every 20 --no-cpu-reservations     # 2 cores
    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/chaos.py --port 8000

Starts a local Ray (or joins the cluster of RAY_ADDRESS / --address) and Serve (HTTP on --port), and runs the app as
"chaos" at /chaos on the default synthetic gallery (or --gallery) with deployments/serve_config.yaml's args and
deployment options (queues, health checks, graceful shutdown, CPU shares) but a fixed --replicas per deployment (no
autoscaling: every kill meets the same configuration). The clients (deployments/chaos.py) keep a mix of rounds and
simulated-user answers in flight and never retry. Each kill waits for >= --min-in-flight requests in flight and a
replica holding requests, and for the previous fault's recovery (observed: Serve's replacement RUNNING, or for the
proxy a request succeeding again). Prints the table and writes --out (JSON) and the same name with .md.
Row by row: the requests that ended from the kill to the next (the first row: before any kill); p99 over those in
flight from the kill to the recovery; recovery: kill to replacement RUNNING (proxy: to a request answered again).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import ray
import yaml
from ray import serve

from deployments import chaos
from deployments.app import build_app

ROOT = Path(__file__).resolve().parents[1]
APP, PREFIX = "chaos", "/chaos"


def app_config(replicas: int, reserve_cpus: bool) -> tuple[dict, dict]:
    """(args, deployment_options) of serve_config.yaml's application, `replicas` of each deployment."""
    (app,) = yaml.safe_load((ROOT / "deployments" / "serve_config.yaml").read_text())["applications"]
    options = {}
    for d in app["deployments"]:
        o = {k: v for k, v in d.items() if k not in ("name", "autoscaling_config")}
        o["num_replicas"] = replicas
        if not reserve_cpus:
            o["ray_actor_options"] = {**o.get("ray_actor_options", {}), "num_cpus": 0}
        options[d["name"]] = o
    return dict(app["args"]), options


def plan(seconds: float, kill_every: float) -> list[tuple[float, str]]:
    """(seconds after the start, fault): a kill every `kill_every` s, roles in turn, the proxy last."""
    at = [kill_every * i for i in range(1, int(seconds // kill_every) + 1) if kill_every * i < seconds]
    return [(t, chaos.ROLES[i % len(chaos.ROLES)]) for i, t in enumerate(at[:-1])] + [(t, "proxy") for t in at[-1:]]


async def soak(url: str, clients: int, seconds: float, schedule, min_in_flight: int) -> tuple[list[dict], float]:
    requests = chaos.requests_from(url, n=50)
    faults = []
    async with chaos.Load(url, requests, clients) as load:
        t0 = time.monotonic()
        for at, what in schedule:
            await load.until(lambda: time.monotonic() - t0 >= at, f"the time of the {what} kill", at + 600, poll_s=0.1)
            f = await chaos.inject(load, what, app=APP, min_in_flight=min_in_flight)
            faults.append(f)
            held = "" if f.held is None else f", the victim held {f.held}"
            print(f"  {time.monotonic() - t0:6.1f} s  killed {f.what} ({f.in_flight} in flight{held}); recovered in "
                  f"{f.recovery_s:.1f} s", flush=True)
        await load.until(lambda: time.monotonic() - t0 >= seconds, "the end of the soak", seconds + 600, poll_s=0.1)
    return chaos.rows(load.samples, faults), time.monotonic() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--kill-every", type=float, default=60, help="seconds between kills")
    ap.add_argument("--min-in-flight", type=int, default=50, help="requests in flight for a kill to happen")
    ap.add_argument("--replicas", type=int, default=2, help="replicas of each deployment")
    ap.add_argument("--no-cpu-reservations", action="store_true",
                    help="replicas reserve no CPU (small machines: serve_config.yaml's shares x --replicas need more)")
    ap.add_argument("--gallery", default=None, help="an encoded gallery directory (default: the synthetic one)")
    ap.add_argument("--address", default=None, help="a running Ray cluster (default: RAY_ADDRESS, else a local Ray)")
    ap.add_argument("--port", type=int, default=8000, help="Serve's HTTP port (of the running Serve, if there is one)")
    ap.add_argument("--out", default="results/chaos.json")
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    if args.clients < args.min_in_flight:
        ap.error(f"--clients {args.clients} cannot keep --min-in-flight {args.min_in_flight} requests in flight")
    schedule = plan(args.minutes * 60, args.kill_every)
    if not schedule:
        ap.error(f"no kill fits in {args.minutes} min at one every {args.kill_every:g} s")

    started_here = not (args.address or os.environ.get("RAY_ADDRESS"))
    ray.init(address=args.address, log_to_driver=False, **({"include_dashboard": False} if started_here else {}))
    serve.start(http_options={"host": "127.0.0.1" if started_here else "0.0.0.0", "port": args.port})
    app_args, options = app_config(args.replicas, not args.no_cpu_reservations)
    serve.run(build_app({**app_args, "gallery": args.gallery, "deployment_options": options}),
              name=APP, route_prefix=PREFIX)
    url = f"http://127.0.0.1:{args.port}{PREFIX}"
    print(f"{APP} at {url}: {args.replicas} replica(s) per deployment; {args.clients} clients for {args.minutes:g} "
          f"min; faults: {', '.join(f'{w}@{t:g}s' for t, w in schedule)}", flush=True)
    try:
        rows, wall = asyncio.run(soak(url, args.clients, args.minutes * 60, schedule, args.min_in_flight))
    finally:
        serve.delete(APP)
        if started_here:
            serve.shutdown()
            ray.shutdown()
    table = chaos.markdown(rows)
    print("\n" + table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "seconds": round(wall, 1), "rows": rows}, indent=1) + "\n")
    out.with_suffix(".md").write_text(
        f"Chaos soak (`python jobs/chaos.py {' '.join(argv)}`): {args.clients} clients, "
        f"{args.replicas} replica(s) per deployment, {wall:.0f} s; failed = not 2xx or no HTTP answer (a refused "
        f"connection while no proxy listened counts, each client retrying every 0.25 s).\n\n" + table)
    print(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
