"""Training on an accelerator: every tensor of a step lives where the model lives.

There is no GPU here, so `prepare` moves the model to the `meta` device (shapes, no data), as
ray.train.torch.prepare_model moves it to the worker's GPU. Anything a step leaves on the CPU — text
features, a scene batch, ids, targets, optimizer state — then fails with "Tensor on device cpu is not on
the expected device meta!", where a GPU would fail with "Expected all tensors to be on the same device".
"""
import contextlib

import numpy as np
import pytest
import torch
import torch.fx.experimental._config as fx_config
from torch.utils._python_dispatch import TorchDispatchMode

from ideal.config import load_config
from ideal.training.data import TrainArrays
from ideal.training.distributed import gather_with_grad
from ideal.training.train import RetrievalModel, TrainState, fit, latest_checkpoint, save_checkpoint

TEXT_DIM, SCENES, OBJECTS, POINTS, TEXTS = 16, 6, 5, 8, 48
TINY = ["scene_encoder.width=16", "scene_encoder.ffn=32", "scene_encoder.layers=1", "scene_encoder.heads=2",
        f"scene_encoder.points_per_object={POINTS}", "train.batch_size=16", "train.epochs=2",
        "iat.batch_size=16", "iat.epochs=2", "iat.lam=0.5"]


class MetaReads(TorchDispatchMode):
    """A meta tensor has no value: reading one (float(loss), a loss's `bool(...)` sanity check) gets a
    placeholder, so the step runs to its end and only a device mismatch can stop it."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default and args[0].is_meta:
            return True if args[0].dtype == torch.bool else 0
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def meta_values():
    # boolean-mask indexing (info_nce, l_div) needs nonzero(), which on meta must assume a size
    with MetaReads(), fx_config.patch(meta_nonzero_assume_all_nonzero=True):
        yield


def to_meta(model):
    return model.to("meta")


def tiny_arrays(points: bool) -> TrainArrays:
    rng = np.random.default_rng(0)
    mask = np.ones((SCENES, OBJECTS), bool)
    mask[:, -2:] = rng.random((SCENES, 2)) < 0.5  # padded rows, as collate_scenes makes them
    return TrainArrays(
        text_feats=rng.standard_normal((TEXTS, TEXT_DIM)).astype(np.float32),
        text_scene=np.arange(TEXTS) % SCENES,
        label_emb=rng.standard_normal((SCENES, OBJECTS, TEXT_DIM)).astype(np.float32),
        geom=rng.standard_normal((SCENES, OBJECTS, 9)).astype(np.float32),
        mask=mask,
        points=rng.standard_normal((SCENES, OBJECTS, POINTS, 6)).astype(np.float32) if points else None,
        scene_ids=[f"scene{i:04d}" for i in range(SCENES)])


def report_checks(calls: list):
    """A `report` that checks the optimizer steps the model's own (moved) parameters, with state beside them."""

    def report(metrics, model, optimizer, state):
        moving = [p for p in model.parameters() if p.requires_grad]
        stepped = [p for g in optimizer.param_groups for p in g["params"]]
        assert [id(p) for p in stepped] == [id(p) for p in moving], "the optimizer holds parameters the model left behind"
        for p in stepped:
            assert p.is_meta
            for key, value in optimizer.state[p].items():
                if key != "step" and torch.is_tensor(value):
                    assert value.device == p.device, f"optimizer state {key!r} on {value.device}, parameter on {p.device}"
        calls.append(metrics["epoch"])

    return report


@pytest.mark.parametrize("points", [False, True])
def test_base_training_runs_where_the_model_is(points):
    cfg = load_config(None, TINY + [f"scene_encoder.use_points={points}"])
    calls = []
    with meta_values():
        model, state = fit(cfg, tiny_arrays(points), prepare=to_meta, report=report_checks(calls), progress=False)
    assert calls == [0, 1] and len(state.history) == 2
    assert all(p.is_meta for p in model.parameters())


@pytest.mark.parametrize("tune", ["head", "all"])
def test_iat_runs_where_the_model_is(tmp_path, tune):
    cfg = load_config(None, TINY + [f"iat.tune={tune}"])
    init = save_checkpoint(tmp_path / "base", RetrievalModel(cfg, TEXT_DIM), None, cfg, TrainState(-1, []))
    calls = []
    with meta_values():
        fit(cfg, tiny_arrays(False), prepare=to_meta, report=report_checks(calls), progress=False, stage="iat",
            init_from=init)
    assert calls == [0, 1]


def test_resume_runs_where_the_model_is(tmp_path):
    """A checkpoint's optimizer state (saved from wherever) follows the parameters to the model's device."""
    cfg = load_config(None, TINY)
    arrays = tiny_arrays(False)
    fit(cfg, arrays, ckpt_dir=tmp_path, stop_after_epoch=0, progress=False)  # on the CPU
    calls = []
    with meta_values():
        fit(cfg, arrays, resume_from=latest_checkpoint(tmp_path), prepare=to_meta, report=report_checks(calls),
            progress=False)
    assert calls == [1]


def test_scene_batch_on_a_device():
    arrays = tiny_arrays(True)
    batch = arrays.scene_batch([0, 2], device=torch.device("meta"))
    assert all(t.is_meta for t in (batch.label_emb, batch.geom, batch.mask, batch.points))
    assert batch.mask.dtype == torch.bool and batch.points.shape == (2, OBJECTS, POINTS, 6)


def test_gather_refuses_ids_left_behind():
    with pytest.raises(ValueError, match="ids are on cpu but x is on meta"):
        gather_with_grad(torch.zeros(2, 3, device="meta"), torch.zeros(2, dtype=torch.long))
