"""Hypothesis strategies for request bodies: JSON that is almost a request (the fields, wrong types, huge and
negative numbers, any Unicode, lone surrogates, deep nesting, unknown fields) and bytes that are not JSON."""
import json

from hypothesis import strategies as st

TEXT = st.one_of(st.text(max_size=40), st.text(alphabet=st.characters(), min_size=0, max_size=400),
                 st.sampled_from(["", " ", "the brown chair next to the table", "\ud800", "a\u0000b", "é" * 3000]))
NUMBER = st.one_of(st.integers(), st.integers(-10, 100), st.floats(allow_nan=True, allow_infinity=True),
                   st.integers(min_value=10**30, max_value=10**120), st.booleans())
SCALAR = st.one_of(st.none(), NUMBER, TEXT)
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                     max_leaves=12)
TURN = st.one_of(st.fixed_dictionaries({"question": TEXT, "answer": TEXT}),
                 st.fixed_dictionaries({"question": VALUE, "answer": VALUE}), VALUE)


def request(fields: dict) -> st.SearchStrategy:
    """An object with some of `fields` (name -> value strategy), sometimes an unknown field too."""
    return st.builds(lambda d, extra: {**d, **extra},
                     st.fixed_dictionaries({}, optional=fields),
                     st.dictionaries(st.text(max_size=10), VALUE, max_size=1))


ROUND = request({"query": st.one_of(TEXT, VALUE), "k": st.one_of(NUMBER, VALUE),
                 "history": st.one_of(st.lists(TURN, max_size=25), VALUE)})
ANSWER = request({"query": st.one_of(TEXT, VALUE), "target": st.one_of(TEXT, st.sampled_from(["scene0000_00"])),
                  "question": st.one_of(TEXT, VALUE), "dialog_id": st.one_of(TEXT, VALUE),
                  "history": st.one_of(st.lists(TURN, max_size=3), VALUE)})


def encode(value) -> bytes:
    """JSON text as a client would send it; lone surrogates escaped (\\udXXX) as JSON allows."""
    return json.dumps(value, allow_nan=True).encode()


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


BODY = st.one_of(ROUND.map(encode), ANSWER.map(encode), VALUE.map(encode), st.binary(max_size=300),
                 st.integers(1, 100_000).map(deep), st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")))
