"""jobs/train.py's trainer on a real local Ray: 2 gloo workers, checkpoints, resume after a stop."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import ray
from ray import cloudpickle
from safetensors.torch import load_file

from ideal.config import load_config
from ideal.encoders.scene import LabelBank
from ideal.encoders.text import TextEncoder
from ideal.scenes import load_synthetic
from ideal.scenes.synthetic import generate
from ideal.training.data import build_train_arrays

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
TINY = ["scene_encoder.width=32", "scene_encoder.ffn=64", "scene_encoder.layers=1", "train.batch_size=32",
        "train.epochs=2", "train.num_workers=2"]


def _job():
    spec = importlib.util.spec_from_file_location("ideal_train_job", ROOT / "jobs" / "train.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    cloudpickle.register_pickle_by_value(module)  # workers get the job's train_loop by value
    return module


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def arrays_path(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("raytrain")
    root = generate(tmp / "bench", n_scenes=8, seed=4, progress=False)
    text = TextEncoder()
    cfg = load_config(None, TINY)
    arrays = build_train_arrays(load_synthetic(root, "train", points_per_object=0), text,
                                LabelBank(text.embed_backbone), cfg.scene_encoder, progress=False)
    path = tmp / "arrays.npz"
    arrays.save(path)
    return str(path)


def test_two_workers_train_and_resume_after_a_stop(ray_local, arrays_path, tmp_path):
    job = _job()
    cfg = load_config(None, TINY)
    full = job.run_trainer(cfg, arrays_path, tmp_path / "ray", "full")
    assert full.error is None
    with full.checkpoint.as_directory() as d:
        final = load_file(Path(d) / "model.safetensors")
        assert (Path(d) / "config.json").is_file()

    # Stopped after epoch 0, then the same run (storage + name) submitted again: it resumes, not restarts.
    cut = job.run_trainer(cfg, arrays_path, tmp_path / "ray", "cut", stop_after_epoch=0)
    assert cut.metrics["epoch"] == 0
    resumed = job.run_trainer(cfg, arrays_path, tmp_path / "ray", "cut")
    assert resumed.metrics["epoch"] == 1
    with resumed.checkpoint.as_directory() as d:
        again = load_file(Path(d) / "model.safetensors")
    for k in final:
        np.testing.assert_allclose(final[k].numpy(), again[k].numpy(), rtol=1e-5, atol=1e-6)
