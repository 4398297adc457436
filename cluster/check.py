"""Check the cluster files before `ray up`, `kubectl apply` or `serve deploy`, without a cluster.

    python cluster/check.py cluster/aws-gpu.yaml cluster/kuberay-rayservice.yaml deployments/serve_config.yaml

Each file's kind is read from its content: a Ray cluster launcher config, a KubeRay RayService manifest or a Serve
config. Prints `ok FILE` per good file and `error FILE: what is wrong` per bad one; exits 1 if any is bad.
From Python: `check_file(path)`, or `check_launcher` / `check_rayservice` / `check_serve_config` on a parsed dict;
each raises ValueError saying what Ray, KubeRay or Serve would refuse, or where a file drifts from this repository.
"""
from __future__ import annotations

import argparse
import copy
import importlib
import pkgutil
import re
import sys
from pathlib import Path

import jsonschema
import ray
import yaml
from pydantic import ValidationError
from ray import serve
from ray._common.utils import import_attr
from ray.autoscaler._private.util import validate_config
from ray.serve.schema import ServeDeploySchema

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the app's builder (deployments.app) is this checkout's
    sys.path.insert(0, str(ROOT))
SERVE_CONFIG = ROOT / "deployments" / "serve_config.yaml"
QUESTIONER_LLM = ROOT / "deployments" / "questioner_vllm.yaml"
IDEAL_APP = "deployments.app:build_app"
# on the interactive path: a cold start (data + text encoder) outlasts a call's deadline, so none scales to zero
INTERACTIVE = ("Ingress", "Retriever", "Questioner", "Answerer")


def _at(d: dict, dotted: str):
    """d["a"]["b"] for "a.b", or a ValueError naming the first missing key."""
    for i, key in enumerate(dotted.split(".")):
        if not isinstance(d, dict) or key not in d:
            raise ValueError(f"{'.'.join(dotted.split('.')[:i + 1])} is missing")
        d = d[key]
    return d


def _pydantic(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, err['loc'])) or 'top level'}: {err['msg']}" for err in e.errors())


# --- cluster launcher configs (ray up) -------------------------------------------------------------------------

def check_launcher(cfg: dict) -> dict:
    """Ray's own checks of a launcher config (ray-schema.json, the head type among the node types ...), then ours:
    a GPU worker type, this repository synced and installed with `.[gpu]`, token auth on every `ray start`."""
    try:
        validate_config(copy.deepcopy(cfg))  # it fills in defaults
    except jsonschema.ValidationError as e:
        where = ".".join(map(str, e.absolute_path)) or "top level"
        raise ValueError(f"{where}: {e.message} (Ray's cluster launcher schema)") from None
    types = _at(cfg, "available_node_types")
    head = _at(cfg, "head_node_type")
    gpu = [t for t, spec in types.items() if spec.get("resources", {}).get("GPU", 0) >= 1]
    if not gpu:
        raise ValueError("available_node_types: no node type has resources.GPU >= 1")
    if head in gpu:
        raise ValueError(f"head_node_type {head} has a GPU: GPUs belong to worker types, which scale to zero")
    for t in gpu:
        if not 0 <= types[t].get("min_workers", 0) <= _at(types, f"{t}.max_workers"):
            raise ValueError(f"available_node_types.{t}: needs 0 <= min_workers <= max_workers")
    total = sum(types[t]["max_workers"] for t in gpu)
    if total > _at(cfg, "max_workers"):
        raise ValueError(f"the GPU types' max_workers add up to {total}, above the cluster's max_workers "
                         f"{cfg['max_workers']}")
    # the repository goes to the nodes, and the token that lets them (and only its holders) reach the dashboard
    for remote, local in {"~/ideal": ".", "~/.ray/auth_token": "~/.ray/auth_token"}.items():
        if cfg.get("file_mounts", {}).get(remote) != local:
            raise ValueError(f"file_mounts[{remote!r}] must be {local!r}")
    if not any('pip install -e ".[gpu]"' in c for c in cfg.get("setup_commands", [])):
        raise ValueError('setup_commands must install this repository: pip install -e ".[gpu]"')
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        for c in cfg.get(key, []):
            if "ray start" in c and "RAY_AUTH_MODE=token ray start" not in c:
                raise ValueError(f"{key}: {c!r} starts Ray without RAY_AUTH_MODE=token (the dashboard listens on "
                                 f"0.0.0.0)")
    return cfg


# --- Serve configs (serve deploy) ------------------------------------------------------------------------------

