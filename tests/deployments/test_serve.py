"""The Serve app over real HTTP on a local Ray (replicas at num_cpus=0), started from an encoded gallery whose
benchmark scans are deleted: a 3-round dialog equal to the in-process roles, a Retriever reply that carries only
its top (scene, score) pairs, every bad input answered 4xx with a reason, a Retriever replica killed under load,
and a simulated dialog through the handles equal to the eval job's."""
import asyncio
import time

import httpx
import numpy as np
import pytest
import ray
from ray import serve

from deployments.app import build_app
from ideal import build, checkpoints
from ideal.config import load_config
from ideal.dialog_eval import EvalSpec, context, run_shard
from ideal.serving import AnswererService, QuestionerService, RoundRequest, RetrieverService, simulate_here

pytestmark = pytest.mark.integration
ZERO = {"ray_actor_options": {"num_cpus": 0}}


@pytest.fixture(scope="module")
def bench(served):
    """(benchmark root, gallery G): G holds the benchmark's val scenes encoded with the IAT weights, and the
    benchmark's scans are deleted: everything below serves from G alone."""
    return served.root, served.gallery


@pytest.fixture(scope="module")
def spec(served):
    return served.spec


@pytest.fixture(scope="module")
def url(served):
    return served.url


@pytest.fixture(scope="module")
def local(spec, text_encoder):
    """The same roles in this process: what the HTTP answers must equal."""
    return RetrieverService(spec, text_encoder), QuestionerService(spec)


def expected(local, query, history, k):
    """The in-process round: (state with its question, the top k (scene id, score) pairs)."""
    search, ask = local
    (st,) = ask.ask(search.rank([RoundRequest(query, tuple(history), k)]))
    return st, list(st.top[:k])


def test_the_roles_serve_a_dialog_from_the_gallery_alone(bench, spec, text_encoder):
    """No scan is read to serve: with the benchmark's scans/ gone, the three roles built from G answer a
    2-round simulated dialog and the scene pages."""
    root, g = bench
    assert not (root / "scans").exists()
    search, ask = RetrieverService(spec, text_encoder), QuestionerService(spec)
    user = AnswererService(spec, text_encoder)
    store = build.open_gallery(g)
    d = next(x for x in store.descriptions() if x.source == "scanrefer")

    got = simulate_here(search, ask, user, d.text, d.scene_id, 2, "d0", k=5)
    assert len(got["ranks"]) == 3 and all(0 <= r <= 5 for r in got["ranks"])
    assert len(got["history"]) == 2 and all(q.endswith("?") and a.strip() for q, a in got["history"])
    page = ask.scene(d.scene_id)
    assert page["memory"] is None  # the questioner holds no memories
    assert [o["label"] for o in page["objects"]] == [o.label for o in store.dataset().scenes[d.scene_id].objects]


def test_three_round_dialog_matches_the_library(url, local):
    query, history = "the brown chair next to the table", []
    with httpx.Client(base_url=url, timeout=60) as c:
        for r in range(1, 4):
            res = c.post("/v1/rounds", json={"query": query, "history": [
                {"question": q, "answer": a} for q, a in history], "k": 5})
            assert res.status_code == 200, res.text
            body = res.json()
            st, want = expected(local, query, history, 5)
            assert body["round"] == r and body["question"] == st.question.text
            assert [x["scene_id"] for x in body["ranking"]] == [sid for sid, _ in want]
            np.testing.assert_allclose([x["score"] for x in body["ranking"]], [s for _, s in want], atol=1e-5)
            # a real user's answer: the room, then "I don't know."
            history.append((body["question"], "It is a bedroom." if r == 1 else "I don't know."))
        assert len({x["scene_id"] for x in body["ranking"]}) == 5


@pytest.mark.parametrize("k", [2, 8])
def test_the_retriever_sends_on_its_top_pairs_only(url, local, k):
    """What crosses the Retriever → Questioner hop: no score vector, the best max(k, dialog.k) scenes (the
    questioner reads dialog.k of them), equal to the in-process ranking."""
    search = local[0]
    req = RoundRequest("the brown chair next to the table", (("Which room is it in?", "It is an office."),), k)
    st = serve.get_deployment_handle("Retriever", "ideal").rank.remote(req).result(timeout_s=60)
    assert st.scores is None
    assert len(st.top) == max(k, search.cfg.k) and len({sid for sid, _ in st.top}) == len(st.top)
    (want,) = search.rank([req])
    assert [sid for sid, _ in st.top] == [sid for sid, _ in want.top]
    np.testing.assert_allclose([s for _, s in st.top], [s for _, s in want.top], atol=1e-5)
    assert [s for _, s in st.top] == sorted((s for _, s in st.top), reverse=True)


