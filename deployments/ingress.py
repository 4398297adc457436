"""The HTTP front door (FastAPI): POST /v1/rounds, GET /v1/scenes/{id}, GET /healthz, docs at /docs.

Every inner call has a deadline (asyncio.wait_for): a slow role gives 504, an overloaded or lost one 503,
never a hang. Rounds are stateless and idempotent, so a call whose replica died is retried on another."""

import asyncio
import time
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from ray import serve
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, ReplicaUnavailableError

from ideal.serving import ApiError, Limits, RoundRequest, parse_round_request, round_response, simulate

LOST = (RayActorError, ActorDiedError, ActorUnavailableError, ReplicaUnavailableError, DeploymentUnavailableError)


def _causes(e: BaseException) -> list[BaseException]:
    """e and what it wraps: __cause__ / __context__, and a RayTaskError's `cause`."""
    seen, todo = [], [e]
    while todo and len(seen) < 20:
        x = todo.pop()
        if x is None or any(x is y for y in seen):
            continue
        seen.append(x)
        todo += [getattr(x, "cause", None), x.__cause__, x.__context__]
    return seen


def _caused_by(e: BaseException, types: tuple) -> bool:
    return any(isinstance(x, types) for x in _causes(e))


class Turn(BaseModel):
    question: str
    answer: str


class RoundIn(BaseModel):
    query: str = Field(description="the user's description of one object in a room")
    history: list[Turn] = Field(default_factory=list, description="every answered question so far, oldest first")
    k: int = Field(10, description="how many scenes to return")


class Ranked(BaseModel):
    scene_id: str
    score: float


class RoundOut(BaseModel):
    ranking: list[Ranked]
    question: Optional[str] = Field(description="the next question to put to the user")
    round: int = Field(description="the number of that question (1 = the first, after the query alone)")


app = FastAPI(title="IDeal interactive 3D scene retrieval", version="1")


@app.exception_handler(ApiError)
async def _api_error(request: Request, e: ApiError):
    return JSONResponse({"detail": e.reason}, status_code=e.status)


@serve.deployment(ray_actor_options={"num_cpus": 0.25})
@serve.ingress(app)
class Ingress:
    def __init__(self, retriever, questioner, answerer=None, limits: Optional[dict] = None, timeout_s: float = 25.0,
                 retries: int = 2):
        self.retriever, self.questioner, self.answerer = retriever, questioner, answerer
        self.limits = Limits(**(limits or {}))
        self.timeout_s, self.retries = timeout_s, retries
        self._scene_ids: Optional[list[str]] = None
        self.retried = 0  # inner calls lost with their replica and sent again

    async def _call(self, role: str, method, *args, deadline: Optional[float] = None):
        """One inner call with a deadline; a call lost with its replica is retried (rounds are idempotent)."""
        return await self._send(role, lambda: method.remote(*args), deadline)

    async def _send(self, role: str, send, deadline: Optional[float] = None):
        """Await `send()` (a DeploymentResponse, maybe of a chain of calls) by `deadline` (time.monotonic();
        default now + timeout_s): 504 past it, 503 when a queue is full, and a call lost with its replica sent
        again. The error may arrive wrapped (a chain's upstream failure): it is looked for in the cause chain."""
        deadline = deadline or time.monotonic() + self.timeout_s
        for attempt in range(self.retries + 1):
            response = send()
            try:
                return await asyncio.wait_for(response, max(0.001, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                response.cancel()
                raise ApiError(504, f"the {role} did not answer within {self.timeout_s:g} s") from None
            except Exception as e:
                if _caused_by(e, (BackPressureError,)):
                    raise ApiError(503, f"the {role} is overloaded (queue full); retry later") from None
                if not _caused_by(e, LOST):
                    raise
                if attempt == self.retries or time.monotonic() >= deadline:
                    raise ApiError(503, f"the {role} is unavailable (replica lost); retry later") from None
                self.retried += 1

    async def _rank_and_ask(self, req: RoundRequest):
        """The round's two inner calls as one chain: the ranked state goes from the Retriever straight to the
        Questioner, not back through here. A chain that fails in a way not recognised above (a lost Retriever replica can arrive as the Questioner's RayServeException) is
        done again as two calls, whose errors speak for themselves: rounds are idempotent."""
        deadline = time.monotonic() + self.timeout_s
        try:
            return await self._send("retriever and questioner",
                                    lambda: self.questioner.ask.remote(self.retriever.rank.remote(req)), deadline)
        except ApiError:
            raise
        except Exception:
            self.retried += 1
            state = await self._call("retriever", self.retriever.rank, req, deadline=deadline)
            return await self._call("questioner", self.questioner.ask, state, deadline=deadline)

    async def scene_ids(self) -> list[str]:
        if self._scene_ids is None:
            self._scene_ids = await self._call("retriever", self.retriever.scene_ids)
        return self._scene_ids

    async def _body(self, request: Request) -> bytes:
        cap = self.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise ApiError(413, f"request body is {declared} bytes; the limit is {cap}")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > cap:
                raise ApiError(413, f"request body is over the limit of {cap} bytes")
        return body

    @app.post("/v1/rounds", response_model=RoundOut,
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": RoundIn.model_json_schema(ref_template="#/components/schemas/{model}")}}}})
    async def rounds(self, request: Request) -> dict:
        """Rank the gallery for the dialog so far and ask the next question."""
        ids = await self.scene_ids()
        req = parse_round_request(await self._body(request), self.limits, n_scenes=len(ids))
        state = await self._rank_and_ask(req)  # the Retriever ranked and cut to the top k; no score vector here
        return round_response(state, list(state.top[:req.k]))

    @app.get("/v1/scenes/{scene_id}")
    async def scene(self, scene_id: str) -> dict:
        """A gallery scene's objects (label, box, colour) and its scene type."""
        if scene_id not in set(await self.scene_ids()):
            raise ApiError(404, f"unknown scene id {scene_id!r}")
        return await self._call("questioner", self.questioner.scene, scene_id)

    @app.get("/healthz")
    async def healthz(self) -> dict:
        return {"status": "ok", "scenes": len(await self.scene_ids()), "retried_calls": self.retried}

    async def simulate(self, query: str, target: str, rounds: int, dialog_id: str = "0") -> dict:
        """A simulated dialog through the role deployments (evaluations; handle-only, not an HTTP route).
        Every step is an inner call with the deadline and retry of a round."""
        if self.answerer is None:
            raise ValueError("this app was built without the simulated user (answerer)")

        def call(role, method):
            return lambda x: self._call(role, method, x)

        return await simulate(query, target, rounds, call("retriever", self.retriever.rank),
                              call("questioner", self.questioner.ask), call("answerer", self.answerer.answer), dialog_id)
