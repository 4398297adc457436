"""The app in Serve's throughput-optimized mode (RAY_SERVE_THROUGHPUT_OPTIMIZED=1: direct ingress, gRPC between
replicas, user code on the replica's main loop), the mode docs/guide.md recommends for serving: the same answers
as the in-process roles, 4xx for bad input, and simulated dialogs through the handles (which in this mode must
be awaited, never blocked on). A fresh process: the mode is read when Ray and Serve are imported."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ideal.serving import AnswererService, QuestionerService, RoundRequest, RetrieverService, ServiceSpec, simulate_here

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gallery(serve_gallery):
    return serve_gallery[1]


def test_throughput_optimized_mode(gallery, text_encoder):
    spec = ServiceSpec(gallery=str(gallery)).resolved()
    search, ask = RetrieverService(spec, text_encoder), QuestionerService(spec)
    user = AnswererService(spec, text_encoder)
    target = spec.open().ids[0]
    env = {**os.environ, "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}
    p = subprocess.run([sys.executable, "-m", "tests.deployments.throughput_mode_app", spec.gallery,
                        str(free_port()), target], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    assert p.returncode == 0 and lines, p.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])

    query = "the brown chair next to the table"
    for key, history in (("first", ()), ("second", ((out["first"][1]["question"], "It is an office."),))):
        status, body = out[key]
        (st,) = ask.ask(search.rank([RoundRequest(query, history, 5)]))
        assert status == 200 and body["question"] == st.question.text and body["round"] == len(history) + 1
        assert [r["scene_id"] for r in body["ranking"]] == [sid for sid, _ in st.top[:5]]
        np.testing.assert_allclose([r["score"] for r in body["ranking"]], [s for _, s in st.top[:5]], atol=1e-5)
    assert out["bad"] == [422, {"detail": "query is empty"}]

    want = simulate_here(search, ask, user, query, target, 2, "d0")
    assert out["simulated"]["ranks"] == want["ranks"]
    assert [list(t) for t in want["history"]] == out["simulated"]["history"]
