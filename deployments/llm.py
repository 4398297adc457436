"""The questioner's chat model as a `ray.serve.llm` (vLLM) deployment, and a ChatClient that calls it by handle.

    llm = build_llm_deployment("deployments/questioner_vllm.yaml")   # a bound LLMServer (GPU, `.[gpu]` extra)
    llm = build_llm_deployment("smollm2")        # SmolLM2-135M-Instruct on vLLM's CPU engine (`.[llm]` extra)
    app = Questioner.bind(..., llm=llm)           # Serve hands Questioner.__init__ a DeploymentHandle for it
    # in Questioner.__init__:
    client = HandleChatClient(llm, model=llm_model_id("deployments/questioner_vllm.yaml"))
    questioner = LLMQuestioner(client, fallback=grounded, top_k=k)

`ray.serve.llm` imports vLLM, so it is imported inside the functions that need it: this module imports without
vLLM, and the grounded questioner never touches it.
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from ideal.dialog.chat import check_constraints

LLMConfigSpec = Union[dict, str, Path]  # an LLMConfig as a dict, or the YAML file holding one


def cpu_llm_config(model: str, model_id: Optional[str] = None, cpus: float = 1, max_model_len: int = 2048,
                   kv_cache_gib: float = 1.0, dtype: str = "float32", threads: Optional[int] = None) -> dict:
    """An LLMConfig for vLLM's CPU engine: `model` a named model (smollm2: converted on first use) or a local model
    directory, in `dtype`. The engine gets a placement-group bundle of `cpus` CPUs and `threads` OpenMP threads
    (default: `cpus`; vLLM's default binding keeps a core for its scheduler: on 2 cores the model would get one,
    and two engines the same one); the replica actor itself reserves none, so the app with its other deployments
    at num_cpus 0 runs on 2 CPUs."""
    from ideal.dialog.chat import check_dtype
    from ideal.dialog.models import resolve_llm

    path = resolve_llm(model)
    if not Path(path).is_dir():
        raise ValueError(f"llm {model!r}: not a named model (smollm2) nor a local model directory")
    return {
        "model_loading_config": {"model_id": model_id or Path(model).name, "model_source": str(path)},
        "placement_group_config": {"bundles": [{"CPU": cpus}]},  # -> accelerator_config kind "cpu"
        "engine_kwargs": {"dtype": check_dtype(dtype), "enforce_eager": True, "max_model_len": max_model_len,
                          "kv_cache_memory_bytes": int(kv_cache_gib * 2**30)},
        "runtime_env": {"env_vars": {"VLLM_CPU_OMP_THREADS_BIND": "nobind",
                                     "OMP_NUM_THREADS": str(threads or max(1, int(cpus)))}},
        "deployment_config": {"autoscaling_config": {"min_replicas": 1, "max_replicas": 1},
                              "ray_actor_options": {"num_cpus": 0}},
    }


def serve_openai(model: str, dtype: str = "float32", cpus: float = 1, threads: Optional[int] = None,
                 kv_cache_gib: float = 4.0, host: str = "127.0.0.1", port: Optional[int] = None,
                 name: str = "llm") -> tuple[str, str]:
    """Start `model` (a named model or a model directory) on vLLM's CPU engine as a `ray.serve.llm` OpenAI app on
    the running Ray cluster; returns (its base URL, the model id requests carry) once it is ready. Every client
    (OpenAIChatClient) of the cluster then shares the one engine, which batches their requests together; its KV
    cache (`kv_cache_gib`) bounds how many conversations it holds at once."""
    import socket

    from ray import serve
    from ray.serve.llm import LLMConfig, build_openai_app  # needs vLLM: `.[llm]` (CPU) or `.[gpu]`

    cfg = cpu_llm_config(model, cpus=cpus, dtype=dtype, threads=threads, kv_cache_gib=kv_cache_gib)
    if port is None:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
    serve.start(http_options={"host": host, "port": port})
    # the ingress only forwards requests: it reserves no CPU, so the cluster's CPUs go to the engine and the shards
    app = build_openai_app({"llm_configs": [LLMConfig(**cfg)],
                            "ingress_deployment_config": {"ray_actor_options": {"num_cpus": 0}}})
    serve.run(app, name=name, route_prefix="/")
    return f"http://{host}:{port}/v1", cfg["model_loading_config"]["model_id"]


def load_llm_config(spec: LLMConfigSpec) -> dict:
    """An LLMConfig as a plain dict: `spec` itself, the mapping in the YAML file it names, or for a named model
    (smollm2) or a model directory, `cpu_llm_config(spec)`."""
    if isinstance(spec, dict):
        return spec
    from ideal.dialog.models import NAMED

    if str(spec).strip() in NAMED or Path(spec).expanduser().is_dir():
        return cpu_llm_config(str(spec).strip())
    path = Path(spec).expanduser()
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not YAML: {e}") from e
    if not isinstance(cfg, dict) or "model_loading_config" not in cfg:
        raise ValueError(f"{path}: not an LLMConfig (a mapping with model_loading_config, accelerator_type, ...)")
    return cfg


def llm_model_id(spec: LLMConfigSpec) -> str:
    """The model name requests must carry: `model_loading_config.model_id` (vLLM's served_model_name)."""
    return load_llm_config(spec)["model_loading_config"]["model_id"]


def llm_deployment_name(spec: LLMConfigSpec) -> str:
    """The Serve deployment name `build_llm_deployment` gives the model (for `deployments:` overrides in a config)."""
    cfg = load_llm_config(spec)
    name = cfg.get("deployment_config", {}).get("name") or llm_model_id(cfg).replace("/", "--").replace(".", "_")
    return "LLMServer:" + name


def build_llm_deployment(llm_config: LLMConfigSpec):
    """The `LLMServer` deployment for an LLMConfig (dict, YAML file, or a named model / model directory for vLLM on
    CPU: `cpu_llm_config`), bound and ready to pass to `.bind()`.

    Keys are those of `ray.serve.llm.LLMConfig`: model_loading_config, accelerator_type, engine_kwargs (vLLM engine
    arguments), deployment_config (Serve options: autoscaling_config, max_ongoing_requests ...). Its name is
    `llm_deployment_name(llm_config)`."""
    from ray.serve.llm import LLMConfig, build_llm_deployment as build  # needs vLLM: `.[gpu]` or `.[llm]` (CPU)

    return build(LLMConfig(**load_llm_config(llm_config)))


def _chat_request_class():
    from ray.serve.llm.openai_api_models import ChatCompletionRequest  # vLLM's OpenAI protocol model

    return ChatCompletionRequest


class HandleChatClient:
    """A ChatClient over the DeploymentHandle of a `ray.serve.llm` LLMServer: one OpenAI `ChatCompletionRequest`
    per conversation, sent to the server's `chat` method; a batch is in flight at once.

    Blocking: call it from a sync deployment method (Serve runs those in a worker thread), through
    `asyncio.to_thread`, or outside Serve; never on an event loop. `LLMServer.chat` is a generator method, so the
    handle is used with `stream=True` and a call yields one ChatCompletionResponse (`stream=False`, the default)
    or batches of "data: {...}" chunks (`stream=True`); both are read. A streaming handle response has no timeout
    of its own, so the batch shares a `timeout_s` deadline, after which its calls are cancelled and RuntimeError
    raised (LLMQuestioner then falls back to its grounded questioner)."""

    def __init__(self, handle, model: str, timeout_s: float = 30.0, max_tokens: int = 64,
                 temperature: float = 0.0, stream: bool = False, workers: int = 16):
        self.handle = handle.options(stream=True)
        self.model, self.timeout_s, self.max_tokens, self.temperature = model, timeout_s, max_tokens, temperature
        self.stream, self.workers = stream, workers

    def request(self, messages: list[dict], constraint: Optional[dict] = None):
        """The ChatCompletionRequest for one conversation; one that ends with an assistant message (the questioner
        begins its reply for a small model) asks vLLM to continue that message; `constraint` (ideal.dialog.chat's
        regex / json / choice) becomes the request's structured outputs."""
        extra = {"continue_final_message": True, "add_generation_prompt": False} \
            if messages and messages[-1]["role"] == "assistant" else {}
        if constraint is not None:
            extra["structured_outputs"] = constraint
        return _chat_request_class()(model=self.model, messages=messages, max_tokens=self.max_tokens,
                                     temperature=self.temperature, stream=self.stream, **extra)

    def complete(self, conversations: list[list[dict]], constraints: Optional[list[Optional[dict]]] = None
                 ) -> list[str]:
        """One reply per conversation, in order; RuntimeError when the deployment fails, errs or is too slow."""
        if not conversations:
            return []
        constraints = check_constraints(conversations, constraints)
        calls = [self.handle.chat.remote(self.request(m, c)) for m, c in zip(conversations, constraints)]
        deadline = time.monotonic() + self.timeout_s
        pool = ThreadPoolExecutor(min(self.workers, len(calls)))
        try:
            # each thread blocks on one call's stream; the requests themselves all went out above
            futures = [pool.submit(lambda c: read_chat(list(c)), c) for c in calls]
            return [f.result(timeout=max(0.0, deadline - time.monotonic())) for f in futures]
        except BaseException as e:
            for c in calls:  # best effort: frees the engine's slots; a no-op for the calls that finished
                try:
                    c.cancel()
                except Exception:
                    pass
            if isinstance(e, FutureTimeout):
                raise RuntimeError(f"LLM deployment: no reply to {len(calls)} chats within {self.timeout_s}s") from None
            if isinstance(e, Exception) and not isinstance(e, RuntimeError):
                raise RuntimeError(f"LLM deployment chat failed: {type(e).__name__}: {e}") from e
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def _events(item: Any) -> list[dict]:
    """One item of an `LLMServer.chat` stream as OpenAI JSON objects."""
    if isinstance(item, list):  # streamed chunks arrive batched
        return [e for x in item for e in _events(x)]
    if isinstance(item, str):  # server-sent events: "data: {...}\n\n", possibly several, then "data: [DONE]"
        out = []
        for line in item.splitlines():
            line = line.strip()
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                out.append(json.loads(line[5:]))
        return out
    if hasattr(item, "model_dump"):  # ChatCompletionResponse, ChatCompletionStreamResponse, ErrorResponse
        return [item.model_dump()]
    if isinstance(item, dict):
        return [item]
    raise RuntimeError(f"LLM deployment: unexpected {type(item).__name__} in the chat stream: {item!r:.200}")


def read_chat(items: list) -> str:
    """The reply text of one `chat` call's items: the first choice's message, or its deltas joined.
    An ErrorResponse (wrong model name, prompt too long ...) raises RuntimeError with the server's message."""
    parts = []
    for e in _events(items):
        err = e.get("error") if isinstance(e.get("error"), dict) else (e if e.get("object") == "error" else None)
        if err:
            raise RuntimeError(f"LLM deployment error {err.get('code')}: {err.get('message')}")
        for choice in e.get("choices") or []:
            if choice.get("index", 0) == 0:
                content = (choice.get("message") or choice.get("delta") or {}).get("content")
                parts.append(content if isinstance(content, str) else "")
    return "".join(parts)


__all__ = ["HandleChatClient", "build_llm_deployment", "cpu_llm_config", "llm_deployment_name", "llm_model_id",
           "load_llm_config", "read_chat", "serve_openai"]