def app_deployments(app: dict) -> set[str]:
    """The deployments an application can have: those defined in its builder's package, plus the LLM server when
    its args configure one. Serve refuses a config that overrides any other ("Deployment 'X' does not exist")."""
    # the app's modules (and torch with them) are imported for Serve configs only: launcher files need neither
    from deployments.llm import llm_deployment_name

    try:
        builder = import_attr(app["import_path"])
    except (ImportError, AttributeError) as e:
        raise ValueError(f"application {app.get('name', 'default')}: import_path {app['import_path']} does not "
                         f"import: {e}") from None
    package = importlib.import_module(builder.__module__.rpartition(".")[0] or builder.__module__)
    modules = [importlib.import_module(f"{package.__name__}.{m.name}")
               for m in pkgutil.iter_modules(getattr(package, "__path__", []))]
    names = {v.name for m in [package, *modules] for v in vars(m).values() if isinstance(v, serve.Deployment)}
    if (app.get("args") or {}).get("llm"):
        names.add(llm_deployment_name(app["args"]["llm"]))
    return names


def _check_ideal_app(app: dict, where: str) -> None:
    """Our rules for the interactive path, on an application built by deployments.app:build_app."""
    from deployments.app import AppArgs
    from deployments.roles import Retriever

    try:
        args = AppArgs(**(app.get("args") or {}))
    except ValidationError as e:
        raise ValueError(f"{where}: args: {_pydantic(e)}") from None
    options = {d["name"]: d for d in app.get("deployments", [])}
    for name in INTERACTIVE:
        low = (options.get(name, {}).get("autoscaling_config") or {}).get("min_replicas", 1)
        if low < 1:  # Serve's schema already refuses num_replicas 0
            raise ValueError(f"{where}: {name} may scale to zero (min_replicas {low}); it is on the interactive path, "
                             f"and a cold start outlasts a call's deadline")
    # a Retriever replica holds a full batch in flight while it fills the next one
    ongoing = options.get("Retriever", {}).get("max_ongoing_requests", Retriever.max_ongoing_requests)
    if ongoing < 2 * args.max_batch_size:
        raise ValueError(f"{where}: Retriever max_ongoing_requests {ongoing} is below 2 x max_batch_size "
                         f"({args.max_batch_size})")


def check_serve_config(config: dict) -> dict:
    """What `serve deploy` would refuse (Serve's schema, deployments the app does not have), plus our rules for the
    IDeal app's args and the interactive path."""
    try:
        ServeDeploySchema.model_validate(config)
    except ValidationError as e:
        raise ValueError(f"Serve's schema: {_pydantic(e)}") from None
    for app in config["applications"]:
        where = f"application {app.get('name', 'default')}"
        unknown = {d["name"] for d in app.get("deployments", [])} - app_deployments(app)
        if unknown:
            raise ValueError(f"{where}: deployment(s) {sorted(unknown)} do not exist in {app['import_path']}")
        if app["import_path"] == IDEAL_APP:
            _check_ideal_app(app, where)
    return config


# --- KubeRay RayService (kubectl apply) ------------------------------------------------------------------------

def _without_runtime_env(serve_config: dict) -> dict:
    out = copy.deepcopy(serve_config)
    for app in out.get("applications", []):
        app.pop("runtime_env", None)
    return out


def _gpus(container: dict) -> int:
    res = container.get("resources", {})
    return max(int(res.get(k, {}).get("nvidia.com/gpu", 0)) for k in ("requests", "limits"))


def _check_runtime_env(app: dict) -> None:
    """On Kubernetes the code comes as a zip URL (a pinned commit), installed with the GPU extra."""
    where = f"application {app.get('name', 'default')}"
    env = app.get("runtime_env", {})
    url = env.get("working_dir", "")
    if not re.fullmatch(r"https://\S+\.zip", url):
        raise ValueError(f"{where}: runtime_env.working_dir must be a zip URL, got {url!r}")
    if f"ideal[gpu] @ {url}" not in env.get("pip", []):
        raise ValueError(f"{where}: runtime_env.pip must install 'ideal[gpu] @ {url}'")


