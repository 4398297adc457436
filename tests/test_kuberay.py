"""The KubeRay RayService manifest: its serveConfigV2 is deployments/serve_config.yaml (plus a remote runtime_env),
valid for Serve's own schema and naming only deployments the app has; the head has no GPU, a worker group does."""
import copy
import importlib
import pkgutil
import re
from pathlib import Path

import pytest
import ray
import yaml
from ray import serve
from ray._common.utils import import_attr
from ray.serve.schema import ServeDeploySchema

from deployments.llm import llm_deployment_name

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "cluster" / "kuberay-rayservice.yaml"
SERVE_CONFIG = ROOT / "deployments" / "serve_config.yaml"
QUESTIONER_LLM = ROOT / "deployments" / "questioner_vllm.yaml"


def app_deployments(app: dict) -> set[str]:
    """The deployments an application can have: those defined in its builder's package, plus the LLM server
    when its args configure one. Serve refuses a config that overrides any other ("Deployment 'X' does not exist")."""
    builder = import_attr(app["import_path"])
    package = importlib.import_module(builder.__module__.rpartition(".")[0] or builder.__module__)
    modules = [importlib.import_module(f"{package.__name__}.{m.name}")
               for m in pkgutil.iter_modules(getattr(package, "__path__", []))]
    names = {v.name for m in [package, *modules] for v in vars(m).values() if isinstance(v, serve.Deployment)}
    if app.get("args", {}).get("llm"):
        names.add(llm_deployment_name(app["args"]["llm"]))
    return names


def without_runtime_env(serve_config: dict) -> dict:
    out = copy.deepcopy(serve_config)
    for app in out["applications"]:
        app.pop("runtime_env", None)
    return out


def gpus(container: dict) -> int:
    res = container.get("resources", {})
    return max(int(res.get(k, {}).get("nvidia.com/gpu", 0)) for k in ("requests", "limits"))


def check(manifest: dict) -> dict:
    """Raises ValueError (or pydantic's ValidationError) on what KubeRay or Serve would refuse, or on a drift from
    deployments/serve_config.yaml; returns the parsed serveConfigV2."""
    if manifest.get("apiVersion") != "ray.io/v1" or manifest.get("kind") != "RayService":
        raise ValueError(f"not a ray.io/v1 RayService: {manifest.get('apiVersion')}/{manifest.get('kind')}")
    spec = manifest["spec"]
    if not isinstance(spec.get("serveConfigV2"), str):
        raise ValueError("serveConfigV2 must be a YAML string (a block scalar: `serveConfigV2: |`)")
    config = yaml.safe_load(spec["serveConfigV2"])
    ServeDeploySchema(**config)  # Serve's own schema: import_path, remote working_dir, options ...
    for app in config["applications"]:
        env = app.get("runtime_env", {})
        url = env.get("working_dir", "")
        if not re.fullmatch(r"https://\S+\.zip", url):
            raise ValueError(f"application {app['name']}: runtime_env.working_dir must be a zip URL, got {url!r}")
        if f"ideal[gpu] @ {url}" not in env.get("pip", []):
            raise ValueError(f"application {app['name']}: runtime_env.pip must install 'ideal[gpu] @ {url}'")
        unknown = {d["name"] for d in app.get("deployments", [])} - app_deployments(app)
        if unknown:
            raise ValueError(f"application {app['name']}: deployment(s) {sorted(unknown)} do not exist in "
                             f"{app['import_path']}")
    if without_runtime_env(config) != without_runtime_env(yaml.safe_load(SERVE_CONFIG.read_text())):
        raise ValueError("serveConfigV2 differs from deployments/serve_config.yaml (beyond runtime_env)")

    cluster = spec["rayClusterConfig"]
    if cluster.get("rayVersion") != ray.__version__:
        raise ValueError(f"rayVersion {cluster.get('rayVersion')} is not the Ray here ({ray.__version__})")
    if cluster.get("authOptions", {}).get("mode") != "token":
        raise ValueError("rayClusterConfig.authOptions.mode must be token: the dashboard listens on 0.0.0.0")
    head = cluster["headGroupSpec"]
    workers = cluster.get("workerGroupSpecs", [])
    for group in [head, *workers]:
        for c in group["template"]["spec"]["containers"]:
            if not c["image"].startswith(f"rayproject/ray:{ray.__version__}-py3"):
                raise ValueError(f"{c['name']}: image {c['image']} is not rayproject/ray:{ray.__version__}-py3XX-...")
    if head.get("rayStartParams", {}).get("dashboard-host") != "0.0.0.0":
        raise ValueError("head: rayStartParams.dashboard-host must be 0.0.0.0 (KubeRay talks to the dashboard)")
    if any(gpus(c) for c in head["template"]["spec"]["containers"]):
        raise ValueError("head: requests a GPU")
    gpu_groups = [g for g in workers if any(gpus(c) >= 1 for c in g["template"]["spec"]["containers"])]
    if not gpu_groups:
        raise ValueError("no worker group requests nvidia.com/gpu")
    llm = yaml.safe_load(QUESTIONER_LLM.read_text())
    for g in workers:
        if not 0 <= g.get("minReplicas", 0) <= g.get("replicas", 0) <= g["maxReplicas"]:
            raise ValueError(f"{g['groupName']}: needs 0 <= minReplicas <= replicas <= maxReplicas")
    for g in gpu_groups:
        if g["maxReplicas"] < llm["deployment_config"]["autoscaling_config"]["max_replicas"]:
            raise ValueError(f"{g['groupName']}: maxReplicas is below the vLLM questioner's max_replicas")
        # without it the autoscaler cannot tell that this group, scaled to zero, would bring the L4s the LLM asks for
        if f"accelerator_type:{llm['accelerator_type']}" not in g.get("rayStartParams", {}).get("resources", ""):
            raise ValueError(f"{g['groupName']}: rayStartParams.resources lacks accelerator_type:"
                             f"{llm['accelerator_type']}")
    return config


