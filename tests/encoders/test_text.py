"""The text encoder on the real bundled all-MiniLM-L6-v2 (and a tiny BERT made here, through the same loader)."""
import numpy as np
import pytest
import torch

from ideal.encoders.text import TextEncoder, check_model_dir, default_model_dir

TEXTS = ["a brown wooden chair", "the chair next to the table by the window, it is brown and made of wood",
         "a white toilet in the bathroom", "bed", "there is a large painting above the couch in the living room"]


@pytest.fixture(scope="module")
def enc():
    return TextEncoder()


def test_matches_sentence_transformers_reference(enc):
    from sentence_transformers import SentenceTransformer

    ref = SentenceTransformer(str(default_model_dir()), device="cpu").encode(TEXTS, normalize_embeddings=True)
    ours = enc.encode(TEXTS)
    assert ours.shape == (5, 384) and ours.dtype == np.float32
    np.testing.assert_array_less(0.999, (ours * ref).sum(1))


def test_order_batching_and_determinism(enc):
    a = enc.encode(TEXTS, batch_size=2)
    b = enc.encode(TEXTS[::-1], batch_size=64)[::-1]
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a, enc.encode(TEXTS, batch_size=1), atol=1e-5)
    assert enc.encode([]).shape == (0, 384)


def test_semantics(enc):
    e = enc.encode(["a brown wooden chair", "a wooden chair that is brown", "a white toilet in the bathroom"])
    assert e[0] @ e[1] > e[0] @ e[2] + 0.3


def test_head_is_identity_at_init_and_trainable(enc):
    np.testing.assert_allclose(enc.encode(TEXTS), enc.embed_backbone(TEXTS), atol=1e-6)
    out = enc(TEXTS[:2])
    out.sum().backward()
    assert enc.projection.weight.grad is not None
    assert all(p.grad is None for p in enc.backbone.parameters())  # frozen backbone
    enc.projection.zero_grad()


def test_save_load_round_trip(enc, tmp_path):
    with torch.no_grad():
        enc.projection.weight.add_(0.05 * torch.randn_like(enc.projection.weight))
    try:
        enc.save(tmp_path / "te")
        back = TextEncoder.load(tmp_path / "te")
        np.testing.assert_allclose(back.encode(TEXTS), enc.encode(TEXTS), atol=1e-6)
        assert not np.allclose(back.encode(TEXTS), back.embed_backbone(TEXTS), atol=1e-3)
    finally:
        with torch.no_grad():
            enc.projection.weight.copy_(torch.eye(384))


def test_extraction_is_reused_and_redone_when_incomplete(tmp_path):
    first = default_model_dir(tmp_path)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert default_model_dir(tmp_path) == first and (first / "model.safetensors").stat().st_mtime_ns == stamp
    (first / "config.json").unlink()  # a broken cache is extracted again
    assert (default_model_dir(tmp_path) / "config.json").is_file()


def test_any_local_model_directory_loads(tmp_path):
    from transformers import BertConfig, BertModel

    src = default_model_dir()
    tiny = tmp_path / "tiny-bert"
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(tiny)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(str(src), local_files_only=True).save_pretrained(tiny)
    enc = TextEncoder(tiny)
    assert enc.dim == 32 and enc.encode(TEXTS).shape == (5, 32)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not a model directory, missing config\.json"):
        check_model_dir(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing"):
        TextEncoder(tmp_path)
