"""The HTTP API's contract, without a web framework: parse and check a request, shape a response.

    POST /v1/rounds  {"query": "...", "history": [{"question": "...", "answer": "..."}], "k": 10}
    -> 200 {"ranking": [{"scene_id": "...", "score": 0.81}, ...], "question": "...", "round": 2}
    POST /v1/answers {"query", "history", "target", "question", "dialog_id"?} -> 200 {"answer": "..."}
    GET  /v1/examples?n=20  (the simulated user's val descriptions; `n` checked by parse_count)

Stateless: the client sends the whole dialog every time. `round` is the number of the question returned
(1 = the first question, asked after the initial query alone). Every bad input is an `ApiError` carrying the
HTTP status and a reason a client can act on; the Serve ingress only translates it to a JSON response.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from ..dialog.types import DialogState, Question, Turn
from ..scenes.types import Scene, SceneMemory


class ApiError(ValueError):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Limits:
    """What one request may carry (bodies past max_body_bytes are refused before parsing)."""

    max_body_bytes: int = 64_000
    max_query_chars: int = 1_000
    max_turns: int = 20
    max_turn_chars: int = 1_000
    max_k: int = 100
    default_k: int = 10


@dataclass(frozen=True)
class RoundRequest:
    query: str
    history: tuple[tuple[str, str], ...] = ()
    k: int = 10


# No value a request may carry needs more digits; past 4,300 Python's int() refuses with a ValueError, and
# below that converting is quadratic in the digits.
MAX_DIGITS = 100


def _int(digits: str) -> int:
    n = len(digits.lstrip("-"))
    if n > MAX_DIGITS:
        raise ApiError(422, f"the body holds a {n}-digit number; numbers may have at most {MAX_DIGITS} digits")
    return int(digits)


def _shown(name: str) -> str:
    """A client's string as it may appear in a reason: a lone surrogate cannot be encoded into the response."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _json(value) -> str:
    """A client's JSON value as it may appear in a reason: short, and whatever its depth."""
    try:
        shown = json.dumps(value)
    except RecursionError:
        return f"a deeply nested {type(value).__name__}"
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _text(value, where: str, max_chars: int, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ApiError(422, f"{where} must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:  # json.loads keeps an unpaired \ud800-\udfff escape; no tokenizer can read it
        raise ApiError(422, f"{where} is not valid Unicode text: a lone surrogate "
                            f"{_shown(value[e.start])} at character {e.start}") from None
    if not allow_empty and not value.strip():
        raise ApiError(422, f"{where} is empty")
    if len(value) > max_chars:
        raise ApiError(422, f"{where} is {len(value)} characters long; the limit is {max_chars}")
    return value.strip()


def _object(body: bytes, limits: Limits, fields: tuple[str, ...]) -> dict:
    """The body as a JSON object with no field outside `fields` (size, UTF-8 and JSON checked on the way)."""
    if len(body) > limits.max_body_bytes:
        raise ApiError(413, f"request body is {len(body)} bytes; the limit is {limits.max_body_bytes}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(400, f"request body is not UTF-8 (byte {e.start})") from None
    try:
        data = json.loads(text, parse_int=_int)
    except json.JSONDecodeError as e:
        raise ApiError(400, f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise ApiError(400, "the JSON is nested too deeply to parse (a request is at most 3 levels deep)") from None
    if not isinstance(data, dict):
        raise ApiError(422, f"the body must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ApiError(422, f"unknown field(s) {', '.join(map(_shown, unknown))}; fields: {', '.join(fields)}")
    return data


def _history(data: dict, limits: Limits) -> tuple[tuple[str, str], ...]:
    history = data.get("history", [])
    if not isinstance(history, list):
        raise ApiError(422, f"history must be a list of {{question, answer}} objects, got {type(history).__name__}")
    if len(history) > limits.max_turns:
        raise ApiError(422, f"history has {len(history)} turns; the limit is {limits.max_turns}")
    turns = []
    for i, turn in enumerate(history):
        if not isinstance(turn, dict) or set(turn) != {"question", "answer"}:
            got = sorted(turn) if isinstance(turn, dict) else type(turn).__name__
            raise ApiError(422, f"history[{i}] must be an object with exactly 'question' and 'answer', got {got}")
        turns.append((_text(turn["question"], f"history[{i}].question", limits.max_turn_chars),
                      _text(turn["answer"], f"history[{i}].answer", limits.max_turn_chars)))
    return tuple(turns)


def parse_round_request(body: bytes, limits: Limits = Limits(), n_scenes: int | None = None) -> RoundRequest:
    """A checked RoundRequest from a raw request body, or an ApiError saying what is wrong."""
    data = _object(body, limits, ("query", "history", "k"))
    if "query" not in data:
        raise ApiError(422, "query is missing")
    query = _text(data["query"], "query", limits.max_query_chars)
    history = _history(data, limits)
    max_k = min(limits.max_k, n_scenes) if n_scenes else limits.max_k
    k = data.get("k", min(limits.default_k, max_k))  # a small gallery lowers the default, never refuses it
    if isinstance(k, bool) or not isinstance(k, int):
        raise ApiError(422, f"k must be an integer, got {_json(k)}")
    if not 1 <= k <= max_k:
        raise ApiError(422, f"k must be between 1 and {max_k}, got {k}")
    return RoundRequest(query, history, k)


@dataclass(frozen=True)
class AnswerRequest:
    """POST /v1/answers: the simulated user, who has `target` in mind, answers `question` in the dialog so far.
    `dialog_id` seeds the user's choice among remembered sentences (the eval job uses the description's id)."""

    query: str
    history: tuple[tuple[str, str], ...]
    target: str
    question: str
    dialog_id: str = ""

    def state(self) -> DialogState:
        """The dialog as the Answerer reads it: query, turns, target and the pending question."""
        return DialogState(self.query, tuple(Turn(q, a) for q, a in self.history), target=self.target,
                           question=Question(self.question), dialog_id=self.dialog_id)


def parse_answer_request(body: bytes, limits: Limits = Limits(), scene_ids=None) -> AnswerRequest:
    """A checked AnswerRequest from a raw request body (`target` among `scene_ids` when given), or an ApiError."""
    data = _object(body, limits, ("query", "history", "target", "question", "dialog_id"))
    for name in ("query", "target", "question"):
        if name not in data:
            raise ApiError(422, f"{name} is missing")
    query = _text(data["query"], "query", limits.max_query_chars)
    history = _history(data, limits)
    target = _text(data["target"], "target", limits.max_turn_chars)
    if scene_ids is not None and target not in scene_ids:
        raise ApiError(422, f"target {_shown(target)!r} is not a scene of the gallery")
    question = _text(data["question"], "question", limits.max_turn_chars)
    dialog_id = _text(data.get("dialog_id", ""), "dialog_id", limits.max_turn_chars, allow_empty=True)
    return AnswerRequest(query, history, target, question, dialog_id)


MAX_EXAMPLES = 100


def parse_count(raw: str | None, name: str, default: int, maximum: int = MAX_EXAMPLES) -> int:
    """A count from a query string (`?n=20`): `default` when absent, else an integer in 1..maximum."""
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= MAX_DIGITS and 1 <= int(raw) <= maximum):
        raise ApiError(422, f"{name} must be an integer between 1 and {maximum}, got {_json(_shown(raw))}")
    return int(raw)


def round_response(state: DialogState, ranking: list[tuple[str, float]]) -> dict:
    """The JSON body answering a round (see the module docstring)."""
    return {"ranking": [{"scene_id": sid, "score": round(score, 6)} for sid, score in ranking],
            "question": state.question.text if state.question is not None else None,
            "round": len(state.turns) + 1}


def scene_view(scene: Scene, memory: SceneMemory | None) -> dict:
    """GET /v1/scenes/{id}: the scene's objects and the sentences known about it."""
    return {"scene_id": scene.scene_id, "scene_type": scene.scene_type,
            "objects": [{"object_id": o.object_id, "label": o.label, "center": [round(float(x), 4) for x in o.center],
                         "size": [round(float(x), 4) for x in o.size],
                         "color_rgb": [round(float(x), 4) for x in o.color_rgb]} for o in scene.objects],
            "memory": {"fine": list(memory.fine)} if memory else None}
