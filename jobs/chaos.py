"""Chaos: the Serve app with replicas killed under load, or (--nodes) jobs/eval.py on a 3-node cluster losing a node.

The Serve soak: N clients for M minutes, a replica killed every K s (the Retriever, Questioner, Answerer and Ingress
in turn), the HTTP proxy as the last fault; a table row per fault.

    python jobs/chaos.py                                          # 200 clients, 10 minutes, a kill every 60 s
    python jobs/chaos.py --clients 60 --minutes 2 --kill-every 20 --no-cpu-reservations     # 2 cores
    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/chaos.py --port 8000
    python jobs/chaos.py --nodes                                  # eval, node_a lost 3 times mid-shard
    python jobs/chaos.py --nodes --faults 5 --limit 800 --shard-size 10

The soak starts a local Ray (or joins the cluster of RAY_ADDRESS / --address) and Serve (HTTP on --port), and runs
the app as "chaos" at /chaos on the default synthetic gallery (or --gallery) with deployments/serve_config.yaml's
args and deployment options (queues, health checks, graceful shutdown, CPU shares) but a fixed --replicas per
deployment (no autoscaling: every kill meets the same configuration). The clients (deployments/chaos.py) keep a mix
of rounds and simulated-user answers in flight and never retry. Each kill waits for >= --min-in-flight requests in
flight and a replica holding requests, and for the previous fault's recovery (observed: Serve's replacement RUNNING,
or for the proxy a request succeeding again). Prints the table and writes --out (JSON) and the same name with .md.
Row by row: the requests that ended from the kill to the next (the first row: before any kill); p99 over those in
flight from the kill to the recovery; recovery: kill to replacement RUNNING (proxy: to a request answered again).

--nodes, the long version of tests/multinode/test_node_loss.py: starts a Ray cluster on this machine
(cluster/local.py: a head with no CPUs, node_a and node_b with 1 CPU each, so one shard task per node at a time) and
runs jobs/eval.py (the default synthetic benchmark, the first --limit queries, --shard-size dialogs per task) as a
driver on it twice: clean, then losing node_a --faults times (every process of the node SIGKILLed at once), the k-th
time once k/(faults+1) of the shards are saved and while a run_shard task runs there (kill_mid_task), node_a
replaced after each. Then compares the faulted run with the clean one: dialogs in transcripts.parquet (lost: missing,
duplicated: more rows than in the clean run), results.json, the shard tasks that failed on the lost nodes and where
Ray ran them again, and both wall times. Prints the tables and writes --out (default results/chaos_nodes.json) and
the same name with .md. The cluster is torn down at the end, on an error or Ctrl-C too; its folder (logs, both
runs' outputs) is kept only if something failed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import sys
import time
from collections import Counter
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


# -- --nodes: jobs/eval.py on a 3-node cluster on this machine, node_a lost mid-shard ------------------------------

WORKERS = {"node_a": 1, "node_b": 1}  # 1 CPU each: one shard task per node at a time
VICTIM = "node_a"
SHARD_COUNT = re.compile(r"^(\d+) shards \(", re.M)  # eval.py: "N shards (0 already done) over S settings"


def shards_saved(out: Path) -> int:
    return len(list(out.glob("shards/*/*/*.json")))  # OUT/shards/SETTING/METHOD/START-STOP.json


def eval_run(cluster, args, out: Path, faults: int = 0) -> dict:
    """jobs/eval.py as a driver on `cluster`, writing to `out`, its output to OUT.log. With `faults`, VICTIM is lost
    that many times, the k-th once k/(faults+1) of the shards are saved and while it runs a shard task, and replaced
    after each. {"exit", "seconds", "shards", "faults": [{"at_s", "shards_saved", "node_id", "replaced_s"}]}."""
    from tqdm import tqdm

    log, t0 = out.with_suffix(".log"), time.monotonic()
    deadline = t0 + args.timeout
    proc = cluster.driver([ROOT / "jobs" / "eval.py", "--limit", args.limit, "--shard-size", args.shard_size,
                           "--out", out], log, cwd=ROOT)
    bar, done = None, []

    def until(check) -> bool:
        """Poll `check` (the bar following the shards saved) until it holds (True) or the driver ended (False)."""
        while not check():
            if bar is not None:
                bar.update(shards_saved(out) - bar.n)
            if proc.poll() is not None:
                return False
            if time.monotonic() > deadline:
                raise TimeoutError(f"{out.name}: jobs/eval.py still running after {args.timeout:g} s (see {log})")
            time.sleep(0.5)
        return True

    try:
        if until(lambda: SHARD_COUNT.search(log.read_text())):
            total = int(SHARD_COUNT.search(log.read_text())[1])
            bar = tqdm(total=total, desc=out.name, unit="shard")
            for k in range(1, faults + 1):
                if not until(lambda: shards_saved(out) >= k * total // (faults + 1)):
                    break  # the driver ended first: the faults not injected are not counted
                at = {}

                def frozen():  # the shard task on VICTIM is stopped: what the job had done by the loss
                    at.update(at_s=round(time.monotonic() - t0, 1), shards_saved=shards_saved(out))

                at["node_id"] = cluster.kill_mid_task(VICTIM, "run_shard", timeout=300, frozen=frozen).node_id
                lost = time.monotonic()
                cluster.replace(VICTIM)
                at["replaced_s"] = round(time.monotonic() - lost, 1)
                done.append(at)
                bar.write(f"  fault {k}/{faults}: {VICTIM} lost {at['at_s']:.0f} s in, mid-shard, with "
                          f"{at['shards_saved']}/{total} shards saved; a new {VICTIM} up "
                          f"{at['replaced_s']:.1f} s later")
            until(lambda: proc.poll() is not None)
            bar.update(shards_saved(out) - bar.n)
    finally:
        if bar is not None:
            bar.close()
        if proc.poll() is None:  # an error or Ctrl-C here: the driver is in a session of its own
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.returncode:
        print(f"{out.name}: jobs/eval.py exited with {proc.returncode}:\n{log.read_text()[-3000:]}", flush=True)
    return {"exit": proc.returncode, "seconds": round(time.monotonic() - t0, 1),
            "shards": bar.total if bar is not None else None, "faults": done}


def transcripts(out: Path) -> list[dict]:
    """A run's transcript rows, in a fixed order ([] if it wrote none)."""
    import pyarrow.parquet as pq

    path = out / "transcripts.parquet"
    key = lambda r: (r["setting"], r["method"], r["dialog_id"], r["round"])  # noqa: E731
    return sorted(pq.read_table(path).to_pylist(), key=key) if path.exists() else []


