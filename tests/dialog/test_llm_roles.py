"""The llm roles (questioner, answer writer, summariser) against scripted chat clients and a tiny local LM: one
batched call per step, a per-dialog fallback for each reply that does not parse, their stats; and the roles built
from config in the dialog loop."""
import dataclasses

import pytest

from ideal.config import DialogConfig
from ideal.dialog.build import build_answerer, build_questioner, build_summariser
from ideal.dialog.chat import LocalChatClient, make_chat_client
from ideal.dialog.llm import EXTRACT, LLMAnswerWriter, LLMQuestioner, LLMSummariser, answer_messages
from ideal.dialog.round import run_round, start
from ideal.dialog.summary import GroundedSummariser
from ideal.dialog.types import DONT_KNOW, Q1, Q2, DialogState, Question, Turn
from ideal.retrieval.gallery import Gallery
from ideal.retrieval.retriever import BagOfLabelsRetriever
from ideal.scenes.memory import build_memory

from .fakes import (ALL, FALLBACK_A, FALLBACK_Q, FALLBACK_S, MEMORY, FailingClient, RecordingAnswerer,
                    RecordingClient, RecordingQuestioner, RecordingSummariser, ScriptedClient, cands, last_user,
                    states)
from .rooms import room


# ----------------------------------------------------------------------------------------------- questioner

def test_questioner_asks_every_dialog_in_one_batch_and_keeps_the_routed_type():
    def script(conv):
        obj = last_user(conv).split("looking for: the ")[1].split()[0]
        return f"Question: What is next to the {obj}?" if "detail probe" in conv[0]["content"] else \
            f"Sure! Is there anything in the room apart from the {obj}?"

    client, fb = ScriptedClient(script), RecordingQuestioner()
    questioner = LLMQuestioner(client, fb, starts={})
    qs = questioner.ask(states(3), [Q1, Q2, Q1], [cands(*ALL)] * 3)
    assert qs == [Question("What is next to the chair?", Q1),
                  Question("Is there anything in the room apart from the table?", Q2),
                  Question("What is next to the lamp?", Q1)]
    assert [len(b) for b in client.batches] == [3]
    assert fb.seen == [] and questioner.stats == {"calls": 3, "parsed": 3, "fallbacks": 0, "repeats": 0, "retries": 0}
    assert questioner.ask([], [], []) == [] and len(client.batches) == 1
    with pytest.raises(ValueError, match="3 dialogs, 2 question types"):
        questioner.ask(states(3), [Q1, Q2], [[]] * 3)


def test_questioner_falls_back_for_unparseable_replies_only():
    replies = {"chair": "What colour is the chair?", "table": "Ask about the colour of the table.", "lamp": "!!!"}
    client = ScriptedClient(lambda c: replies[last_user(c).split("looking for: the ")[1].split()[0]])
    fb = RecordingQuestioner()
    questioner = LLMQuestioner(client, fb, starts={})
    qs = questioner.ask(states(3), [Q2, Q1, Q2], [cands(*ALL), [], cands("scene0003_00")])
    assert qs == [Question("What colour is the chair?", Q2), Question(FALLBACK_Q, Q1, "has:window"),
                  Question(FALLBACK_Q, Q2, "has:window")]
    assert fb.seen == [("d1", Q1), ("d2", Q2)]  # each with its own routed type
    assert questioner.stats == {"calls": 3, "parsed": 1, "fallbacks": 2, "repeats": 0, "retries": 0}
    down = LLMQuestioner(FailingClient(), RecordingQuestioner())
    assert [q.text for q in down.ask(states(2), [Q1, Q2], [[]] * 2)] == [FALLBACK_Q] * 2
    assert down.stats == {"calls": 2, "parsed": 0, "fallbacks": 2, "repeats": 0, "retries": 0}


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

def test_local_model_junk_falls_back_for_every_dialog(tiny_lm):
    client = RecordingClient(LocalChatClient(tiny_lm, max_new_tokens=8))
    sts, n = states(3), 3
    fq, fa, fs = RecordingQuestioner(), RecordingAnswerer(), RecordingSummariser()

    questioner = LLMQuestioner(client, fq, starts={})
    assert questioner.ask(sts, [Q1, Q2, Q1], [cands(*ALL)] * n) == [Question(FALLBACK_Q, k, "has:window")
                                                                     for k in (Q1, Q2, Q1)]
    assert fq.seen == [("d0", Q1), ("d1", Q2), ("d2", Q1)]
    assert questioner.stats == {"calls": n, "parsed": 0, "fallbacks": n, "repeats": 0, "retries": 0}

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


# ----------------------------------------------------------------------------------------------- config

def test_llm_backends_from_config_in_the_dialog_loop(tiny_lm, text_encoder):
    """dialog.questioner/answerer/summariser=llm with dialog.llm=<a local model dir>: built by ideal.dialog.build,
    run through run_round; the random model's junk falls back to the grounded roles, so the dialog still works."""
    bed, lamp = ("bed", (0.1, 1, 0), (1.7, 3, 0.5), "white"), ("lamp", (4.2, 4.2, 0), (4.6, 4.6, 1.5), "red")
    scenes = [room("scene0000_00", "Bedroom / Hotel", [bed, ("chair", (2.5, 2.5, 0), (3, 3, 0.9), "brown")]),
              room("scene0001_00", "Kitchen", [("table", (2, 2, 0), (3.2, 3, 0.75), "black")]),
              room("scene0002_00", "Living room / Lounge", [("couch", (0.1, 1, 0), (0.9, 3, 0.8), "gray"), lamp]),
              room("scene0005_00", "Bedroom / Hotel", [bed, lamp])]
    cfg = dataclasses.replace(DialogConfig(k=3), questioner="llm", answerer="llm", summariser="llm", llm=str(tiny_lm),
                              llm_engine="transformers")
    gallery = Gallery(BagOfLabelsRetriever(text_encoder), scenes)
    client = make_chat_client(str(tiny_lm), engine="transformers", max_new_tokens=8)
    q, s = build_questioner(cfg, gallery, client), build_summariser(cfg, gallery, client)
    user = build_answerer(cfg, {x.scene_id: build_memory(x, []) for x in scenes}, None, client)
    assert isinstance(q, LLMQuestioner) and isinstance(s, LLMSummariser) and isinstance(user.writer, LLMAnswerWriter)
    states = start(["the brown chair in the bedroom", "a lamp"], ["scene0000_00", "scene0005_00"])
    for r in range(3):
        states = run_round(states, gallery, q, user, cfg, s, ask=r < 2)
    assert all(len(st.turns) == 2 for st in states)
    assert q.stats == {"calls": 4, "parsed": 0, "fallbacks": 4,
                       "repeats": 0, "retries": 0}  # every junk question replaced by a grounded one
    assert user.writer.stats["calls"] == 4 and s.stats["fallbacks"] == 4 and s.stats["parsed"] == 0
    assert all(t.aspect and t.kind in (Q1, Q2) for st in states for t in st.turns)  # grounded, of the routed type
    assert all(st.summary for st in states)  # the grounded CoT reconstruction
