"""ideal/serving/api.py without Serve: every good body parses to one RoundRequest (or AnswerRequest), every bad one
is an ApiError with a 4xx status and a reason that names the field, and round_response shapes the answer."""
import json

import numpy as np
import pytest

from ideal.dialog.types import DialogState, Question, Turn
from ideal.serving import ApiError, Limits, RoundRequest, parse_round_request, round_response
from ideal.serving.api import AnswerRequest, parse_answer_request, parse_count


def body(**fields) -> bytes:
    return json.dumps(fields).encode()


def refusal(raw: bytes, limits: Limits = Limits(), n_scenes: int | None = None) -> ApiError:
    with pytest.raises(ApiError) as e:
        parse_round_request(raw, limits, n_scenes)
    assert 400 <= e.value.status < 500 and str(e.value) == e.value.reason
    return e.value


def turn(question="What is next to the chair?", answer="A desk."):
    return {"question": question, "answer": answer}


def test_a_query_alone_takes_the_default_k_and_is_stripped():
    assert parse_round_request(body(query="  the brown chair \n")) == RoundRequest("the brown chair", (), 10)
    assert parse_round_request(body(query="a chair"), Limits(default_k=3)).k == 3


def test_a_full_round_request():
    req = parse_round_request(body(query="the chair", k=3, history=[turn(), turn(" Is it red? ", " yes ")]))
    assert req == RoundRequest("the chair", (("What is next to the chair?", "A desk."), ("Is it red?", "yes")), 3)
    assert parse_round_request(body(query="x", history=[])).history == ()


def test_unicode_is_text_and_limits_count_characters_not_bytes():
    query = "la chaise marron à côté de la fenêtre, 椅子 🪑"
    assert parse_round_request(json.dumps({"query": query}, ensure_ascii=False).encode()).query == query
    assert parse_round_request(body(query=query)).query == query  # the same as \u escapes
    assert parse_round_request(body(query="é" * 1000)).query == "é" * 1000  # 2,000 bytes, 1,000 characters
    assert "1001 characters" in refusal(body(query="é" * 1001)).reason


def test_k_bounds_are_inclusive_and_follow_the_gallery():
    assert parse_round_request(body(query="x", k=1)).k == 1
    assert parse_round_request(body(query="x", k=100)).k == 100
    assert parse_round_request(body(query="x", k=7), n_scenes=7).k == 7
    e = refusal(body(query="x", k=8), n_scenes=7)
    assert e.status == 422 and e.reason == "k must be between 1 and 7, got 8"
    assert parse_round_request(body(query="x", k=5), Limits(max_k=5), n_scenes=50).k == 5
    assert refusal(body(query="x", k=6), Limits(max_k=5), n_scenes=50).reason == "k must be between 1 and 5, got 6"


def test_the_body_limit_is_checked_before_parsing():
    limits = Limits(max_body_bytes=40)
    fits = body(query="x" * 27)
    assert len(fits) == 40 and parse_round_request(fits, limits).query == "x" * 27
    e = refusal(body(query="x" * 28), limits)
    assert e.status == 413 and e.reason == "request body is 41 bytes; the limit is 40"
    assert refusal(b"\xff" * 41, limits).status == 413  # not even decoded


HISTORY_ERROR = "must be an object with exactly 'question' and 'answer'"


