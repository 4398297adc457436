"""deployments/llm.py without Ray or vLLM: HandleChatClient against a fake DeploymentHandle that behaves like
Serve's (stream=True required for the generator method `chat`, arguments pickled, responses iterated, cancel) and
answers with objects shaped like vLLM's ChatCompletionResponse / streamed chunks / ErrorResponse; the LLMConfig
YAML and the CPU LLMConfig against Ray's own LLMConfig model; and the module's import staying light. Then, where
vLLM is installed (`.[llm]`), the real thing: SmolLM2 behind ray.serve.llm answering a round over HTTP."""
import importlib.util
import pickle
import re
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Optional

import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from deployments import llm
from deployments.llm import (HandleChatClient, build_llm_deployment, llm_deployment_name, llm_model_id,
                             load_llm_config, read_chat)
from ideal.dialog.llm import EXTRACT, LLMAnswerWriter, LLMQuestioner, LLMSummariser, question_messages
from ideal.dialog.types import Q1, Q2, Candidate, DialogState, Question, Turn

ROOT = Path(__file__).resolve().parents[2]
QUESTIONER_YAML = ROOT / "deployments" / "questioner_vllm.yaml"


# ----------------------------------------------------------------------------------- vLLM-shaped protocol models

class ChatCompletionRequest(BaseModel):  # the fields of vLLM's model we set; unknown ones rejected
    model_config = ConfigDict(extra="forbid")
    messages: list[dict]
    model: Optional[str] = None
    max_tokens: Optional[int] = None
    temperature: Optional[float] = None
    stream: Optional[bool] = False
    continue_final_message: bool = False
    add_generation_prompt: bool = True
    structured_outputs: Optional[dict] = None


class ChatMessage(BaseModel):
    role: str
    content: Optional[str] = None


class Choice(BaseModel):
    index: int
    message: ChatMessage
    finish_reason: Optional[str] = "stop"


class StreamChoice(BaseModel):
    index: int
    delta: dict
    finish_reason: Optional[str] = None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletionResponse(BaseModel):
    id: str = "chatcmpl-1"
    object: str = "chat.completion"
    created: int = 0
    model: str
    choices: list[Choice]
    usage: Usage = Usage()


class ChatCompletionStreamResponse(BaseModel):
    id: str = "chatcmpl-1"
    object: str = "chat.completion.chunk"
    created: int = 0
    model: str
    choices: list[StreamChoice]


class ErrorInfo(BaseModel):
    message: str
    type: str
    code: int


class ErrorResponse(BaseModel):
    error: ErrorInfo


# ----------------------------------------------------------------------------------- a fake Serve handle

class FakeResponseGenerator:
    """Serve's DeploymentResponseGenerator: iterable (blocking), no `.result()`, cancellable."""

    def __init__(self, items, delay_s=0.0):
        self._items, self._delay_s, self._cancelled = iter(items), delay_s, threading.Event()

    def __iter__(self):
        return self

    def __next__(self):
        if self._cancelled.wait(self._delay_s):
            raise RuntimeError("TaskCancelledError")  # what Ray raises for a cancelled, assigned request
        return next(self._items)

    def result(self, *, timeout_s=None):
        raise TypeError("`DeploymentResponseGenerator` doesn't support `.result()`.")

    def cancel(self):
        self._cancelled.set()

    def cancelled(self):
        return self._cancelled.is_set()


