"""Chat clients: a batch of OpenAI-style conversations in, one reply per conversation out.

`OpenAIChatClient` speaks to any OpenAI-compatible server (vLLM, `ray.serve.llm`); `LocalChatClient` runs a
local transformers causal LM (`VLLMChatClient`, in vllm_client.py, the same directory on vLLM's offline engine);
`make_chat_client` picks one from a URL or a directory and an engine. The roles that prompt
them (questioner, answerer, summariser) live in `llm.py`.

A conversation may carry a constraint on its reply (structured outputs), one of
    {"regex": "(Yes|No)\\."}                    the reply matches the regular expression
    {"json": {"type": "array", ...}}            the reply is JSON valid under the schema
    {"choice": ["chair", "table"]}              the reply is one of the strings
enforced while decoding: vLLM's `StructuredOutputsParams` (offline engine, OpenAI-compatible server,
`ray.serve.llm`), xgrammar's logits processor on transformers. A continued conversation (one that ends with an
assistant message) constrains the continuation.

    client = make_chat_client("http://localhost:8000/v1", model="Qwen/Qwen2.5-1.5B-Instruct")
    client.complete([[{"role": "user", "content": "Is there a window?"}]])  # -> ["..."]
    client.complete([[{"role": "user", "content": "Is there a window?"}]], [{"choice": ["Yes.", "No."]}])
"""
from __future__ import annotations

import copy
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Protocol, runtime_checkable

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}
Constraint = dict  # {"regex": str} | {"json": dict} | {"choice": list[str]}
CONSTRAINT_KINDS = ("regex", "json", "choice")


@runtime_checkable  # deployments check a handle-backed client against it
class ChatClient(Protocol):
    def complete(self, conversations: list[list[Message]],
                 constraints: Optional[list[Optional[Constraint]]] = None) -> list[str]:
        """One reply per conversation, in order; for a conversation that ends with an assistant message, the
        continuation of that message. `constraints[i]` (None: free text) constrains conversation i's reply.
        Raises RuntimeError when the model cannot be reached."""


def check_constraints(conversations: list, constraints: Optional[list]) -> list[Optional[Constraint]]:
    """One constraint (or None) per conversation; ValueError for a wrong count or an unknown shape."""
    if constraints is None:
        return [None] * len(conversations)
    constraints = list(constraints)
    if len(constraints) != len(conversations):
        raise ValueError(f"{len(conversations)} conversations but {len(constraints)} constraints")
    for i, c in enumerate(constraints):
        if c is None:
            continue
        if not isinstance(c, dict) or len(c) != 1 or next(iter(c)) not in CONSTRAINT_KINDS:
            raise ValueError(f"constraint {i}: expected one of {{'regex': str}}, {{'json': schema}}, "
                             f"{{'choice': [str, ...]}}, got {c!r:.200}")
        kind, value = next(iter(c.items()))
        if kind == "choice" and not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise ValueError(f"constraint {i}: 'choice' needs a non-empty list of strings, got {value!r:.200}")
        if kind == "regex" and not (isinstance(value, str) and value):
            raise ValueError(f"constraint {i}: 'regex' needs a non-empty string, got {value!r:.200}")
        if kind == "json" and not isinstance(value, dict):
            raise ValueError(f"constraint {i}: 'json' needs a JSON schema (a dict), got {value!r:.200}")
    return constraints


class OpenAIChatClient:
    """POSTs each conversation to `{base_url}/chat/completions` (base_url like "http://host:8000/v1").
    `max_tokens` covers the longest reply a role asks for (the summariser's reconstruction, ~80 words); `workers`
    conversations of a call are in flight at once (a vLLM server batches them)."""

    def __init__(self, base_url: str, model: str, api_key: Optional[str] = None, timeout: float = 30.0,
                 max_tokens: int = 128, temperature: float = 0.0, workers: int = 32):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key, self.timeout = model, api_key, timeout
        self.max_tokens, self.temperature, self.workers = max_tokens, temperature, workers

    def limited(self, max_tokens: int) -> "OpenAIChatClient":
        """This client with replies capped at `max_tokens` tokens."""
        return _with(self, max_tokens=max_tokens)

    def complete(self, conversations: list[list[Message]],
                 constraints: Optional[list[Optional[Constraint]]] = None) -> list[str]:
        import httpx  # only when a remote model is used

        if not conversations:
            return []
        constraints = check_constraints(conversations, constraints)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        with httpx.Client(timeout=self.timeout, headers=headers) as http:
            def one(messages: list[Message], constraint: Optional[Constraint]) -> str:
                body = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens,
                        "temperature": self.temperature}
                if messages and messages[-1]["role"] == "assistant":  # vLLM continues the final message
                    body.update(continue_final_message=True, add_generation_prompt=False)
                if constraint is not None:  # vLLM's OpenAI server (and ray.serve.llm): structured outputs
                    body["structured_outputs"] = constraint
                try:
                    r = http.post(self.url, json=body)
                except httpx.HTTPError as e:
                    raise RuntimeError(f"POST {self.url} failed: {type(e).__name__}: {e}") from e
                if r.status_code != 200:
                    raise RuntimeError(f"POST {self.url} returned HTTP {r.status_code}: {r.text[:200]}")
                try:
                    content = r.json()["choices"][0]["message"]["content"]
                except (ValueError, KeyError, IndexError, TypeError) as e:
                    raise RuntimeError(f"POST {self.url} returned HTTP 200 but not an OpenAI chat completion: "
                                       f"{r.text[:200]!r}") from e
                return content if isinstance(content, str) else ""

            if len(conversations) == 1:
                return [one(conversations[0], constraints[0])]
            with ThreadPoolExecutor(min(self.workers, len(conversations))) as pool:
                return list(pool.map(one, conversations, constraints))


