"""The llm backends: reply parsers, a real local causal LM (tiny, random, with the bundled MiniLM tokenizer) and
an OpenAI-compatible HTTP server run here on 127.0.0.1."""
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ideal.dialog.llm import (ChatClient, LLMAnswerer, LLMQuestioner, LLMSummariser, LocalChatClient,
                              OpenAIChatClient, answer_messages, make_chat_client, parse_answer, parse_question,
                              parse_summary, question_messages)
from ideal.dialog.types import (DONT_KNOW, Answerer, Candidate, DialogState, Question, Questioner, Summariser,
                                Turn)
from ideal.scenes.types import SceneMemory

FALLBACK_Q = "Is there a window in the room?"
FALLBACK_A = "There is a window."
FALLBACK_S = "fallback summary"


# ----------------------------------------------------------------------------------------------- fallbacks

class RecordingQuestioner:
    name = "recording"

    def __init__(self):
        self.seen = []

    def ask(self, states, candidates):
        assert len(states) == len(candidates)
        self.seen += [st.dialog_id for st in states]
        return [Question(FALLBACK_Q, "has:window") for _ in states]


class RecordingAnswerer:
    name = "recording"

    def __init__(self):
        self.seen = []

    def answer(self, questions, memories):
        assert len(questions) == len(memories)
        self.seen += list(questions)
        return [FALLBACK_A for _ in questions]


class RecordingSummariser:
    name = "recording"

    def __init__(self):
        self.seen = []

    def summarise(self, states):
        self.seen += [st.dialog_id for st in states]
        return [FALLBACK_S for _ in states]


class RecordingClient:
    """Wraps a ChatClient, keeping what went in and what came out."""

    def __init__(self, inner):
        self.inner, self.conversations, self.replies = inner, [], []

    def complete(self, conversations):
        self.conversations += conversations
        out = self.inner.complete(conversations)
        self.replies += out
        return out


def cands(*ids):
    summaries = {"scene0001_00": ("This is a kitchen.", "There is a white fridge next to the sink."),
                 "scene0002_00": ("This is a living room.", "There is a blue sofa near the window."),
                 "scene0003_00": ("This is a bedroom.", "There is a wooden bed against a wall.")}
    return [Candidate(i, 1.0 / (n + 1), summaries[i]) for n, i in enumerate(ids)]


ALL = ("scene0001_00", "scene0002_00", "scene0003_00")


def states(n):
    objects = ["chair", "table", "lamp", "sofa", "bed", "sink"]
    return [DialogState(f"the {objects[i % 6]} near the wall", dialog_id=f"d{i}", target="scene0001_00")
            for i in range(n)]


# ----------------------------------------------------------------------------------------------- parsers

NATO = ("alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november oscar papa quebec "
        "romeo sierra tango uniform victor whiskey xray yankee zulu").split()

@pytest.mark.parametrize("reply, expected", [
    ("Is there a window in the room?", "Is there a window in the room?"),
    ("Question: What colour is the sofa?", "What colour is the sofa?"),
    ('"Where is the bed in the room?"', "Where is the bed in the room?"),
    ("- **Question:** Are there two chairs by the desk?", "Are there two chairs by the desk?"),
    ("Sure! Here is my question: how many lamps are there?", "How many lamps are there?"),
    ("Okay?\nAssistant: Is the table made of wood?? I think that helps.", "Is the table made of wood?"),
    ("1. In which room is the piano? 2. Is it black?", "In which room is the piano?"),
])
def test_parse_question_good(reply, expected):
    assert parse_question(reply) == expected


@pytest.mark.parametrize("reply", [
    None, "", "   ", "!!!", "???", "The room has a chair.", "Question:", "Is it?",
    "¿Qué color tiene la silla grande?", "##ep could could could?", "selector polling polling polling?",
    "chair table window lamp?", "<|im_end|> is there a lamp?",
])
def test_parse_question_junk(reply):
    assert parse_question(reply) is None


def test_parse_question_caps_words():
    q = parse_question("Is there " + " ".join(NATO) + " in the room?", max_words=10)
    assert q == "Is there alpha bravo charlie delta echo foxtrot golf hotel?"
    assert len(q.split()) == 10


