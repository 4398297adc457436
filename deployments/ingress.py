"""The HTTP front door (FastAPI): POST /v1/rounds, GET /v1/scenes/{id}, GET /healthz, docs at /docs; the web page
at / (and /scenes/{id}) with its static files under /web/ (deployments/web/); the simulated user's
GET /v1/examples and POST /v1/answers (404 when the app was built without it).

Every inner call has a deadline (asyncio.wait_for): a slow role gives 504, an overloaded or lost one 503,
never a hang. Rounds are stateless and idempotent, so a call whose replica died is retried on another."""

import asyncio
import html
import json
import time
from pathlib import Path
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from ray import serve
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, ReplicaUnavailableError

from ideal.dialog.types import DONT_KNOW
from ideal.scenes.types import STRUCTURE_LABELS
from ideal.serving import ApiError, Limits, RoundRequest, parse_round_request, round_response, simulate
from ideal.serving.api import parse_answer_request, parse_count

WEB = Path(__file__).parent / "web"

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


class AnswerIn(BaseModel):
    query: str = Field(description="the dialog's initial query")
    history: list[Turn] = Field(default_factory=list, description="every answered question so far, oldest first")
    target: str = Field(description="the scene id the simulated user has in mind")
    question: str = Field(description="the question to answer")
    dialog_id: str = Field("", description="seeds which remembered sentences come up (the eval job: the desc_id)")


class AnswerOut(BaseModel):
    answer: str


def _body_schema(model) -> dict:
    """A route that reads its raw body (to check it itself) still documents the JSON it takes."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema(ref_template="#/components/schemas/{model}")}}}}


app = FastAPI(title="IDeal interactive 3D scene retrieval", version="1")
# the page's scripts and styles (a sub-app mounted on the ingress's app: served under Serve 2.60). check_dir=False: a
# copy of the package without deployments/web/ (a wheel) still serves the API.
app.mount("/web", StaticFiles(directory=WEB, check_dir=False), name="web")


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

    def _page(self, request: Request) -> HTMLResponse:
        """index.html with its base URL (the app's route prefix) and what the page must know of the server."""
        config = {"structure": sorted(STRUCTURE_LABELS), "dontKnow": DONT_KNOW,
                  "simulatedUser": self.answerer is not None,
                  "timeoutMs": int((self.timeout_s + 5) * 1000)}  # past the server's deadline: its 504 comes first
        if not (WEB / "index.html").is_file():
            raise ApiError(404, f"no web page here: {WEB} is missing (install the app from its source tree)")
        page = (WEB / "index.html").read_text(encoding="utf-8")
        base = html.escape(request.scope.get("root_path", "").rstrip("/") + "/")
        config_json = json.dumps(config).replace("<", "\\u003c")  # inside a <script> element
        return HTMLResponse(page.replace("%BASE%", base).replace("%CONFIG%", config_json))

    @app.get("/", include_in_schema=False)
    async def page(self, request: Request) -> HTMLResponse:
        """The interactive search page (deployments/web/)."""
        return self._page(request)

    @app.get("/scenes/{scene_id}", include_in_schema=False)
    async def scene_page(self, request: Request, scene_id: str) -> HTMLResponse:
        """A scene's page: the same page, which reads the scene id from its URL."""
        return self._page(request)

    def _simulated_user(self):
        if self.answerer is None:
            raise ApiError(404, "this app was built without the simulated user (AppArgs.simulated_user is false)")
        return self.answerer

    @app.get("/v1/examples")
    async def examples(self, request: Request) -> dict:
        """Val descriptions to start a simulated dialog from: query text, target scene id, described object.
        `?n=` how many (default 20)."""
        answerer = self._simulated_user()
        n = parse_count(request.query_params.get("n"), "n", default=20)
        return {"examples": await self._call("answerer", answerer.examples, n)}

    @app.post("/v1/answers", response_model=AnswerOut, openapi_extra=_body_schema(AnswerIn))
    async def answers(self, request: Request) -> dict:
        """The simulated user's answer to the pending question, from the target scene's memory."""
        answerer = self._simulated_user()
        ids = await self.scene_ids()
        req = parse_answer_request(await self._body(request), self.limits, set(ids))
        return {"answer": await self._call("answerer", answerer.answer, req.state())}

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