class LocalChatClient:
    """A local transformers causal LM directory, greedy decoding, `batch_size` conversations per `generate`."""

    def __init__(self, model_dir, max_new_tokens: int = 128, device: str = "cpu", batch_size: int = 32,
                 dtype: str = "float32"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy: only when a local model is used

        path = Path(model_dir).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: model directory does not exist")
        check_dtype(dtype)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        # Decoder-only models continue the last token: pad on the left so every prompt ends at the same place,
        # and truncate on the left so the end of the prompt (the question, "assistant:") survives.
        self.tokenizer.padding_side = self.tokenizer.truncation_side = "left"
        if self.tokenizer.pad_token is None:
            if self.tokenizer.eos_token is None:
                raise ValueError(f"{path}: the tokenizer has neither a pad token nor an eos token to pad with")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True,
                                                          dtype=getattr(torch, dtype)).to(device).eval()
        self.max_new_tokens, self.device, self.batch_size = max_new_tokens, device, batch_size
        limits = [n for n in (getattr(self.model.config, "max_position_embeddings", None),
                              self.tokenizer.model_max_length) if isinstance(n, int) and n < 10**6]
        self.max_prompt_tokens = max(8, min(limits) - max_new_tokens) if limits else None
        self._grammars: dict = {}  # xgrammar's compiler and compiled grammars, shared by `limited` copies

    def limited(self, max_tokens: int) -> "LocalChatClient":
        """This client (the same loaded model) with replies capped at `max_tokens` new tokens."""
        return _with(self, max_new_tokens=max_tokens)

    def prompt(self, messages: list[Message]) -> str:
        """The model's text for a conversation; one that ends with an assistant message is continued from it."""
        tok = self.tokenizer
        cont = bool(messages) and messages[-1]["role"] == "assistant"
        if getattr(tok, "chat_template", None):
            kw = {"continue_final_message": True} if cont else {"add_generation_prompt": True}
            try:
                return tok.apply_chat_template(messages, tokenize=False, **kw)
            except Exception:  # some templates (Gemma) reject a system turn: fold it into the first user turn
                system = "\n".join(m["content"] for m in messages if m["role"] == "system")
                rest = [dict(m) for m in messages if m["role"] != "system"]
                if rest and system:
                    rest[0]["content"] = system + "\n\n" + rest[0]["content"]
                return tok.apply_chat_template(rest, tokenize=False, **kw)
        text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
        return text[:-1] if cont else text + "assistant:"

    def grammar(self, constraint: Constraint):
        """xgrammar's compiled grammar of `constraint` for this tokenizer (compiled once per constraint)."""
        import json

        try:
            import xgrammar as xgr
        except ImportError as e:
            raise ImportError("constrained replies on transformers need xgrammar: pip install -e '.[local-llm]' "
                              f"(docs/llm.md): {e}") from e
        kind, value = next(iter(constraint.items()))
        key = (kind, json.dumps(value, sort_keys=True))
        cache = self._grammars
        if key not in cache:
            if "compiler" not in cache:
                info = xgr.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=self.model.config.vocab_size)
                cache["compiler"] = xgr.GrammarCompiler(info)
            compiler = cache["compiler"]
            if len(cache) > 1024:  # per-dialog grammars (an answerer's memory words): keep the cache bounded
                cache.clear()
                cache["compiler"] = compiler
            if kind == "json":
                cache[key] = compiler.compile_json_schema(json.dumps(value))
            else:
                cache[key] = compiler.compile_regex(value if kind == "regex" else choice_regex(value))
        return cache[key]

    def complete(self, conversations: list[list[Message]],
                 constraints: Optional[list[Optional[Constraint]]] = None) -> list[str]:
        import torch

        constraints = check_constraints(conversations, constraints)
        templated = bool(getattr(self.tokenizer, "chat_template", None))
        texts = [self.prompt(c) for c in conversations]
        # batches of similar length (less padding to compute over), constrained and free ones apart (a batch's
        # logits processor constrains every row); replies go back in the given order
        order = sorted(range(len(texts)), key=lambda i: (constraints[i] is not None, len(texts[i])))
        batches, s = [], 0
        while s < len(order):
            free = constraints[order[s]] is None
            e = s
            while e < len(order) and e - s < self.batch_size and (constraints[order[e]] is None) == free:
                e += 1
            batches.append(order[s:e])
            s = e
        out: list[str] = [""] * len(texts)
        for idx in batches:
            prompts = [texts[i] for i in idx]
            # a chat template writes its own special tokens (bos); a plain prompt gets the tokenizer's
            enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=not templated,
                                 return_token_type_ids=False, truncation=self.max_prompt_tokens is not None,
                                 max_length=self.max_prompt_tokens).to(self.device)
            kw = {}
            if constraints[idx[0]] is not None:
                from transformers import LogitsProcessorList
                from xgrammar.contrib.hf import LogitsProcessor  # one per generate call: it keeps state

                kw["logits_processor"] = LogitsProcessorList(
                    [LogitsProcessor([self.grammar(constraints[i]) for i in idx])])
            with torch.inference_mode():
                ids = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                          pad_token_id=self.tokenizer.pad_token_id, **kw)
            new = ids[:, enc["input_ids"].shape[1]:]
            for i, t in zip(idx, self.tokenizer.batch_decode(new, skip_special_tokens=True)):
                out[i] = t if conversations[i] and conversations[i][-1]["role"] == "assistant" else t.strip()
        return out


