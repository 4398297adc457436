"""Faults injected into a live Serve app of IDeal, measured from its clients (tests/deployments/test_faults.py,
jobs/chaos.py).

    async with Load(url, requests_from(url), clients=56) as load:
        faults = [await inject(load, name, min_in_flight=50) for name in ("Retriever", "Ingress", "proxy")]
    print(markdown(rows(load.samples, faults)))

`Load` keeps N clients in flight against the HTTP API (each sends its next request when its last one is answered)
and records every request's status and latency; the clients never retry, so every lost request is counted.
`kill_replica` kills a replica of a named deployment once the observed in-flight count is reached (the replica
holding the most requests, by Serve's own count); `replaced` waits until Serve runs a new replica in its place.
`kill_proxy` kills Serve's HTTP proxy actor; `proxy_back` waits until a request sent after the kill succeeds and
the controller reports the new proxy HEALTHY. `inject` is one of either with its recovery; `rows` makes the table:
per fault the requests attempted, failed, 5xx, p99 latency around the fault, recovery time.
"""
from __future__ import annotations

import asyncio
import bisect
import json
import math
import time
import urllib.request
from dataclasses import dataclass
from typing import Optional

import aiohttp
import ray
from ray import serve

NAMESPACE = "serve"  # where Serve's actors live
ROLES = ("Retriever", "Questioner", "Answerer", "Ingress")
QUESTIONS = ("Which room is it in?", "Is there a table near it?")
ANSWERS = ("It is a bedroom.", "I don't know.")


@dataclass(frozen=True)
class Sample:
    path: str
    start: float  # time.monotonic()
    end: float
    status: int | str  # the HTTP status, or the client error's class name (connection refused or reset)

    @property
    def ok(self) -> bool:
        return isinstance(self.status, int) and 200 <= self.status < 300


def requests_from(url: str, n: int = 20) -> list[tuple[str, dict]]:
    """(path, body) pairs from the app's own val descriptions (`GET /v1/examples`): rounds with 0, 1 or 2 answered
    turns, and one request in four the simulated user's answer (`POST /v1/answers`), so every role is on a path."""
    with urllib.request.urlopen(f"{url}/v1/examples?n={n}", timeout=120) as r:
        examples = json.loads(r.read())["examples"]
    out = []
    for i, e in enumerate(examples):
        history = [{"question": q, "answer": a} for q, a in zip(QUESTIONS, ANSWERS)][:i % 3]
        out.append(("/v1/rounds", {"query": e["query"], "history": history, "k": 10}))
        if i % 3 == 0:
            out.append(("/v1/answers", {"query": e["query"], "history": [], "target": e["target"],
                                        "question": QUESTIONS[0], "dialog_id": e["desc_id"]}))
    return out


