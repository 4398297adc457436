"""`dialog.llm_engine=vllm`: the bundled SmolLM2-135M-Instruct on vLLM's offline CPU engine (ideal/dialog/vllm_client.py)
-- the client's contract (order, continued replies, caps) and a real 2-round dialog (structure, not wording).
Needs vLLM (`pip install -e ".[llm]"`); one engine is started for the module (~40 s on 2 cores)."""
import importlib.util
import re

import numpy as np
import pytest

from ideal import build
from ideal.config import DialogConfig
from ideal.dialog import build as dialog_build
from ideal.dialog.round import run_round, start
from ideal.dialog.types import DONT_KNOW
from ideal.retrieval.gallery import Gallery
from ideal.retrieval.retriever import BagOfLabelsRetriever
from ideal.scenes import load_synthetic

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


def test_a_two_round_dialog_with_smollm2_on_vllm(client, bench_root, text_encoder):
    """Questioner, simulated user and CoT reconstruction all on SmolLM2 through vLLM: every round asks a question,
    the answers come from the target's memory, and the ranking is over the whole gallery."""
    ds = load_synthetic(bench_root, "val", points_per_object=0)
    gallery = Gallery(BagOfLabelsRetriever(text_encoder), [ds.scenes[s] for s in sorted(ds.scenes)])
    roles = build.roles(CFG, gallery, ds.memories, text=text_encoder)
    descs = [d for d in ds.descriptions if d.source == "scanrefer"][:2]
    states = start([d.text for d in descs], [d.scene_id for d in descs], [d.desc_id for d in descs])
    for r in range(3):
        states = run_round(states, gallery, roles.questioner, roles.answerer, CFG, roles.summariser, ask=r < 2)
    for st, d in zip(states, descs):
        assert len(st.turns) == 2 and st.scores.shape == (len(gallery.ids),) and np.isfinite(st.scores).all()
        memory = " ".join(ds.memories[d.scene_id].fine).lower()
        for t in st.turns:
            assert t.question.endswith("?") and len(t.question.split()) >= 3
            words = set(re.findall(r"[a-z]+", t.answer.lower())) - {"the", "a", "an", "is", "it", "there", "of"}
            assert t.answer == DONT_KNOW or words & set(re.findall(r"[a-z]+", memory)), t.answer
        assert st.summary
    q, a, s = roles.questioner.stats, roles.answerer.writer.stats, roles.summariser.stats
    assert q["calls"] == 4 and q["parsed"] + q["fallbacks"] == 4 and a["calls"] == 4
    assert q["parsed"] >= 1  # the model itself wrote questions, not only the fallback
    assert s["calls"] >= 6  # the two-step reconstruction: an object list, then the description