def results(out: Path):
    path = out / "results.json"
    return json.loads(path.read_text())["results"] if path.exists() else None


def compare(clean: Path, faulted: Path) -> dict:
    """The faulted run against the clean one: dialogs (setting, method, id) attempted, lost (not in the faulted
    transcripts), duplicated (more rows there than in the clean run's), unexpected (not in the clean run), and
    whether results and transcripts are equal."""
    rows = {run: transcripts(run) for run in (clean, faulted)}
    dialogs = {run: Counter((r["setting"], r["method"], r["dialog_id"]) for r in rows[run]) for run in rows}
    expected, got = dialogs[clean], dialogs[faulted]
    return {"dialogs": len(expected), "lost": sum(d not in got for d in expected),
            "duplicated": sum(got[d] > n for d, n in expected.items()),
            "unexpected": sum(d not in expected for d in got),
            "results_equal": results(faulted) is not None and results(faulted) == results(clean),
            "transcripts_equal": bool(rows[clean]) and rows[faulted] == rows[clean]}


def settle(cluster, nodes: list) -> list[dict]:
    """The shard task attempts that failed on the lost `nodes`, once the state API says where each finished (Ray's
    task events arrive after the job ends); as they are if it has not within 60 s."""
    from cluster.local import wait_for

    failed = []

    def finished():
        failed[:] = cluster.failed_attempts("run_shard", nodes)
        return all(f["finished_on"] for f in failed)

    try:
        wait_for(finished, "the reruns of the lost shard tasks", 60, every=1)
    except AssertionError:
        pass
    return failed


def reruns(failed: list[dict]) -> str:
    """Where lost shard tasks finished: "node_b 2, node_a 1"."""
    return ", ".join(f"{n} {c}" for n, c in sorted(Counter(f["finished_on"] or "nowhere" for f in failed).items()))


def nodes_markdown(summary: dict, faults: list[dict]) -> str:
    """The summary row, then a row per fault."""
    s, yes = summary, {True: "yes", False: "**no**"}
    errors = ", ".join(sorted({f["error_type"] for f in s["failed"]}))
    cells = [s["faults"], s["dialogs"], s["lost"], s["duplicated"], yes[s["results_equal"]],
             yes[s["transcripts_equal"]], f"{len(s['failed'])} ({errors})" if errors else 0,
             reruns(s["failed"]) or "–", f"{s['wall_clean_s']:.0f}", f"{s['wall_faulted_s']:.0f}"]
    lines = ["| faults injected | dialogs attempted | lost | duplicated | results = clean | transcripts = clean | "
             "shard tasks lost | rerun on | wall clean s | wall faulted s |",
             "|---:|---:|---:|---:|---|---|---|---|---:|---:|",
             "| " + " | ".join(map(str, cells)) + " |",
             "",
             f"| fault | s into the run | shards saved | shard tasks lost | rerun on | new {VICTIM} up after s |",
             "|---:|---:|---:|---:|---|---:|"]
    for k, f in enumerate(faults, 1):
        lines.append(f"| {k} | {f['at_s']:.0f} | {f['shards_saved']}/{s['shards']} | {len(f['failed'])} | "
                     f"{reruns(f['failed']) or '–'} | {f['replaced_s']:.1f} |")
    return "\n".join(lines) + "\n"


