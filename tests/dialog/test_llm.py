"""The llm backends: reply parsers, the prompts of each role and question type, the roles against a scripted
chat client (batching, per-dialog fallback, stats), a real local causal LM (tiny, random, with the bundled MiniLM
tokenizer) and an OpenAI-compatible HTTP server run here on 127.0.0.1."""
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ideal.dialog.llm import (EXTRACT, QUESTION_TYPES, LLMAnswerWriter, LLMQuestioner, LLMSummariser, LocalChatClient,
                              OpenAIChatClient, answer_messages, extraction_messages, make_chat_client,
                              one_step_messages, parse_answer, parse_objects, parse_question, parse_summary,
                              question_messages)
from ideal.dialog.types import DONT_KNOW, Q1, Q2, Candidate, DialogState, Question, Turn

FALLBACK_Q = "Is there a window in the room?"
FALLBACK_A = "There is a window."
FALLBACK_S = "fallback summary"


# ----------------------------------------------------------------------------------------------- fakes

class RecordingQuestioner:
    name = "recording"

    def __init__(self):
        self.seen = []

    def ask(self, states, kinds, candidates):
        assert len(states) == len(kinds) == len(candidates)
        self.seen += [(st.dialog_id, kind) for st, kind in zip(states, kinds)]
        return [Question(FALLBACK_Q, kind, "has:window") for kind in kinds]


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


class ScriptedClient:
    """A ChatClient whose reply to a conversation is `script(conversation)`; keeps every batch it was sent."""

    def __init__(self, script):
        self.script, self.batches = script, []

    def complete(self, conversations):
        self.batches.append(conversations)
        return [self.script(c) for c in conversations]

    @property
    def conversations(self):
        return [c for b in self.batches for c in b]


class FailingClient:
    def complete(self, conversations):
        raise RuntimeError("connection refused")


class RecordingClient:
    """Wraps a ChatClient, keeping what went in and what came out."""

    def __init__(self, inner):
        self.inner, self.conversations, self.replies = inner, [], []

    def complete(self, conversations):
        self.conversations += conversations
        out = self.inner.complete(conversations)
        self.replies += out
        return out


def last_user(conversation):
    return [m["content"] for m in conversation if m["role"] == "user"][-1]


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


@pytest.mark.parametrize("reply", ["Ask about the colour of the bed.", "Ask the user what is on the desk.",
                                   "The bed is brown."])
def test_parse_question_statements_are_not_questions(reply):
    assert parse_question(reply) is None  # the questioner falls back instead


@pytest.mark.parametrize("reply, expected", [
    ("piano, black chairs, door", ["piano", "black chairs", "door"]),
    ("Objects:\n1. piano\n2. the black chairs\n3. Door", ["piano", "black chairs", "door"]),
    ("Sure! Here are the objects mentioned:\n- bed\n- nightstand and lamp", ["bed", "nightstand", "lamp"]),
    ("The objects mentioned are the bed and the lamp.", ["bed", "lamp"]),
    ("Keywords: TV; sofa; coffee table; sofa", ["tv", "sofa", "coffee table"]),
])
def test_parse_objects_good(reply, expected):
    assert parse_objects(reply) == expected


@pytest.mark.parametrize("reply", [None, "", "!!!", "Here are the objects:", "##ep could could",
                                   "selector polling polling polling", "椅子, 桌子"])
def test_parse_objects_junk(reply):
    assert parse_objects(reply) is None


# ----------------------------------------------------------------------------------------------- prompts

MEMORY = ["A green piano stands beside the radiator.", "The fridge is white and tall.",
          "Three striped towels hang on the oven door."]  # the simulated user's memory of scene0001_00
DIALOG = DialogState("the fridge near the wall", dialog_id="d0", target="scene0001_00",
                     turns=(Turn("What kind of room is it?", "It is a kitchen.", Q1),
                            Turn("Is there a piano?", DONT_KNOW, Q2)))


