"""The chat clients: a local causal LM (tiny, random, with the bundled MiniLM tokenizer), `make_chat_client`, and
the OpenAI-compatible client against an HTTP server run here on 127.0.0.1, alone and under the llm roles."""
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ideal.dialog.chat import LocalChatClient, OpenAIChatClient, make_chat_client
from ideal.dialog.llm import EXTRACT, QUESTION_STARTS, LLMQuestioner, LLMSummariser, question_messages
from ideal.dialog.types import Q1, Q2, DialogState, Question, Turn

from .fakes import ALL, FALLBACK_Q, RecordingQuestioner, RecordingSummariser, cands, states


# ----------------------------------------------------------------------------------------------- local LM

@pytest.fixture(scope="module")
def local_client(tiny_lm):
    return LocalChatClient(tiny_lm, max_new_tokens=8)


def test_local_client_generates_a_reply_per_conversation(local_client):
    convs = [question_messages(st, Q1, cands(*ALL)) for st in states(3)]
    assert local_client.prompt(convs[0]).startswith("system: You help a user")  # MiniLM has no chat template
    assert local_client.prompt(convs[0]).endswith("Your detail probe question:\nassistant:")
    replies = local_client.complete(convs)
    assert len(replies) == 3 and all(isinstance(r, str) for r in replies)
    assert any(replies)  # new tokens were generated and decoded
    assert not any("assistant:" in r for r in replies)  # only the new tokens, not the prompt
    assert local_client.complete([]) == []


def test_local_client_batching_does_not_change_replies(local_client):
    short = [{"role": "user", "content": "a chair"}]
    long = [{"role": "system", "content": "Describe the room in a lot of detail, please."},
            {"role": "user", "content": "the brown wooden chair next to the big table by the window"}]
    # left padding + attention mask: a conversation's greedy reply does not depend on its batch-mates
    assert local_client.complete([long, short]) == local_client.complete([long]) + local_client.complete([short])


def test_local_client_uses_chat_template(tiny_lm):
    client = LocalChatClient(tiny_lm, max_new_tokens=2)
    conv = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    client.tokenizer.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
                                      "{% if add_generation_prompt %}<assistant>{% endif %}")
    assert client.prompt(conv) == "<system>S<user>U<assistant>"
    # a template without a system role (Gemma): the system text goes into the first user turn
    client.tokenizer.chat_template = ("{% for m in messages %}{% if m['role'] == 'system' %}"
                                      "{{ raise_exception('System role not supported') }}{% endif %}"
                                      "<{{ m['role'] }}>{{ m['content'] }}{% endfor %}<assistant>")
    assert client.prompt(conv) == "<user>S\n\nU<assistant>"
    assert len(client.complete([conv, conv])) == 2


def test_make_chat_client(tiny_lm, tmp_path):
    c = make_chat_client("http://localhost:8000/v1/", model="m", timeout=5.0)
    assert isinstance(c, OpenAIChatClient)
    assert (c.url, c.model, c.timeout) == ("http://localhost:8000/v1/chat/completions", "m", 5.0)
    assert isinstance(make_chat_client("https://example.org/v1"), OpenAIChatClient)
    local = make_chat_client(str(tiny_lm), model="ignored", engine="transformers", max_new_tokens=3)
    assert isinstance(local, LocalChatClient) and local.max_new_tokens == 3
    with pytest.raises(ValueError, match="llm engine must be one of auto, transformers, vllm, got 'tgi'"):
        make_chat_client(str(tiny_lm), engine="tgi")
    with pytest.raises(ValueError, match="llm dtype must be one of float32, bfloat16, got 'int8'"):
        make_chat_client(str(tiny_lm), engine="transformers", dtype="int8")
    import torch

    half = make_chat_client(str(tiny_lm), engine="transformers", dtype="bfloat16", max_new_tokens=3)
    assert half.model.dtype == torch.bfloat16 and local.model.dtype == torch.float32
    assert len(half.complete([[{"role": "user", "content": "Hello"}]])) == 1
    for bad in (str(tmp_path / "missing"), "localhost:8000", ""):
        with pytest.raises(ValueError, match="neither an http"):
            make_chat_client(bad)


# ----------------------------------------------------------------------------------------------- HTTP