def _check_ray_cluster(cluster: dict) -> None:
    if cluster.get("rayVersion") != ray.__version__:
        raise ValueError(f"rayVersion {cluster.get('rayVersion')} is not the Ray here ({ray.__version__})")
    if cluster.get("authOptions", {}).get("mode") != "token":
        raise ValueError("rayClusterConfig.authOptions.mode must be token: the dashboard listens on 0.0.0.0")
    head = _at(cluster, "headGroupSpec")
    workers = cluster.get("workerGroupSpecs", [])
    head_containers = _at(head, "template.spec.containers")
    containers = {_at(g, "groupName"): _at(g, "template.spec.containers") for g in workers}
    for c in [*head_containers, *(c for cs in containers.values() for c in cs)]:
        if not c.get("image", "").startswith(f"rayproject/ray:{ray.__version__}-py3"):
            raise ValueError(f"{c.get('name')}: image {c.get('image')} is not "
                             f"rayproject/ray:{ray.__version__}-py3XX-...")
    if head.get("rayStartParams", {}).get("dashboard-host") != "0.0.0.0":
        raise ValueError("head: rayStartParams.dashboard-host must be 0.0.0.0 (KubeRay talks to the dashboard)")
    if any(_gpus(c) for c in head_containers):
        raise ValueError("head: requests a GPU")
    gpu_groups = [g for g in workers if any(_gpus(c) >= 1 for c in containers[g["groupName"]])]
    if not gpu_groups:
        raise ValueError("no worker group requests nvidia.com/gpu")
    for g in workers:
        if not 0 <= g.get("minReplicas", 0) <= g.get("replicas", 0) <= _at(g, "maxReplicas"):
            raise ValueError(f"{g['groupName']}: needs 0 <= minReplicas <= replicas <= maxReplicas")
    llm = yaml.safe_load(QUESTIONER_LLM.read_text())
    for g in gpu_groups:
        if g["maxReplicas"] < llm["deployment_config"]["autoscaling_config"]["max_replicas"]:
            raise ValueError(f"{g['groupName']}: maxReplicas is below the vLLM questioner's max_replicas "
                             f"({QUESTIONER_LLM.name})")
        # without it the autoscaler cannot tell that this group, scaled to zero, would bring the L4s the LLM asks for
        if f"accelerator_type:{llm['accelerator_type']}" not in g.get("rayStartParams", {}).get("resources", ""):
            raise ValueError(f"{g['groupName']}: rayStartParams.resources lacks accelerator_type:"
                             f"{llm['accelerator_type']}")


def check_rayservice(manifest: dict, serve_config: dict | None = None) -> dict:
    """What KubeRay or Serve would refuse, or a drift of serveConfigV2 from `serve_config` (default: this
    repository's deployments/serve_config.yaml) beyond the runtime_env; returns the parsed serveConfigV2."""
    if manifest.get("apiVersion") != "ray.io/v1" or manifest.get("kind") != "RayService":
        raise ValueError(f"not a ray.io/v1 RayService: {manifest.get('apiVersion')}/{manifest.get('kind')}")
    text = _at(manifest, "spec.serveConfigV2")
    if not isinstance(text, str):
        raise ValueError("serveConfigV2 must be a YAML string (a block scalar: `serveConfigV2: |`)")
    try:
        config = yaml.safe_load(text)
        check_serve_config(config)
    except (ValueError, yaml.YAMLError) as e:
        raise ValueError(f"serveConfigV2: {e}") from None
    for app in config["applications"]:
        _check_runtime_env(app)
    if serve_config is None:
        serve_config = yaml.safe_load(SERVE_CONFIG.read_text())
    if _without_runtime_env(config) != _without_runtime_env(serve_config):
        raise ValueError("serveConfigV2 differs from deployments/serve_config.yaml (beyond runtime_env)")
    _check_ray_cluster(_at(manifest, "spec.rayClusterConfig"))
    return config


# --- any of them -----------------------------------------------------------------------------------------------

KINDS = {"launcher": ("cluster launcher config", check_launcher),
         "rayservice": ("KubeRay RayService", check_rayservice),
         "serve": ("Serve config", check_serve_config)}


def kind_of(doc) -> str:
    """"launcher", "rayservice" or "serve", from what the document holds."""
    if not isinstance(doc, dict):
        raise ValueError(f"expected a YAML mapping, got {type(doc).__name__}")
    if str(doc.get("apiVersion", "")).startswith("ray.io/") or doc.get("kind") == "RayService":
        return "rayservice"
    if "provider" in doc or "available_node_types" in doc:
        return "launcher"
    if "applications" in doc:
        return "serve"
    raise ValueError("neither a cluster launcher config (provider:), a RayService (apiVersion: ray.io/v1) nor a Serve "
                     "config (applications:)")


def check_file(path: str | Path) -> str:
    """Checks the file as what it holds; returns its kind (a key of KINDS), or raises ValueError naming the file."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
        kind = kind_of(doc)
        KINDS[kind][1](doc)
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: {e}") from None
    return kind


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check Ray cluster launcher configs, KubeRay RayService manifests "
                                     "and Serve configs (each file's kind is read from its content).")
    parser.add_argument("files", nargs="+", help="YAML files, e.g. cluster/*.yaml deployments/serve_config.yaml")
    failed = 0
    for path in parser.parse_args(argv).files:
        try:
            kind = check_file(path)
        except ValueError as e:
            print(f"error {e}", file=sys.stderr)
            failed += 1
        else:
            print(f"ok {path} ({KINDS[kind][0]})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
