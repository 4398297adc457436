"""A real multi-node Ray cluster on this machine: `ray start --head` and worker nodes (`ray start --address`), each
its own process session, with token auth, its own ports and --temp-dir; node loss (every process of a node
SIGKILLed at once, `kill`, or while a given task runs there, `kill_mid_task`), a node's CPUs held (`hold`), drivers
started on it (`driver`), and the cluster's state read back (`tasks`, `actors`, `node_state`, `failed_attempts`):
callers wait on what the cluster reports, never on sleeps. Used by tests/multinode/ and `python jobs/chaos.py --nodes`.

Token auth in Ray 2.60: RAY_AUTH_MODE=token turns it on (a plain `ray.init()` turns it on by itself, `ray start`
only if a token exists); the token comes from RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH, else
~/.ray/auth_token. Every process here gets RAY_AUTH_MODE=token and a token file of its own, so ~/.ray is untouched.
`ray start` writes ray_current_cluster (what a plain `ray.init()` joins) under --temp-dir, so /tmp/ray is untouched.
The process that starts the cluster never joins it (under pytest it may hold the suite's in-process Ray): drivers run
as subprocesses with `driver_env`, and the cluster is read through the dashboard's state API (with the token).
Nothing outlives `stop()`: it kills every node's process session.
"""
from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

RAY = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"  # the CLI of the Ray this Python has
# Variables of the caller's environment that would send a driver or the CLI to another cluster or token.
FOREIGN = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH",
           "RAY_JOB_HEADERS")
# GCS declares a node dead after failure_threshold failed health checks, one a period: ~3 s after its raylet is
# gone (the check is refused at once) instead of ~15 s; a live raylet on a busy machine still has 5 s to answer.
HEALTH = {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "5000",
          "RAY_health_check_failure_threshold": "3"}
OBJECT_STORE = 100 * 2**20  # bytes per node: the jobs here move kilobytes
HOLD = """
import sys, ray
from ray.util.placement_group import placement_group
ray.init(log_to_driver=False)
pg = placement_group([{"CPU": float(sys.argv[2]), sys.argv[1]: 1}], name="hold-" + sys.argv[1])
ray.get(pg.ready())
sys.stdin.read()  # held until the test closes stdin; the group goes with this job
"""


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def session_pids(sid: int) -> list[int]:
    """Live processes of the session `sid` (a node's `ray start` leads one; its daemons and workers stay in it)."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                zombie = (Path("/proc") / d / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
                if os.getsid(int(d)) == sid and not zombie:
                    pids.append(int(d))
            except OSError:
                pass
    return pids


def wait_for(check: Callable[[], object], what: str, timeout: float = 60, every: float = 0.2,
             alive: Optional[subprocess.Popen] = None):
    """Poll `check` until it returns something truthy (returned); fail after `timeout` s, or as soon as the
    process `alive` has exited."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"{what}: the process ended (exit {alive.returncode}) first")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout} s")
        time.sleep(every)