def completion(content):
    return {"id": "cmpl-1", "object": "chat.completion", "model": "test-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}


class FakeOpenAI:
    """An OpenAI-compatible /v1/chat/completions on 127.0.0.1; `respond(body) -> (status, json or bytes)`."""

    def __init__(self):
        self.requests, self.lock = [], threading.Lock()
        self.respond = lambda body: (200, completion("Is there a lamp in the room?"))
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/v1/chat/completions":
                    status, payload = 404, {"error": f"no route {self.path}"}
                else:
                    body = json.loads(raw)
                    with app.lock:
                        app.requests.append({"body": body, "headers": dict(self.headers), "raw": raw.decode()})
                    status, payload = app.respond(body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def server():
    s = FakeOpenAI()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def api(server):
    server.requests.clear()
    return server, OpenAIChatClient(server.base_url, model="test-model", timeout=5.0)


def user_text(body):
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def test_openai_client_sends_the_openai_schema(server):
    server.requests.clear()
    client = OpenAIChatClient(server.base_url, "test-model", api_key="sk-test", max_tokens=20, temperature=0.5)
    conv = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    assert client.complete([conv]) == ["Is there a lamp in the room?"]
    (req,) = server.requests
    assert req["body"] == {"model": "test-model", "messages": conv, "max_tokens": 20, "temperature": 0.5}
    assert req["headers"]["Authorization"] == "Bearer sk-test"


def test_openai_questioner_parses_a_good_reply_and_hides_ids(api):
    server, client = api
    server.respond = lambda body: (200, completion('Sure. Question: "Is there a piano in the room?"'))
    fb = RecordingQuestioner()
    questioner = LLMQuestioner(client, fb, top_k=3, starts={})  # the whole reply is the model's
    st = DialogState("the sofa near the window", turns=(Turn("What kind of room is it?", "It is a living room."),),
                     dialog_id="d0", target="scene0002_00")
    assert questioner.ask([st], [Q2], [cands(*ALL)]) == [Question("Is there a piano in the room?", Q2)]
    assert fb.seen == [] and questioner.stats == {"calls": 1, "parsed": 1, "fallbacks": 0, "repeats": 0, "retries": 0}
    (req,) = server.requests
    assert req["body"]["model"] == "test-model"
    assert [m["role"] for m in req["body"]["messages"]] == ["system", "user"]
    assert "continue_final_message" not in req["body"]
    user = user_text(req["body"])
    for s in ("the sofa near the window", "What kind of room is it?", "It is a living room.",
              "There is a white fridge next to the sink.", "There is a wooden bed against a wall."):
        assert s in user
    assert "scene000" not in req["raw"]


def test_the_questioner_begins_the_reply_and_the_server_continues_it(api):
    """By default the question's first words are the start of the assistant turn (vLLM continues it:
    continue_final_message), and the parsed question is that start plus the continuation."""
    server, client = api
    server.requests.clear()
    server.respond = lambda body: (200, completion(" a piano in the room? I hope this helps."))
    questioner = LLMQuestioner(client, RecordingQuestioner(), top_k=3)
    st = DialogState("the sofa near the window", dialog_id="d0", target="scene0002_00")
    assert questioner.ask([st], [Q2], [cands(*ALL)]) == [Question("Is there a piano in the room?", Q2)]
    (req,) = server.requests
    assert req["body"]["messages"][-1] == {"role": "assistant", "content": QUESTION_STARTS[Q2]}
    assert req["body"]["continue_final_message"] is True and req["body"]["add_generation_prompt"] is False


def test_openai_replies_keep_batch_order(api):
    server, client = api

    def respond(body):
        time.sleep(random.random() * 0.05)  # finish out of order
        obj = user_text(body).split("looking for: the ")[1].split()[0]
        return 200, completion(f"Is the {obj} made of wood?")

    server.respond = respond
    qs = LLMQuestioner(client, RecordingQuestioner(), starts={}).ask(states(6), [Q1] * 6, [cands(*ALL)] * 6)
    assert [q.text for q in qs] == [f"Is the {o} made of wood?" for o in ["chair", "table", "lamp", "sofa", "bed",
                                                                        "sink"]]
    assert len(server.requests) == 6


def test_openai_server_error_falls_back_for_the_batch(api):
    server, client = api
    server.respond = lambda body: (500, {"error": "out of memory"})
    with pytest.raises(RuntimeError, match=r"/v1/chat/completions returned HTTP 500"):
        client.complete([[{"role": "user", "content": "hi"}]])
    fb = RecordingQuestioner()
    questioner = LLMQuestioner(client, fb, starts={})
    assert [q.text for q in questioner.ask(states(2), [Q1, Q2], [cands(*ALL)] * 2)] == [FALLBACK_Q] * 2
    assert fb.seen == [("d0", Q1), ("d1", Q2)] and questioner.stats == {"calls": 2, "parsed": 0, "fallbacks": 2,
                                                                        "repeats": 0, "retries": 0}


def test_openai_malformed_or_unreachable_raise_runtime_error(api):
    import socket

    server, client = api
    conv = [[{"role": "user", "content": "hi"}]]
    server.respond = lambda body: (200, b"<html>not json</html>")
    with pytest.raises(RuntimeError, match="not an OpenAI chat completion"):
        client.complete(conv)
    server.respond = lambda body: (200, {"choices": []})
    with pytest.raises(RuntimeError, match="not an OpenAI chat completion"):
        client.complete(conv)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(RuntimeError, match=f"POST {url}/chat/completions failed"):
        OpenAIChatClient(url, "m", timeout=2.0).complete(conv)


def test_openai_summariser_two_step_chat(api):
    server, client = api
    reconstruction = "There is a blue sofa next to the window. The room is a living room."

    def respond(body):
        last = body["messages"][-1]["content"]
        return 200, completion("sofa, window" if last.endswith(EXTRACT) else f"Summary: {reconstruction}")

    server.respond = respond
    st = DialogState("the blue sofa", dialog_id="d0", turns=(Turn("What kind of room is it?", "It is a living room."),
                                                             Turn("Is there a piano?", "I don't know.")))
    summariser = LLMSummariser(client, RecordingSummariser())
    assert summariser.summarise([st]) == [reconstruction]
    first, second = (r["body"]["messages"] for r in server.requests)
    assert second[:len(first)] == first and second[len(first)]["content"] == "sofa, window"
    assert "It is a living room." in first[1]["content"] and "piano" not in json.dumps(second)


def test_the_auto_engine_is_vllm_where_it_is_installed(monkeypatch):
    """dialog.llm_engine=auto (the default) runs a local model on vLLM when `.[llm]` is installed, else on
    transformers; a named engine is kept."""
    import importlib.util

    from ideal.dialog.chat import resolve_engine

    find_spec = importlib.util.find_spec
    installed = find_spec("vllm") is not None
    assert resolve_engine("auto") == ("vllm" if installed else "transformers")
    assert resolve_engine("transformers") == "transformers" and resolve_engine("vllm") == "vllm"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else find_spec(name, *a))
    assert resolve_engine("auto") == "transformers"