@pytest.mark.parametrize("reply, expected", [
    ("Yes, there is a window. It is on the left wall. The bed is red.",
     "Yes, there is a window. It is on the left wall."),
    ("Answer: No.", "No."),
    ("A: 'The sofa is blue.'", "The sofa is blue."),
    ("\n\nUser: The chair is next to the desk", "The chair is next to the desk."),  # cut by the token limit
    ("I don't know", DONT_KNOW),
    ("Not sure, the memory does not say.", DONT_KNOW),
])
def test_parse_answer_good(reply, expected):
    assert parse_answer(reply) == expected


@pytest.mark.parametrize("reply", [None, "", "  \n ", "!!!", "Answer:", "1934 ##ly ...", "椅子是棕色的。",
                                   "polling polling polling polling."])
def test_parse_answer_junk(reply):
    assert parse_answer(reply) is None


def test_parse_answer_caps_words():
    a = parse_answer("The chair is very " + " ".join(NATO) + " brown.", max_words=6)
    assert a == "The chair is very alpha bravo."


def test_parse_summary():
    reply = "Summary: A brown chair next to the desk in an office. The office has a window. The desk is"
    assert parse_summary(reply) == "A brown chair next to the desk in an office. The office has a window."
    assert parse_summary("A brown chair in an office with " + " ".join(NATO * 2), max_words=8) == \
        "A brown chair in an office with alpha."
    for junk in (None, "", "!!!", "Chair.", "##ep ##ep ##ep", "Description:", "a chair and a chair and a chair and",
                 " ".join(NATO[:3] * 5)):
        assert parse_summary(junk) is None


# ----------------------------------------------------------------------------------------------- prompts

def test_question_prompt_holds_dialog_and_candidates_but_no_ids():
    st = DialogState("the sofa near the window", turns=(Turn("What kind of room is it?", "It is a living room."),))
    msgs = question_messages(st, cands(*ALL), top_k=2)
    assert [m["role"] for m in msgs] == ["system", "user"]
    user = msgs[1]["content"]
    for s in ("the sofa near the window", "What kind of room is it?", "It is a living room.", "This is a kitchen.",
              "There is a blue sofa near the window."):
        assert s in user
    assert "bedroom" not in user  # beyond top_k
    assert "scene000" not in json.dumps(msgs)


# ----------------------------------------------------------------------------------------------- local LM

@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A 1-layer GPT-2 with random weights and the real bundled MiniLM (BERT wordpiece) tokenizer."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from ideal.encoders.text import resolve_model_dir

    path = tmp_path_factory.mktemp("tiny_lm")
    minilm_dir, _ = resolve_model_dir()
    tok = AutoTokenizer.from_pretrained(str(minilm_dir), local_files_only=True)
    tok.save_pretrained(path)
    torch.manual_seed(0)
    config = GPT2Config(n_layer=1, n_head=2, n_embd=32, vocab_size=tok.vocab_size, n_positions=512,
                        bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id)
    GPT2LMHeadModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def local_client(tiny_lm):
    return LocalChatClient(tiny_lm, max_new_tokens=8)


def test_local_client_generates_a_reply_per_conversation(local_client):
    assert isinstance(local_client, ChatClient)
    convs = [question_messages(st, cands(*ALL)) for st in states(3)]
    assert local_client.prompt(convs[0]).startswith("system: You help a user")  # MiniLM has no chat template
    assert local_client.prompt(convs[0]).endswith("Your question:\nassistant:")
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


def test_local_model_junk_falls_back_for_every_dialog(local_client):
    client = RecordingClient(local_client)
    sts, n = states(3), 3
    fq, fa, fs = RecordingQuestioner(), RecordingAnswerer(), RecordingSummariser()

    questioner = LLMQuestioner(client, fq)
    qs = questioner.ask(sts, [cands(*ALL)] * n)
    assert qs == [Question(FALLBACK_Q, "has:window")] * n
    assert fq.seen == ["d0", "d1", "d2"] and questioner.stats == {"calls": n, "fallbacks": n}

    answerer = LLMAnswerer(client, fa)
    questions = ["What colour is the chair?", "Is there a bed?", "Where is the lamp?"]
    assert answerer.answer(questions, [["There is a brown chair."]] * n) == [FALLBACK_A] * n
    assert fa.seen == questions and answerer.stats == {"calls": n, "fallbacks": n}

    summariser = LLMSummariser(client, fs)
    assert summariser.summarise(sts) == [FALLBACK_S] * n
    assert fs.seen == ["d0", "d1", "d2"] and summariser.stats == {"calls": n, "fallbacks": n}

    # generation really ran: one string per conversation, not all empty
    assert len(client.conversations) == len(client.replies) == 3 * n
    assert all(isinstance(r, str) for r in client.replies) and any(client.replies)


