"""`dialog.llm_engine=vllm`: the bundled SmolLM2-135M-Instruct on vLLM's offline CPU engine (ideal/dialog/vllm_client.py)
-- the client's contract (order, continued replies, caps) and a real 2-round dialog (structure, not wording).
Needs vLLM (`pip install -e ".[llm]"`); one engine is started for the module (~40 s on 2 cores)."""
import importlib.util

import pytest

from ideal.config import DialogConfig
from ideal.dialog import build as dialog_build

from .llm_dialog import check_constrained_replies, check_two_round_dialog

pytestmark = pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                                reason="vLLM is not installed (pip install -e '.[llm]')")

CFG = DialogConfig(questioner="llm", answerer="llm", summariser="llm", llm="smollm2", llm_engine="vllm",
                   memory="fine")


@pytest.fixture(scope="module")
def client():
    """The process's vLLM client of SmolLM2, as the roles get it (one engine for every role); stopped after."""
    c = dialog_build._llm_client(CFG, "questioner")
    yield c
    for key, v in list(dialog_build._CLIENTS.items()):
        if getattr(v, "llm", None) is c.llm:
            del dialog_build._CLIENTS[key]
    c.close()


def test_roles_share_one_engine_and_cap_their_replies(client):
    from ideal.dialog.vllm_client import VLLMChatClient

    answerer = dialog_build._llm_client(CFG, "answerer")
    assert isinstance(client, VLLMChatClient) and answerer.llm is client.llm
    assert (client.max_new_tokens, answerer.max_new_tokens) == (dialog_build.REPLY_TOKENS["questioner"],
                                                                dialog_build.REPLY_TOKENS["answerer"])


def test_replies_come_back_in_order_continued_and_capped(client):
    begun = [{"role": "user", "content": "Ask me one question about my kitchen."},
             {"role": "assistant", "content": "Question: What"}]
    plain = [{"role": "user", "content": "Name one piece of furniture found in a bedroom."}]
    convs = [plain, begun, [{"role": "user", "content": "Say the word 'table'."}], begun]
    replies = client.limited(6).complete(convs)
    assert len(replies) == 4 and all(isinstance(r, str) and r for r in replies)
    assert replies[1] == replies[3]  # greedy: the same conversation, the same reply, wherever it sits
    # the begun reply is continued (its text not repeated, no new turn), the others stripped like LocalChatClient's
    assert not replies[1].lstrip().lower().startswith(("question", "what")) and replies[0] == replies[0].strip()
    tok = client.tokenizer
    assert all(len(tok(r, add_special_tokens=False)["input_ids"]) <= 6 + 1 for r in replies)
    alone = client.limited(6).complete([plain])
    assert alone == replies[:1]  # a batch equals its conversations run alone
    assert client.complete([]) == []


def test_a_prompt_longer_than_the_context_loses_its_beginning(client):
    long = [{"role": "user", "content": "There is a chair. " * 800 + "Name one object in the room."}]
    (reply,) = client.limited(4).complete([long])
    assert isinstance(reply, str)


def test_constrained_replies_on_vllm_hold_their_constraint(client):
    """StructuredOutputsParams per request on vLLM's CPU engine (xgrammar)."""
    check_constrained_replies(client)


def test_a_two_round_dialog_with_smollm2_on_vllm(client, bench_root, text_encoder):
    """Questioner, simulated user and CoT reconstruction all on SmolLM2 through vLLM: every round asks a question,
    the answers come from the target's memory, and the ranking is over the whole gallery."""
    check_two_round_dialog(CFG, bench_root, text_encoder)


def test_a_bfloat16_engine_answers_and_is_a_separate_client(client):
    """dialog.llm_dtype=bfloat16 builds its own engine (the process's float32 one is kept for its roles); its
    greedy replies are text of the right count, capped like the float32 engine's."""
    import dataclasses

    cfg = dataclasses.replace(CFG, llm_dtype="bfloat16")
    half = dialog_build._llm_client(cfg, "answerer")
    try:
        assert half.llm is not client.llm and dialog_build._llm_client(CFG, "answerer").llm is client.llm
        convs = [[{"role": "user", "content": "Name one piece of furniture found in a bedroom."}],
                 [{"role": "user", "content": "Ask me one question about my kitchen."},
                  {"role": "assistant", "content": "Question: What"}]]
        replies = half.limited(6).complete(convs)
        assert len(replies) == 2 and all(isinstance(r, str) and r.strip() for r in replies)
        assert all(len(half.tokenizer(r, add_special_tokens=False)["input_ids"]) <= 7 for r in replies)
    finally:
        for key, v in list(dialog_build._CLIENTS.items()):
            if getattr(v, "llm", None) is half.llm:
                del dialog_build._CLIENTS[key]
        half.close()
    with pytest.raises(ValueError, match="llm dtype must be one of float32, bfloat16"):
        dialog_build._llm_client(dataclasses.replace(CFG, llm_dtype="float16"), "answerer")
