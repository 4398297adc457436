"""The cluster launcher YAMLs validate against the schema Ray ships (no cloud needed) and describe what we run."""
from pathlib import Path

import pytest
import yaml
from ray.autoscaler._private.util import validate_config

CLUSTER = Path(__file__).resolve().parents[1] / "cluster"


@pytest.mark.parametrize("name, provider", [("aws-gpu.yaml", "aws"), ("gcp-gpu.yaml", "gcp")])
def test_launcher_yaml(name, provider):
    cfg = yaml.safe_load((CLUSTER / name).read_text())
    validate_config(cfg)  # ray-schema.json + Ray's own consistency checks (head type among the node types ...)
    assert cfg["provider"]["type"] == provider
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    gpu = [t for t, spec in types.items() if spec.get("resources", {}).get("GPU", 0) >= 1]
    assert gpu, "no GPU worker node type"
    for t in gpu:
        assert t != cfg["head_node_type"] and 0 <= types[t].get("min_workers", 0) <= types[t]["max_workers"]
    assert sum(types[t]["max_workers"] for t in gpu) <= cfg["max_workers"]
    # the repository is synced to the nodes and installed with the GPU extra
    assert cfg["file_mounts"] == {"~/ideal": ".", "~/.ray/auth_token": "~/.ray/auth_token"}
    # token auth on every node (Ray >= 2.59): the dashboard listens on 0.0.0.0
    for c in cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"]:
        assert "ray start" not in c or "RAY_AUTH_MODE=token ray start" in c, c
    assert any('pip install -e ".[gpu]"' in c for c in cfg["setup_commands"])


def test_a_broken_yaml_is_rejected():
    cfg = yaml.safe_load((CLUSTER / "aws-gpu.yaml").read_text())
    cfg["head_node_type"] = "missing"
    with pytest.raises(ValueError, match="head_node_type"):
        validate_config(cfg)
    cfg = yaml.safe_load((CLUSTER / "aws-gpu.yaml").read_text())
    cfg["available_node_types"]["gpu_worker"]["bogus_key"] = 1
    with pytest.raises(Exception, match="bogus_key"):
        validate_config(cfg)
