"""Chat clients: a batch of OpenAI-style conversations in, one reply per conversation out.

`OpenAIChatClient` speaks to any OpenAI-compatible server (vLLM, `ray.serve.llm`); `LocalChatClient` runs a
local transformers causal LM (`VLLMChatClient`, in vllm_client.py, the same directory on vLLM's offline engine);
`make_chat_client` picks one from a URL or a directory and an engine. The roles that prompt
them (questioner, answerer, summariser) live in `llm.py`.

    client = make_chat_client("http://localhost:8000/v1", model="Qwen/Qwen2.5-1.5B-Instruct")
    client.complete([[{"role": "user", "content": "Is there a window?"}]])  # -> ["..."]
"""
from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Protocol, runtime_checkable

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}


@runtime_checkable  # deployments check a handle-backed client against it
class ChatClient(Protocol):
    def complete(self, conversations: list[list[Message]]) -> list[str]:
        """One reply per conversation, in order; for a conversation that ends with an assistant message, the
        continuation of that message. Raises RuntimeError when the model cannot be reached."""


class OpenAIChatClient:
    """POSTs each conversation to `{base_url}/chat/completions` (base_url like "http://host:8000/v1").
    `max_tokens` covers the longest reply a role asks for (the summariser's reconstruction, ~80 words)."""

    def __init__(self, base_url: str, model: str, api_key: Optional[str] = None, timeout: float = 30.0,
                 max_tokens: int = 128, temperature: float = 0.0, workers: int = 8):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key, self.timeout = model, api_key, timeout
        self.max_tokens, self.temperature, self.workers = max_tokens, temperature, workers

    def limited(self, max_tokens: int) -> "OpenAIChatClient":
        """This client with replies capped at `max_tokens` tokens."""
        return _with(self, max_tokens=max_tokens)

    def complete(self, conversations: list[list[Message]]) -> list[str]:
        import httpx  # only when a remote model is used

        if not conversations:
            return []
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        with httpx.Client(timeout=self.timeout, headers=headers) as http:
            def one(messages: list[Message]) -> str:
                body = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens,
                        "temperature": self.temperature}
                if messages and messages[-1]["role"] == "assistant":  # vLLM continues the final message
                    body.update(continue_final_message=True, add_generation_prompt=False)
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
                return [one(conversations[0])]
            with ThreadPoolExecutor(min(self.workers, len(conversations))) as pool:
                return list(pool.map(one, conversations))


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

    def complete(self, conversations: list[list[Message]]) -> list[str]:
        import torch

        templated = bool(getattr(self.tokenizer, "chat_template", None))
        texts = [self.prompt(c) for c in conversations]
        # batches of similar length: less padding to compute over; replies go back in the given order
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[str] = [""] * len(texts)
        for s in range(0, len(order), self.batch_size):
            idx = order[s:s + self.batch_size]
            prompts = [texts[i] for i in idx]
            # a chat template writes its own special tokens (bos); a plain prompt gets the tokenizer's
            enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=not templated,
                                 return_token_type_ids=False, truncation=self.max_prompt_tokens is not None,
                                 max_length=self.max_prompt_tokens).to(self.device)
            with torch.inference_mode():
                ids = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                          pad_token_id=self.tokenizer.pad_token_id)
            new = ids[:, enc["input_ids"].shape[1]:]
            for i, t in zip(idx, self.tokenizer.batch_decode(new, skip_special_tokens=True)):
                out[i] = t if conversations[i] and conversations[i][-1]["role"] == "assistant" else t.strip()
        return out


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


__all__ = ["DTYPES", "ENGINES", "ChatClient", "LocalChatClient", "Message", "OpenAIChatClient", "check_dtype",
           "make_chat_client", "resolve_engine"]
