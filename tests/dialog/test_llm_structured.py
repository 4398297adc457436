"""Structured outputs of the llm roles against scripted chat clients: the constraint each conversation carries
(a question naming a named object, an answer in memory words, the reconstruction's objects from the gallery's
classes, one sentence per object), the checks on what comes back, and no repeated questions."""
import json
import re

import pytest

from ideal.dialog.chat import check_constraints, choice_regex
from ideal.dialog.knowledge import SceneKnowledge
from ideal.dialog.llm import LLMAnswerWriter, LLMQuestioner, LLMSummariser
from ideal.dialog.replies import normalise_question, parse_object_list, parse_sentences, repeated_dialogs
from ideal.dialog.structured import (answer_constraint, description_constraint, objects_constraint,
                                     question_constraint, reconstruction_constraint)
from ideal.dialog.types import DONT_KNOW, Q1, Q2, DialogState, Question, Turn

from .fakes import (ALL, FALLBACK_Q, FALLBACK_S, MEMORY, RecordingAnswerer, RecordingQuestioner, RecordingSummariser,
                    ScriptedClient, cands, last_user)

HAS = {"scene0001_00": ["fridge", "sink", "chair"], "scene0002_00": ["sofa", "window", "coffee table"],
       "scene0003_00": ["bed", "lamp"]}
KNOWLEDGE = SceneKnowledge.from_values(list(HAS), [{f"has:{lab}": "yes" for lab in labs} for labs in HAS.values()],
                                       [()] * len(HAS))
VOCAB = sorted({lab for labs in HAS.values() for lab in labs})


def full(constraint, text) -> bool:
    (kind, value), = constraint.items()
    if kind == "choice":
        return text in value
    return re.fullmatch(value, text) is not None


# ----------------------------------------------------------------------------------------------- constraints

def test_the_question_constraint_names_one_of_its_objects_and_no_other():
    c = question_constraint(["chair", "coffee table"], vocabulary=tuple(VOCAB))
    assert full(c, "What colour is the chair?") and full(c, "Where are the coffee tables, and what is on them?")
    assert full(c, "What colour are the chair and the coffee table?")
    assert not full(c, "What colour is the bed?")  # no listed object
    assert not full(c, "What colour is the chair next to the lamp?")  # another object in the free words
    assert not full(c, "What colour is the chair next to the piano?")  # not a question word either
    assert not full(c, "What colour is the chair? And the lamp?")  # one question, ending at its '?'
    assert not full(c, "the chair?")  # begins with a question word
    assert not full(c, "Is there anything else?")  # the open question only when asked for
    opened = question_constraint(["lamp"], open_question=True, also=("bed",))
    assert full(opened, "Is there anything else in the room?") and full(opened, "Is there a lamp near the bed?")
    assert not full(opened, "Is there a bed?")  # `also` may be named beside a listed object, not instead
    assert full(question_constraint([]), "What else is in the room?")  # nothing to name: the open question


def test_the_answer_constraint_is_the_memory_s_words_or_i_do_not_know():
    c = answer_constraint(MEMORY)
    assert full(c, "The fridge is white.") and full(c, "A green piano stands beside the radiator.")
    assert full(c, DONT_KNOW)
    assert not full(c, "The fridge is blue.") and not full(c, "There is a sofa.")  # words the memory lacks
    assert answer_constraint([]) == {"choice": [DONT_KNOW]}