def test_make_chat_client(tiny_lm, tmp_path):
    c = make_chat_client("http://localhost:8000/v1/", model="m", timeout=5.0)
    assert isinstance(c, OpenAIChatClient)
    assert (c.url, c.model, c.timeout) == ("http://localhost:8000/v1/chat/completions", "m", 5.0)
    assert isinstance(make_chat_client("https://example.org/v1"), OpenAIChatClient)
    local = make_chat_client(str(tiny_lm), model="ignored", max_new_tokens=3)
    assert isinstance(local, LocalChatClient) and local.max_new_tokens == 3
    for bad in (str(tmp_path / "missing"), "localhost:8000", ""):
        with pytest.raises(ValueError, match="neither an http"):
            make_chat_client(bad)


def test_backends_satisfy_the_protocols(local_client):
    assert isinstance(LLMQuestioner(local_client, RecordingQuestioner()), Questioner)
    assert isinstance(LLMAnswerer(local_client, RecordingAnswerer()), Answerer)
    assert isinstance(LLMSummariser(local_client, RecordingSummariser()), Summariser)
    assert LLMQuestioner.name == LLMAnswerer.name == LLMSummariser.name == "llm"


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
    questioner = LLMQuestioner(client, fb, top_k=3)
    st = DialogState("the sofa near the window", turns=(Turn("What kind of room is it?", "It is a living room."),),
                     dialog_id="d0", target="scene0002_00")
    assert questioner.ask([st], [cands(*ALL)]) == [Question("Is there a piano in the room?", None)]
    assert fb.seen == [] and questioner.stats == {"calls": 1, "fallbacks": 0}
    (req,) = server.requests
    assert req["body"]["model"] == "test-model"
    assert [m["role"] for m in req["body"]["messages"]] == ["system", "user"]
    user = user_text(req["body"])
    for s in ("the sofa near the window", "What kind of room is it?", "It is a living room.",
              "There is a white fridge next to the sink.", "There is a wooden bed against a wall."):
        assert s in user
    assert "scene000" not in req["raw"]


def test_openai_junk_reply_falls_back_for_that_dialog_only(api):
    server, client = api
    # the model answers junk for the lamp dialog only
    server.respond = lambda body: (200, completion("!!!" if "the lamp" in user_text(body) else
                                                   "What colour is the wall?"))
    fb = RecordingQuestioner()
    questioner = LLMQuestioner(client, fb)
    qs = questioner.ask(states(3), [cands(*ALL)] * 3)
    assert [q.text for q in qs] == ["What colour is the wall?", "What colour is the wall?", FALLBACK_Q]
    assert fb.seen == ["d2"] and questioner.stats == {"calls": 3, "fallbacks": 1}


def test_openai_replies_keep_batch_order(api):
    server, client = api

    def respond(body):
        time.sleep(random.random() * 0.05)  # finish out of order
        obj = user_text(body).split("looking for: the ")[1].split()[0]
        return 200, completion(f"Is the {obj} made of wood?")

    server.respond = respond
    qs = LLMQuestioner(client, RecordingQuestioner()).ask(states(6), [cands(*ALL)] * 6)
    assert [q.text for q in qs] == [f"Is the {o} made of wood?" for o in ["chair", "table", "lamp", "sofa", "bed",
                                                                        "sink"]]
    assert len(server.requests) == 6


def test_openai_server_error_falls_back_for_the_batch(api):
    server, client = api
    server.respond = lambda body: (500, {"error": "out of memory"})
    with pytest.raises(RuntimeError, match=r"/v1/chat/completions returned HTTP 500"):
        client.complete([[{"role": "user", "content": "hi"}]])
    fb = RecordingQuestioner()
    questioner = LLMQuestioner(client, fb)
    assert [q.text for q in questioner.ask(states(2), [cands(*ALL)] * 2)] == [FALLBACK_Q] * 2
    assert fb.seen == ["d0", "d1"] and questioner.stats == {"calls": 2, "fallbacks": 2}


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