def test_scene_health_and_docs(url, spec, local):
    search, _ = local
    sid = search.gallery.ids[0]
    with httpx.Client(base_url=url, timeout=60) as c:
        scene = c.get(f"/v1/scenes/{sid}").json()
        assert scene["scene_id"] == sid and scene["objects"] and scene["memory"] is None
        assert [o["label"] for o in scene["objects"]] == [o.label for o in spec.open().dataset().scenes[sid].objects]
        health = c.get("/healthz").json()
        assert health["status"] == "ok" and health["scenes"] == len(search.gallery)
        paths = c.get("/openapi.json").json()["paths"]
        assert "/v1/rounds" in paths and "requestBody" in paths["/v1/rounds"]["post"]
        assert c.get("/docs").status_code == 200


def _post(c, body: bytes):
    return c.post("/v1/rounds", content=body, headers={"content-type": "application/json"})


BAD = [
    (b'{"query": ""}', 422, "query is empty"),
    (b'{"query": "   "}', 422, "query is empty"),
    (b'{"query": "' + b"a" * 1500 + b'"}', 422, "the limit is 1000"),
    (b'{"query": "a chair"' + b" " * 30_000 + b"}", 413, "the limit is 20000"),
    (b'{"query": "a \xff chair"}', 400, "not UTF-8"),
    (b'{"query": "a chair", ', 400, "malformed JSON"),
    (b'["a chair"]', 422, "must be a JSON object"),
    (b'{"history": []}', 422, "query is missing"),
    (b'{"query": 5}', 422, "query must be a string"),
    (b'{"query": "a chair", "history": "none"}', 422, "history must be a list"),
    (b'{"query": "a chair", "history": [{"question": "Which room?"}]}', 422, "history[0] must be an object"),
    (b'{"query": "a chair", "history": [["Which room?", "A bedroom."]]}', 422, "history[0] must be an object"),
    (b'{"query": "a chair", "history": [{"question": "Q?", "answer": 3}]}', 422, "history[0].answer must be a string"),
    (b'{"query": "a chair", "k": 0}', 422, "k must be between 1 and"),
    (b'{"query": "a chair", "k": 11}', 422, "k must be between 1 and 10"),  # the gallery has 10 scenes
    (b'{"query": "a chair", "k": "5"}', 422, "k must be an integer"),
    (b'{"query": "a chair", "k": true}', 422, "k must be an integer"),
    (b'{"query": "a chair", "top": 3}', 422, "unknown field(s) top"),
]


@pytest.mark.parametrize("body,status,reason", BAD, ids=[f"{s}-{r[:24]}" for _, s, r in BAD])
def test_bad_input_is_4xx_with_a_reason(url, local, body, status, reason):
    assert len(local[0].gallery) == 10
    with httpx.Client(base_url=url, timeout=60) as c:
        res = _post(c, body)
    assert res.status_code == status, res.text
    assert reason in res.json()["detail"]


def test_unknown_scene_and_wrong_method(url):
    with httpx.Client(base_url=url, timeout=60) as c:
        res = c.get("/v1/scenes/scene9999_00")
        assert res.status_code == 404 and "unknown scene id 'scene9999_00'" in res.json()["detail"]
        assert c.get("/v1/rounds").status_code == 405


def test_simulated_dialog_through_handles_equals_the_eval_job(url, spec):
    ingress = serve.get_app_handle("ideal")
    cfg = load_config(None, list(spec.overrides))
    es = EvalSpec(gallery=spec.gallery, limit=4, iat_weights={"iat": spec.weights}, config=cfg.to_dict())
    assert spec.weights == str(checkpoints.SHIPPED["iat"].resolve())
    shard = run_shard(es, "ideal", 0, 4, 3)
    for d, ranks in zip(context(es).descs, shard["ranks"]):
        got = ingress.simulate.remote(d.text, d.scene_id, 3, d.desc_id).result(timeout_s=120)
        # the eval job ranks the whole gallery; a served dialog sees the top 10 (k when the target is not there)
        assert got["ranks"] == [min(r, 10) for r in ranks]
        assert len(got["history"]) == 3


def test_concurrent_rounds_are_batched_and_equal_the_library(url, local):
    queries = [f"the {c} {o} by the {t}" for c in ("red", "grey", "green") for o in ("lamp", "sofa")
               for t in ("wall", "sink", "shelf", "bed")]

    async def burst():
        async with httpx.AsyncClient(base_url=url, timeout=120) as c:
            return await asyncio.gather(*(c.post("/v1/rounds", json={"query": q, "k": 4}) for q in queries))

    results = asyncio.run(burst())
    assert [r.status_code for r in results] == [200] * len(queries)
    n = len(local[0].gallery)
    for q, r in zip(queries, results):  # a dialog's answer does not depend on what it was batched with
        _, want = expected(local, q, [], 4)
        _, every = expected(local, q, [], n)  # every scene's score, computed alone
        got = r.json()["ranking"]
        # the same top 4 up to float noise (a batch pads texts: ~1e-6): each scene's score as computed alone
        np.testing.assert_allclose([x["score"] for x in got], [sc for _, sc in want], atol=1e-4)
        np.testing.assert_allclose([x["score"] for x in got], [dict(every)[x["scene_id"]] for x in got], atol=1e-4)
    handle = serve.get_deployment_handle("Retriever", "ideal")
    stats = [handle.stats.remote().result(timeout_s=60) for _ in range(12)]  # routed to either replica
    # 24 requests at once on two replicas: calls that came while a batch ran went in together
    assert max(st["largest_batch"] for st in stats) >= 2


