"""The real-model dialog both LLM engines are tested on (test_smollm2.py: transformers, test_vllm.py: vLLM)."""
import json
import re

import numpy as np

from ideal import build
from ideal.dialog.aspects import labels_in
from ideal.dialog.knowledge import labels_of
from ideal.dialog.replies import normalise_question
from ideal.dialog.round import run_round, start
from ideal.dialog.types import DONT_KNOW, Q1
from ideal.retrieval.gallery import Gallery
from ideal.retrieval.retriever import BagOfLabelsRetriever
from ideal.scenes import load_synthetic

from .fakes import RecordingClient


def check_two_round_dialog(cfg, bench_root, text_encoder, n_dialogs: int = 2) -> None:
    """Questioner, simulated user and CoT reconstruction all on cfg's model, `n_dialogs` val queries for two
    rounds: every round asks a question, the answers come from the target's memory, and the ranking is over the
    whole gallery. With structured outputs (cfg.llm_structured), the constraints hold on what the model wrote:
    every reconstruction label is a gallery class, every answer is memory words or "I don't know.", no Q1 names an
    object the dialog had not named; and no dialog asks a question twice."""
    ds = load_synthetic(bench_root, "val", points_per_object=0)
    gallery = Gallery(BagOfLabelsRetriever(text_encoder), [ds.scenes[s] for s in sorted(ds.scenes)])
    roles = build.roles(cfg, gallery, ds.memories, text=text_encoder)
    rec = {}
    for name, role in (("questioner", roles.questioner), ("answerer", roles.answerer.writer),
                       ("summariser", roles.summariser)):
        role.client = rec[name] = RecordingClient(role.client)
    descs = [d for d in ds.descriptions if d.source == "scanrefer"][:n_dialogs]
    states = start([d.text for d in descs], [d.scene_id for d in descs], [d.desc_id for d in descs])
    for r in range(3):
        states = run_round(states, gallery, roles.questioner, roles.answerer, cfg, roles.summariser, ask=r < 2)
    vocab = labels_of(gallery.scenes)
    for st, d in zip(states, descs):
        assert len(st.turns) == 2 and st.scores.shape == (len(gallery.ids),) and np.isfinite(st.scores).all()
        memory = " ".join(ds.memories[d.scene_id].fine).lower()
        for k, t in enumerate(st.turns):
            assert t.question.endswith("?") and len(t.question.split()) >= 3
            words = set(re.findall(r"[a-z]+", t.answer.lower())) - {"the", "a", "an", "is", "it", "there", "of"}
            assert t.answer == DONT_KNOW or words & set(re.findall(r"[a-z]+", memory)), t.answer
            if cfg.llm_structured and t.kind == Q1:
                named = labels_in(" ".join([st.query, *(u.answer for u in st.turns[:k])]), vocab)
                assert set(labels_in(t.question, vocab)) <= set(named), (t.question, named)
        asked = [normalise_question(t.question) for t in st.turns]
        assert len(set(asked)) == len(asked), asked
        assert st.summary
    if cfg.llm_structured:
        summ = rec["summariser"]
        for conv, c, reply in zip(summ.conversations, summ.constraints, summ.replies):
            if len(conv) == 2:  # step 1: a JSON list of objects, from the gallery's classes
                assert re.fullmatch(c["regex"], reply) and set(json.loads(reply)) <= set(vocab), reply
            else:  # step 2: each sentence names its object, in the list's order (the last may be cut by the cap)
                objects = conv[2]["content"].split(", ")
                for obj, sentence in zip(objects, re.findall(r"[^.]+\.", reply)):
                    assert obj in sentence.lower(), (objects, reply)
        memory_words = {w for m in ds.memories.values() for s in m.fine for w in re.findall(r"[a-z'-]+", s.lower())}
        for c, reply in zip(rec["answerer"].constraints, rec["answerer"].replies):
            assert "regex" in c and re.fullmatch(c["regex"], reply), reply
            assert reply == DONT_KNOW or set(re.findall(r"[a-z'-]+", reply.lower())) <= memory_words, reply
    q, a, s = roles.questioner.stats, roles.answerer.writer.stats, roles.summariser.stats
    n = len(descs)
    assert q["calls"] == 2 * n + q["retries"] and q["parsed"] + q["fallbacks"] == 2 * n and a["calls"] == 2 * n
    assert q["parsed"] >= 1  # the model itself wrote questions, not only the fallback
    assert s["calls"] >= 3 * n  # the two-step reconstruction: an object list, then the description


CONSTRAINED = [
    ([{"role": "user", "content": "Is the sofa blue? Answer yes or no."}], {"choice": ["Yes.", "No."]}),
    ([{"role": "user", "content": "Name two objects in a bedroom as a JSON list."}],
     {"json": {"type": "array", "items": {"type": "string", "enum": ["bed", "lamp", "wardrobe"]},
               "minItems": 1, "maxItems": 3}}),
    ([{"role": "user", "content": "Ask me about the chair."}],
     {"regex": "(?:What|Where|Is) (?:[a-z']{1,12} ){0,8}chair(?: [a-z']{1,12}){0,8}\\?"}),  # bounded: ends
    ([{"role": "user", "content": "Say something."}], None),
]


def check_constrained_replies(client) -> None:
    """Each constrained reply is in its choices / valid under its schema / a full match of its regex; a free
    conversation in the same call is left free."""
    replies = client.limited(48).complete([c for c, _ in CONSTRAINED], [k for _, k in CONSTRAINED])
    assert replies[0] in ("Yes.", "No.")
    items = json.loads(replies[1])
    assert len(items) in (1, 2, 3) and set(items) <= {"bed", "lamp", "wardrobe"}
    assert re.fullmatch(CONSTRAINED[2][1]["regex"], replies[2]), replies[2]
    assert isinstance(replies[3], str) and replies[3]