def chaos_nodes(args, argv: list[str]) -> None:
    from cluster.local import LocalCluster, short_root

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `kill` too ends in the teardown below
    load = [os.getloadavg()[0]]
    cluster, ok = LocalCluster(short_root()), False
    print(f"a 3-node Ray cluster under {cluster.root}: head (0 CPUs), {', '.join(WORKERS)} (1 CPU each)", flush=True)
    try:
        cluster.start(WORKERS)
        runs = {"clean": cluster.root / "clean", "faulted": cluster.root / "faulted"}
        clean = eval_run(cluster, args, runs["clean"])
        if clean["exit"]:
            sys.exit("chaos.py: the clean run failed; nothing to compare with")
        faulted = eval_run(cluster, args, runs["faulted"], faults=args.faults)
        lost = [n for n in cluster.lost if n.node_id in {f["node_id"] for f in faulted["faults"]}]
        failed = settle(cluster, lost)
        load.append(os.getloadavg()[0])
        ok = True
    except KeyboardInterrupt:
        sys.exit("chaos.py: interrupted; the cluster is torn down")
    finally:
        left = cluster.stop()
        if left:
            print(f"processes of the cluster outlived it: {left}")
        if not ok:
            print(f"the cluster's logs and both runs are kept: {cluster.root}")
    summary = {"faults": len(faulted["faults"]), **compare(runs["clean"], runs["faulted"]),
               "faulted_exit": faulted["exit"], "shards": faulted["shards"], "failed": failed,
               "wall_clean_s": clean["seconds"], "wall_faulted_s": faulted["seconds"]}
    for f in faulted["faults"]:
        f["failed"] = [a for a in failed if a["node_id"] == f["node_id"]]
    table = nodes_markdown(summary, faulted["faults"])
    print("\n" + table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    mine = ("faults", "limit", "shard_size", "timeout", "out")
    out.write_text(json.dumps({"args": {k: getattr(args, k) for k in mine}, "cpus": os.cpu_count(),
                               "load_avg_1min": {"start": load[0], "end": load[-1]}, "summary": summary,
                               "faults": faulted["faults"]}, indent=1) + "\n")
    out.with_suffix(".md").write_text(
        f"Node loss (`python jobs/chaos.py {' '.join(argv)}`): jobs/eval.py on a 3-node Ray cluster on one machine "
        f"(head with 0 CPUs, node_a and node_b with 1 CPU each), {summary['shards']} shards of {args.shard_size} "
        f"dialogs, run clean and with {VICTIM} lost {summary['faults']} times mid-shard (every process SIGKILLed, "
        f"the node replaced after each); {os.cpu_count()} CPUs, 1-min load average {load[0]:.1f} at the start, "
        f"{load[-1]:.1f} at the end.\n\n" + table)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    whole = summary["results_equal"] and summary["transcripts_equal"] and not summary["faulted_exit"]
    if whole and not left:
        shutil.rmtree(cluster.root, ignore_errors=True)
    else:
        print(f"the cluster's logs and both runs are kept: {cluster.root}")


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
    ap.add_argument("--out", default=None, help="default results/chaos.json (--nodes: results/chaos_nodes.json)")
    nodes = ap.add_argument_group("--nodes: jobs/eval.py on a 3-node cluster on this machine, losing node_a")
    nodes.add_argument("--nodes", action="store_true", help="run this instead of the Serve soak")
    nodes.add_argument("--faults", type=int, default=3, help="times node_a is lost in the faulted run")
    nodes.add_argument("--limit", type=int, default=400, help="queries evaluated (x 4 methods: the dialogs)")
    nodes.add_argument("--shard-size", type=int, default=10, help="dialogs per shard task")
    nodes.add_argument("--timeout", type=float, default=3600, help="seconds each eval run may take")
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    if args.nodes:
        if min(args.faults, args.limit, args.shard_size) < 1:
            ap.error("--faults, --limit and --shard-size must be >= 1")
        args.out = args.out or "results/chaos_nodes.json"
        return chaos_nodes(args, argv)
    args.out = args.out or "results/chaos.json"
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