def test_question_prompts_differ_by_type_and_hold_dialog_and_candidates_but_no_ids():
    q1, q2 = (question_messages(DIALOG, kind, cands(*ALL), top_k=2) for kind in (Q1, Q2))
    assert [m["role"] for m in q1] == [m["role"] for m in q2] == ["system", "user"]
    assert q1 != q2
    for msgs, kind, other in ((q1, Q1, Q2), (q2, Q2, Q1)):
        name, instruction, examples = QUESTION_TYPES[kind]
        assert instruction in msgs[0]["content"] and all(q in msgs[0]["content"] for _, q in examples)
        assert QUESTION_TYPES[other][1] not in msgs[0]["content"]
        assert msgs[1]["content"].endswith(f"Your {name} question:")
        user = msgs[1]["content"]
        for s in ("the fridge near the wall", "What kind of room is it?", "It is a kitchen.", DONT_KNOW,
                  "This is a kitchen.", "There is a blue sofa near the window."):
            assert s in user
        assert "bedroom" not in user  # beyond top_k
        assert "scene000" not in json.dumps(msgs)
    assert "The scenes that match best" not in question_messages(DIALOG, Q1, [])[1]["content"]
    with pytest.raises(ValueError, match="Q1 or Q2"):
        question_messages(DIALOG, "Q3", [])


def test_questioner_prompts_never_hold_the_memory():
    client = ScriptedClient(lambda c: "What colour is the fridge?")
    answerer_client = ScriptedClient(lambda c: "The fridge is white.")
    questioner = LLMQuestioner(client, RecordingQuestioner())
    answerer = LLMAnswerWriter(answerer_client, RecordingAnswerer())
    st = DIALOG
    for kind in (Q1, Q2, Q1):  # a few rounds, the user answering from the fine memory
        (q,) = questioner.ask([st], [kind], [cands(*ALL)])
        (a,) = answerer.answer([q.text], [MEMORY])
        st = st.with_(turns=st.turns + (Turn(q.text, a, q.kind),))
    sent = json.dumps(client.conversations)
    assert len(client.conversations) == 3 and "The fridge is white." in sent  # the answers are the dialog
    assert not any(s in sent for s in MEMORY) and "radiator" not in sent and "scene0001" not in sent
    assert all(s in json.dumps(answerer_client.conversations) for s in MEMORY)  # only the answerer has it


def test_summary_prompts_use_the_query_and_informative_answers():
    step1, one = extraction_messages(DIALOG), one_step_messages(DIALOG, max_words=50)
    for msgs in (step1, one):
        user = msgs[1]["content"]
        assert "the fridge near the wall" in user and "It is a kitchen." in user
        assert "know" not in user and "piano" not in user  # an "I don't know" turn says nothing of the scene
    assert EXTRACT in step1[1]["content"] and EXTRACT not in one[1]["content"]
    assert "50 words" in one[1]["content"]


# ----------------------------------------------------------------------------------------------- questioner

def test_questioner_asks_every_dialog_in_one_batch_and_keeps_the_routed_type():
    def script(conv):
        obj = last_user(conv).split("looking for: the ")[1].split()[0]
        return f"Question: What is next to the {obj}?" if "detail probe" in conv[0]["content"] else \
            f"Sure! Is there anything in the room apart from the {obj}?"

    client, fb = ScriptedClient(script), RecordingQuestioner()
    questioner = LLMQuestioner(client, fb)
    qs = questioner.ask(states(3), [Q1, Q2, Q1], [cands(*ALL)] * 3)
    assert qs == [Question("What is next to the chair?", Q1),
                  Question("Is there anything in the room apart from the table?", Q2),
                  Question("What is next to the lamp?", Q1)]
    assert [len(b) for b in client.batches] == [3]
    assert fb.seen == [] and questioner.stats == {"calls": 3, "parsed": 3, "fallbacks": 0}
    assert questioner.ask([], [], []) == [] and len(client.batches) == 1
    with pytest.raises(ValueError, match="3 dialogs, 2 question types"):
        questioner.ask(states(3), [Q1, Q2], [[]] * 3)


