"""The Serve application: Ingress → Retriever, Questioner (→ optional vLLM deployment), Answerer.

    serve run deployments.app:build_app                  # the default synthetic gallery, shipped weights
    serve deploy deployments/serve_config.yaml           # with autoscaling, on a running cluster
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field
from ray.serve import Application

from ideal.serving import ServiceSpec

from .ingress import Ingress
from .roles import BATCH, Answerer, Questioner, Retriever

# Every deployment's health checks and graceful shutdown (serve_config.yaml states the same per deployment; a
# config's values override these). A killed replica is noticed within ~2 s instead of Serve's 10, so the calls the
# Ingress resends to a sole replica's successor still meet their deadline; a replica being stopped (downscale,
# redeploy) gets to finish its calls, each bounded by timeout_s, before it is killed.
HEALTH = {"health_check_period_s": 2.0, "health_check_timeout_s": 10.0, "graceful_shutdown_wait_loop_s": 2.0}


class AppArgs(BaseModel):
    """`args:` of the application in serve_config.yaml (or `serve run deployments.app:build_app key=value`)."""

    model_config = ConfigDict(extra="forbid")
    gallery: Optional[str] = Field(None, description="an encoded gallery directory (jobs/encode_scenes.py --out G); "
                                   "None = the default synthetic benchmark's, built on first use")
    weights: Optional[str] = Field(None, description="retriever checkpoint folder or shipped name (default: iat); "
                                   "the gallery must hold an encoding made with it")
    overrides: list[str] = Field(default_factory=list, description="config overrides section.key=value")
    method: str = "ideal"
    max_batch_size: int = Field(BATCH["max_batch_size"], ge=1, description="@serve.batch size (1 = no batching)")
    batch_wait_timeout_s: float = Field(BATCH["batch_wait_timeout_s"], ge=0)
    timeout_s: float = Field(25.0, gt=0, description="deadline of every inner call (504 past it; below the proxy's "
                             "request_timeout_s so the client gets our 504, not a cut connection)")
    limits: dict = Field(default_factory=dict, description="ideal.serving.Limits fields")
    simulated_user: bool = Field(True, description="deploy the Answerer (evaluations through the handles)")
    llm: Optional[dict | str] = Field(None, description="the questioner becomes an LLM behind a ray.serve.llm "
                                      "deployment: an LLMConfig, its YAML file (deployments/questioner_vllm.yaml: "
                                      "GPU), or a named model or model directory on vLLM's CPU engine (smollm2)")
    llm_options: dict = Field(default_factory=dict, description="HandleChatClient options (max_tokens, ...)")
    deployment_options: dict[str, dict] = Field(default_factory=dict,
                                                description="per-deployment .options(), e.g. for small machines")


def build_app(args: dict | AppArgs | None = None) -> Application:
    a = args if isinstance(args, AppArgs) else AppArgs(**(args or {}))
    overrides = list(a.overrides) + (["dialog.questioner=llm"] if a.llm else [])
    spec = asdict(ServiceSpec(a.gallery, a.weights, tuple(overrides), a.method).resolved())
    batch = {"max_batch_size": a.max_batch_size, "batch_wait_timeout_s": a.batch_wait_timeout_s}
    unknown = set(a.deployment_options) - {"Ingress", "Retriever", "Questioner", "Answerer"}
    if unknown:
        raise ValueError(f"deployment_options: unknown deployment(s) {sorted(unknown)}")

    def opt(d):
        health = {**HEALTH, "graceful_shutdown_timeout_s": a.timeout_s + 5}
        return d.options(**{**health, **a.deployment_options.get(d.name, {})})

    llm, llm_options = None, dict(a.llm_options)
    if a.llm:  # ray.serve.llm and vLLM are imported only here (`.[gpu]`, or `.[llm]` for vLLM on CPU)
        from .llm import build_llm_deployment, llm_model_id

        llm = build_llm_deployment(a.llm)
        llm_options = {"model": llm_model_id(a.llm), **llm_options}
    retriever = opt(Retriever).bind(spec, **batch)
    questioner = opt(Questioner).bind(spec, llm, llm_options, **batch)
    answerer = opt(Answerer).bind(spec, **batch) if a.simulated_user else None
    return opt(Ingress).bind(retriever, questioner, answerer, a.limits, a.timeout_s)
