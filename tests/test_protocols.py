"""The role Protocols are what the library calls: every backend's method has the Protocol's signature, and
`run_round` / `ask_next` call each role exactly as its Protocol says (recording roles check the arguments)."""
import inspect

import numpy as np
import pytest

from ideal import build
from ideal.config import DialogConfig
from ideal.dialog.answerer import GroundedAnswerWriter, SimulatedAnswerer
from ideal.dialog.llm import LLMAnswerWriter, LLMQuestioner, LLMSummariser
from ideal.dialog.questioner import GroundedQuestioner
from ideal.dialog.round import run_round, start
from ideal.dialog.summary import GroundedSummariser
from ideal.dialog.types import (Q1, Q2, Answerer, AnswerWriter, Candidate, DialogState, Question, Questioner,
                                Summariser)
from ideal.retrieval.gallery import Gallery
from ideal.retrieval.retriever import BagOfLabelsRetriever, Retriever, TrainedRetriever
from ideal.scenes.types import Scene, SceneObject

IMPLEMENTATIONS = [
    (Questioner, "ask", [GroundedQuestioner, LLMQuestioner]),
    (Answerer, "answer", [SimulatedAnswerer]),
    (AnswerWriter, "answer", [GroundedAnswerWriter, LLMAnswerWriter]),
    (Summariser, "summarise", [GroundedSummariser, LLMSummariser]),
    (Retriever, "encode_text", [TrainedRetriever, BagOfLabelsRetriever]),
    (Retriever, "encode_scenes", [TrainedRetriever, BagOfLabelsRetriever]),
    (Retriever, "score", [TrainedRetriever, BagOfLabelsRetriever]),
]


def params(fn) -> list[str]:
    return [p for p in inspect.signature(fn).parameters if p != "self"]


@pytest.mark.parametrize("protocol,method,classes", IMPLEMENTATIONS,
                         ids=[f"{p.__name__}.{m}" for p, m, _ in IMPLEMENTATIONS])
def test_every_backend_has_the_protocols_signature(protocol, method, classes):
    want = params(getattr(protocol, method))
    for cls in classes:
        assert params(getattr(cls, method))[:len(want)] == want, f"{cls.__name__}.{method}"
        extra = list(inspect.signature(getattr(cls, method)).parameters.values())[len(want) + 1:]
        assert all(p.default is not inspect.Parameter.empty for p in extra), f"{cls.__name__}.{method}: {extra}"


class Recording:
    """A role that checks it is called as its Protocol says, then answers trivially."""

    def __init__(self):
        self.calls = []

    def ask(self, states, kinds, candidates):
        assert all(isinstance(s, DialogState) for s in states) and len(kinds) == len(candidates) == len(states)
        assert set(kinds) <= {Q1, Q2} and all(isinstance(c, Candidate) for cs in candidates for c in cs)
        self.calls.append("ask")
        return [Question("Is there a lamp?", k) for k in kinds]

    def answer(self, states, questions):
        assert all(isinstance(s, DialogState) and s.question for s in states)
        assert questions == [s.question.text for s in states]
        self.calls.append("answer")
        return ["There is a lamp by the bed."] * len(states)

    def summarise(self, states):
        assert all(isinstance(s, DialogState) and s.turns for s in states)
        self.calls.append("summarise")
        return ["a bedroom with a lamp"] * len(states)


def test_run_round_calls_each_role_as_its_protocol_says():
    scenes = [Scene(sid, "Bedroom", [SceneObject(i, lab, (i, 0, 0.5), (0.5, 0.5, 1), (0.5, 0.5, 0.5))
                                     for i, lab in enumerate(labels)])
              for sid, labels in (("a", ["bed", "lamp"]), ("b", ["desk", "chair"]), ("c", ["sofa", "tv"]))]
    gallery = Gallery(BagOfLabelsRetriever(build.text_encoder()), scenes)
    role = Recording()
    cfg = DialogConfig(k=2)
    states = start(["a bed in a bedroom", "a desk"], ["a", "b"])
    for _ in range(3):
        states = run_round(states, gallery, role, role, cfg, role)
    assert role.calls == ["ask", "answer", "summarise", "ask", "answer", "summarise", "ask"]
    assert all(len(st.turns) == 2 and st.scores.shape == (3,) and np.isfinite(st.scores).all() for st in states)
