"""The app builder, serve_config.yaml and the Ingress's deadline/retry rule, without starting Ray."""
import asyncio
from pathlib import Path
from types import MethodType, SimpleNamespace

import pytest
import yaml
from pydantic import ValidationError
from ray.exceptions import ActorUnavailableError
from ray.serve.exceptions import BackPressureError

from cluster.check import check_serve_config
from deployments.app import build_app
from deployments.ingress import Ingress
from ideal.serving import ApiError
from tests.deployments.test_llm_handle import fake_serve_llm  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]


def serve_config() -> dict:
    return yaml.safe_load((ROOT / "deployments" / "serve_config.yaml").read_text())


def test_serve_config_is_valid():
    """cluster/check.py: what `serve deploy` would refuse, plus our rules for the interactive path."""
    assert check_serve_config(serve_config())


def _deployment(app, name):
    return next(x for x in app["deployments"] if x["name"] == name)


@pytest.mark.parametrize("edit, error", [
    (lambda app: app.pop("import_path"), "import_path: Field required"),
    (lambda app: app["deployments"][1].update(name="Retreiver"), r"\['Retreiver'\] do not exist"),
    (lambda app: _deployment(app, "Questioner")["autoscaling_config"].update(min_replicas=0),
     "Questioner may scale to zero"),
    (lambda app: _deployment(app, "Answerer")["autoscaling_config"].update(min_replicas=0),
     "Answerer may scale to zero"),
    (lambda app: app["args"].update(max_batch_sise=8), "args: max_batch_sise: Extra inputs"),
    (lambda app: app["args"].update(max_batch_size=0), "args: max_batch_size: Input should be greater"),
    (lambda app: app["deployments"][0].update(max_ongoing_requests="many"), "max_ongoing_requests"),
    (lambda app: _deployment(app, "Retriever").update(max_ongoing_requests=32),
     r"Retriever max_ongoing_requests 32 is below 2 x max_batch_size \(32\)"),
    (lambda app: app.update(import_path="deployments.nowhere:build_app"), "does not import"),
])
def test_broken_serve_config_is_rejected(edit, error):
    d = serve_config()
    edit(d["applications"][0])
    with pytest.raises(ValueError, match=error):
        check_serve_config(d)


def table_only_gallery(path):
    """A gallery directory with its tables and manifest (no encodings): what the builder checks."""
    from ideal.scenes.types import Scene, SceneMemory, SceneObject
    from ideal.store import write_tables

    scene = Scene("scene0000_00", "Office", [SceneObject(0, "desk", (0, 0, 0), (1, 1, 1), (0.5, 0.5, 0.5))])
    write_tables(path, [scene], [], [SceneMemory(scene.scene_id, [])], {})
    return path


def test_builder_wires_the_roles(tmp_path, monkeypatch):
    """One spec, with absolute paths, for every role. The builder checks the gallery's manifest and passes its
    path on (each replica opens it), so a table-only gallery is enough here."""
    from ideal import checkpoints

    table_only_gallery(tmp_path / "galleries" / "val")
    monkeypatch.chdir(tmp_path)  # a relative gallery path is made absolute: replicas may run elsewhere
    app = build_app({"gallery": "galleries/val", "simulated_user": False,
                     "deployment_options": {"Retriever": {"num_replicas": 2}}})
    ingress = app._bound_deployment
    assert ingress.name == "Ingress"
    retriever, questioner, answerer = (a._bound_deployment if a is not None else None for a in ingress.init_args[:3])
    assert (retriever.name, questioner.name, answerer) == ("Retriever", "Questioner", None)
    assert retriever.num_replicas == 2
    spec = retriever.init_args[0]
    assert questioner.init_args[0] == spec
    assert spec["gallery"] == str((tmp_path / "galleries" / "val").resolve())
    assert spec["weights"] == str(checkpoints.serving_default()) and Path(spec["weights"]).is_absolute()
    # a shipped checkpoint by name, the Answerer with the same spec
    app = build_app({"gallery": "galleries/val", "weights": "base"})
    retriever, _, answerer = (a._bound_deployment for a in app._bound_deployment.init_args[:3])
    assert retriever.init_args[0]["weights"] == str(checkpoints.SHIPPED["base"]) == answerer.init_args[0]["weights"]
    with pytest.raises(ValueError, match="unknown deployment"):
        build_app({"gallery": "galleries/val", "deployment_options": {"Retreiver": {}}})
    with pytest.raises(ValidationError, match="data"):  # the scans-era argument is gone, not silently ignored
        build_app({"data": {"synthetic": "bench"}})
    with pytest.raises(ValidationError):
        build_app({"max_batch_size": 0})


class Method:
    """An inner deployment method as the Ingress sees it (`.remote()` → awaitable), scripted per call."""

    def __init__(self, *outcomes):
        self.outcomes, self.calls, self.cancelled = list(outcomes), 0, 0

    def remote(self, *args):
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        method = self

        class Response:
            def __await__(self):
                return self.run().__await__()

            async def run(self):
                if outcome == "slow":
                    await asyncio.sleep(5)
                if isinstance(outcome, Exception):
                    raise outcome
                return outcome

            def cancel(self):
                method.cancelled += 1

        return Response()