def process_title(pid: int) -> str:
    """argv[0] of a process: a Ray worker sets it to ray::TASK while it runs TASK."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").split()
    except OSError:
        return ""
    return args[0].decode(errors="replace") if args else ""


@dataclass
class Node:
    name: str  # "head", or the custom resource that steers work to it ("node_a")
    cpus: int
    proc: subprocess.Popen  # `ray start --block`, leader of the node's session: killing the session is losing the node
    temp_dir: Path
    node_id: str = ""

    def pids(self) -> list[int]:
        return session_pids(self.proc.pid)


@dataclass
class LocalCluster:
    root: Path  # short (Ray's unix sockets live under it and a socket path has at most 107 bytes)
    nodes: dict[str, Node] = field(default_factory=dict)
    gcs: str = ""  # host:port, what drivers join
    dashboard: str = ""  # http://127.0.0.1:PORT: the state API

    def __post_init__(self):
        self.token_file = self.root / "auth_token"
        self.token_file.write_text(secrets.token_hex(32))
        self.env = {k: v for k, v in os.environ.items() if k not in FOREIGN}
        self.env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(self.token_file))
        # worker ports: a block of 100 per node, away from the default range (10002-19999) the suite's
        # in-process Ray uses and from the kernel's ephemeral ports (>= 32768) that free_ports hands out
        self._next_port = random.randrange(20000, 30000, 100)
        self.lost: list[Node] = []  # nodes killed, kept for their logs

    @property
    def driver_env(self) -> dict:
        """The environment of a driver (`python jobs/X.py`) on this cluster."""
        return {**self.env, "RAY_ADDRESS": self.gcs}

    # -- start and stop --------------------------------------------------------------------------------------

    def start(self, workers: dict[str, int]) -> None:
        """The head (no CPUs: drivers attach to it, work runs on workers) and one worker per name, with `cpus`
        logical CPUs and the custom resource {name: 1}."""
        for attempt in range(3):  # as for a worker (wait_alive): a head that gave up is started again
            gcs_port, dash_port, client_port = free_ports(3)
            self.dashboard = f"http://127.0.0.1:{dash_port}"
            self._start("head", 0, ["--head", "--port", str(gcs_port), "--include-dashboard", "true",
                                    "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash_port),
                                    "--ray-client-server-port", str(client_port)])
            head = self.nodes["head"]
            address_file = head.temp_dir / "ray_current_cluster"  # written under --temp-dir once up
            try:
                wait_for(lambda: address_file.exists() and self._get("/api/v0/nodes?limit=10", quiet=True),
                         "the head node and its state API", 180, alive=head.proc)
                break
            except AssertionError:
                if head.proc.poll() is None or attempt == 2:
                    raise
                self._kill_session(head)
                self.lost.append(self.nodes.pop("head"))
        self.gcs = address_file.read_text().strip()
        self.nodes["head"].node_id = wait_for(lambda: self._node_id(head=True), "the head in the node table")
        for name, cpus in workers.items():  # one at a time: a node starting is a burst of work for the machine
            self.add_worker(name, cpus)

    def add_worker(self, name: str, cpus: int, wait: bool = True) -> Node:
        """Start a worker node; with `wait`, return once GCS lists it alive."""
        self._start(name, cpus, ["--address", self.gcs, "--resources", json.dumps({name: 1})])
        return self.wait_alive(name) if wait else self.nodes[name]

    def wait_alive(self, name: str, attempts: int = 5) -> Node:
        """The worker node `name` once GCS lists it alive. On a starved machine `ray start` can give up: its raylet
        exits when the dashboard agent has not written its port files within 15 s (hard-coded in Ray 2.60, "Timed out
        waiting for file" in raylet.out), or has not registered within 30 s; it is then started again, up to
        `attempts` times in all."""
        for attempt in range(attempts):
            node = self.nodes[name]
            try:
                if not node.node_id:
                    node.node_id = wait_for(lambda: self._node_id(resource=name), f"worker node {name} alive", 180,
                                            alive=node.proc)
                return node
            except AssertionError:
                if node.proc.poll() is None or attempt == attempts - 1:
                    raise
                self._kill_session(node)  # what it had started
                self.lost.append(self.nodes.pop(name))
                self.add_worker(name, node.cpus, wait=False)

    def _start(self, name: str, cpus: int, args: list[str]) -> None:
        # a folder per incarnation of a node (node_a, node_a.1, ...): a lost node's logs stay as they were
        lost = sum(n.name == name for n in self.lost)
        temp_dir = self.root / (f"{name}.{lost}" if lost else name)
        temp_dir.mkdir()
        ports = free_ports(6)
        lo = self._next_port
        self._next_port += 100
        cmd = [RAY, "start", "--block", *args, "--num-cpus", str(cpus), "--temp-dir", str(temp_dir),
               "--object-store-memory", str(OBJECT_STORE), "--disable-usage-stats",
               "--include-log-monitor", "false",  # drivers here read no worker output: it stays in the logs
               "--node-manager-port", str(ports[0]), "--object-manager-port", str(ports[1]),
               "--metrics-export-port", str(ports[2]), "--dashboard-agent-listen-port", str(ports[3]),
               "--dashboard-agent-grpc-port", str(ports[4]), "--runtime-env-agent-port", str(ports[5]),
               "--min-worker-port", str(lo), "--max-worker-port", str(lo + 99)]
        with (temp_dir / "ray_start.log").open("a") as log:
            # own session: the node's processes can be told apart from every other Ray on the machine
            proc = subprocess.Popen(cmd, env={**self.env, **HEALTH}, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.nodes[name] = Node(name, cpus, proc, temp_dir)

    def stop(self) -> list[int]:
        """SIGKILL every process of every node (its session); returns the pids still alive after 10 s."""
        nodes = list(self.nodes.values()) + self.lost
        for node in nodes:
            self._kill_session(node)
        deadline = time.monotonic() + 10
        while any(n.pids() for n in nodes) and time.monotonic() < deadline:
            time.sleep(0.1)
        return [p for n in nodes for p in n.pids()]

    # -- node loss -------------------------------------------------------------------------------------------

    def kill(self, name: str) -> Node:
        """Lose the worker node `name`: its raylet, workers and agents SIGKILLed at once, nothing drained. Returns
        once GCS has declared it dead."""
        assert name != "head", "losing the head is losing the cluster"
        node = self.nodes[name]
        assert any(process_title(p).endswith("/raylet") for p in node.pids()), f"{name} has no raylet running"
        self._kill_session(node)
        self.lost.append(self.nodes.pop(name))
        wait_for(lambda: self.node_state(node.node_id) == "DEAD", f"{name} declared dead", 60)
        return node

    def kill_mid_task(self, name: str, title: str, timeout: float = 120,
                      frozen: Optional[Callable[[], None]] = None) -> Node:
        """Lose the worker node `name` while one of its workers runs `title` (a task's name, or an actor's
        Class.method: Ray titles a busy worker process ray::TITLE and an idle one ray::IDLE). The busy workers are
        frozen (SIGSTOP) and their title read again before the kill, so the node goes mid-task, never in the gap
        between two tasks. `frozen` is called in that moment, before the kill: what it reads of the job is its state
        when the node went (the rest of the cluster goes on working until GCS declares the node dead)."""
        node = self.nodes[name]
        deadline = time.monotonic() + timeout
        while True:
            busy = [p for p in node.pids() if process_title(p) == f"ray::{title}"]
            for pid in busy:
                os.kill(pid, signal.SIGSTOP)
            if any(process_title(p) == f"ray::{title}" for p in busy):
                if frozen is not None:
                    frozen()
                return self.kill(name)
            for pid in busy:
                os.kill(pid, signal.SIGCONT)
            assert time.monotonic() < deadline, f"no worker of {name} seen running {title} within {timeout} s"
            time.sleep(0.01)

    def _kill_session(self, node: Node) -> None:
        for pid in node.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            node.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    @contextmanager
    def hold(self, name: str):
        """Every CPU of the worker node `name` reserved (a placement group of another driver), so that no other
        work lands there until the block ends."""
        node = self.nodes[name]
        proc = subprocess.Popen([sys.executable, "-c", HOLD, name, str(node.cpus)], env=self.driver_env,
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            wait_for(lambda: self._list("placement_groups", name=f"hold-{name}", state="CREATED"),
                     f"{name}'s CPUs held", 60, alive=proc)
            yield
        finally:
            proc.stdin.close()  # the driver returns, its job ends and the placement group with it
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def driver(self, argv: list, log: Path, cwd: Optional[Path] = None) -> subprocess.Popen:
        """`python ARGV...` as a driver on this cluster, in a process session of its own (end it with os.killpg), its
        output to the file `log`."""
        with Path(log).open("w") as f:
            return subprocess.Popen([sys.executable, *map(str, argv)], cwd=cwd, env=self.driver_env, stdout=f,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def replace(self, name: str, wait: bool = True) -> Node:
        """A fresh worker node in place of the lost `name`, same CPUs and custom resource."""
        lost = [n for n in self.lost if n.name == name]
        return self.add_worker(name, lost[-1].cpus, wait)

    # -- what the cluster reports ----------------------------------------------------------------------------

    def _get(self, path: str, quiet: bool = False):
        req = urllib.request.Request(self.dashboard + path,
                                     headers={"Authorization": f"Bearer {self.token_file.read_text()}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                body = json.loads(r.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if quiet:
                return None
            raise
        if not body.get("result", True):
            if quiet:
                return None
            raise AssertionError(f"state API {path}: {body.get('msg')}")
        return body["data"]["result"]["result"]

    def _list(self, kind: str, **filters) -> list[dict]:
        query = [("detail", "true"), ("limit", "10000")]
        for key, value in filters.items():
            query += [("filter_keys", key), ("filter_predicates", "="), ("filter_values", str(value))]
        return self._get(f"/api/v0/{kind}?{urllib.parse.urlencode(query)}")

    def list_nodes(self) -> list[dict]:
        return self._get("/api/v0/nodes?limit=1000")

    def _node_id(self, head: bool = False, resource: str = "") -> str:
        for n in self.list_nodes() or []:
            if n["state"] == "ALIVE" and (n["is_head_node"] if head else n["resources_total"].get(resource)):
                return n["node_id"]
        return ""

    def node_state(self, node_id: str) -> str:
        return next((n["state"] for n in self.list_nodes() if n["node_id"] == node_id), "")

    def tasks(self, **filters) -> list[dict]:
        """Task attempts (one row per attempt) from the state API, e.g. tasks(name="run_shard")."""
        return self._list("tasks", **filters)

    def actors(self, **filters) -> list[dict]:
        return self._list("actors", **filters)

    def failed_attempts(self, name: str, nodes: list[Node]) -> list[dict]:
        """The attempts of task `name` that failed on one of `nodes` (lost ones, say), oldest first, each as
        {"task_id", "attempt", "node_id", "error_type", "finished_on": the node where the task then finished, or ""}."""
        attempts = self.tasks(name=name)
        ids = {n.node_id for n in nodes}
        finished = {t["task_id"]: self.node_of_name(t["node_id"]) for t in attempts if t["state"] == "FINISHED"}
        failed = [t for t in attempts if t["node_id"] in ids and t["state"] == "FAILED"]
        return [{"task_id": t["task_id"], "attempt": t["attempt_number"], "node_id": t["node_id"],
                 "error_type": t["error_type"], "finished_on": finished.get(t["task_id"], "")}
                for t in sorted(failed, key=lambda t: t.get("start_time_ms") or 0)]

    def node_of_name(self, node_id: str) -> str:
        """The name (custom resource) of a worker node, alive or lost, from its id."""
        return next((n.name for n in [*self.nodes.values(), *self.lost] if n.node_id == node_id), "")


def short_root() -> Path:
    """A fresh short folder under /tmp for the cluster's temp dirs (pytest's tmp_path is too long for Ray's socket
    paths)."""
    return Path(tempfile.mkdtemp(prefix="rmn-", dir="/tmp"))
