"""Faults on the live Serve app (tests/conftest.py `served`) under load (deployments/chaos.py): 56 HTTP clients that
never retry, a mix of rounds and simulated-user answers; one replica of the Retriever, the Questioner, the Answerer
and the Ingress killed in turn, each once >= 50 requests are in flight and the replica holds one, and the next only
after Serve has replaced it; then Serve's HTTP proxy. Writes the figures to results/faults.json.

What a kill may cost: a role replica nothing, as the Ingress sends a call lost with its replica again (to a sibling,
or to the replacement Serve starts), except that a call waiting for the replacement of a deployment's only replica
gets its 504 at the deadline if the replacement is not running by then. An Ingress replica the requests it held:
the proxy does not send them again. The proxy: requests succeed again within a bound."""
import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from ray import serve

from deployments import chaos
from deployments.app import AppArgs

pytestmark = pytest.mark.integration
CLIENTS, IN_FLIGHT = 56, 50
FAULTS = ("Retriever", "Questioner", "Answerer", "Ingress", "proxy")
TIMEOUT_S = AppArgs.model_fields["timeout_s"].default  # the served app's deadline of an inner call
# the controller replaces a proxy after 3 failed health checks 10 s apart (Serve's defaults; environment variables
# RAY_SERVE_PROXY_HEALTH_CHECK_*, not serve_config.yaml, set them)
PROXY_RECOVERY_S = 60
DRAIN_S = 5  # after a replacement runs: the routers learn of it, and the calls that waited for it go in
RESULTS = Path(__file__).resolve().parents[2] / "results" / "faults.json"
FAILED: list[BaseException] = []  # the run's error: raised again at each test's setup, not run again (minutes)


@pytest.fixture(scope="module")
def measured(served) -> dict:
    """By fault name ("none": before the first kill): (its row of deployments.chaos.rows, the Fault, the requests
    of its period); one load through every fault of FAULTS in turn. The rows are written to results/faults.json."""
    if FAILED:
        raise FAILED[0]
    requests = chaos.requests_from(served.url)

    async def run():
        async with chaos.Load(served.url, requests, CLIENTS) as load:
            await load.until(lambda: len(load.samples) >= CLIENTS // 4, "requests answered before the first kill", 120)
            faults = [await chaos.inject(load, f, min_in_flight=IN_FLIGHT) for f in FAULTS]
            await load.stop(cancel=True)  # what the faults cost has ended (chaos.inject); the rest need not
        return load.samples, faults

    t = time.monotonic()
    try:
        samples, faults = asyncio.run(run())
    except Exception as e:
        FAILED.append(e)
        raise
    rows = chaos.rows(samples, faults)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"clients": CLIENTS, "min_in_flight_at_kill": IN_FLIGHT, "client_retries": 0,
                                   "timeout_s": TIMEOUT_S, "seconds": round(time.monotonic() - t, 1), "rows": rows},
                                  indent=1) + "\n")
    return dict(zip(("none", *FAULTS), zip(rows, (None, *faults), chaos.periods(samples, faults))))


@pytest.mark.parametrize("role", ["Retriever", "Questioner", "Answerer"])
def test_a_killed_role_replica_costs_no_request(measured, role):
    row, fault, samples = measured[role]
    assert row["in_flight_at_kill"] >= IN_FLIGHT and row["held_by_victim"] >= 1, row
    failed = [s for s in samples if not s.ok]
    if fault.target > 1:  # a sibling takes the calls over
        assert not failed, row
    for s in failed:  # a sole replica: only a 504 whose deadline came before the replacement ran
        assert s.status == 504 and s.start + TIMEOUT_S < fault.t_recovered + DRAIN_S, (s, row)
    assert row["recovery_s"] is not None and row["p99_ms"] is not None, row


def test_a_killed_ingress_replica_costs_only_the_requests_it_held(measured):
    """The proxy answers 500 for a request its Ingress replica died with (on a starved machine the client's timeout
    may come first); a request that arrives later waits for the replacement."""
    row, _, _ = measured["Ingress"]
    assert row["in_flight_at_kill"] >= IN_FLIGHT and row["held_by_victim"] >= 1, row
    assert row["failed"] == row["failed_in_flight_at_kill"] == row["5xx"] + row["by_status"].get("TimeoutError", 0), row
    assert row["failed"] <= row["in_flight_at_kill"], row


def test_the_proxy_comes_back(measured):
    row, _, _ = measured["proxy"]
    assert row["recovery_s"] <= PROXY_RECOVERY_S, row
    assert row["5xx"] == 0, row  # refused or cut connections while no proxy listened, no error answered


def test_the_app_is_whole_again(served, measured):
    """Every deployment back at its replica count, and a round answered (the other modules share this app)."""
    assert measured["none"][0]["failed"] == 0, measured["none"][0]
    status = serve.status().applications["ideal"]
    assert status.status == "RUNNING", status
    want = {"Ingress": 1, "Retriever": 2, "Questioner": 1, "Answerer": 1}
    assert {n: d.replica_states.get("RUNNING", 0) for n, d in status.deployments.items()} == want, status
    res = httpx.post(served.url + "/v1/rounds", json={"query": "the brown chair next to the table", "k": 3}, timeout=60)
    assert res.status_code == 200 and len(res.json()["ranking"]) == 3, res.text