@pytest.mark.parametrize("raw, status, reason", [
    # not a JSON object
    (b'{"query": "a chair"', 400, "malformed JSON: Expecting ',' delimiter at line 1 column 20"),
    (b"", 400, "malformed JSON"),
    (b"query=a+chair", 400, "malformed JSON"),
    (b'\xef\xbb\xbf{"query": "a"}', 400, "malformed JSON: Unexpected UTF-8 BOM"),
    (b'{"query": "chaise \xe0 c\xf4t\xe9"}', 400, "request body is not UTF-8 (byte 18)"),
    (b'["a chair"]', 422, "the body must be a JSON object, got list"),
    (b'"a chair"', 422, "the body must be a JSON object, got str"),
    (b"42", 422, "the body must be a JSON object, got int"),
    (b"null", 422, "the body must be a JSON object, got NoneType"),
    # fields
    (body(query="x", top_k=3, extra={}), 422, "unknown field(s) extra, top_k; fields: query, history, k"),
    (body(k=3), 422, "query is missing"),
    (body(), 422, "query is missing"),
    (body(query=""), 422, "query is empty"),
    (body(query=" \n\t "), 422, "query is empty"),
    (body(query=None), 422, "query must be a string, got NoneType"),
    (body(query=42), 422, "query must be a string, got int"),
    (body(query=True), 422, "query must be a string, got bool"),
    (body(query=["a", "chair"]), 422, "query must be a string, got list"),
    (body(query={"$ne": ""}), 422, "query must be a string, got dict"),
    (body(query="x" * 1001), 422, "query is 1001 characters long; the limit is 1000"),
    # history
    (body(query="x", history=None), 422, "history must be a list of {question, answer} objects, got NoneType"),
    (body(query="x", history={"question": "q", "answer": "a"}), 422, "history must be a list"),
    (body(query="x", history="What? A desk."), 422, "history must be a list of {question, answer} objects, got str"),
    (body(query="x", history=[turn()] * 21), 422, "history has 21 turns; the limit is 20"),
    (body(query="x", history=[["q", "a"]]), 422, f"history[0] {HISTORY_ERROR}, got list"),
    (body(query="x", history=[turn(), "q"]), 422, f"history[1] {HISTORY_ERROR}, got str"),
    (body(query="x", history=[{"question": "q"}]), 422, f"history[0] {HISTORY_ERROR}, got ['question']"),
    (body(query="x", history=[{**turn(), "kind": "Q1"}]), 422,
     f"history[0] {HISTORY_ERROR}, got ['answer', 'kind', 'question']"),
    (body(query="x", history=[turn(), turn(answer=3)]), 422, "history[1].answer must be a string, got int"),
    (body(query="x", history=[turn(question={"a": [1, {"b": None}]})]), 422,
     "history[0].question must be a string, got dict"),
    (body(query="x", history=[turn(answer="  ")]), 422, "history[0].answer is empty"),
    (body(query="x", history=[turn(question="q" * 1001)]), 422,
     "history[0].question is 1001 characters long; the limit is 1000"),
    # k
    (body(query="x", k=0), 422, "k must be between 1 and 100, got 0"),
    (body(query="x", k=-5), 422, "k must be between 1 and 100, got -5"),
    (body(query="x", k=101), 422, "k must be between 1 and 100, got 101"),
    (body(query="x", k=10 ** 30), 422, f"k must be between 1 and 100, got {10 ** 30}"),
    (body(query="x", k=-10 ** 30), 422, f"k must be between 1 and 100, got {-10 ** 30}"),
    (body(query="x", k="5"), 422, 'k must be an integer, got "5"'),
    (body(query="x", k=5.0), 422, "k must be an integer, got 5.0"),
    (body(query="x", k=2.5), 422, "k must be an integer, got 2.5"),
    (body(query="x", k=True), 422, "k must be an integer, got true"),
    (body(query="x", k=None), 422, "k must be an integer, got null"),
    (body(query="x", k=[5]), 422, "k must be an integer, got [5]"),
    (body(query="x", k={"$gt": 1}), 422, 'k must be an integer, got {"$gt": 1}'),
    (b'{"query": "x", "k": 1e400}', 422, "k must be an integer, got Infinity"),
    (b'{"query": "x", "k": NaN}', 422, "k must be an integer, got NaN"),
])
def test_each_bad_input_is_refused_with_a_reason_naming_the_field(raw, status, reason):
    e = refusal(raw)
    assert e.status == status and e.reason.startswith(reason), e.reason


def test_limits_are_the_callers():
    limits = Limits(max_query_chars=5, max_turns=1, max_turn_chars=4, max_k=3, default_k=2)
    assert parse_round_request(body(query="chair", history=[turn("why", "no")]), limits) == \
        RoundRequest("chair", (("why", "no"),), 2)
    assert "the limit is 5" in refusal(body(query="chairs"), limits).reason
    assert "the limit is 1" in refusal(body(query="x", history=[turn("a", "b")] * 2), limits).reason
    assert refusal(body(query="x", history=[turn("a", "longer")]), limits).reason.startswith("history[0].answer is 6")
    assert refusal(body(query="x", k=4), limits).reason == "k must be between 1 and 3, got 4"