def test_questioner_falls_back_for_unparseable_replies_only():
    replies = {"chair": "What colour is the chair?", "table": "Ask about the colour of the table.", "lamp": "!!!"}
    client = ScriptedClient(lambda c: replies[last_user(c).split("looking for: the ")[1].split()[0]])
    fb = RecordingQuestioner()
    questioner = LLMQuestioner(client, fb)
    qs = questioner.ask(states(3), [Q2, Q1, Q2], [cands(*ALL), [], cands("scene0003_00")])
    assert qs == [Question("What colour is the chair?", Q2), Question(FALLBACK_Q, Q1, "has:window"),
                  Question(FALLBACK_Q, Q2, "has:window")]
    assert fb.seen == [("d1", Q1), ("d2", Q2)]  # each with its own routed type
    assert questioner.stats == {"calls": 3, "parsed": 1, "fallbacks": 2}
    down = LLMQuestioner(FailingClient(), RecordingQuestioner())
    assert [q.text for q in down.ask(states(2), [Q1, Q2], [[]] * 2)] == [FALLBACK_Q] * 2
    assert down.stats == {"calls": 2, "parsed": 0, "fallbacks": 2}


# ----------------------------------------------------------------------------------------------- summariser

RECON = "There is a black piano next to the white bed. The bed is against the wall."


def summary_states():
    return [DialogState(q, dialog_id=f"d{i}", turns=(Turn("What is next to it?", a, Q1),))
            for i, (q, a) in enumerate([("a black piano", "The piano is next to the white bed."),
                                        ("a white bed", "I don't know."),
                                        ("a red lamp", "The lamp is on a desk.")])]


def test_summariser_cot_is_two_batched_calls_in_one_conversation():
    client = ScriptedClient(lambda c: "1. piano\n2. bed" if last_user(c).endswith(EXTRACT) else f"Summary: {RECON}")
    summariser = LLMSummariser(client, RecordingSummariser(), cot=True)
    sts = summary_states()
    assert summariser.summarise(sts) == [RECON] * 3
    first, second = client.batches
    assert len(first) == len(second) == 3
    for a, b in zip(first, second):
        assert b[:len(a)] == a  # step 2 continues step 1's conversation ...
        assert b[len(a)] == {"role": "assistant", "content": "piano, bed"}  # ... with its reply (the object list)
        assert b[-1]["role"] == "user" and "Reconstruct" in b[-1]["content"]
    assert summariser.stats == {"calls": 6, "parsed": 3, "fallbacks": 0}
    assert summariser.summarise([]) == [] and len(client.batches) == 2


def test_summariser_without_cot_is_one_call():
    client = ScriptedClient(lambda c: RECON)
    summariser = LLMSummariser(client, RecordingSummariser(), cot=False)
    assert summariser.summarise(summary_states()) == [RECON] * 3
    (batch,) = client.batches
    assert len(batch) == 3 and all(len(c) == 2 and EXTRACT not in last_user(c) for c in batch)
    assert summariser.stats == {"calls": 3, "parsed": 3, "fallbacks": 0}


def test_summariser_falls_back_per_dialog():
    def script(conv):
        query = conv[1]["content"].split("\n")[1]
        if last_user(conv).endswith(EXTRACT):
            return "##ep ##ep ##ep" if "piano" in query else "bed, lamp"
        return {"- a white bed": "bed bed bed bed", "- a red lamp": "The lamp is on a desk."}.get(query, RECON)

    sts = summary_states() + [DialogState("the bed near the lamp", dialog_id="d3")]
    client, fb = ScriptedClient(script), RecordingSummariser()
    summariser = LLMSummariser(client, fb)
    assert summariser.summarise(sts) == [FALLBACK_S, FALLBACK_S, "The lamp is on a desk.", RECON]
    assert [len(b) for b in client.batches] == [4, 3]  # no step 2 for the dialog whose step 1 was junk
    assert fb.seen == ["d0", "d1"] and summariser.stats == {"calls": 7, "parsed": 2, "fallbacks": 2}
    # a reconstruction that names none of the listed objects is not taken
    off = ScriptedClient(lambda c: "bed, lamp" if last_user(c).endswith(EXTRACT) else "A quiet kitchen. It is bright.")
    assert LLMSummariser(off, RecordingSummariser()).summarise(sts[:1]) == [FALLBACK_S]
    down = LLMSummariser(FailingClient(), RecordingSummariser(), cot=True)
    assert down.summarise(sts) == [FALLBACK_S] * 4 and down.stats == {"calls": 4, "parsed": 0, "fallbacks": 4}


