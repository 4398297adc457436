"""A real local Serve app of the IDeal page for the browser tests and the screenshot script: one local Ray
(2 CPUs, replicas at num_cpus=0, as in tests/deployments/test_serve.py) serving an encoded gallery."""
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def small_gallery(tmp: Path) -> Path:
    """A 40-scene benchmark's val gallery (10 scenes) encoded with the IAT weights; its scans deleted."""
    root = generate(tmp / "bench", n_scenes=40, seed=3, progress=False)
    g = build.build_gallery(build.synthetic_source(root, "val"), tmp / "gallery", encodings={"iat": "iat"},
                            progress=False)
    shutil.rmtree(root / "scans")
    return g


def start(gallery=None, simulated_user: bool = True) -> tuple[str, ServiceSpec]:
    """Start Ray, Serve on a free port and the app ("ideal" at /); returns (its URL, the resolved spec)."""
    spec = ServiceSpec(gallery=str(gallery) if gallery else None).resolved()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    names = ("Ingress", "Retriever", "Questioner") + (("Answerer",) if simulated_user else ())
    serve.run(build_app({"gallery": spec.gallery, "weights": spec.weights, "simulated_user": simulated_user,
                         "deployment_options": {n: dict(ZERO) for n in names}}), name="ideal", route_prefix="/")
    return f"http://127.0.0.1:{port}", spec


def stop() -> None:
    serve.shutdown()
    ray.shutdown()
