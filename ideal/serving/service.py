"""The three roles of the interactive search as plain objects, one per Serve deployment (or all in one process),
each started from an encoded gallery directory (`ideal.store`): no scan is read, nothing re-encoded.

    spec = ServiceSpec()                      # the default synthetic gallery (encoded once, cached), IAT weights
    retriever, questioner = RetrieverService(spec), QuestionerService(spec)
    states = questioner.ask(retriever.rank([RoundRequest("the brown chair by the window")]))
    states[0].top, states[0].question

`RetrieverService` ranks (text encoder + retriever + the stored embeddings; `replay_batch`, the dialog loop's
own rounds) and sends on only each dialog's top (scene id, score) pairs; `QuestionerService` asks from the top-k
candidates' 3D data; `AnswererService` answers as the simulated user of an evaluation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .. import build, checkpoints
from ..config import Config, load_config
from ..dialog.methods import method_config
from ..dialog.round import ask_next, compact, replay_batch
from ..dialog.types import DialogState
from ..store import read_manifest
from .api import ApiError, RoundRequest, scene_view


@dataclass(frozen=True)
class ServiceSpec:
    """What every role is built from (JSON-able, so a Serve builder can pass it to each deployment).

    gallery: an encoded gallery directory (jobs/encode_scenes.py --out G); None = the default synthetic
    benchmark's val gallery, built on first use. weights: the retriever checkpoint (a folder or a shipped name);
    None = the shipped IAT weights. overrides: config overrides "section.key=value" (as `--set` in the jobs)."""

    gallery: Optional[str] = None
    weights: Optional[str] = None
    overrides: tuple[str, ...] = field(default_factory=tuple)
    method: str = "ideal"

    def config(self) -> Config:
        return load_config(None, list(self.overrides))

    def resolved(self) -> "ServiceSpec":
        """Absolute paths (replicas may run in another directory); builds the default gallery if absent."""
        gallery = self.gallery or str(build.ensure_gallery(self.config(), progress=False))
        read_manifest(gallery)  # a wrong path fails here, in the app builder, not later in every replica
        weights = checkpoints.resolve(self.weights or checkpoints.serving_default())
        return ServiceSpec(str(Path(gallery).resolve()), str(weights), tuple(self.overrides), self.method)

    def open(self):
        return build.open_gallery(self.resolved().gallery)


class Catalog:
    """The gallery as the questioner sees it: scene ids and what is known of each scene's 3D data, no
    embeddings."""

    def __init__(self, scenes, knowledge):
        self.scenes = list(scenes)
        self.ids = [s.scene_id for s in self.scenes]
        self.knowledge = knowledge  # a SceneKnowledge of the same scenes, in order
        if knowledge.ids != self.ids:
            raise ValueError("the scene knowledge's rows are not the catalog's scenes in order")

    def __len__(self) -> int:
        return len(self.ids)


class RetrieverService:
    """Ranks stateless dialogs over the gallery's stored embeddings (a Retriever replica)."""

    def __init__(self, spec: ServiceSpec, text_encoder=None):
        spec = spec.resolved()
        cfg = spec.config()
        self.cfg = method_config(spec.method, cfg.dialog)
        self.store = spec.open()
        self.gallery = build.gallery(self.store, spec.weights, text_encoder or build.text_encoder(cfg.text_encoder),
                                     cfg.index)
        self.summariser = build.roles(self.cfg, self.gallery, questioner=False).summariser

    def __len__(self) -> int:
        return len(self.gallery)

    def rank(self, requests: list[RoundRequest]) -> list[DialogState]:
        """Every dialog replayed round by round (shared rounds batched), ranked and routed (the next question's
        type needs the gallery embeddings), no question yet; each carries its top max(k, dialog.k) scenes."""
        states = replay_batch([r.query for r in requests], [list(r.history) for r in requests], self.gallery, None,
                              self.cfg, self.summariser)
        return [compact([st], self.gallery, max(r.k, self.cfg.k))[0] for st, r in zip(states, requests)]

    def scene_ids(self) -> list[str]:
        return list(self.gallery.ids)


class QuestionerService:
    """Asks each ranked dialog's next question from its top-k candidates (a Questioner replica); also serves the
    scenes' pages (it holds their 3D data). `client`: a ChatClient for dialog.questioner=llm."""

    def __init__(self, spec: ServiceSpec, client=None):
        spec = spec.resolved()
        self.cfg = method_config(spec.method, spec.config().dialog)
        self.store = spec.open()
        self.catalog = Catalog(self.store.scenes(), self.store.knowledge())
        self.questioner = build.roles(self.cfg, self.catalog, client=client).questioner

    def ask(self, states: list[DialogState]) -> list[DialogState]:
        if not states:
            return []
        return ask_next(states, self.catalog, self.questioner, self.cfg)

    def scene(self, scene_id: str) -> dict:
        """A scene's objects (GET /v1/scenes/{id}); what a user remembers of it is not the questioner's to give."""
        row = self.catalog.knowledge.row.get(scene_id)
        if row is None:
            raise ApiError(404, f"unknown scene id {scene_id!r}")
        return scene_view(self.catalog.scenes[row], None)


class AnswererService:
    """The simulated user of an evaluation: answers from the target scene's memory (an Answerer replica)."""

    def __init__(self, spec: ServiceSpec, text_encoder=None):
        spec = spec.resolved()
        cfg = spec.config()
        self.cfg = method_config(spec.method, cfg.dialog)
        text = text_encoder or build.text_encoder(cfg.text_encoder)
        self.answerer = build.roles(self.cfg, memories=spec.open().memories(), text=text).answerer

    def answer(self, states: list[DialogState]) -> list[str]:
        """The answer to each dialog's pending question (states carry `target` and `question`)."""
        missing = [st.dialog_id for st in states if st.question is None]
        if missing:
            raise ValueError(f"dialogs {missing} have no pending question")
        return self.answerer.answer(states, [st.question.text for st in states])


async def simulate(query: str, target: str, rounds: int, rank: Callable, ask: Callable, answer: Callable,
                   dialog_id: str = "0", k: int = 10) -> dict:
    """A simulated dialog driven through the stateless API's steps, one dialog: rank → ask → answer, the
    client resending the whole dialog each round (what an evaluation through the Serve handles runs).

    Async, so a Serve replica can drive it on its event loop: rank(RoundRequest) -> awaitable ranked
    DialogState (its `top` pairs), ask(state) -> awaitable state with its question, answer(state) -> awaitable
    str. Returns the target's 0-based rank per round among the top k (k when it is not among them: enough for
    R@1/5/10 with k >= 10) and the turns."""
    history: list[tuple[str, str]] = []
    ranks = []
    for r in range(rounds + 1):
        st = await rank(RoundRequest(query, tuple(history), k))
        ids = [sid for sid, _ in st.top[:k]]
        ranks.append(ids.index(target) if target in ids else k)
        if r == rounds:
            break
        st = (await ask(st)).with_(target=target, dialog_id=dialog_id)
        history.append((st.question.text, await answer(st)))
    return {"ranks": ranks, "history": history}


def simulate_here(retriever: RetrieverService, questioner: QuestionerService, answerer: AnswererService, query: str,
                  target: str, rounds: int, dialog_id: str = "0", k: int = 10) -> dict:
    """`simulate` through the three services in this process (a notebook, a test): what the Serve handles run."""
    import asyncio

    async def rank(request):
        return retriever.rank([request])[0]

    async def ask(state):
        return questioner.ask([state])[0]

    async def answer(state):
        return answerer.answer([state])[0]

    return asyncio.run(simulate(query, target, rounds, rank, ask, answer, dialog_id, k))