def test_summariser_falls_back_to_the_grounded_reconstruction():
    from ideal.dialog.summary import GroundedSummariser

    sts = summary_states()
    for cot in (True, False):
        grounded = GroundedSummariser(["piano", "bed", "lamp", "desk"], cot=cot)
        llm = LLMSummariser(ScriptedClient(lambda c: "???"), grounded, cot=cot)
        assert llm.summarise(sts) == grounded.summarise(sts)


# ----------------------------------------------------------------------------------------------- answerer

def test_answerer_batches_and_falls_back_per_question():
    replies = {"What colour is the fridge?": "A: The fridge is white.", "Is there a piano?": "I do not know",
               "Where is the oven?": "..."}
    client = ScriptedClient(lambda c: replies[last_user(c).split("Question: ")[1].split("\n")[0]])
    fb = RecordingAnswerer()
    answerer = LLMAnswerWriter(client, fb)
    assert answerer.answer(list(replies), [MEMORY] * 3) == ["The fridge is white.", DONT_KNOW, FALLBACK_A]
    assert [len(b) for b in client.batches] == [3]
    assert fb.seen == ["Where is the oven?"] and answerer.stats == {"calls": 3, "parsed": 2, "fallbacks": 1}
    assert answer_messages("Q?", ["a."])[1]["content"] == "Memory:\n- a.\nQuestion: Q?\nAnswer:"
    assert LLMQuestioner.name == LLMAnswerWriter.name == LLMSummariser.name == "llm"


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


def test_local_model_junk_falls_back_for_every_dialog(local_client):
    client = RecordingClient(local_client)
    sts, n = states(3), 3
    fq, fa, fs = RecordingQuestioner(), RecordingAnswerer(), RecordingSummariser()

    questioner = LLMQuestioner(client, fq)
    assert questioner.ask(sts, [Q1, Q2, Q1], [cands(*ALL)] * n) == [Question(FALLBACK_Q, k, "has:window")
                                                                     for k in (Q1, Q2, Q1)]
    assert fq.seen == [("d0", Q1), ("d1", Q2), ("d2", Q1)]
    assert questioner.stats == {"calls": n, "parsed": 0, "fallbacks": n}

    answerer = LLMAnswerWriter(client, fa)
    questions = ["What colour is the chair?", "Is there a bed?", "Where is the lamp?"]
    assert answerer.answer(questions, [["There is a brown chair."]] * n) == [FALLBACK_A] * n
    assert fa.seen == questions and answerer.stats == {"calls": n, "parsed": 0, "fallbacks": n}

    summariser = LLMSummariser(client, fs)
    assert summariser.summarise(sts) == [FALLBACK_S] * n
    assert fs.seen == ["d0", "d1", "d2"] and summariser.stats["fallbacks"] == n
    # random wordpieces may pass as an object list (step 2 then runs), never as a reconstruction
    assert n <= summariser.stats["calls"] <= 2 * n and summariser.stats["parsed"] == 0

    # generation really ran: one string per conversation, not all empty
    assert len(client.conversations) == len(client.replies) == 2 * n + summariser.stats["calls"]
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
    assert questioner.ask([st], [Q2], [cands(*ALL)]) == [Question("Is there a piano in the room?", Q2)]
    assert fb.seen == [] and questioner.stats == {"calls": 1, "parsed": 1, "fallbacks": 0}
    (req,) = server.requests
    assert req["body"]["model"] == "test-model"
    assert [m["role"] for m in req["body"]["messages"]] == ["system", "user"]
    user = user_text(req["body"])
    for s in ("the sofa near the window", "What kind of room is it?", "It is a living room.",
              "There is a white fridge next to the sink.", "There is a wooden bed against a wall."):
        assert s in user
    assert "scene000" not in req["raw"]


