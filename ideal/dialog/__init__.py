"""Interactive Retrieval Refinement: questioner, (simulated) answerer, CoT summary and `run_round`."""
from .round import ranking, replay, replay_batch, run_round, start
from .types import Answerer, Candidate, DialogState, DONT_KNOW, Question, Questioner, Summariser, Turn

__all__ = ["Answerer", "Candidate", "DONT_KNOW", "DialogState", "Question", "Questioner", "Summariser", "Turn",
           "ranking", "replay", "replay_batch", "run_round", "start"]