def stub(timeout_s=0.2, retries=2, **roles):
    """The Ingress's own methods on a plain object (no Serve): deadline/retry and the chained round."""
    ingress = SimpleNamespace(timeout_s=timeout_s, retries=retries, retried=0, **roles)
    for name in ("_call", "_send", "_rank_and_ask"):
        setattr(ingress, name, MethodType(getattr(Ingress.func_or_class, name), ingress))
    return ingress


def call(method, timeout_s=0.2, retries=2):
    ingress = stub(timeout_s, retries)
    return asyncio.run(ingress._call("retriever", method)), ingress.retried


def wrapped(cause: Exception) -> Exception:
    """An error as a chained call delivers an upstream failure: another exception raised from it."""
    try:
        raise cause
    except Exception as e:
        try:
            raise RuntimeError("the downstream call failed") from e
        except RuntimeError as outer:
            return outer


def test_inner_call_deadline_and_retry():
    lost = ActorUnavailableError("replica lost", b"0" * 16)
    assert call(Method("ranked")) == ("ranked", 0)
    assert call(Method(lost, "ranked")) == ("ranked", 1)  # lost with its replica: sent again
    with pytest.raises(ApiError) as e:
        call(Method(lost))
    assert e.value.status == 503 and "unavailable" in e.value.reason
    slow = Method("slow")
    with pytest.raises(ApiError) as e:
        call(slow)
    assert e.value.status == 504 and "within 0.2 s" in e.value.reason and slow.cancelled == 1
    with pytest.raises(ApiError) as e:
        call(Method(BackPressureError(num_queued_requests=9, max_queued_requests=8)))
    assert e.value.status == 503 and "overloaded" in e.value.reason
    # the same errors wrapped, as a chain delivers an upstream replica's failure
    assert call(Method(wrapped(lost), "ranked")) == ("ranked", 1)
    with pytest.raises(ApiError) as e:
        call(Method(wrapped(BackPressureError(num_queued_requests=9, max_queued_requests=8))))
    assert e.value.status == 503
    with pytest.raises(ValueError, match="a bug"):  # anything else is not retried: it is the role's own error
        call(Method(ValueError("a bug")))


def test_a_round_is_one_chain_and_redone_as_two_calls_when_the_chain_fails_unrecognised():
    req = object()
    ok = stub(retriever=SimpleNamespace(rank=Method("ranked")), questioner=SimpleNamespace(ask=Method("asked")))
    assert asyncio.run(ok._rank_and_ask(req)) == "asked" and ok.retried == 0
    assert ok.retriever.rank.calls == 1 and ok.questioner.ask.calls == 1
    # a lost Retriever replica arriving as the Questioner's opaque error: redone as rank, then ask
    odd = stub(retriever=SimpleNamespace(rank=Method("ranked")),
               questioner=SimpleNamespace(ask=Method(RuntimeError("RayServeException: replica gone"), "asked")))
    assert asyncio.run(odd._rank_and_ask(req)) == "asked" and odd.retried == 1
    assert odd.retriever.rank.calls == 2 and odd.questioner.ask.calls == 2
    # a slow chain is a 504 at once, not redone
    slow = stub(retriever=SimpleNamespace(rank=Method("ranked")), questioner=SimpleNamespace(ask=Method("slow")))
    with pytest.raises(ApiError) as e:
        asyncio.run(slow._rank_and_ask(req))
    assert e.value.status == 504 and slow.questioner.ask.calls == 1


def test_builder_with_an_llm_questioner(fake_serve_llm, tmp_path):
    """With `llm:`, the Questioner gets the LLMServer deployment and the model id requests must name (ray.serve.llm
    itself needs vLLM and a GPU: a recording stand-in takes its place here)."""
    app = build_app({"gallery": str(table_only_gallery(tmp_path / "g")), "llm": str(ROOT / "deployments" / "questioner_vllm.yaml"),
                     "llm_options": {"max_tokens": 48}})
    questioner = app._bound_deployment.init_args[1]._bound_deployment
    spec, llm, options = questioner.init_args[:3]
    assert llm == "bound LLMServer" and len(fake_serve_llm) == 1
    assert options == {"model": "qwen2.5-7b-instruct", "max_tokens": 48}
    assert "dialog.questioner=llm" in spec["overrides"] and spec["gallery"] == str((tmp_path / "g").resolve())
    retriever = app._bound_deployment.init_args[0]._bound_deployment
    assert "dialog.questioner=llm" in retriever.init_args[0]["overrides"]  # one config for every role


def test_a_gallery_path_that_is_not_a_gallery_fails_in_the_builder(tmp_path):
    from ideal.scenes.types import FormatError

    with pytest.raises(FormatError, match="gallery.json.*not an encoded gallery"):
        build_app({"gallery": str(tmp_path)})
