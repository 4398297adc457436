"""cluster/check.py on the cluster launcher YAMLs (Ray's own schema, no cloud needed) and as the command users run
on every shipped file."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cluster.check import check_file, check_launcher, kind_of

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
SHIPPED = ["cluster/aws-gpu.yaml", "cluster/gcp-gpu.yaml", "cluster/kuberay-rayservice.yaml",
           "deployments/serve_config.yaml"]


def aws() -> dict:
    return yaml.safe_load((CLUSTER / "aws-gpu.yaml").read_text())


@pytest.mark.parametrize("name, provider", [("aws-gpu.yaml", "aws"), ("gcp-gpu.yaml", "gcp")])
def test_launcher_yaml(name, provider):
    cfg = yaml.safe_load((CLUSTER / name).read_text())
    assert check_launcher(cfg) is cfg
    assert cfg["provider"]["type"] == provider
    assert kind_of(cfg) == "launcher"


def _gpu_worker(cfg):
    return cfg["available_node_types"]["gpu_worker"]


@pytest.mark.parametrize("edit, error", [
    (lambda c: c.update(head_node_type="missing"), "head_node_type"),
    (lambda c: _gpu_worker(c).update(bogus_key=1), r"available_node_types\.gpu_worker: .*'bogus_key'"),
    (lambda c: _gpu_worker(c).update(resources={}), "no node type has resources.GPU"),
    (lambda c: c["available_node_types"]["head"].update(resources={"GPU": 1}), "head_node_type head has a GPU"),
    (lambda c: _gpu_worker(c).update(min_workers=3, max_workers=2), "min_workers <= max_workers"),
    (lambda c: c.update(max_workers=4), "add up to 8, above the cluster's max_workers 4"),
    (lambda c: c["file_mounts"].pop("~/.ray/auth_token"), r"file_mounts\['~/.ray/auth_token'\]"),
    (lambda c: c["file_mounts"].update({"~/ideal": "/elsewhere"}), r"file_mounts\['~/ideal'\] must be '.'"),
    (lambda c: c.update(setup_commands=["pip install ray"]), r'pip install -e "\.\[gpu\]"'),
    (lambda c: c["worker_start_ray_commands"].append("ray start --address=$RAY_HEAD_IP:6379"),
     "worker_start_ray_commands: .* without RAY_AUTH_MODE=token"),
])
def test_a_broken_launcher_yaml_is_rejected(edit, error):
    cfg = aws()
    edit(cfg)
    with pytest.raises(ValueError, match=error):
        check_launcher(cfg)


def test_each_kind_is_read_from_the_content(tmp_path):
    for name, kind in zip(SHIPPED, ["launcher", "launcher", "rayservice", "serve"]):
        assert check_file(ROOT / name) == kind
    other = tmp_path / "llm.yaml"
    other.write_text((ROOT / "deployments" / "questioner_vllm.yaml").read_text())
    with pytest.raises(ValueError, match=f"{other}: neither a cluster launcher config"):
        check_file(other)
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ValueError, match="list.yaml: expected a YAML mapping, got list"):
        check_file(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("provider: {type: aws\n")
    with pytest.raises(ValueError, match="bad.yaml: "):
        check_file(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match="absent.yaml: "):
        check_file(tmp_path / "absent.yaml")


def check_cli(*files) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "cluster/check.py", *map(str, files)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_the_command_passes_the_shipped_files_and_names_a_broken_one(tmp_path):
    ok = check_cli(*SHIPPED)
    assert ok.returncode == 0, ok.stderr
    assert [line.split(" (")[0] for line in ok.stdout.splitlines()] == [f"ok {f}" for f in SHIPPED]

    manifest = yaml.safe_load((CLUSTER / "kuberay-rayservice.yaml").read_text())
    manifest["spec"]["rayClusterConfig"]["rayVersion"] = "2.9.0"
    broken = tmp_path / "broken-rayservice.yaml"
    broken.write_text(yaml.safe_dump(manifest))
    bad = check_cli("cluster/aws-gpu.yaml", broken)
    assert bad.returncode == 1
    assert bad.stdout.startswith("ok cluster/aws-gpu.yaml")
    assert f"error {broken}: rayVersion 2.9.0 is not the Ray here" in bad.stderr