def test_reconstruction_constraints_list_gallery_classes_then_one_sentence_per_object():
    c = objects_constraint(VOCAB, max_objects=3)
    assert full(c, '["sofa", "coffee table"]') and json.loads('["sofa", "coffee table"]')  # a JSON list
    assert not full(c, '["piano"]') and not full(c, '[]') and not full(c, '["bed", "bed", "bed", "bed"]')
    assert not full(c, '[ "sofa" ]')  # written compactly: no room for padding
    assert parse_object_list('["sofa", "piano", "sofa", "bed"]', VOCAB) == ["sofa", "bed"]  # known, deduplicated
    assert parse_object_list('["piano"]', VOCAB) is None and parse_object_list('["sofa"', VOCAB) is None
    assert parse_object_list('{"sofa": 1}', VOCAB) is None
    r = reconstruction_constraint(["sofa", "coffee table"])
    assert full(r, "A blue sofa stands near the window. The coffee table is in front of it.")
    assert not full(r, "The coffee table is in front. A blue sofa stands near it.")  # the list's order
    assert not full(r, "A blue sofa stands near the window.")  # every object has its sentence
    assert full(description_constraint(), "A room with a sofa. The sofa is blue.")
    assert parse_sentences("A blue sofa is here. The lamp is white, white, white, white, white.") == \
        "A blue sofa is here."  # a looping sentence is dropped, the rest kept
    assert parse_sentences("White white white white white.") is None and parse_sentences(None) is None


def test_constraints_are_checked_and_choices_escaped():
    conv = [[{"role": "user", "content": "hi"}]]
    assert check_constraints(conv, None) == [None]
    with pytest.raises(ValueError, match="1 conversations but 2 constraints"):
        check_constraints(conv, [None, None])
    for bad in ({"grammar": "x"}, {"choice": []}, {"regex": ""}, {"json": "[]"}, {"regex": "a", "choice": ["a"]}):
        with pytest.raises(ValueError, match="constraint 0"):
            check_constraints(conv, [bad])
    assert re.fullmatch(choice_regex(["a.b (c)", "d"]), "a.b (c)") and not re.fullmatch(choice_regex(["a.b"]), "axb")


# ----------------------------------------------------------------------------------------------- questioner

def dialog(query, *turns):
    return DialogState(query, dialog_id=query, turns=tuple(Turn(q, a, Q1) for q, a in turns))


def test_a_structured_questioner_constrains_each_question_to_its_dialog():
    st = [dialog("a chair near the fridge"), dialog("a sofa", ("Is there a window?", "A coffee table is there."))]
    client = ScriptedClient(lambda c: "What colour is the chair?" if "fridge" in last_user(c)
                            else "Is there a window near the sofa?")
    q = LLMQuestioner(client, RecordingQuestioner(), knowledge=KNOWLEDGE, structured=True)
    out = q.ask(st, [Q1, Q2], [cands("scene0001_00"), cands("scene0002_00", "scene0003_00")])
    assert [x.text for x in out] == ["What colour is the chair?", "Is there a window near the sofa?"]
    (c1, c2), = client.constraints
    assert full(c1, "Where is the fridge?") and full(c1, "What colour is the chair?")
    assert not full(c1, "What colour is the sofa?")  # Q1: only what the dialog named (chair, fridge)
    assert not full(c1, "What colour is the chair by the sofa?")
    assert full(c2, "Is there a lamp?") and full(c2, "Is there a window by the sofa?")  # Q2: the candidates' classes
    assert not full(c2, "Is there a coffee table?") and not full(c2, "Is there a fridge?")  # named / not shown
    assert full(c2, "Is there anything else?")
    assert all(conv[-1]["role"] == "user" for conv in client.conversations)  # the reply is not begun
    with pytest.raises(ValueError, match="needs the gallery's knowledge"):
        LLMQuestioner(client, RecordingQuestioner(), structured=True)


def test_a_q1_naming_an_object_the_dialog_has_not_named_falls_back():
    client = ScriptedClient(lambda c: "Is the chair next to the lamp?")
    fb = RecordingQuestioner()
    q = LLMQuestioner(client, fb, knowledge=KNOWLEDGE, structured=True)
    out = q.ask([dialog("a chair"), dialog("a chair by a lamp")], [Q1, Q1], [cands(*ALL)] * 2)
    assert [x.text for x in out] == [FALLBACK_Q, "Is the chair next to the lamp?"]
    assert fb.seen == [("a chair", Q1)] and q.stats["fallbacks"] == 1 and q.stats["parsed"] == 1