class Load:
    """`clients` concurrent clients cycling through `requests` until stopped; `in_flight` is how many are awaiting
    an answer now, `samples` every finished request. A client whose request failed below HTTP (connection refused
    while the proxy is down) pauses `pause_on_error_s` before its next one, so a dead front door is not spun on."""

    def __init__(self, url: str, requests: list[tuple[str, dict]], clients: int, timeout_s: float = 60.0,
                 pause_on_error_s: float = 0.25):
        self.url, self.requests, self.clients = url.rstrip("/"), requests, clients
        self.timeout_s, self.pause_on_error_s = timeout_s, pause_on_error_s
        self.samples: list[Sample] = []
        self._open: dict[int, float] = {}  # client -> start of the request it awaits
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._session: Optional[aiohttp.ClientSession] = None

    @property
    def in_flight(self) -> int:
        return len(self._open)

    def drained(self, t: float) -> bool:
        """Whether every request sent by time `t` has been answered (or has failed)."""
        return all(start > t for start in self._open.values())

    async def __aenter__(self) -> "Load":
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.clients),
                                              timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        self._tasks = [asyncio.create_task(self._client(i)) for i in range(self.clients)]
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def stop(self, cancel: bool = False) -> None:
        """No new requests; wait for those in flight (cancel=True: drop them, unrecorded)."""
        if self._session is None:
            return
        self._stop.set()
        if cancel:
            for t in self._tasks:
                t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=cancel)
        await self._session.close()
        self._session = None

    async def _client(self, i: int) -> None:
        n = i
        while not self._stop.is_set():
            path, body = self.requests[n % len(self.requests)]
            n += self.clients
            t = self._open[i] = time.monotonic()
            try:
                async with self._session.post(self.url + path, json=body) as res:
                    await res.read()
                    status = res.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                status = type(e).__name__
            finally:
                del self._open[i]
            self.samples.append(Sample(path, t, time.monotonic(), status))
            if not isinstance(status, int):
                await asyncio.sleep(self.pause_on_error_s)

    async def until(self, done, what: str, timeout_s: float = 60.0, poll_s: float = 0.01) -> None:
        """Wait until `done()` (an observed state) holds; TimeoutError naming `what` past `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"not within {timeout_s:g} s: {what}")
            await asyncio.sleep(poll_s)


@dataclass
class Fault:
    what: str  # "Retriever replica", "HTTP proxy"
    victim: str  # the actor's name
    t_kill: float  # time.monotonic()
    in_flight: int  # clients awaiting an answer at the kill
    held: Optional[int]  # requests the victim held at the kill (its own count)
    app: str = "ideal"
    deployment: Optional[str] = None
    target: int = 1  # replicas of the deployment to get back to
    t_replacing: Optional[float] = None  # when Serve's replacement replica first showed up (starting)
    t_recovered: Optional[float] = None

    @property
    def recovery_s(self) -> Optional[float]:
        return None if self.t_recovered is None else self.t_recovered - self.t_kill


def replicas(app: str, deployment: str) -> dict[str, object]:
    """The live replica actors of a deployment, by name (a dead actor's name is released at once)."""
    prefix = f"SERVE_REPLICA::{app}#{deployment}#"
    out = {}
    for a in ray.util.list_named_actors(all_namespaces=True):
        if a["namespace"] == NAMESPACE and a["name"].startswith(prefix):
            try:
                out[a["name"]] = ray.get_actor(a["name"], namespace=NAMESPACE)
            except ValueError:  # died since it was listed
                pass
    return out


def running(app: str, deployment: str) -> int:
    """Replicas RUNNING as serve.status() reports them, 0 unless the deployment is HEALTHY in a RUNNING app."""
    status = serve.status().applications.get(app)
    d = status.deployments.get(deployment) if status else None
    if d is None or status.status != "RUNNING" or d.status != "HEALTHY":
        return 0
    return d.replica_states.get("RUNNING", 0)


async def kill_replica(load: Load, app: str, deployment: str, min_in_flight: int = 50, min_held: int = 1,
                       timeout_s: float = 60.0) -> Fault:
    """Once `min_in_flight` clients are in flight and a replica of `deployment` holds `min_held` requests, kill the
    replica holding the most (ray.kill, no restart by Ray: Serve has to notice and replace it)."""
    target = await asyncio.to_thread(running, app, deployment)
    actors = await asyncio.to_thread(replicas, app, deployment)
    if not target or len(actors) != target:
        raise RuntimeError(f"{app}/{deployment}: {len(actors)} replica actors, {target} RUNNING: not steady")
    deadline = time.monotonic() + timeout_s
    while True:
        if load.in_flight >= min_in_flight:
            counts = await asyncio.gather(*(a.get_num_ongoing_requests.remote() for a in actors.values()))
            held = dict(zip(actors, counts))
            victim = max(held, key=held.get)
            if held[victim] >= min_held and load.in_flight >= min_in_flight:
                break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{deployment}: {min_in_flight} clients in flight with a replica holding {min_held} "
                               f"not seen within {timeout_s:g} s (in flight {load.in_flight})")
        await asyncio.sleep(0.005)
    fault = Fault(f"{deployment} replica", victim, time.monotonic(), load.in_flight, held[victim], app, deployment,
                  target)
    ray.kill(actors[victim], no_restart=True)
    return fault


async def replaced(fault: Fault, timeout_s: float = 120.0) -> Fault:
    """Wait until Serve runs `fault.target` replicas again, the killed one not among them; sets t_recovered."""
    def back() -> bool:
        names = replicas(fault.app, fault.deployment)
        if fault.t_replacing is None and len(names) == fault.target and fault.victim not in names:
            fault.t_replacing = time.monotonic()
        return (fault.victim not in names and len(names) == fault.target
                and running(fault.app, fault.deployment) == fault.target)

    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(back):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{fault.deployment}: not back to {fault.target} RUNNING replicas within {timeout_s:g} s:"
                               f" {serve.status().applications.get(fault.app)}")
        await asyncio.sleep(0.05)
    fault.t_recovered = time.monotonic()
    return fault


def proxy_name(node_id: Optional[str] = None) -> str:
    """The name of Serve's HTTP proxy actor on a node (default: this one)."""
    return f"SERVE_PROXY_ACTOR-{node_id or ray.get_runtime_context().get_node_id()}"


async def kill_proxy(load: Load, min_in_flight: int = 50, node_id: Optional[str] = None,
                     timeout_s: float = 60.0) -> Fault:
    """Once `min_in_flight` clients are in flight, kill the HTTP proxy actor of the node (default: this one)."""
    name = proxy_name(node_id)
    actor = ray.get_actor(name, namespace=NAMESPACE)
    await load.until(lambda: load.in_flight >= min_in_flight, f"{min_in_flight} clients in flight", timeout_s)
    fault = Fault("HTTP proxy", name, time.monotonic(), load.in_flight, None)  # the proxy keeps no public count
    ray.kill(actor, no_restart=True)
    return fault


