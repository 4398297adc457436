"""Interactive retrieval refinement: the router questioner, the (simulated) answerer, the CoT reconstruction
and `run_round`, the one dialog loop."""
from .round import ask_next, predict, ranking, replay, replay_batch, run_round, start
from .types import DONT_KNOW, Q1, Q2, Answerer, Candidate, DialogState, Question, Questioner, Summariser, Turn

__all__ = ["Answerer", "Candidate", "DONT_KNOW", "DialogState", "Q1", "Q2", "Question", "Questioner", "Summariser",
           "Turn", "ask_next", "predict", "ranking", "replay", "replay_batch", "run_round", "start"]
