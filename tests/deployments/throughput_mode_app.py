"""Run by test_throughput_mode.py in a fresh process with RAY_SERVE_THROUGHPUT_OPTIMIZED=1 (the mode must be set
before Ray and Serve are imported): the app over HTTP and a simulated dialog through the handles; prints JSON.

    RAY_SERVE_THROUGHPUT_OPTIMIZED=1 python -m tests.deployments.throughput_mode_app GALLERY_DIR PORT TARGET_SCENE
"""
import asyncio
import json
import sys

import httpx
import ray
from ray import serve

from deployments.app import build_app
from ideal.serving import ServiceSpec


def main(gallery: str, port: int, target: str) -> None:
    spec = ServiceSpec(gallery=gallery).resolved()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    zero = {"ray_actor_options": {"num_cpus": 0}}
    serve.run(build_app({"gallery": spec.gallery, "weights": spec.weights, "overrides": list(spec.overrides),
                         "deployment_options": {n: zero for n in ("Ingress", "Retriever", "Questioner", "Answerer")}}),
              name="ideal", route_prefix="/")
    out = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
        first = c.post("/v1/rounds", json={"query": "the brown chair next to the table", "k": 5})
        out["first"] = [first.status_code, first.json()]
        q = first.json()["question"]
        second = c.post("/v1/rounds", json={"query": "the brown chair next to the table", "k": 5,
                                            "history": [{"question": q, "answer": "It is an office."}]})
        out["second"] = [second.status_code, second.json()]
        bad = c.post("/v1/rounds", json={"query": "", "k": 5})
        out["bad"] = [bad.status_code, bad.json()]

    async def through_handles():
        return await serve.get_app_handle("ideal").simulate.remote("the brown chair next to the table",
                                                                   target, 2, "d0")

    out["simulated"] = asyncio.run(through_handles())
    print("RESULT " + json.dumps(out), flush=True)
    # not serve.shutdown(): in this mode it closes the handles on the loop they were used on, gone with asyncio.run
    ray.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