_REGEX_SPECIAL = re.compile(r"([.^$*+?{}\[\]\\|()])")


def escape_regex(text: str) -> str:
    """`text` as a regular expression that matches it literally (the syntax xgrammar and vLLM read)."""
    return _REGEX_SPECIAL.sub(r"\\\1", text)


def choice_regex(choices: list[str]) -> str:
    """A regular expression matching exactly one of `choices` (for engines without a choice constraint)."""
    return "|".join("(?:" + escape_regex(c) + ")" for c in choices)


def _with(client, **changes):
    """A shallow copy of `client` with `changes`: what it holds (a loaded model, a tokenizer) is shared."""
    out = copy.copy(client)
    out.__dict__.update(changes)
    return out


ENGINES = ("auto", "transformers", "vllm")  # what runs a local model directory (dialog.llm_engine)
DTYPES = ("float32", "bfloat16")  # a local model's weights and activations (dialog.llm_dtype)


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"llm dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dtype


def resolve_engine(engine: str) -> str:
    """"transformers" or "vllm": `engine` itself, or for "auto" vLLM when it is installed (`.[llm]`), else
    transformers."""
    if engine not in ENGINES:
        raise ValueError(f"llm engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "auto":
        import importlib.util

        return "vllm" if importlib.util.find_spec("vllm") is not None else "transformers"
    return engine


def make_chat_client(spec: str, model: str = "default", engine: str = "auto", dtype: str = "float32",
                     **kw) -> ChatClient:
    """An OpenAI-compatible base URL ("http://host:8000/v1") -> OpenAIChatClient sending `model`;
    a local model directory -> LocalChatClient (`engine="transformers"`) or VLLMChatClient (`engine="vllm"`;
    `model` is ignored: the directory is the model) in `dtype`; "auto": vLLM when installed (`resolve_engine`).
    Other keyword arguments go to the client (OpenAI: api_key, timeout, max_tokens, temperature, workers;
    transformers: max_new_tokens, device, batch_size; vllm: max_new_tokens, max_model_len, kv_cache_gib)."""
    engine, dtype = resolve_engine(engine), check_dtype(dtype)
    spec = str(spec).strip()
    if spec.startswith(("http://", "https://")):
        return OpenAIChatClient(spec, model, **kw)
    if spec and Path(spec).expanduser().is_dir():
        if engine == "vllm":
            from .vllm_client import VLLMChatClient  # imports vllm

            return VLLMChatClient(spec, dtype=dtype, **kw)
        return LocalChatClient(spec, dtype=dtype, **kw)
    raise ValueError(f"llm {spec!r} is neither an http(s):// base URL of an OpenAI-compatible server "
                     f"(e.g. http://localhost:8000/v1) nor an existing local model directory")


__all__ = ["CONSTRAINT_KINDS", "DTYPES", "ENGINES", "ChatClient", "Constraint", "LocalChatClient", "Message",
           "OpenAIChatClient", "check_constraints", "check_dtype", "choice_regex", "escape_regex",
           "make_chat_client", "resolve_engine"]
