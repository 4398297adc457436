"""A real local Serve app of IDeal for the Serve, web and screenshot runs: a local Ray (2 CPUs, replicas at
num_cpus=0) serving an encoded gallery whose benchmark scans are deleted."""
import shutil
import socket
from pathlib import Path

import ray
from ray import serve

from deployments.app import build_app
from ideal import build
from ideal.scenes.synthetic import generate
from ideal.serving import ServiceSpec

ZERO = {"ray_actor_options": {"num_cpus": 0}}
ROLES = ("Ingress", "Retriever", "Questioner", "Answerer")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def small_gallery(tmp: Path) -> tuple[Path, Path]:
    """(benchmark root, gallery): a 40-scene benchmark's val gallery (10 scenes) encoded with the IAT weights,
    then the benchmark's scans deleted."""
    root = generate(tmp / "bench", n_scenes=40, seed=3, progress=False)
    g = build.build_gallery(build.synthetic_source(root, "val"), tmp / "gallery", encodings={"iat": "iat"},
                            progress=False)
    shutil.rmtree(root / "scans")
    return root, g


def init_ray() -> None:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)


def run(spec: ServiceSpec, retriever_replicas: int = 1, limits: dict | None = None) -> str:
    """Serve over HTTP on a free port (Serve started here) with the app "ideal" at / and the simulated user;
    returns its URL."""
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    options = {name: dict(ZERO) for name in ROLES}
    options["Retriever"]["num_replicas"] = retriever_replicas
    serve.run(build_app({"gallery": spec.gallery, "weights": spec.weights, "overrides": list(spec.overrides),
                         "deployment_options": options, "limits": limits or {}}), name="ideal", route_prefix="/")
    return f"http://127.0.0.1:{port}"


def start(gallery=None) -> tuple[str, ServiceSpec]:
    """Start Ray, Serve and the app; returns (its URL, the resolved spec)."""
    spec = ServiceSpec(gallery=str(gallery) if gallery else None).resolved()
    init_ray()
    return run(spec), spec


def stop() -> None:
    serve.shutdown()
    ray.shutdown()