def test_a_repeated_question_is_asked_for_again_once_then_falls_back():
    asked = ("What colour is the chair?", "It is red.")
    replies = {"first": ["What colour is the chair?", "Where is the chair?"],
               "second": ["what colour is the CHAIR", "What colour is the chair?"]}
    seen = {"first": 0, "second": 0}

    def script(conv):
        key = "first" if "first" in last_user(conv) else "second"
        seen[key] += 1
        return replies[key][seen[key] - 1] + ("?" if key == "second" and seen[key] == 1 else "")

    client, fb = ScriptedClient(script), RecordingQuestioner()
    q = LLMQuestioner(client, fb, knowledge=KNOWLEDGE, structured=True)
    out = q.ask([dialog("the first chair", asked), dialog("the second chair", asked)], [Q1, Q1], [cands(*ALL)] * 2)
    assert out == [Question("Where is the chair?", Q1), Question(FALLBACK_Q, Q1, "has:window")]
    retry = client.batches[1]
    assert len(retry) == 2 and "do not ask again: What colour is the chair?" in last_user(retry[0])
    assert "do not ask again: What colour is the CHAIR?" in last_user(retry[1])  # the question as it came back
    for c in client.constraints[1]:  # the same dialog's constraint, but another first word than the repeat's
        assert not full(c, "What colour is the chair?") and full(c, "Where is the chair?")
    assert q.stats == {"calls": 4, "parsed": 1, "fallbacks": 1, "repeats": 2, "retries": 2}
    assert normalise_question("What colour is the CHAIR") == normalise_question("what colour is the chair?")


def test_repeated_dialogs_counts_dialogs_that_asked_twice():
    once = dialog("a", ("Is there a bed?", "Yes."), ("Where is it?", "There."))
    twice = dialog("b", ("Is there a bed?", "Yes."), ("is there a bed", "Yes."))
    assert repeated_dialogs([once, twice, dialog("c")]) == 1


# ----------------------------------------------------------------------------------------------- answerer, summariser

def test_a_structured_answerer_constrains_to_each_dialog_s_memory():
    client = ScriptedClient(lambda c: "The fridge is white.")
    a = LLMAnswerWriter(client, RecordingAnswerer(), structured=True)
    assert a.answer(["What colour is the fridge?", "Is there a bed?"], [MEMORY, ["A bed."]]) == \
        ["The fridge is white.", "The fridge is white."]
    c1, c2 = client.constraints[0]
    assert full(c1, "The fridge is white.") and not full(c2, "The fridge is white.") and full(c2, "A bed.")


def test_a_structured_summariser_lists_gallery_classes_then_writes_a_sentence_per_object():
    states_ = [dialog("a blue sofa", ("Is there a table?", "A coffee table is in front of the sofa.")),
               dialog("a piano")]

    def script(conv):
        if len(conv) == 2:  # step 1
            return '["sofa", "coffee table"]' if "sofa" in conv[1]["content"] else '["piano"]'
        return "A blue sofa is here. The coffee table is in front of it."

    client, fb = ScriptedClient(script), RecordingSummariser()
    s = LLMSummariser(client, fb, vocabulary=VOCAB, structured=True)
    assert s.summarise(states_) == ["A blue sofa is here. The coffee table is in front of it.", FALLBACK_S]
    assert fb.seen == ["a piano"]  # no gallery class in its list
    step1, step2 = client.constraints
    assert step1 == [objects_constraint(VOCAB, 5)] * 2 and "JSON list" in last_user(client.batches[0][0])
    assert step2 == [reconstruction_constraint(["sofa", "coffee table"])]
    assert client.batches[1][0][2] == {"role": "assistant", "content": "sofa, coffee table"}
    assert "one sentence per object" in last_user(client.batches[1][0])
    assert s.stats == {"calls": 3, "parsed": 1, "fallbacks": 1}
    with pytest.raises(ValueError, match="vocabulary"):
        LLMSummariser(client, fb, structured=True)
    one = LLMSummariser(client, fb, cot=False, vocabulary=VOCAB, structured=True)
    one.summarise(states_[:1])
    assert client.constraints[-1] == [description_constraint()]
    json.dumps(client.constraints)  # what goes over HTTP to a server
