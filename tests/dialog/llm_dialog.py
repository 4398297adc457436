"""The real-model dialog both LLM engines are tested on (test_smollm2.py: transformers, test_vllm.py: vLLM)."""
import re

import numpy as np

from ideal import build
from ideal.dialog.round import run_round, start
from ideal.dialog.types import DONT_KNOW
from ideal.retrieval.gallery import Gallery
from ideal.retrieval.retriever import BagOfLabelsRetriever
from ideal.scenes import load_synthetic


def check_two_round_dialog(cfg, bench_root, text_encoder) -> None:
    """Questioner, simulated user and CoT reconstruction all on cfg's model, two val queries for two rounds: every
    round asks a question, the answers come from the target's memory, and the ranking is over the whole gallery."""
    ds = load_synthetic(bench_root, "val", points_per_object=0)
    gallery = Gallery(BagOfLabelsRetriever(text_encoder), [ds.scenes[s] for s in sorted(ds.scenes)])
    roles = build.roles(cfg, gallery, ds.memories, text=text_encoder)
    descs = [d for d in ds.descriptions if d.source == "scanrefer"][:2]
    states = start([d.text for d in descs], [d.scene_id for d in descs], [d.desc_id for d in descs])
    for r in range(3):
        states = run_round(states, gallery, roles.questioner, roles.answerer, cfg, roles.summariser, ask=r < 2)
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
