"""A driver on the test cluster (RAY_ADDRESS): jobs/train.py's trainer for IAT on prepared arrays, as
tests/training/test_ray_train.py runs it in-process. Prints the result as a line "result: JSON" (the workers'
output is in their logs on the nodes).

    python tests/multinode/iat_driver.py CONFIG_JSON ARRAYS INIT STORAGE NAME
"""
import importlib.util
import json
import sys
from pathlib import Path

import ray
from ray import cloudpickle

from ideal.config import config_from_dict

ROOT = Path(__file__).resolve().parents[2]


def train_job():
    spec = importlib.util.spec_from_file_location("ideal_train_job", ROOT / "jobs" / "train.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    cloudpickle.register_pickle_by_value(module)  # workers get the job's train_loop by value
    return module


def main(config, arrays, init, storage, name):
    ray.init(log_to_driver=False)
    result = train_job().run_trainer(config_from_dict(json.loads(config)), arrays, Path(storage), name, stage="iat",
                                     init=init)
    checkpoint = result.checkpoint.path if result.checkpoint else None
    error = None if result.error is None else repr(result.error)
    print("result: " + json.dumps({"error": error, "metrics": result.metrics, "checkpoint": checkpoint}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
