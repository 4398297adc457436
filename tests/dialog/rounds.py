"""The tiny gallery the round tests run dialogs on: six hand-made rooms scored by bags of hashed words (no
training, no model download), the grounded questioner and the fine simulated user; the dialogs of `simulate`; and
the retriever's formula p̂c = λ1·p̂1(u) + λ2·p̂2(ū) + λ3·p̂3(s) written out by hand from the gallery's own
embeddings."""
import dataclasses

import numpy as np

from ideal.config import DialogConfig
from ideal.dialog.answerer import GroundedAnswerWriter, SimulatedAnswerer
from ideal.dialog.build import build_summariser
from ideal.dialog.questioner import GroundedQuestioner
from ideal.dialog.round import run_round, start
from ideal.dialog.types import Q1, DialogState, is_unknown
from ideal.retrieval.gallery import Gallery
from ideal.retrieval.meb import fuse_responses, gallery_softmax
from ideal.scenes.memory import build_memory

from .fakes import HashedWordsRetriever
from .rooms import room


def chair(colour, at=(2.5, 2.5)):
    return ("chair", (at[0], at[1], 0), (at[0] + 0.5, at[1] + 0.5, 0.9), colour)


SCENES = [
    room("scene0000_00", "Bedroom / Hotel", [("bed", (0.1, 1, 0), (1.7, 3, 0.5), "white"), chair("brown")]),
    room("scene0001_00", "Bedroom / Hotel", [("bed", (0.1, 1, 0), (1.7, 3, 0.5), "white"), chair("blue")]),
    room("scene0002_00", "Kitchen", [("table", (2, 2, 0), (3.2, 3, 0.75), "black"), chair("brown", (3.5, 3.5))]),
    room("scene0003_00", "Office", [("desk", (2, 0.1, 0), (3.4, 0.8, 0.75), "brown"), chair("black", (2.5, 1.2))]),
    room("scene0004_00", "Living room / Lounge", [("couch", (0.1, 1, 0), (0.9, 3, 0.8), "gray"),
                                                  ("lamp", (4.2, 4.2, 0), (4.6, 4.6, 1.5), "yellow")]),
    room("scene0005_00", "Bedroom / Hotel", [("bed", (0.1, 1, 0), (1.7, 3, 0.5), "brown"),
                                             ("lamp", (4.2, 4.2, 0), (4.6, 4.6, 1.5), "red")]),
]
QUERIES = ["the brown chair in the bedroom", "a lamp in a room"]
TARGETS = ["scene0000_00", "scene0005_00"]
CFG = DialogConfig(k=4)
# the router with β below any entropy: every routed type is Q1 except where force_q2_after steps in
PROBING = dataclasses.replace(CFG, beta=-1.0)


def make_gallery():
    return Gallery(HashedWordsRetriever(), SCENES)


def make_questioner(gallery):
    return GroundedQuestioner(gallery.knowledge)


def make_user():
    memories = {s.scene_id: build_memory(s, []) for s in SCENES}
    return SimulatedAnswerer(GroundedAnswerWriter(embed=None), memories, "fine")


def simulate(gallery, questioner, user, cfg, rounds, queries=QUERIES, targets=TARGETS):
    """The states after rounds 0..rounds (the last round asks nothing)."""
    summariser = build_summariser(cfg, gallery)
    states = start(queries, targets)
    history = []
    for r in range(rounds + 1):
        states = run_round(states, gallery, questioner, user, cfg, summariser, ask=r < rounds)
        history.append(states)
    return history


# ------------------------------------------------------------------------------------------------ by hand

def E(gallery, text: str) -> np.ndarray:
    """A text's feature u = f(text): the text whole, as the retriever was trained."""
    return gallery.embed_composed([[text.strip()]])[0]


def p_hat(gallery, cfg, u) -> np.ndarray:
    """Eq. 3: softmax over the whole gallery of S(u, v)/T."""
    return gallery_softmax(gallery.score_embeddings(np.atleast_2d(u)), cfg.temperature)[0]


def ideal_by_hand(gallery, cfg, st: DialogState, summary: str) -> np.ndarray:
    """λ1·p̂1(u) + λ2·p̂2(ū) + λ3·p̂3(s), written out."""
    u = E(gallery, st.query)
    said = [t for t in st.turns if not is_unknown(t.answer)]
    resp = np.stack([E(gallery, t.answer) for t in said]) if said else np.zeros((0, u.shape[0]), np.float32)
    u_bar = fuse_responses(u, resp, [t.kind == Q1 for t in said], cfg.alpha, cfg.shell)
    s = E(gallery, summary or st.query)
    return (cfg.lambda1 * p_hat(gallery, cfg, u) + cfg.lambda2 * p_hat(gallery, cfg, u_bar)
            + cfg.lambda3 * p_hat(gallery, cfg, s))
