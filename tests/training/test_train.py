"""The training loop in one process: batching, schedule, learning, checkpoints and exact resume."""
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ideal.config import load_config
from ideal.encoders.scene import LabelBank
from ideal.scenes import load_synthetic
from ideal.training.data import TrainArrays, build_train_arrays
from ideal.training.train import epoch_batches, fit, latest_checkpoint, load_model, lr_at

TINY = ["scene_encoder.width=32", "scene_encoder.ffn=64", "scene_encoder.layers=1", "train.batch_size=32",
        "train.epochs=3", "train.lr=3e-3"]


@pytest.fixture(scope="module")
def arrays(bench_root, text_encoder):
    ds = load_synthetic(bench_root, "train", points_per_object=0)
    cfg = load_config(None, TINY)
    return build_train_arrays(ds, text_encoder, LabelBank(text_encoder.embed_backbone), cfg.scene_encoder,
                              progress=False)


def test_epoch_batches_partition_and_shard():
    full = epoch_batches(103, 16, seed=0, epoch=1)
    assert sorted(np.concatenate(full)) == list(range(103))
    assert all(len(b) == 16 for b in full[:-1])
    shards = [epoch_batches(103, 16, 0, 1, rank=r, world=2) for r in range(2)]
    for a, b, whole in zip(*shards, full):
        assert not set(a) & set(b) and sorted(np.concatenate([a, b])) == sorted(whole)
    assert [list(b) for b in epoch_batches(103, 16, 0, 2)] != [list(b) for b in full]  # reshuffled per epoch


def test_lr_schedule():
    lrs = [lr_at(s, 100, 1.0) for s in range(100)]
    assert lrs[0] < lrs[4] == pytest.approx(1.0) and lrs[-1] < 0.01
    assert all(a >= b for a, b in zip(lrs[5:], lrs[6:]))


def test_arrays_round_trip(arrays, tmp_path):
    arrays.save(tmp_path / "a.npz")
    back = TrainArrays.load(tmp_path / "a.npz")
    np.testing.assert_array_equal(back.text_feats, arrays.text_feats)
    assert back.scene_ids == arrays.scene_ids and back.points is None
    assert arrays.label_emb.shape[-1] == 384 and len(arrays.text_scene) == len(arrays.text_feats)


def test_fit_learns_and_resumes_exactly(arrays, tmp_path):
    cfg = load_config(None, TINY)
    model, state = fit(cfg, arrays, ckpt_dir=tmp_path / "full", progress=False)
    losses = [h["loss"] for h in state.history]
    assert len(losses) == 3 and losses[-1] < losses[0]

    # Interrupted after the first epoch, then resumed from its checkpoint: the same weights at the end.
    fit(cfg, arrays, ckpt_dir=tmp_path / "cut", stop_after_epoch=0, progress=False)
    first = latest_checkpoint(tmp_path / "cut")
    assert first.name == "epoch-0000"
    resumed, rstate = fit(cfg, arrays, resume_from=first, ckpt_dir=tmp_path / "cut", progress=False)
    assert [h["epoch"] for h in rstate.history] == [0, 1, 2]
    a = load_file(latest_checkpoint(tmp_path / "full") / "model.safetensors")
    b = load_file(latest_checkpoint(tmp_path / "cut") / "model.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)

    loaded, loaded_cfg = load_model(latest_checkpoint(tmp_path / "full"))
    assert loaded_cfg.scene_encoder.width == 32
    feats = torch.from_numpy(arrays.text_feats[:4])
    torch.testing.assert_close(loaded.encode_text_features(feats), model.eval().encode_text_features(feats))


def test_load_model_names_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        load_model(tmp_path)


@pytest.mark.parametrize("tune", ["head", "all"])
def test_iat_moves_the_text_head_and_the_scene_encoder_only_when_tuned(arrays, tmp_path, tune):
    """IAT (L_dis + L_div) from a base checkpoint: the text head moves; the scene encoder only with iat.tune=all."""
    cfg = load_config(None, TINY + ["train.epochs=1", "iat.epochs=1", "iat.batch_size=32", f"iat.tune={tune}"])
    fit(cfg, arrays, ckpt_dir=tmp_path / "base", progress=False)
    init = latest_checkpoint(tmp_path / "base")
    start = load_file(init / "model.safetensors")
    model, _ = fit(cfg, arrays, stage="iat", init_from=init, progress=False)
    after = {k: v.detach() for k, v in model.state_dict().items()}
    assert not torch.allclose(after["text_head.weight"], start["text_head.weight"])
    scene = [k for k in after if k.startswith("scene_encoder.")]
    assert scene and any(not torch.allclose(after[k], start[k]) for k in scene) == (tune == "all")
