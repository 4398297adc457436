"""The three inner deployments, one per role of ideal.serving; each batches concurrent calls with @serve.batch.

Batched work runs in a worker thread so the replica's event loop keeps collecting the next batch meanwhile
(one batch at a time per replica: the encoders' caches are not shared across threads)."""
from __future__ import annotations

import asyncio

from ray import serve

from ideal.serving import Ask, Search, ServiceSpec, User

BATCH = {"max_batch_size": 32, "batch_wait_timeout_s": 0.005}


def _batching(method, max_batch_size: int, batch_wait_timeout_s: float) -> None:
    method.set_max_batch_size(max_batch_size)
    method.set_batch_wait_timeout_s(batch_wait_timeout_s)


@serve.deployment(ray_actor_options={"num_cpus": 1})
class Retriever:
    """Ranks stateless dialogs over the gallery (text encoder + retriever; GPU when the cluster has one)."""

    def __init__(self, spec: dict, max_batch_size: int = BATCH["max_batch_size"],
                 batch_wait_timeout_s: float = BATCH["batch_wait_timeout_s"]):
        self.search = Search(ServiceSpec(**spec))
        _batching(self.rank, max_batch_size, batch_wait_timeout_s)

    @serve.batch(**BATCH)
    async def rank(self, requests):
        return await asyncio.to_thread(self.search.rank, requests)

    def scene_ids(self) -> list[str]:
        return list(self.search.gallery.ids)

    def scene(self, scene_id: str) -> dict:
        return self.search.scene(scene_id)


@serve.deployment(ray_actor_options={"num_cpus": 0.5})
class Questioner:
    """Asks each ranked dialog's next question: grounded, or an LLM behind a ray.serve.llm deployment (`llm`)."""

    def __init__(self, spec: dict, llm=None, llm_options: dict | None = None,
                 max_batch_size: int = BATCH["max_batch_size"], batch_wait_timeout_s: float = BATCH["batch_wait_timeout_s"]):
        client = None
        if llm is not None:  # only on clusters configured with an LLM questioner
            from deployments.llm import HandleChatClient

            client = HandleChatClient(llm, **(llm_options or {}))
        self.asker = Ask(ServiceSpec(**spec), client=client)
        _batching(self.ask, max_batch_size, batch_wait_timeout_s)

    @serve.batch(**BATCH)
    async def ask(self, states):
        return await asyncio.to_thread(self.asker.ask, states)

    def stats(self) -> dict:
        """The backend, and for an LLM how many dialogs it was asked about and how many fell back to grounded."""
        q = self.asker.questioner
        return {"backend": q.name, **getattr(q, "stats", {})}


@serve.deployment(ray_actor_options={"num_cpus": 0.5})
class Answerer:
    """The simulated user of evaluations (answers from the target scene's memory); never routed to HTTP."""

    def __init__(self, spec: dict, max_batch_size: int = BATCH["max_batch_size"],
                 batch_wait_timeout_s: float = BATCH["batch_wait_timeout_s"]):
        self.user = User(ServiceSpec(**spec))
        _batching(self.answer, max_batch_size, batch_wait_timeout_s)

    @serve.batch(**BATCH)
    async def answer(self, states):
        return await asyncio.to_thread(self.user.answer, states)