def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def test_the_rayservice_serves_deployments_serve_config():
    config = check(manifest())
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
    (lambda c, k: _apps(c).pop("import_path"), "import_path"),
    (lambda c, k: _apps(c)["deployments"].append({"name": "Reranker"}), r"\['Reranker'\] do not exist"),
    (lambda c, k: _apps(c)["deployments"][0].update(name="Ingres"), r"\['Ingres'\] do not exist"),
    (lambda c, k: _apps(c)["runtime_env"].update(working_dir="."), "remote URIs"),
    (lambda c, k: _apps(c)["runtime_env"].update(working_dir="https://example.com/ideal.tar"), "zip URL"),
    (lambda c, k: _apps(c)["runtime_env"].pop("pip"), r"ideal\[gpu\]"),
    (lambda c, k: _apps(c)["deployments"][1]["autoscaling_config"].update(max_replicas=99), "differs"),
    (lambda c, k: _apps(c)["args"].update(timeout_s=1), "differs"),
    (lambda c, k: k.update(rayVersion="2.9.0"), "rayVersion"),
    (lambda c, k: k.pop("authOptions"), "authOptions"),
    (lambda c, k: k["headGroupSpec"]["rayStartParams"].pop("dashboard-host"), "dashboard-host"),
    (lambda c, k: k["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"]["limits"].update(
        {"nvidia.com/gpu": "1"}), "head: requests a GPU"),
    (lambda c, k: [c_["resources"][r].pop("nvidia.com/gpu") for c_ in _gpu_group(k)["template"]["spec"]["containers"]
                   for r in ("requests", "limits")], "no worker group requests nvidia.com/gpu"),
    (lambda c, k: _gpu_group(k).update(minReplicas=5), "minReplicas"),
    (lambda c, k: _gpu_group(k).update(maxReplicas=1), "max_replicas"),
    (lambda c, k: _gpu_group(k)["rayStartParams"].pop("resources"), "accelerator_type:L4"),
])
def test_a_broken_manifest_is_rejected(edit, error):
    with pytest.raises(Exception, match=error):
        check(edited(edit))


def test_an_llm_questioner_deployment_may_be_configured():
    """With args.llm the LLM server is part of the app, so its options may be overridden by name."""
    llm = yaml.safe_load(QUESTIONER_LLM.read_text())
    app = {**_apps(yaml.safe_load(SERVE_CONFIG.read_text())), "args": {"llm": llm}}
    assert "LLMServer:qwen2_5-7b-instruct" in app_deployments(app)


def test_a_manifest_of_another_kind_or_with_an_unparsed_serve_config_is_rejected():
    m = manifest()
    m["kind"] = "RayCluster"
    with pytest.raises(ValueError, match="not a ray.io/v1 RayService"):
        check(m)
    m = manifest()
    m["spec"]["serveConfigV2"] = yaml.safe_load(m["spec"]["serveConfigV2"])  # a mapping where KubeRay wants a string
    with pytest.raises(ValueError, match="must be a YAML string"):
        check(m)
