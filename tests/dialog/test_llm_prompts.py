"""The prompts of each llm role and question type: the questioner sees the dialog and the candidates (never ids,
never the user's memory), the answer writer the memory, the summariser the query and the informative answers."""
import json

import pytest

from ideal.dialog.llm import (EXTRACT, QUESTION_TYPES, LLMAnswerWriter, LLMQuestioner, extraction_messages,
                              one_step_messages, question_messages)
from ideal.dialog.types import DONT_KNOW, Q1, Q2, DialogState, Turn

from .fakes import ALL, MEMORY, RecordingAnswerer, RecordingQuestioner, ScriptedClient, cands

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
    asks = ["What colour is the fridge?", "Is there a towel?", "Where is the fridge?"]
    client = ScriptedClient(lambda c: asks[c[1]["content"].count("\nQ: ")])  # a new question each round
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