@pytest.mark.parametrize("raw, status, reason", [
    # within the 64,000-byte limit, deeper than json's recursion limit
    (b"[" * 30_000 + b"]" * 30_000, 400, "the JSON is nested too deeply to parse"),
    (b'{"query": "x", "history": [' + b'{"a": ' * 9_000 + b"1" + b"}" * 9_000 + b"]}", 400,
     "the JSON is nested too deeply to parse"),
    # past Python's 4,300-digit int conversion limit, wherever the number is
    (b'{"query": "x", "k": ' + b"9" * 5_000 + b"}", 422,
     "the body holds a 5000-digit number; numbers may have at most 100 digits"),
    (b'{"query": "x", "k": -' + b"9" * 5_000 + b"}", 422, "the body holds a 5000-digit number"),
    (b'{"query": "x", "history": [' + b"1" * 5_000 + b"]}", 422, "the body holds a 5000-digit number"),
    (b'{"query": "x", "extra": {"n": ' + b"1" * 5_000 + b"}}", 422, "the body holds a 5000-digit number"),
    (b"[" + b"1" * 5_000 + b"]", 422, "the body holds a 5000-digit number"),
    (b'{"query": "x", "k": ' + b"1" * 101 + b"}", 422, "the body holds a 101-digit number"),
], ids=["deep-list", "deep-history", "5000-digit-k", "5000-digit-negative-k", "5000-digit-in-history",
        "5000-digit-in-unknown-field", "5000-digit-in-list", "101-digit-k"])
def test_json_the_decoder_cannot_hold_is_a_4xx(raw, status, reason):
    e = refusal(raw)
    assert e.status == status and e.reason.startswith(reason), e.reason


def test_a_number_of_up_to_100_digits_is_a_number():
    e = refusal(b'{"query": "x", "k": ' + b"9" * 100 + b"}")
    assert e.reason == f"k must be between 1 and 100, got {'9' * 100}"


@pytest.mark.parametrize("raw, reason", [
    (b'{"query": "\\ud800 chair"}', "query is not valid Unicode text: a lone surrogate \\ud800 at character 0"),
    (b'{"query": "a chair \\udfff"}', "query is not valid Unicode text: a lone surrogate \\udfff at character 8"),
    (b'{"query": "x", "history": [{"question": "q\\udc00", "answer": "a"}]}',
     "history[0].question is not valid Unicode text: a lone surrogate \\udc00 at character 1"),
    (b'{"query": "x", "history": [{"question": "q", "answer": "\\ud83e"}]}',
     "history[0].answer is not valid Unicode text: a lone surrogate \\ud83e at character 0"),
])
def test_text_that_is_not_unicode_is_refused_naming_the_field(raw, reason):
    e = refusal(raw)
    assert e.status == 422 and e.reason == reason
    e.reason.encode("utf-8")  # the reason itself can be sent back


def test_a_surrogate_pair_is_one_character_and_a_reason_never_carries_a_lone_one():
    assert parse_round_request(b'{"query": "\\ud83e\\ude91 chair"}').query == "\U0001fa91 chair"
    e = refusal(b'{"query": "x", "\\ud800": 1}')
    assert e.reason == "unknown field(s) \\ud800; fields: query, history, k"
    e.reason.encode("utf-8")


def test_a_gallery_smaller_than_the_default_k_lowers_the_default():
    assert parse_round_request(body(query="x"), n_scenes=3).k == 3
    assert parse_round_request(body(query="x"), n_scenes=10).k == 10
    assert parse_round_request(body(query="x"), n_scenes=50).k == 10
    assert parse_round_request(body(query="x"), Limits(max_k=4)).k == 4
    assert refusal(body(query="x", k=10), n_scenes=3).reason == "k must be between 1 and 3, got 10"  # sent: refused


def test_a_bad_k_is_shown_short():
    e = refusal(body(query="x", k="a" * 5_000))
    assert e.reason == 'k must be an integer, got "' + "a" * 76 + "..."
    e = refusal(b'{"query": "x", "k": ' + b"[" * 900 + b"]" * 900 + b"}")
    assert e.reason.startswith("k must be an integer, got [[[") and len(e.reason) < 120


