"""cluster/check.py on the KubeRay RayService: the shipped manifest passes (its serveConfigV2 is
deployments/serve_config.yaml plus a remote runtime_env), and each way of breaking it is refused with its reason."""
from pathlib import Path

import pytest
import yaml

from cluster.check import app_deployments, check_rayservice

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "cluster" / "kuberay-rayservice.yaml"
SERVE_CONFIG = ROOT / "deployments" / "serve_config.yaml"
QUESTIONER_LLM = ROOT / "deployments" / "questioner_vllm.yaml"


def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def test_the_rayservice_serves_deployments_serve_config():
    config = check_rayservice(manifest())
    (app,) = config["applications"]
    assert app["import_path"] == "deployments.app:build_app"
    assert {d["name"] for d in app["deployments"]} == {"Ingress", "Retriever", "Questioner", "Answerer"}
    assert app_deployments(app) >= {"Ingress", "Retriever", "Questioner", "Answerer"}
    assert manifest()["spec"]["rayClusterConfig"]["enableInTreeAutoscaling"] is True


def edited(edit) -> dict:
    """The manifest with `edit(serve_config, rayClusterConfig)` applied (serveConfigV2 re-serialised)."""
    m = manifest()
    config = yaml.safe_load(m["spec"]["serveConfigV2"])
    edit(config, m["spec"]["rayClusterConfig"])
    m["spec"]["serveConfigV2"] = yaml.safe_dump(config)
    return m


def _apps(c):
    return c["applications"][0]


def _gpu_group(k):
    return next(g for g in k["workerGroupSpecs"] if g["groupName"] == "gpu-workers")


@pytest.mark.parametrize("edit, error", [
    (lambda c, k: _apps(c).pop("import_path"), "import_path: Field required"),
    (lambda c, k: _apps(c)["deployments"].append({"name": "Reranker"}), r"\['Reranker'\] do not exist"),
    (lambda c, k: _apps(c)["deployments"][0].update(name="Ingres"), r"\['Ingres'\] do not exist"),
    (lambda c, k: _apps(c)["runtime_env"].update(working_dir="."), "remote URIs"),
    (lambda c, k: _apps(c)["runtime_env"].update(working_dir="https://example.com/ideal.tar"), "zip URL"),
    (lambda c, k: _apps(c)["runtime_env"].pop("pip"), r"ideal\[gpu\]"),
    (lambda c, k: _apps(c)["deployments"][1]["autoscaling_config"].update(max_replicas=99), "differs"),
    (lambda c, k: _apps(c)["args"].update(timeout_s=1), "differs"),
    (lambda c, k: _apps(c)["args"].update(max_batch_sise=8), "args: max_batch_sise"),
    (lambda c, k: k.update(rayVersion="2.9.0"), "rayVersion"),
    (lambda c, k: k.pop("authOptions"), "authOptions"),
    (lambda c, k: k["headGroupSpec"]["rayStartParams"].pop("dashboard-host"), "dashboard-host"),
    (lambda c, k: k["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"]["limits"].update(
        {"nvidia.com/gpu": "1"}), "head: requests a GPU"),
    (lambda c, k: k["headGroupSpec"]["template"]["spec"]["containers"][0].update(image="rayproject/ray:2.9.0-py311"),
     "image rayproject/ray:2.9.0-py311 is not"),
    (lambda c, k: [c_["resources"][r].pop("nvidia.com/gpu") for c_ in _gpu_group(k)["template"]["spec"]["containers"]
                   for r in ("requests", "limits")], "no worker group requests nvidia.com/gpu"),
    (lambda c, k: _gpu_group(k).update(minReplicas=5), "minReplicas"),
    (lambda c, k: _gpu_group(k).update(maxReplicas=1), "max_replicas"),
    (lambda c, k: _gpu_group(k)["rayStartParams"].pop("resources"), "accelerator_type:L4"),
    (lambda c, k: k.pop("headGroupSpec"), "headGroupSpec is missing"),
])
def test_a_broken_manifest_is_rejected(edit, error):
    with pytest.raises(ValueError, match=error):
        check_rayservice(edited(edit))


def test_an_llm_questioner_deployment_may_be_configured():
    """With args.llm the LLM server is part of the app, so its options may be overridden by name."""
    llm = yaml.safe_load(QUESTIONER_LLM.read_text())
    app = {**_apps(yaml.safe_load(SERVE_CONFIG.read_text())), "args": {"llm": llm}}
    assert "LLMServer:qwen2_5-7b-instruct" in app_deployments(app)


def test_a_manifest_of_another_kind_or_with_an_unparsed_serve_config_is_rejected():
    m = manifest()
    m["kind"] = "RayCluster"
    with pytest.raises(ValueError, match="not a ray.io/v1 RayService"):
        check_rayservice(m)
    m = manifest()
    m["spec"]["serveConfigV2"] = yaml.safe_load(m["spec"]["serveConfigV2"])  # a mapping where KubeRay wants a string
    with pytest.raises(ValueError, match="must be a YAML string"):
        check_rayservice(m)


def test_the_drift_is_measured_against_the_given_serve_config():
    serve_config = yaml.safe_load(SERVE_CONFIG.read_text())
    serve_config["applications"][0]["args"]["timeout_s"] = 20
    with pytest.raises(ValueError, match="differs"):
        check_rayservice(manifest(), serve_config)