async def proxy_back(load: Load, fault: Fault, timeout_s: float = 180.0) -> Fault:
    """Wait until a request sent after the kill succeeds (t_recovered: its end) and the controller reports the
    node's new proxy HEALTHY."""
    node = fault.victim.removeprefix("SERVE_PROXY_ACTOR-")
    first: list[float] = []

    def served_again() -> bool:
        if not first:
            first.extend(s.end for s in load.samples if s.start >= fault.t_kill and s.ok)
        return bool(first)

    await load.until(served_again, "a request sent after the proxy kill to succeed", timeout_s, poll_s=0.02)
    deadline = time.monotonic() + timeout_s
    while (await asyncio.to_thread(lambda: serve.status().proxies.get(node))) != "HEALTHY":
        if time.monotonic() > deadline:
            raise TimeoutError(f"proxy on {node} not HEALTHY within {timeout_s:g} s")
        await asyncio.sleep(0.1)
    fault.t_recovered = min(first)
    return fault


async def inject(load: Load, fault: str, app: str = "ideal", min_in_flight: int = 50, min_held: int = 1,
                 timeout_s: float = 180.0) -> Fault:
    """One fault under the running load, and its recovery observed: `fault` a deployment's name (one replica
    killed; recovered when Serve runs its replacement) or "proxy" (recovered when a request sent after the kill
    succeeds). Returns once every request in flight at the kill has ended too, so that what the fault cost ends
    before the next one is injected."""
    if fault == "proxy":
        f = await proxy_back(load, await kill_proxy(load, min_in_flight, timeout_s=timeout_s), timeout_s)
    else:
        f = await replaced(await kill_replica(load, app, fault, min_in_flight, min_held, timeout_s), timeout_s)
    await load.until(lambda: load.drained(f.t_kill), "the requests in flight at the kill to end", timeout_s)
    return f


def periods(samples: list[Sample], faults: list[Fault]) -> list[list[Sample]]:
    """The requests that ended before the first kill, then for each fault (as `inject` left them: each injected once
    the requests in flight at the last one had ended) those that ended from its kill to the next."""
    kills = [f.t_kill for f in faults]
    groups: list[list[Sample]] = [[] for _ in range(len(faults) + 1)]
    for s in samples:
        groups[bisect.bisect_right(kills, s.end)].append(s)
    return groups


def rows(samples: list[Sample], faults: list[Fault]) -> list[dict]:
    """The table: a row ("none") before the first kill, then one per fault, over its period's requests."""
    groups = periods(samples, faults)
    t0 = min((s.start for s in samples), default=0.0)
    out = [summary(groups[0], None)]
    for g, f in zip(groups[1:], faults):
        out.append({**summary(g, f, samples), "killed_at_s": _round(f.t_kill - t0, 1)})
    return out


def percentile(xs: list[float], q: float) -> Optional[float]:
    """The q-th percentile by nearest rank (None for no values)."""
    if not xs:
        return None
    xs = sorted(xs)
    return xs[max(0, math.ceil(q / 100 * len(xs)) - 1)]


def summary(mine: list[Sample], fault: Optional[Fault], everything: Optional[list[Sample]] = None) -> dict:
    """A table row over the requests `mine`: attempted, failed (not 2xx, or no HTTP answer), 5xx, statuses; p50/p99
    latency over the requests (of `everything`, default `mine`) in flight at some point from the fault's kill to its
    recovery (all of `mine` without a fault); the fault's own figures."""
    if fault is None:
        window = mine
    else:
        stop = fault.t_recovered if fault.t_recovered is not None else math.inf
        window = [s for s in (mine if everything is None else everything) if s.end >= fault.t_kill and s.start <= stop]
    by_status: dict[str, int] = {}
    for s in mine:
        by_status[str(s.status)] = by_status.get(str(s.status), 0) + 1
    ms = [(s.end - s.start) * 1000 for s in window]
    row = {"fault": fault.what if fault else "none", "attempted": len(mine),
           "failed": sum(not s.ok for s in mine),
           "5xx": sum(isinstance(s.status, int) and s.status >= 500 for s in mine),
           "p50_ms": _round(percentile(ms, 50)), "p99_ms": _round(percentile(ms, 99)), "window_requests": len(ms),
           "recovery_s": _round(fault.recovery_s, 2) if fault else None, "by_status": dict(sorted(by_status.items()))}
    if fault is not None:
        replacing = None if fault.t_replacing is None else fault.t_replacing - fault.t_kill
        row.update(victim=fault.victim, replicas=fault.target if fault.deployment else None,
                   in_flight_at_kill=fault.in_flight, held_by_victim=fault.held,
                   replacement_started_s=_round(replacing, 2),
                   failed_in_flight_at_kill=sum(not s.ok and s.start <= fault.t_kill <= s.end for s in mine))
    return row


def _round(x: Optional[float], digits: int = 1) -> Optional[float]:
    return None if x is None else round(x, digits)


def markdown(rows: list[dict]) -> str:
    """The rows as a Markdown table: fault, attempted, failed, 5xx, p99 ms, recovery s."""
    lines = ["| fault injected | requests attempted | failed | 5xx | p99 ms | recovery s |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        cells = [r["fault"], r["attempted"], r["failed"], r["5xx"], r["p99_ms"], r["recovery_s"]]
        lines.append("| " + " | ".join("–" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"