def retriever_replicas() -> list[str]:
    """Names of the live Retriever replica actors (a dead actor's name is released)."""
    return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                  if a["namespace"] == "serve" and "#Retriever#" in a["name"])


async def ongoing(replica) -> int:
    """Requests queued or running at a replica actor: Serve's own probe of a replica's queue (what its router
    reads), answered on a separate concurrency group, so a busy replica answers at once."""
    return await replica.get_num_ongoing_requests.remote()


def retriever_running() -> int:
    """Retriever replicas RUNNING, as serve.status() reports them."""
    d = serve.status().applications["ideal"].deployments["Retriever"]
    return d.replica_states.get("RUNNING", 0)


def test_replica_killed_under_load_loses_no_request(url, local):
    queries = [f"the {c} chair next to the {t}" for c in ("brown", "black", "white", "blue")
               for t in ("table", "desk", "bed", "window", "door")] * 2

    async def one(c, q):
        for _ in range(3):  # a client retries a 503 (the API is stateless)
            res = await c.post("/v1/rounds", json={"query": q, "k": 3})
            if res.status_code != 503:
                return res
            await asyncio.sleep(0.5)
        return res

    async def load():
        async with httpx.AsyncClient(base_url=url, timeout=120) as c:
            tasks = [asyncio.create_task(one(c, q)) for q in queries]
            replicas = {name: ray.get_actor(name, namespace="serve") for name in retriever_replicas()}
            assert len(replicas) == 2
            # kill a replica while it holds several requests (a batch running, more behind it), not at a guess
            deadline = time.monotonic() + 60
            while True:
                held = {name: await ongoing(actor) for name, actor in replicas.items()}
                victim = max(held, key=held.get)
                if held[victim] >= 3:
                    break
                assert time.monotonic() < deadline, f"no Retriever replica held 3 requests within 60 s: {held}"
                assert not all(t.done() for t in tasks), "the load finished before a replica was seen busy"
                await asyncio.sleep(0.01)
            ray.kill(replicas[victim], no_restart=True)
            return victim, await asyncio.gather(*tasks)

    killed, results = asyncio.run(load())
    assert [r.status_code for r in results] == [200] * len(queries), [r.text for r in results if r.status_code != 200]
    for q, r in zip(queries, results):
        _, want = expected(local, q, [], 3)
        assert [x["scene_id"] for x in r.json()["ranking"]] == [sid for sid, _ in want]
    # Serve brings the deployment back to 2 running replicas, the killed one replaced
    deadline = time.monotonic() + 60
    while not (retriever_running() == 2 and len(retriever_replicas()) == 2 and killed not in retriever_replicas()):
        assert time.monotonic() < deadline, f"Retriever not back to 2 replicas: {serve.status()}"
        time.sleep(0.2)


def test_an_llm_questioner_app_over_http(url, spec):
    """`dialog.questioner=llm` with `dialog.llm=smollm2` reaches the Questioner replica through the builder's
    overrides: the bundled SmolLM2-135M-Instruct (transformers, on CPU) writes the question of the round."""
    from ideal.dialog.models import ensure_model

    ensure_model("smollm2")  # converted here once, not by the replica under a deadline
    serve.run(build_app({"gallery": spec.gallery, "weights": spec.weights, "simulated_user": False,
                         "overrides": [*spec.overrides, "dialog.questioner=llm", "dialog.llm=smollm2",
                                       "dialog.llm_engine=transformers"],
                         "deployment_options": {n: dict(ZERO) for n in ("Ingress", "Retriever", "Questioner")}}),
              name="ideal-llm", route_prefix="/llm")
    try:
        with httpx.Client(base_url=url, timeout=180) as c:
            res = c.post("/llm/v1/rounds", json={"query": "the brown chair next to the table", "k": 3})
            assert res.status_code == 200, res.text
            assert res.json()["question"].endswith("?") and res.json()["round"] == 1
            assert c.post("/llm/v1/rounds", json={"query": ""}).status_code == 422
        stats = serve.get_deployment_handle("Questioner", "ideal-llm").stats.remote().result(timeout_s=60)
        # the model's own question (greedy decoding: the same every run), not the grounded fallback's
        assert stats["backend"] == "llm" and stats["calls"] == 1 and stats["parsed"] == 1
        grounded = serve.get_deployment_handle("Questioner", "ideal").stats.remote().result(timeout_s=60)
        assert grounded["backend"] == "grounded" and grounded["batched_calls"] >= 3
    finally:
        serve.delete("ideal-llm")