def test_openai_replies_keep_batch_order(api):
    server, client = api

    def respond(body):
        time.sleep(random.random() * 0.05)  # finish out of order
        obj = user_text(body).split("looking for: the ")[1].split()[0]
        return 200, completion(f"Is the {obj} made of wood?")

    server.respond = respond
    qs = LLMQuestioner(client, RecordingQuestioner()).ask(states(6), [Q1] * 6, [cands(*ALL)] * 6)
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
    assert [q.text for q in questioner.ask(states(2), [Q1, Q2], [cands(*ALL)] * 2)] == [FALLBACK_Q] * 2
    assert fb.seen == [("d0", Q1), ("d1", Q2)] and questioner.stats == {"calls": 2, "parsed": 0, "fallbacks": 2}


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


def test_llm_backends_from_config_in_the_dialog_loop(tiny_lm):
    """dialog.questioner/answerer/summariser=llm with dialog.llm=<a local model dir>: built by ideal.dialog.build,
    run through run_round; the random model's junk falls back to the grounded roles, so the dialog still works."""
    import dataclasses

    from ideal.config import DialogConfig
    from ideal.dialog.build import build_questioner, build_summariser, build_answerer
    from ideal.dialog.round import run_round, start
    from ideal.encoders.text import TextEncoder
    from ideal.retrieval.gallery import Gallery
    from ideal.retrieval.retriever import BagOfLabelsRetriever
    from ideal.scenes.memory import build_memory

    from .rooms import room

    bed, lamp = ("bed", (0.1, 1, 0), (1.7, 3, 0.5), "white"), ("lamp", (4.2, 4.2, 0), (4.6, 4.6, 1.5), "red")
    scenes = [room("scene0000_00", "Bedroom / Hotel", [bed, ("chair", (2.5, 2.5, 0), (3, 3, 0.9), "brown")]),
              room("scene0001_00", "Kitchen", [("table", (2, 2, 0), (3.2, 3, 0.75), "black")]),
              room("scene0002_00", "Living room / Lounge", [("couch", (0.1, 1, 0), (0.9, 3, 0.8), "gray"), lamp]),
              room("scene0005_00", "Bedroom / Hotel", [bed, lamp])]
    cfg = dataclasses.replace(DialogConfig(k=3), questioner="llm", answerer="llm", summariser="llm", llm=str(tiny_lm))
    gallery = Gallery(BagOfLabelsRetriever(TextEncoder()), scenes)
    client = make_chat_client(str(tiny_lm), max_new_tokens=8)
    q, s = build_questioner(cfg, gallery, client), build_summariser(cfg, gallery, client)
    user = build_answerer(cfg, {x.scene_id: build_memory(x, []) for x in scenes}, None, client)
    assert isinstance(q, LLMQuestioner) and isinstance(s, LLMSummariser) and isinstance(user.writer, LLMAnswerWriter)
    states = start(["the brown chair in the bedroom", "a lamp"], ["scene0000_00", "scene0005_00"])
    for r in range(3):
        states = run_round(states, gallery, q, user, cfg, s, ask=r < 2)
    assert all(len(st.turns) == 2 for st in states)
    assert q.stats == {"calls": 4, "parsed": 0, "fallbacks": 4}  # every junk question replaced by a grounded one
    assert user.writer.stats["calls"] == 4 and s.stats["fallbacks"] == 4 and s.stats["parsed"] == 0
    assert all(t.aspect and t.kind in (Q1, Q2) for st in states for t in st.turns)  # grounded, of the routed type
    assert all(st.summary for st in states)  # the grounded CoT reconstruction