class FakeLLMServer:
    """Answers like LLMServer.chat: one ChatCompletionResponse, or (request.stream) batches of SSE strings."""

    def __init__(self, model="qwen2.5-7b-instruct", delay_s=0.0):
        self.model, self.delay_s, self.requests = model, delay_s, []

    def reply(self, request) -> str:
        return f"Sure! Question: Is the chair {len(request.messages[-1]['content'])} cm tall?"

    def chat(self, request):
        if request.model != self.model:  # vLLM checks the model name against its served_model_name
            return [ErrorResponse(error=ErrorInfo(message=f"The model `{request.model}` does not exist.",
                                                  type="NotFoundError", code=404))]
        text = self.reply(request)
        if not request.stream:
            return [ChatCompletionResponse(model=self.model, choices=[
                Choice(index=0, message=ChatMessage(role="assistant", content=text))])]
        words = text.split(" ")
        deltas = [{"role": "assistant", "content": ""}] + [{"content": w + " "} for w in words[:-1]] + \
                 [{"content": words[-1]}]
        chunks = [ChatCompletionStreamResponse(model=self.model, choices=[StreamChoice(index=0, delta=d)])
                  for d in deltas]
        sse = [f"data: {c.model_dump_json()}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
        return [sse[i:i + 3] for i in range(0, len(sse), 3)]  # the server's Batcher sends lists of chunks


class FakeHandle:
    """DeploymentHandle: `.options(stream=...)`, `.<method>.remote(*args)`; args cross a process, so pickled."""

    def __init__(self, server, stream=False):
        self.server, self.stream, self.calls = server, stream, []

    def options(self, *, stream=None, **_):
        h = FakeHandle(self.server, self.stream if stream is None else stream)
        h.calls = self.calls
        return h

    def __getattr__(self, method):
        handle = self

        class Method:
            @staticmethod
            def remote(*args):
                args = pickle.loads(pickle.dumps(args))
                handle.calls.append((method, args))
                if not handle.stream:
                    raise TypeError(f"Method '{method}' returned a generator. You must use "
                                    "`handle.options(stream=True)` to call generators on a deployment.")
                items = getattr(handle.server, method)(*args)
                return FakeResponseGenerator(items, handle.server.delay_s)

        return Method()


@pytest.fixture
def fake_serve_llm(monkeypatch):
    """`ray.serve.llm` (needs vLLM) replaced by modules holding the protocol models above and a recording builder."""
    built = []
    mod = types.ModuleType("ray.serve.llm")
    mod.LLMConfig = lambda **kw: ("LLMConfig", kw)
    mod.build_llm_deployment = lambda cfg, **kw: built.append(cfg) or "bound LLMServer"
    api = types.ModuleType("ray.serve.llm.openai_api_models")
    api.ChatCompletionRequest = ChatCompletionRequest
    monkeypatch.setitem(sys.modules, "ray.serve.llm", mod)
    monkeypatch.setitem(sys.modules, "ray.serve.llm.openai_api_models", api)
    return built


def conversation(text):
    return [{"role": "system", "content": "Ask one question."}, {"role": "user", "content": text}]


# ----------------------------------------------------------------------------------- HandleChatClient

def test_requests_have_the_openai_chat_schema_and_replies_come_back_in_order(fake_serve_llm):
    handle = FakeHandle(FakeLLMServer())
    client = HandleChatClient(handle, model="qwen2.5-7b-instruct", max_tokens=48, temperature=0.2)
    convs = [conversation("a" * n) for n in (3, 10, 7)]
    assert client.complete(convs) == [f"Sure! Question: Is the chair {n} cm tall?" for n in (3, 10, 7)]
    assert client.complete([]) == []
    assert [m for m, _ in handle.calls] == ["chat"] * 3
    for (_, (request,)), messages in zip(handle.calls, convs):
        assert isinstance(request, ChatCompletionRequest)
        assert request.model_dump(exclude_unset=True) == {"model": "qwen2.5-7b-instruct", "messages": messages,
                                                          "max_tokens": 48, "temperature": 0.2, "stream": False}


def test_a_constraint_becomes_the_request_s_structured_outputs(fake_serve_llm):
    handle = FakeHandle(FakeLLMServer())
    client = HandleChatClient(handle, model="qwen2.5-7b-instruct")
    client.complete([conversation("abc"), conversation("de")], [{"choice": ["Yes.", "No."]}, None])
    (_, (constrained,)), (_, (free,)) = handle.calls
    assert constrained.structured_outputs == {"choice": ["Yes.", "No."]} and free.structured_outputs is None
    assert "structured_outputs" not in free.model_dump(exclude_unset=True)
    with pytest.raises(ValueError, match="constraint 0"):
        client.complete([conversation("abc")], [{"grammar": "x"}])


def test_a_begun_reply_is_continued_by_the_server(fake_serve_llm):
    # the questioner begins the assistant turn for a small model; vLLM must continue it, not open a new turn
    handle = FakeHandle(FakeLLMServer())
    begun = conversation("abc") + [{"role": "assistant", "content": "Question: What"}]
    HandleChatClient(handle, model="qwen2.5-7b-instruct").complete([begun, conversation("abc")])
    (_, (cont,)), (_, (plain,)) = handle.calls
    assert (cont.continue_final_message, cont.add_generation_prompt) == (True, False)
    assert (plain.continue_final_message, plain.add_generation_prompt) == (False, True)


def test_streamed_chunks_are_joined(fake_serve_llm):
    handle = FakeHandle(FakeLLMServer())
    replies = HandleChatClient(handle, model="qwen2.5-7b-instruct", stream=True).complete([conversation("abcd")])
    assert replies == ["Sure! Question: Is the chair 4 cm tall?"]
    assert handle.calls[0][1][0].stream is True


def test_read_chat_takes_every_shape_the_server_sends():
    response = ChatCompletionResponse(model="m", choices=[Choice(index=0, message=ChatMessage(role="assistant",
                                                                                              content="Hi?"))])
    assert read_chat([response]) == read_chat([response.model_dump()]) == "Hi?"
    chunks = [ChatCompletionStreamResponse(model="m", choices=[StreamChoice(index=0, delta={"content": c})])
              for c in ("Is it ", "red?")]
    assert read_chat([chunks]) == read_chat([[f"data: {c.model_dump_json()}\n\n" for c in chunks]]) == "Is it red?"
    assert read_chat(["".join(f"data: {c.model_dump_json()}\n\n" for c in chunks) + "data: [DONE]\n\n"]) == \
        "Is it red?"
    none = ChatCompletionResponse(model="m", choices=[Choice(index=0, message=ChatMessage(role="assistant"))])
    assert read_chat([none]) == "" and read_chat([]) == ""
    with pytest.raises(RuntimeError, match="400: prompt too long"):
        read_chat([[ErrorResponse(error=ErrorInfo(message="prompt too long", type="BadRequestError", code=400))]])
    with pytest.raises(RuntimeError, match="400: bad"):  # vLLM's older flat error shape
        read_chat([{"object": "error", "message": "bad", "code": 400}])
    with pytest.raises(RuntimeError, match="unexpected int"):
        read_chat([42])


def test_an_error_response_raises_and_the_questioner_falls_back(fake_serve_llm):
    client = HandleChatClient(FakeHandle(FakeLLMServer()), model="wrong-model")
    with pytest.raises(RuntimeError, match="404: The model `wrong-model` does not exist"):
        client.complete([conversation("x")])

    class Grounded:
        name = "grounded"

        def ask(self, states, kinds, candidates):
            return [Question("Is there a window?", kind) for kind in kinds]

    questioner = LLMQuestioner(client, fallback=Grounded(), starts={})
    state, cands = DialogState("the brown chair"), [Candidate("s0", 1.0, ("A kitchen with a brown chair.",))]
    assert questioner.ask([state], [Q1], [cands]) == [Question("Is there a window?", Q1)]
    assert questioner.stats == {"calls": 1, "parsed": 0, "fallbacks": 1, "repeats": 0, "retries": 0}


def test_the_questioner_asks_through_the_handle(fake_serve_llm):
    handle = FakeHandle(FakeLLMServer())
    questioner = LLMQuestioner(HandleChatClient(handle, model="qwen2.5-7b-instruct"), fallback=None, top_k=2, starts={})
    state = DialogState("the brown chair next to the table")
    cands = [Candidate(f"s{i}", 1.0, (f"Room {i} has a table.",)) for i in range(3)]
    (question,) = questioner.ask([state], [Q1], [cands])
    sent = handle.calls[0][1][0].messages
    assert sent == question_messages(state, Q1, cands, top_k=2)
    assert question.text == f"Is the chair {len(sent[-1]['content'])} cm tall?"
    assert questioner.stats == {"calls": 1, "parsed": 1, "fallbacks": 0, "repeats": 0, "retries": 0}


OBJECTS = ("chair", "table", "lamp")


class RoleServer(FakeLLMServer):
    """Replies as a chat model following each role's prompt would, about the object the conversation names."""

    def reply(self, request):
        said = request.messages[1]["content"].replace(EXTRACT, "")  # the dialog, the memory or the sentences
        obj = next(o for o in OBJECTS if re.search(rf"\b{o}\b", said))
        last = request.messages[-1]["content"]
        if last.endswith(EXTRACT):
            return f"{obj}, wall"
        if last.startswith("Reconstruct"):
            return f"There is a brown {obj} near the wall."
        if last.endswith("Answer:"):
            return f"The {obj} is brown."
        return f"Question: What is next to the {obj}?"


class NoFallback:
    """Stands in for the grounded roles: a reply lost between the client and a role fails the test."""

    name = "no-fallback"

    def _lost(self, *args):
        raise AssertionError("a role fell back: the chat client's replies did not reach it")

    ask = answer = summarise = _lost


def test_every_llm_role_runs_on_the_handle_client(fake_serve_llm):
    # what the library does with a ChatClient: the roles send batches of conversations through `complete` and
    # parse one reply per conversation, in order (a client that cannot be called is a fallback, not an error)
    handle = FakeHandle(RoleServer())
    client = HandleChatClient(handle, model="qwen2.5-7b-instruct")
    states = [DialogState(f"the {o} near the wall", dialog_id=f"d{i}",
                          turns=(Turn("Is there anything else?", f"There is a {o} by the door.", Q2),))
              for i, o in enumerate(OBJECTS)]
    cands = [[Candidate("s0", 1.0, ("A room with a window.",))]] * 3
    questioner = LLMQuestioner(client, fallback=NoFallback(), starts={})
    assert questioner.ask(states, [Q1, Q2, Q1], cands) == [Question(f"What is next to the {o}?", k)
                                                           for o, k in zip(OBJECTS, (Q1, Q2, Q1))]
    writer = LLMAnswerWriter(client, fallback=NoFallback())
    assert writer.answer([f"What colour is the {o}?" for o in OBJECTS], [[f"There is a brown {o}."] for o in OBJECTS]) \
        == [f"The {o} is brown." for o in OBJECTS]
    summariser = LLMSummariser(client, fallback=NoFallback(), cot=True)
    assert summariser.summarise(states) == [f"There is a brown {o} near the wall." for o in OBJECTS]
    assert questioner.stats == {"calls": 3, "parsed": 3, "fallbacks": 0, "repeats": 0, "retries": 0}
    assert writer.stats == {"calls": 3, "parsed": 3, "fallbacks": 0}
    assert summariser.stats == {"calls": 6, "parsed": 3, "fallbacks": 0}
    assert len(handle.calls) == 3 + 3 + 6  # one chat request per conversation


def test_a_slow_deployment_times_out_and_its_calls_are_cancelled(fake_serve_llm):
    handle = FakeHandle(FakeLLMServer(delay_s=30.0))
    client = HandleChatClient(handle, model="qwen2.5-7b-instruct", timeout_s=0.3)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"no reply to 2 chats within 0.3s"):
        client.complete([conversation("a"), conversation("b")])
    assert time.monotonic() - start < 5.0