def test_openai_answerer_sees_only_memory_and_question(api):
    server, client = api
    memory = SceneMemory("scene0042_00", coarse=["This is a living room."],
                         fine=["This is a living room.", "There is a blue sofa next to the window.",
                               "The lamp is on the small table."])
    replies = {"What colour is the sofa?": "Answer: The sofa is blue. It is next to the window. The lamp is on.",
               "Is there a piano?": "I do not know",
               "Where is the lamp?": "..."}
    server.respond = lambda body: (200, completion(replies[user_text(body).split("Question: ")[1].split("\n")[0]]))
    fb = RecordingAnswerer()
    answerer = LLMAnswerer(client, fb)
    questions = list(replies)
    out = answerer.answer(questions, [memory.sentences("fine")] * 3)
    assert out == ["The sofa is blue. It is next to the window.", DONT_KNOW, FALLBACK_A]
    assert fb.seen == ["Where is the lamp?"] and answerer.stats == {"calls": 3, "fallbacks": 1}
    for req in server.requests:
        assert all(s in user_text(req["body"]) for s in memory.fine)
        assert "scene0042" not in req["raw"]
    assert answer_messages("Q?", ["a."])[1]["content"] == "Memory:\n- a.\nQuestion: Q?\nAnswer:"


def test_openai_summariser_uses_known_answers(api):
    server, client = api
    server.respond = lambda body: (200, completion("Summary: A blue sofa next to the window in a living room."))
    st = DialogState("the blue sofa", dialog_id="d0",
                     turns=(Turn("What kind of room is it?", "It is a living room."),
                            Turn("Is there a piano?", "I don't know.")))
    fb = RecordingSummariser()
    summariser = LLMSummariser(client, fb)
    assert summariser.summarise([st]) == ["A blue sofa next to the window in a living room."]
    user = user_text(server.requests[0]["body"])
    assert "the blue sofa" in user and "It is a living room." in user
    assert "piano" not in user and "know" not in user
    server.respond = lambda body: (200, completion("sofa sofa sofa sofa"))
    assert summariser.summarise([st]) == [FALLBACK_S]
    assert fb.seen == ["d0"] and summariser.stats == {"calls": 2, "fallbacks": 1}


def test_llm_backends_from_config_in_the_dialog_loop(tiny_lm):
    """dialog.questioner/answerer/summariser=llm with dialog.llm=<a local model dir>: built by ideal.dialog.build,
    run through run_round; the random model's junk falls back to the grounded roles, so the dialog still works."""
    import dataclasses

    from ideal.config import DialogConfig
    from ideal.dialog.build import build_questioner, build_summariser, build_user
    from ideal.dialog.round import run_round, start
    from ideal.retrieval.gallery import Gallery
    from ideal.scenes.memory import build_memory

    from .test_round import SCENES, HashedWordsRetriever

    cfg = dataclasses.replace(DialogConfig(k=3), questioner="llm", answerer="llm", summariser="llm", llm=str(tiny_lm))
    gallery = Gallery(HashedWordsRetriever(), SCENES)
    client = make_chat_client(str(tiny_lm), max_new_tokens=8)
    q, s = build_questioner(cfg, gallery, client), build_summariser(cfg, client)
    user = build_user(cfg, {x.scene_id: build_memory(x, []) for x in SCENES}, None, client)
    assert isinstance(q, LLMQuestioner) and isinstance(s, LLMSummariser) and isinstance(user.answerer, LLMAnswerer)
    states = start(["the brown chair in the bedroom", "a lamp"], ["scene0000_00", "scene0005_00"])
    for r in range(3):
        states = run_round(states, gallery, q, user, cfg, s, ask=r < 2)
    assert all(len(st.turns) == 2 for st in states)
    assert q.stats["calls"] == 4 and q.stats["fallbacks"] == 4  # every junk question replaced by a grounded one
    assert user.answerer.stats["calls"] == 4
    assert all(t.aspect for st in states for t in st.turns)  # grounded questions carry their aspect
    assert all(st.summary.startswith(st.query) for st in states)  # the grounded CoT summary
