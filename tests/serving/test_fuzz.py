"""The request parsers on generated input (tests/fuzz.py): every body is a request or an ApiError with a 4xx
status and a reason that can be sent as JSON; nothing else is ever raised."""
import json

from hypothesis import HealthCheck, given, settings

from ideal.serving import ApiError, Limits, RoundRequest, parse_round_request
from ideal.serving.api import MAX_EXAMPLES, AnswerRequest, parse_answer_request, parse_count
from tests.fuzz import BODY, TEXT

FUZZ = settings(max_examples=600, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def refused_or_parsed(parse, body: bytes, kind):
    try:
        got = parse(body)
    except ApiError as e:
        assert e.status in (400, 413, 422) and e.reason and str(e) == e.reason
        json.dumps({"detail": e.reason}).encode("utf-8")  # what the Ingress sends back: valid UTF-8 JSON
        return None
    assert isinstance(got, kind)
    return got


@FUZZ
@given(BODY)
def test_a_round_body_is_a_request_or_a_4xx_with_a_reason(body):
    got = refused_or_parsed(lambda b: parse_round_request(b, Limits(), n_scenes=100), body, RoundRequest)
    if got is not None:
        assert got.query.strip() and 1 <= got.k <= 100 and len(got.history) <= Limits().max_turns


@FUZZ
@given(BODY)
def test_an_answer_body_is_a_request_or_a_4xx_with_a_reason(body):
    refused_or_parsed(lambda b: parse_answer_request(b, Limits(), scene_ids={"scene0000_00"}), body, AnswerRequest)


@FUZZ
@given(TEXT)
def test_a_count_parameter_is_a_count_or_a_4xx(raw):
    try:
        n = parse_count(raw, "n", 20)
    except ApiError as e:
        assert e.status == 422 and "n must be an integer" in e.reason
        json.dumps({"detail": e.reason}).encode("utf-8")
    else:
        assert n in range(1, MAX_EXAMPLES + 1)