def test_build_llm_deployment_reads_the_yaml_into_an_llm_config(fake_serve_llm, tmp_path):
    assert build_llm_deployment(QUESTIONER_YAML) == "bound LLMServer"
    assert fake_serve_llm == [("LLMConfig", yaml.safe_load(QUESTIONER_YAML.read_text()))]
    assert llm_model_id(QUESTIONER_YAML) == llm_model_id(load_llm_config(QUESTIONER_YAML)) == "qwen2.5-7b-instruct"
    # the name ray.serve.llm's builder gives it: "LLMServer:" + model_id with "/" -> "--", "." -> "_"
    assert llm_deployment_name(QUESTIONER_YAML) == "LLMServer:qwen2_5-7b-instruct"
    assert llm_deployment_name({"model_loading_config": {"model_id": "Qwen/Qwen2.5-7B-Instruct"}}) == \
        "LLMServer:Qwen--Qwen2_5-7B-Instruct"
    assert llm_deployment_name({"model_loading_config": {"model_id": "m"}, "deployment_config": {"name": "Q"}}) == \
        "LLMServer:Q"
    (tmp_path / "list.yaml").write_text("- model_id: x\n")
    with pytest.raises(ValueError, match="list.yaml: not an LLMConfig"):
        load_llm_config(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("model_loading_config: [\n")
    with pytest.raises(ValueError, match="bad.yaml: not YAML"):
        load_llm_config(tmp_path / "bad.yaml")


# ----------------------------------------------------------------------------------- the vLLM questioner config

def test_questioner_vllm_yaml_is_a_valid_llm_config():
    cfg = yaml.safe_load(QUESTIONER_YAML.read_text())
    assert cfg["accelerator_type"] == "L4"
    assert cfg["model_loading_config"]["model_source"].endswith("-Instruct")
    auto = cfg["deployment_config"]["autoscaling_config"]
    assert auto["min_replicas"] >= 1, "the interactive path must never wait for a cold vLLM start"
    assert auto["max_replicas"] >= auto["min_replicas"] and auto["target_ongoing_requests"] >= 1
    assert cfg["engine_kwargs"]["max_model_len"] >= 2048
    # Ray's own LLMConfig pydantic model (extra keys forbidden; deployment_config checked against Serve's
    # DeploymentConfig; accelerator_type against Ray's list). ray.serve.llm itself needs vLLM; this module does not.
    config_mod = pytest.importorskip("ray.llm._internal.serve.core.configs.llm_config")
    llm_config = config_mod.LLMConfig.from_file(str(QUESTIONER_YAML))
    assert llm_config.model_id == "qwen2.5-7b-instruct" and llm_config.accelerator_config.kind == "gpu"
    for broken in ({**cfg, "accelerator_type": "L5"}, {**cfg, "bogus": 1},
                   {**cfg, "deployment_config": {"autoscaling_config": {**auto, "min_replicas": -1}}}):
        with pytest.raises(Exception):
            config_mod.LLMConfig(**broken)


def test_a_named_model_or_directory_is_an_llm_config_for_vllm_on_cpu(tmp_path, monkeypatch):
    cfg = load_llm_config(str(tmp_path))  # a model directory: vLLM's CPU engine, no accelerator_type
    assert cfg == llm.cpu_llm_config(str(tmp_path)) and "accelerator_type" not in cfg
    assert cfg["model_loading_config"] == {"model_id": tmp_path.name, "model_source": str(tmp_path)}
    assert cfg["placement_group_config"] == {"bundles": [{"CPU": 1}]}
    assert cfg["deployment_config"]["ray_actor_options"] == {"num_cpus": 0}  # 2 CPUs run the app and the engine
    assert cfg["runtime_env"]["env_vars"]["OMP_NUM_THREADS"] == "1" and cfg["engine_kwargs"]["dtype"] == "float32"
    fast = llm.cpu_llm_config(str(tmp_path), dtype="bfloat16", threads=2)
    assert fast["engine_kwargs"]["dtype"] == "bfloat16" and fast["runtime_env"]["env_vars"]["OMP_NUM_THREADS"] == "2"
    with pytest.raises(ValueError, match="llm dtype"):
        llm.cpu_llm_config(str(tmp_path), dtype="float16")
    assert llm_model_id(str(tmp_path)) == tmp_path.name
    from ideal.dialog import models

    monkeypatch.setattr(models, "ensure_model", lambda name: tmp_path)
    assert load_llm_config("smollm2")["model_loading_config"] == {"model_id": "smollm2", "model_source": str(tmp_path)}
    with pytest.raises(ValueError, match="not an LLMConfig"):  # neither a model nor a YAML mapping
        load_llm_config(QUESTIONER_YAML.parent / "serve_config.yaml")
    config_mod = pytest.importorskip("ray.llm._internal.serve.core.configs.llm_config")
    assert config_mod.LLMConfig(**cfg).accelerator_config.kind == "cpu"


@pytest.mark.integration
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed (pip install -e '.[llm]')")
def test_a_vllm_questioner_through_ray_serve_llm_over_http(served):
    """`llm: smollm2`: the Questioner asks through a DeploymentHandle of ray.serve.llm's LLMServer, SmolLM2 on vLLM's
    CPU engine (one CPU bundle) beside the app's other deployments; the round's question is the model's own."""
    import httpx
    from ray import serve

    from deployments.app import build_app
    from ideal.dialog.models import ensure_model

    ensure_model("smollm2")  # converted here once, not under the app's deadline
    spec, zero = served.spec, {"ray_actor_options": {"num_cpus": 0}}
    serve.run(build_app({"gallery": spec.gallery, "weights": spec.weights, "overrides": list(spec.overrides),
                         "simulated_user": False, "llm": "smollm2", "timeout_s": 120, "llm_options": {"timeout_s": 100},
                         "deployment_options": {n: dict(zero) for n in ("Ingress", "Retriever", "Questioner")}}),
              name="ideal-vllm", route_prefix="/vllm")
    try:
        with httpx.Client(base_url=served.url, timeout=180) as c:
            res = c.post("/vllm/v1/rounds", json={"query": "the brown chair next to the table", "k": 3})
            assert res.status_code == 200, res.text
            assert res.json()["question"].endswith("?") and res.json()["round"] == 1
        stats = serve.get_deployment_handle("Questioner", "ideal-vllm").stats.remote().result(timeout_s=60)
        assert stats["backend"] == "llm" and stats["calls"] == 1 and stats["parsed"] == 1  # not the fallback's
    finally:
        serve.delete("ideal-vllm")


def test_importing_deployments_llm_pulls_in_neither_ray_serve_llm_nor_vllm():
    code = ("import sys, deployments.llm\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('vllm', 'sglang') or m.startswith('ray.llm')"
            " or m.startswith('ray.serve.llm')]\n"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert llm.__name__ == "deployments.llm"
