"""jobs/train.py's trainer on a real local Ray: 2 gloo workers, checkpoints, resume after a stop."""
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from ideal.config import load_config
from ideal.encoders.scene import LabelBank
from ideal.scenes import load_synthetic
from ideal.scenes.synthetic import generate
from ideal.training.data import build_train_arrays
from tests.multinode.iat_driver import train_job

pytestmark = pytest.mark.integration
TINY = ["scene_encoder.width=32", "scene_encoder.ffn=64", "scene_encoder.layers=1", "train.batch_size=32",
        "train.epochs=2", "train.num_workers=2", "iat.batch_size=32", "iat.epochs=2", "iat.num_workers=2"]


@pytest.fixture(scope="module")
def arrays_path(tmp_path_factory, text_encoder):
    tmp = tmp_path_factory.mktemp("raytrain")
    root = generate(tmp / "bench", n_scenes=8, seed=4, progress=False)
    text = text_encoder
    cfg = load_config(None, TINY)
    arrays = build_train_arrays(load_synthetic(root, "train", points_per_object=0), text,
                                LabelBank(text.embed_backbone), cfg.scene_encoder, progress=False)
    path = tmp / "arrays.npz"
    arrays.save(path)
    return str(path)


def _weights(result):
    with result.checkpoint.as_directory() as d:
        return load_file(Path(d) / "model.safetensors")


@pytest.fixture(scope="module")
def base_run(ray_local, arrays_path, tmp_path_factory):
    """An uninterrupted 2-epoch base run; its checkpoint is also where IAT starts."""
    import shutil

    tmp = tmp_path_factory.mktemp("base")
    full = train_job().run_trainer(load_config(None, TINY), arrays_path, tmp / "ray", "full")
    assert full.error is None
    with full.checkpoint.as_directory() as d:
        assert (Path(d) / "config.json").is_file()
        shutil.copytree(d, tmp / "init")
    return full, tmp / "init"


def test_two_workers_train_a_base_retriever(base_run):
    full, init = base_run
    assert full.error is None and full.metrics["epoch"] == 1
    assert set(load_file(init / "model.safetensors")) >= {"text_head.weight"}


def iat_config(tune):
    return load_config(None, TINY + [f"iat.tune={tune}", "iat.lam=0.5"])


@pytest.fixture(scope="module")
def iat_run(base_run, arrays_path, tmp_path_factory):
    """An uninterrupted IAT run (iat.tune=all) from the base checkpoint."""
    tmp = tmp_path_factory.mktemp("iat")
    return train_job().run_trainer(iat_config("all"), arrays_path, tmp, "iat-full", stage="iat", init=base_run[1])


def test_iat_on_two_workers_moves_the_whole_model(base_run, iat_run):
    """IAT (L_dis + L_div, embeddings gathered across the 2 workers with gradient) from a base checkpoint;
    tests/training/test_train.py shows in one process that iat.tune=head keeps the scene encoder."""
    assert iat_run.error is None and iat_run.metrics["epoch"] == 1
    start, a = load_file(base_run[1] / "model.safetensors"), _weights(iat_run)
    assert not np.allclose(a["text_head.weight"].numpy(), start["text_head.weight"].numpy())
    assert any(not np.allclose(a[k].numpy(), start[k].numpy()) for k in a if k.startswith("scene_encoder."))


def test_iat_stopped_and_resumed_ends_where_an_uninterrupted_run_ends(base_run, iat_run, arrays_path, tmp_path):
    """Stopped after epoch 0, then the same run (storage + name) submitted again: it resumes from its checkpoint
    (not from the IAT init) and ends exactly where the uninterrupted run ends."""
    job, cfg, init = train_job(), iat_config("all"), base_run[1]
    cut = job.run_trainer(cfg, arrays_path, tmp_path / "ray", "iat-cut", stop_after_epoch=0, stage="iat", init=init)
    assert cut.metrics["epoch"] == 0
    resumed = job.run_trainer(cfg, arrays_path, tmp_path / "ray", "iat-cut", stage="iat", init=init)
    assert resumed.metrics["epoch"] == 1
    a, b = _weights(iat_run), _weights(resumed)
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), rtol=1e-5, atol=1e-6)
