"""The live Serve app (tests/conftest.py `served`) fuzzed over HTTP with generated requests (tests/fuzz.py) on its
JSON routes: no request gets a 5xx, every 4xx says why ({"detail": reason}), and the app answers a good round
afterwards."""
import json
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import BODY, TEXT

pytestmark = pytest.mark.integration
SENT: list[int] = []  # statuses of every fuzzed request, in order


def escaped(text: str) -> str:
    """Percent-escaped UTF-8 of any text; a lone surrogate becomes bytes that are not UTF-8 (%ED%A0%80)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


ROUTES = st.one_of(  # (method, path with its query, body)
    st.tuples(st.just("POST"), st.sampled_from(["/v1/rounds", "/v1/answers"]), BODY),
    st.tuples(st.just("GET"), TEXT.map(lambda s: "/v1/examples?n=" + escaped(s)), st.just(b"")),
    st.tuples(st.just("GET"), TEXT.map(lambda s: "/v1/scenes/" + escaped(s)), st.just(b"")),
)


@pytest.fixture(scope="module")
def client(served):
    with httpx.Client(base_url=served.url, timeout=120) as c:
        yield c


@settings(max_examples=1100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(ROUTES)
def test_fuzzed_requests_get_no_5xx_and_every_4xx_a_reason(client, request_):
    method, path, body = request_
    res = client.request(method, path, content=body or None,
                         headers={"content-type": "application/json"} if method == "POST" else {})
    SENT.append(res.status_code)
    assert res.status_code < 500, (method, path, body[:200], res.text[:300])
    if res.status_code >= 400:
        detail = res.json().get("detail")
        assert isinstance(detail, str) and detail.strip(), res.text[:300]


def test_the_app_still_answers_after_the_fuzzing(client):
    """Also writes the count of requests per status to results/fuzz_http.json."""
    counts = {str(s): SENT.count(s) for s in sorted(set(SENT))}
    out = Path(__file__).resolve().parents[2] / "results" / "fuzz_http.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"requests": len(SENT), "by_status": counts}, indent=1) + "\n")
    assert len(SENT) >= 1000 and not [s for s in SENT if s >= 500], counts
    assert {s for s in SENT if s >= 400} >= {400, 422} and 200 in SENT  # refused and served both
    res = client.post("/v1/rounds", json={"query": "the brown chair next to the table", "k": 3})
    assert res.status_code == 200 and len(res.json()["ranking"]) == 3
