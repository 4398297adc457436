"""The three inner deployments, one per role of ideal.serving; each batches concurrent calls with @serve.batch.

Serve forms a batch as calls arrive and only then waits for the previous batch to finish, so under steady load
every call would become its own batch. A `Gate` holds calls while a batch runs and lets them into the batch
queue together when it ends: a batch then holds everything that waited (up to max_batch_size), so no batch
needs to wait for arrivals (batch_wait_timeout_s 0: a lone request starts at once; docs/benchmarks.md has the
measurements). Batched work runs in a worker thread, one batch at a time per replica (the encoders' caches are not shared across
threads).
"""
from __future__ import annotations

import asyncio
import collections
import time

from ray import serve

from ideal.dialog_eval import queries
from ideal.serving import QuestionerService, RetrieverService, ServiceSpec, AnswererService

BATCH = {"max_batch_size": 32, "batch_wait_timeout_s": 0.0}


class Gate:
    """Admission to a batched method: open while no batch runs."""

    def __init__(self):
        self.open = asyncio.Event()
        self.open.set()
        self.busy_s = 0.0
        self.recent_ms = collections.deque(maxlen=1000)  # wall time of the last batches' work
        self.sizes = collections.Counter()  # batch size -> how many batches had it

    async def run(self, fn, items: list):
        """Run fn(items) in a worker thread with the gate closed; count and time the batch."""
        self.open.clear()
        self.sizes[len(items)] += 1
        t = time.perf_counter()
        try:
            return await asyncio.to_thread(fn, items)
        finally:
            dt = time.perf_counter() - t
            self.busy_s += dt
            self.recent_ms.append(dt * 1000)
            self.open.set()

    def stats(self) -> dict:
        recent = sorted(self.recent_ms)
        batches, calls = sum(self.sizes.values()), sum(n * c for n, c in self.sizes.items())
        return {"batches": batches, "batched_calls": calls, "largest_batch": max(self.sizes, default=0),
                "mean_batch": calls / max(1, batches), "busy_s": round(self.busy_s, 3),
                "batch_p50_ms": round(recent[len(recent) // 2], 2) if recent else None,
                "call_weighted_batch": sum(n * n * c for n, c in self.sizes.items()) / max(1, calls),
                "batch_sizes": dict(sorted(self.sizes.items()))}

    async def enter(self):
        """Wait until no batch runs."""
        await self.open.wait()


def _batching(method, max_batch_size: int, batch_wait_timeout_s: float) -> None:
    method.set_max_batch_size(max_batch_size)
    method.set_batch_wait_timeout_s(batch_wait_timeout_s)


@serve.deployment(ray_actor_options={"num_cpus": 1})
class Retriever:
    """Ranks stateless dialogs over the gallery's stored embeddings; sends on each dialog's top scenes only."""

    def __init__(self, spec: dict, max_batch_size: int = BATCH["max_batch_size"],
                 batch_wait_timeout_s: float = BATCH["batch_wait_timeout_s"]):
        self.service = RetrieverService(ServiceSpec(**spec))
        self.gate = Gate()
        _batching(self._rank, max_batch_size, batch_wait_timeout_s)

    async def rank(self, request):
        await self.gate.enter()
        return await self._rank(request)

    @serve.batch(**BATCH)
    async def _rank(self, requests):
        return await self.gate.run(self.service.rank, requests)

    def stats(self) -> dict:
        """How the rank calls were batched on this replica so far, and how long the batches took."""
        return self.gate.stats()

    def scene_ids(self) -> list[str]:
        return self.service.scene_ids()


@serve.deployment(ray_actor_options={"num_cpus": 0.5})
class Questioner:
    """Asks each ranked dialog's next question: grounded, or an LLM behind a ray.serve.llm deployment (`llm`)."""

    def __init__(self, spec: dict, llm=None, llm_options: dict | None = None,
                 max_batch_size: int = BATCH["max_batch_size"], batch_wait_timeout_s: float = BATCH["batch_wait_timeout_s"]):
        client = None
        if llm is not None:  # only on clusters configured with an LLM questioner
            from deployments.llm import HandleChatClient

            client = HandleChatClient(llm, **(llm_options or {}))
        self.service = QuestionerService(ServiceSpec(**spec), client=client)
        self.gate = Gate()
        _batching(self._ask, max_batch_size, batch_wait_timeout_s)

    async def ask(self, state):
        await self.gate.enter()
        return await self._ask(state)

    @serve.batch(**BATCH)
    async def _ask(self, states):
        return await self.gate.run(self.service.ask, states)

    def scene(self, scene_id: str) -> dict:
        return self.service.scene(scene_id)

    def stats(self) -> dict:
        """The backend (and for an LLM how many dialogs it was asked about and how many fell back to grounded),
        and how the calls were batched."""
        q = self.service.questioner
        return {"backend": q.name, **getattr(q, "stats", {}), **self.gate.stats()}


@serve.deployment(ray_actor_options={"num_cpus": 0.25})
class Answerer:
    """The simulated user of evaluations (answers from the target scene's memory); also the web page's simulated
    user (POST /v1/answers) and its val descriptions to start from (GET /v1/examples)."""

    def __init__(self, spec: dict, max_batch_size: int = BATCH["max_batch_size"],
                 batch_wait_timeout_s: float = BATCH["batch_wait_timeout_s"]):
        self.service = AnswererService(ServiceSpec(**spec))
        self.descriptions = queries(ServiceSpec(**spec).open().descriptions())  # the eval job's queries, in order
        self.gate = Gate()
        _batching(self._answer, max_batch_size, batch_wait_timeout_s)

    async def answer(self, state):
        await self.gate.enter()
        return await self._answer(state)

    @serve.batch(**BATCH)
    async def _answer(self, states):
        return await self.gate.run(self.service.answer, states)

    def examples(self, n: int) -> list[dict]:
        """n of the evaluation's descriptions, spread evenly over them (so over many scenes)."""
        step = max(1, len(self.descriptions) // n)
        return [{"desc_id": d.desc_id, "query": d.text, "target": d.scene_id, "object_name": d.object_name}
                for d in self.descriptions[::step][:n]]

    def stats(self) -> dict:
        return self.gate.stats()
