"""Methods and ablations as configs of the one dialog loop (names as they appear in results)."""
from __future__ import annotations

import dataclasses

from ..config import DialogConfig

# name -> overrides of DialogConfig on top of the `ideal` defaults
METHODS: dict[str, dict] = {
    "static": {"rounds": 0},
    # ChatIR: questions from the dialog only (no candidates); retrieval on the concatenated dialog
    "chatir": {"use_q2": False, "lambda1": 0.0, "lambda2": 1.0, "lambda3": 0.0, "p2_text": "dialog", "alpha": 1.0},
    # rewrite query + answers into one description and retrieve on it
    "rewrite": {"use_q2": False, "lambda1": 0.0, "lambda2": 0.0, "lambda3": 1.0, "alpha": 1.0},
    # MERLIN: the question comes from the top-1 candidate; retrieval on the concatenated dialog
    "merlin": {"k": 1, "lambda1": 0.0, "lambda2": 1.0, "lambda3": 0.0, "p2_text": "dialog", "alpha": 1.0},
    "ir": {"lambda1": 0.0, "lambda2": 1.0, "lambda3": 0.0},  # IDeal questioner, retrieval on p2 only
    "sum": {"lambda1": 0.0, "lambda2": 0.0, "lambda3": 1.0},  # summary only
    "ideal": {},
}

ABLATIONS: dict[str, dict] = {
    "w/o Q1": {"use_q1": False},
    "w/o Q2": {"use_q2": False},
    "w/o p1": {"lambda1": 0.0},
    "w/o p2": {"lambda2": 0.0},
    "w/o p3": {"lambda3": 0.0},
    "w/o CoT": {"summariser": "concat"},
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
