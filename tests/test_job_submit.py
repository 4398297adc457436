"""jobs/eval.py as a Ray job: `ray start --head` with token auth on, then `ray job submit` as a user types it.

Token auth in Ray 2.60 (ray/_private/authentication/): RAY_AUTH_MODE=token turns it on; the token comes from
RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token. The job server answers 401 without
it, and the `ray job` CLI sends it only when its own environment says RAY_AUTH_MODE=token (or --headers).
The cluster here gets its own token file, ports and --temp-dir, so ~/.ray and /tmp/ray are left alone.
"""
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from ideal import build
from cluster.local import free_ports, session_pids

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
RAY = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"  # the CLI of the Ray this Python has
# Variables of the caller's shell that would send the CLI or the driver to another cluster or token.
FOREIGN = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH",
           "RAY_JOB_HEADERS")


@dataclass
class Cluster:
    dashboard: str  # http://127.0.0.1:PORT, where the job server listens
    gcs: str  # host:port, what drivers on the cluster connect to
    token: str
    temp_dir: Path
    env: dict  # a user's shell after docs/guide.md's `export RAY_AUTH_MODE=token` (token file: RAY_AUTH_TOKEN_PATH)


def http_get(url, token=None):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def ray_cli(*args, env, timeout=180):
    return subprocess.run([RAY, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def default_address_file():
    """/tmp/ray/ray_current_cluster: where a plain ray.init() looks for a cluster started by `ray start`."""
    from ray._common.utils import get_ray_address_file

    return Path(get_ray_address_file(None))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    foreign_before = {k: os.environ.get(k) for k in FOREIGN}
    temp_dir = tmp_path_factory.mktemp("ray")
    own_temp = len(str(temp_dir)) > 45  # Ray's unix sockets live under it, and a socket path has at most 107 bytes
    if own_temp:
        temp_dir = Path(tempfile.mkdtemp(prefix="ray-"))
    token_file = tmp_path_factory.mktemp("auth") / "auth_token"
    token_file.write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_file))
    gcs_port, dash_port, client_port, agent_port = free_ports(4)
    # --block: this process owns the cluster, and SIGTERM to it stops exactly this cluster; `ray stop` would
    # stop every Ray on the machine. No drain on SIGTERM: nothing here serves traffic (30 s otherwise).
    err = (temp_dir / "ray_start.err").open("w")
    proc = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--num-cpus", "2", "--port", str(gcs_port),
         "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash_port),
         "--ray-client-server-port", str(client_port), "--dashboard-agent-listen-port", str(agent_port),
         "--temp-dir", str(temp_dir), "--disable-usage-stats"],
        env={**env, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}, stdout=subprocess.DEVNULL,
        stderr=err, start_new_session=True)
    dashboard = f"http://127.0.0.1:{dash_port}"
    address_file = temp_dir / "ray_current_cluster"  # `ray start` writes it under --temp-dir once up
    try:
        deadline = time.monotonic() + 180  # a starved 2-core machine (the suite's other Ray still running)
        while not (address_file.exists() and http_get(dashboard + "/api/version", token_file.read_text())[0] == 200):
            assert proc.poll() is None, (temp_dir / "ray_start.err").read_text()[-3000:]
            assert time.monotonic() < deadline, "ray start: job server not up after 180 s"
            time.sleep(0.5)
        gcs = address_file.read_text().strip()
        yield Cluster(dashboard, gcs, token_file.read_text(), temp_dir, env)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        deadline = time.monotonic() + 10
        while session_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = session_pids(proc.pid)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        err.close()
        if own_temp:
            shutil.rmtree(temp_dir, ignore_errors=True)
    assert not left, f"processes of the test cluster outlived `ray start`: {left}"
    # nothing points later tests' plain ray.init() at this (stopped) cluster
    f = default_address_file()
    assert not f.exists() or gcs not in f.read_text()
    assert {k: os.environ.get(k) for k in FOREIGN} == foreign_before  # no RAY_ADDRESS or token mode leaked


@pytest.fixture(scope="module")
def gallery(bench_root, tmp_path_factory):
    """The shared benchmark's val gallery, encoded with the base weights (what `static` ranks with)."""
    return build.build_gallery(build.synthetic_source(bench_root, "val"), tmp_path_factory.mktemp("gallery") / "g",
                               encodings={"base": "base"}, progress=False)


def test_job_server_requires_the_token(cluster):
    assert http_get(cluster.dashboard + "/api/authentication_mode") == (200, '{"authentication_mode": "token"}')
    assert http_get(cluster.dashboard + "/api/version")[0] == 401
    assert http_get(cluster.dashboard + "/api/version", "0" * 64)[0] == 403
    assert http_get(cluster.dashboard + "/api/version", cluster.token)[0] == 200


def test_cli_sends_the_token_in_token_mode_only(cluster):
    # The token file alone is not enough: without RAY_AUTH_MODE=token the CLI sends no header.
    env = {k: v for k, v in cluster.env.items() if k != "RAY_AUTH_MODE"}
    p = ray_cli("job", "submit", "--address", cluster.dashboard, "--", "python", "-c", "pass", env=env)
    assert p.returncode != 0 and "Authentication required" in p.stderr, p.stderr[-3000:]
    # explicit header, e.g. for a remote cluster whose token is not stored locally
    env = {k: v for k, v in env.items() if k != "RAY_AUTH_TOKEN_PATH"}
    p = ray_cli("job", "list", "--address", cluster.dashboard,
                "--headers", json.dumps({"Authorization": f"Bearer {cluster.token}"}), env=env)
    assert p.returncode == 0, p.stderr[-3000:]


def test_plain_ray_init_would_not_join_this_cluster(cluster):
    # what ray.init(address=None) resolves (ray/_private/worker.py), from this pytest process's environment
    code = "from ray._private.services import canonicalize_bootstrap_address as c; print(c(None))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-3000:]
    assert cluster.gcs not in p.stdout


def test_submitted_eval_job(cluster, gallery, tmp_path):
    out = tmp_path / "out"
    p = ray_cli("job", "submit", "--address", cluster.dashboard, "--submission-id", "eval-static",
                "--working-dir", str(ROOT), "--",
                "python", "jobs/eval.py", "--methods", "static", "--rounds", "0", "--limit", "10", "--out", str(out),
                "--gallery", str(gallery), env=cluster.env)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    # the driver joined this cluster (RAY_ADDRESS set by the job server), it did not start a Ray of its own
    assert f"Connecting to existing Ray cluster at address: {cluster.gcs}" in p.stdout + p.stderr
    code, body = http_get(cluster.dashboard + "/api/jobs/eval-static", cluster.token)
    assert code == 200 and json.loads(body)["status"] == "SUCCEEDED"

    res = json.loads((out / "results.json").read_text())
    assert set(res["results"]) == {"scanrefer/fine/s0"} and res["queries"] == {"scanrefer/fine/s0": 10}
    # the job evaluated over the gallery it was given (its stored encoding), not one it built
    assert res["dataset"] == str(gallery.resolve()) and res["gallery"] == len(build.open_gallery(gallery).ids)
    r = res["results"]["scanrefer/fine/s0"]["static"]["0"]
    assert 0 <= r["R@1"] <= r["R@5"] <= r["R@10"] <= 100
    assert r["Rsum"] == pytest.approx(r["R@1"] + r["R@5"] + r["R@10"])
    # the code (and shipped weights) the job ran are the uploaded working dir, unpacked on the cluster
    assert res["weights"].startswith(str(cluster.temp_dir))