def test_round_response():
    state = DialogState(query="the chair", turns=(Turn("What is next to it?", "A desk."),),
                        scores=np.zeros(3), question=Question("Is there a lamp?"))
    ranking = [("scene0004_00", 0.0887861234), ("scene0325_00", 0.5)]
    out = round_response(state, ranking)
    assert out == {"ranking": [{"scene_id": "scene0004_00", "score": 0.088786},
                               {"scene_id": "scene0325_00", "score": 0.5}],
                   "question": "Is there a lamp?", "round": 2}
    assert json.loads(json.dumps(out)) == out
    assert round_response(DialogState(query="the chair"), []) == {"ranking": [], "question": None, "round": 1}


# POST /v1/answers and GET /v1/examples?n= (the simulated user of the web page)

SCENES = {"scene0001_00", "scene0002_00"}


def answer_body(**fields) -> bytes:
    return body(**{"query": "the chair", "target": "scene0001_00", "question": "Which room is it in?", **fields})


def test_an_answer_request_is_the_dialog_the_simulated_user_reads():
    raw = answer_body(history=[turn(" Is it red? ", " yes ")], dialog_id="scene0001_00/3/0")
    req = parse_answer_request(raw, Limits(), SCENES)
    assert req == AnswerRequest("the chair", (("Is it red?", "yes"),), "scene0001_00", "Which room is it in?",
                                "scene0001_00/3/0")
    st = req.state()
    assert (st.query, st.target, st.question.text, st.dialog_id) == ("the chair", "scene0001_00",
                                                                     "Which room is it in?", "scene0001_00/3/0")
    assert [(t.question, t.answer) for t in st.turns] == [("Is it red?", "yes")] and st.answers == ["yes"]
    assert parse_answer_request(answer_body()).dialog_id == ""  # no gallery given: the target is not checked


@pytest.mark.parametrize("raw, status, reason", [
    (body(query="x", question="q?"), 422, "target is missing"),
    (body(query="x", target="scene0001_00"), 422, "question is missing"),
    (body(target="scene0001_00", question="q?"), 422, "query is missing"),
    (answer_body(target="scene0009_00"), 422, "target 'scene0009_00' is not a scene of the gallery"),
    (answer_body(target=3), 422, "target must be a string, got int"),
    (answer_body(question=" "), 422, "question is empty"),
    (answer_body(question="q" * 1001), 422, "question is 1001 characters long; the limit is 1000"),
    (answer_body(dialog_id=None), 422, "dialog_id must be a string, got NoneType"),
    (answer_body(history=[turn(answer=3)]), 422, "history[0].answer must be a string, got int"),
    (answer_body(k=3), 422, "unknown field(s) k; fields: query, history, target, question, dialog_id"),
    (b'{"query": "x"', 400, "malformed JSON"),
    (b'["x"]', 422, "the body must be a JSON object, got list"),
])
def test_each_bad_answer_request_is_refused_with_a_reason(raw, status, reason):
    with pytest.raises(ApiError) as e:
        parse_answer_request(raw, Limits(), SCENES)
    assert e.value.status == status and e.value.reason.startswith(reason), e.value.reason


def test_an_answer_request_past_the_body_limit_is_413():
    with pytest.raises(ApiError) as e:
        parse_answer_request(answer_body(query="x" * 100), Limits(max_body_bytes=100), SCENES)
    assert e.value.status == 413


@pytest.mark.parametrize("raw, want", [(None, 20), ("1", 1), ("7", 7), ("100", 100)])
def test_a_count_is_its_default_or_an_integer_up_to_the_maximum(raw, want):
    assert parse_count(raw, "n", default=20) == want


@pytest.mark.parametrize("raw", ["0", "101", "-1", "1.5", "", "x", "١", "9" * 5000])
def test_a_bad_count_is_422_naming_the_parameter(raw):
    with pytest.raises(ApiError) as e:
        parse_count(raw, "n", default=20)
    assert e.value.status == 422 and e.value.reason.startswith("n must be an integer between 1 and 100, got ")
    assert len(e.value.reason) < 140
