"""The three roles of the interactive search as plain objects, one per Serve deployment (or all in one process).

    spec = ServiceSpec()                      # the default synthetic benchmark's val gallery, shipped weights
    search, ask = RetrieverService(spec), QuestionerService(spec)
    states = ask.ask(search.rank([RoundRequest("the brown chair by the window")]))
    search.ranking(states[0], 10), states[0].question

`RetrieverService` ranks (text encoder + retriever + gallery; `replay_batch`, the dialog loop's own rounds), `QuestionerService` asks
(the questioner over the top-k candidates), `AnswererService` answers as the simulated user of an evaluation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..config import Config, load_config
from ..dialog.build import build_questioner, build_summariser, build_answerer
from ..dialog.methods import method_config
from ..dialog.round import ask_next, ranking, replay_batch
from ..dialog.types import DialogState
from ..evaluate import DEFAULT_WEIGHTS, SHIPPED_IAT
from ..metrics import target_ranks
from .api import ApiError, RoundRequest, scene_view


@dataclass(frozen=True)
class ServiceSpec:
    """What every role is built from (JSON-able, so a Serve builder can pass it to each deployment).

    data: None (the default synthetic benchmark, generated on first use), {"synthetic": root, "split": "val"}
    or {"scannet_dir": .., "scanrefer": .., "nr3d": .., "sr3d": .., "label_map": ..}.
    weights: retriever checkpoint folder; None = the shipped IAT weights (base if absent).
    overrides: config overrides "section.key=value" (as `--set` in the jobs)."""

    data: Optional[dict] = None
    weights: Optional[str] = None
    overrides: tuple[str, ...] = field(default_factory=tuple)
    method: str = "ideal"

    def config(self) -> Config:
        return load_config(None, list(self.overrides))

    def resolved(self) -> "ServiceSpec":
        """Absolute paths (replicas may run in another directory); generates the default benchmark if absent."""
        data = dict(self.data) if self.data else None
        if data is None:
            from ..scenes.synthetic import generate

            c = self.config().data
            data = {"synthetic": str(Path(generate(c.synthetic_root(), c.scenes, c.seed, progress=False)).resolve())}
        for key in ("synthetic", "scannet_dir", "scanrefer", "nr3d", "sr3d", "label_map"):
            if data.get(key):
                data[key] = str(Path(data[key]).resolve())
        weights = self.weights or str(SHIPPED_IAT["iat"] if (SHIPPED_IAT["iat"] / "model.safetensors").is_file()
                                      else DEFAULT_WEIGHTS)
        return ServiceSpec(data, str(Path(weights).resolve()), tuple(self.overrides), self.method)


def load_dataset(spec: ServiceSpec):
    from ..scenes import load, load_synthetic

    d = spec.resolved().data
    if "synthetic" in d:
        return load_synthetic(d["synthetic"], d.get("split", "val"), points_per_object=0)
    if "scannet_dir" not in d:
        raise ValueError(f"data must name 'synthetic' or 'scannet_dir', got {sorted(d)}")
    return load(d["scannet_dir"], scanrefer=d.get("scanrefer"), nr3d=d.get("nr3d"), sr3d=d.get("sr3d"),
                label_map=d.get("label_map"), points_per_object=0)


def _text_encoder(cfg: Config):
    from ..encoders.text import TextEncoder

    return TextEncoder(cfg.text_encoder.model_dir, max_length=cfg.text_encoder.max_length)


class Catalog:
    """The gallery as the questioner sees it: scene ids and what is known of each scene's 3D data, no
    embeddings."""

    def __init__(self, scenes):
        from ..dialog.knowledge import SceneKnowledge

        self.scenes = list(scenes)
        self.ids = [s.scene_id for s in self.scenes]
        self.knowledge = SceneKnowledge(self.scenes)

    def __len__(self) -> int:
        return len(self.ids)


class RetrieverService:
    """Ranks stateless dialogs: text encoder + retriever + gallery embeddings (a Retriever replica)."""

    def __init__(self, spec: ServiceSpec, dataset=None, text_encoder=None):
        from ..retrieval.gallery import Gallery
        from ..retrieval.retriever import TrainedRetriever

        spec = spec.resolved()
        cfg = spec.config()
        self.cfg = method_config(spec.method, cfg.dialog)
        self.dataset = dataset or load_dataset(spec)
        text = text_encoder or _text_encoder(cfg)
        retriever = TrainedRetriever.from_checkpoint(spec.weights, text)
        self.gallery = Gallery(retriever, [self.dataset.scenes[s] for s in sorted(self.dataset.scenes)])
        self.summariser = build_summariser(self.cfg, self.gallery)

    def __len__(self) -> int:
        return len(self.gallery)

    def rank(self, requests: list[RoundRequest]) -> list[DialogState]:
        """Every dialog replayed round by round (shared rounds batched), ending ranked and routed (the next
        question's type needs the gallery embeddings), no question yet."""
        return replay_batch([r.query for r in requests], [list(r.history) for r in requests], self.gallery, None,
                            self.cfg, self.summariser)

    def ranking(self, state: DialogState, k: int) -> list[tuple[str, float]]:
        return ranking(state, self.gallery, k)

    def scene(self, scene_id: str) -> dict:
        if scene_id not in self.dataset.scenes:
            raise ApiError(404, f"unknown scene id {scene_id!r}")
        return scene_view(self.dataset.scenes[scene_id], self.dataset.memories.get(scene_id))


class QuestionerService:
    """Asks each ranked dialog's next question from its top-k candidates (a Questioner replica).
    `client`: a ChatClient for dialog.questioner=llm (e.g. the vLLM deployment's handle)."""

    def __init__(self, spec: ServiceSpec, dataset=None, client=None):
        spec = spec.resolved()
        self.cfg = method_config(spec.method, spec.config().dialog)
        ds = dataset or load_dataset(spec)
        self.catalog = Catalog([ds.scenes[s] for s in sorted(ds.scenes)])
        self.questioner = build_questioner(self.cfg, self.catalog, client=client)

    def ask(self, states: list[DialogState]) -> list[DialogState]:
        if not states:
            return []
        return ask_next(states, self.catalog, self.questioner, self.cfg)


class AnswererService:
    """The simulated user of an evaluation: answers from the target scene's memory (an Answerer replica)."""

    def __init__(self, spec: ServiceSpec, dataset=None, text_encoder=None):
        spec = spec.resolved()
        cfg = spec.config()
        self.cfg = method_config(spec.method, cfg.dialog)
        ds = dataset or load_dataset(spec)
        self.user = build_answerer(self.cfg, ds.memories, text_encoder or _text_encoder(cfg))

    def answer(self, states: list[DialogState]) -> list[str]:
        """The answer to each dialog's pending question (states carry `target` and `question`)."""
        missing = [st.dialog_id for st in states if st.question is None]
        if missing:
            raise ValueError(f"dialogs {missing} have no pending question")
        return self.user.answer(states, [st.question.text for st in states])


async def simulate(query: str, target: str, rounds: int, scene_ids: list[str], rank: Callable, ask: Callable,
                   answer: Callable, dialog_id: str = "0") -> dict:
    """A simulated dialog driven through the stateless API's steps, one dialog: rank → ask → answer, the
    client resending the whole dialog each round (what an evaluation through the Serve handles runs).

    Async, so a Serve replica can drive it on its event loop: rank(RoundRequest) -> awaitable ranked
    DialogState, ask(state) -> awaitable state with its question, answer(state) -> awaitable str;
    scene_ids: the gallery order of the scores. Returns the target's 0-based rank per round and the turns."""
    column = scene_ids.index(target)
    history: list[tuple[str, str]] = []
    ranks = []
    for r in range(rounds + 1):
        st = await rank(RoundRequest(query, tuple(history)))
        ranks.append(int(target_ranks(np.asarray(st.scores)[None], [column])[0]))
        if r == rounds:
            break
        st = (await ask(st)).with_(target=target, dialog_id=dialog_id)
        history.append((st.question.text, await answer(st)))
    return {"ranks": ranks, "history": history}
