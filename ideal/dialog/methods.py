"""Methods and ablations as configs of the one dialog loop (names as they appear in results).

Every interactive method shares the same simulated user (answerer and memory); they differ in how they ask
and how they retrieve (paper §4.1):
- chatir: questions written from the dialog alone (no candidates, no router); retrieval on the whole dialog;
- rewrite: ChatIR's questions; the dialog rewritten into one description in one step, retrieval on it;
- merlin: questions about the top-1 candidate's objects; the query embedding refined by each answer;
- ir: IDeal's questioner; the ranking re-weighted by each round's response;
- sum: IDeal's questioner; query and answers merged into one description and matched;
- ideal: router questioner, p̂c = λ1·p̂1(u) + λ2·p̂2(ū) + λ3·p̂3(s);
- ideal-llm: ideal with the questioner, the simulated user's answers and the reconstruction s written by the
  chat model of dialog.llm (each falling back to the grounded writer where a reply does not parse).
"""
from __future__ import annotations

import dataclasses

from ..config import DialogConfig

# name -> overrides of DialogConfig on top of the `ideal` defaults
METHODS: dict[str, dict] = {
    "static": {"rounds": 0},
    "chatir": {"route": "q1", "k": 0, "scoring": "dialog"},
    "rewrite": {"route": "q1", "k": 0, "scoring": "ideal", "lambda1": 0.0, "lambda2": 0.0, "lambda3": 1.0,
                "cot": False},
    "merlin": {"route": "q2", "k": 1, "scoring": "refine"},
    "ir": {"scoring": "rerank"},
    "sum": {"scoring": "answers"},
    "ideal": {},
    "ideal-llm": {"questioner": "llm", "answerer": "llm", "summariser": "llm"},
}

ABLATIONS: dict[str, dict] = {
    "w/o Q1": {"route": "q2"},  # the router forced to diverge explorations
    "w/o Q2": {"route": "q1"},  # the router forced to detail probes
    "w/o p1": {"lambda1": 0.0},
    "w/o p2": {"lambda2": 0.0},
    "w/o p3": {"lambda3": 0.0},
    "w/o CoT": {"cot": False},  # the reconstruction s written in one step
    # the paper's questioner: the dialog and the question type only, none of the candidates' 3D data
    "w/o candidates": {"k": 0},
    # IAT ablations: `ideal` on another retriever checkpoint (see ideal.dialog_eval.IAT_WEIGHTS)
    "w/o IAT": {},
    "w/o L_dis": {},
    "w/o L_div": {},
}


def method_config(name: str, base: DialogConfig) -> DialogConfig:
    """`base` with the method's (or ablation's) overrides applied."""
    if name in METHODS:
        over = METHODS[name]
    elif name in ABLATIONS:
        over = ABLATIONS[name]
    else:
        raise ValueError(f"unknown method {name!r}; methods: {sorted(METHODS)}, ablations: {sorted(ABLATIONS)}")
    return dataclasses.replace(base, **over)
