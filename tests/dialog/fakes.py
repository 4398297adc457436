"""Stand-ins for the models in the dialog tests: chat clients that follow a script, roles that record what they
are asked, and bags of hashed words in place of the text encoder (deterministic, no model download)."""
import re
import zlib

import numpy as np

from ideal.dialog.types import Candidate, DialogState, Question
from ideal.scenes.colors import color_name
from ideal.scenes.memory import room_word

FALLBACK_Q = "Is there a window in the room?"
FALLBACK_A = "There is a window."
FALLBACK_S = "fallback summary"


# ----------------------------------------------------------------------------------------------- chat clients

class ScriptedClient:
    """A ChatClient whose reply to a conversation is `script(conversation)`; keeps every batch it was sent."""

    def __init__(self, script):
        self.script, self.batches, self.constraints = script, [], []

    def complete(self, conversations, constraints=None):
        self.batches.append(conversations)
        self.constraints.append(constraints)
        return [self.script(c) for c in conversations]

    @property
    def conversations(self):
        return [c for b in self.batches for c in b]


class FailingClient:
    def complete(self, conversations, constraints=None):
        raise RuntimeError("connection refused")


class RecordingClient:
    """Wraps a ChatClient, keeping what went in and what came out."""

    def __init__(self, inner):
        self.inner, self.conversations, self.replies, self.constraints = inner, [], [], []

    def complete(self, conversations, constraints=None):
        self.conversations += conversations
        self.constraints += constraints if constraints is not None else [None] * len(conversations)
        out = self.inner.complete(conversations, constraints)
        self.replies += out
        return out


def last_user(conversation):
    return [m["content"] for m in conversation if m["role"] == "user"][-1]


# ----------------------------------------------------------------------------------------------- fallback roles

class RecordingQuestioner:
    name = "recording"

    def __init__(self):
        self.seen = []

    def ask(self, states, kinds, candidates):
        assert len(states) == len(kinds) == len(candidates)
        self.seen += [(st.dialog_id, kind) for st, kind in zip(states, kinds)]
        return [Question(FALLBACK_Q, kind, "has:window") for kind in kinds]


class RecordingAnswerer:
    name = "recording"

    def __init__(self):
        self.seen = []

    def answer(self, questions, memories):
        assert len(questions) == len(memories)
        self.seen += list(questions)
        return [FALLBACK_A for _ in questions]


class RecordingSummariser:
    name = "recording"

    def __init__(self):
        self.seen = []

    def summarise(self, states):
        self.seen += [st.dialog_id for st in states]
        return [FALLBACK_S for _ in states]


# ----------------------------------------------------------------------------------------------- dialogs

ALL = ("scene0001_00", "scene0002_00", "scene0003_00")
MEMORY = ["A green piano stands beside the radiator.", "The fridge is white and tall.",
          "Three striped towels hang on the oven door."]  # the simulated user's memory of scene0001_00


def cands(*ids):
    """Candidates among ALL, heaviest first, with what the questioner may say of each."""
    summaries = {"scene0001_00": ("This is a kitchen.", "There is a white fridge next to the sink."),
                 "scene0002_00": ("This is a living room.", "There is a blue sofa near the window."),
                 "scene0003_00": ("This is a bedroom.", "There is a wooden bed against a wall.")}
    return [Candidate(i, 1.0 / (n + 1), summaries[i]) for n, i in enumerate(ids)]


def states(n):
    """n dialogs d0, d1, ... looking for "the <object> near the wall", one object each."""
    objects = ["chair", "table", "lamp", "sofa", "bed", "sink"]
    return [DialogState(f"the {objects[i % 6]} near the wall", dialog_id=f"d{i}", target="scene0001_00")
            for i in range(n)]


# ----------------------------------------------------------------------------------------------- text encoder

def hashed_words(texts, dim=256):
    """(len(texts), dim) L2-normalised bags of hashed words."""
    out = np.zeros((len(texts), dim), np.float32)
    for i, t in enumerate(texts):
        for w in re.findall(r"[a-z]+", t.lower()):
            out[i, zlib.crc32(w.encode()) % dim] += 1.0
        n = np.linalg.norm(out[i])
        if n:
            out[i] /= n
    return out


class HashedWordsRetriever:
    """A Retriever over bags of hashed words; a scene's words are its room type and its objects' colours and
    labels."""

    name = "hashed-words"
    dim = 256
    late_interaction = False

    def encode_text(self, texts):
        return hashed_words(texts, self.dim)

    def encode_scenes(self, scenes):
        return hashed_words([" ".join([room_word(s.scene_type)] + [
            f"{color_name(o.color_rgb)} {o.label}" for o in s.furniture()]) for s in scenes], self.dim)

    def score(self, text_emb, scene_emb):
        return np.asarray(text_emb, np.float32) @ np.asarray(scene_emb, np.float32).T


class HashedObjectsRetriever(HashedWordsRetriever):
    """Late interaction over bags of hashed words: one vector per object ("room colour label"), a scene scoring
    as its best object."""

    name = "hashed-objects"
    late_interaction = True

    def encode_objects(self, scenes):
        from ideal.retrieval.objects import ObjectVectors

        rows = [[f"{room_word(s.scene_type)} {color_name(o.color_rgb)} {o.label}" for o in s.furniture()]
                for s in scenes]
        return ObjectVectors(hashed_words([t for r in rows for t in r], self.dim),
                             np.concatenate([[0], np.cumsum([len(r) for r in rows])]),
                             np.concatenate([np.arange(len(r)) for r in rows]).astype(np.int32))
