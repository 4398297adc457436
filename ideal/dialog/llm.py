"""The `llm` backends of the questioner, answerer and summariser: prompts to a chat model, replies parsed back.

A `ChatClient` turns a batch of OpenAI-style conversations into a batch of replies: `OpenAIChatClient` speaks
to any OpenAI-compatible server (vLLM, `ray.serve.llm`), `LocalChatClient` runs a local transformers causal
LM. A reply that does not parse (empty, gibberish, no question), or a failed call, falls back to another
backend (the grounded one) for the dialogs concerned only; `stats` counts how often.

    client = make_chat_client("http://localhost:8000/v1", model="Qwen/Qwen2.5-1.5B-Instruct")
    questioner = LLMQuestioner(client, fallback=GroundedQuestioner(knowledge))
"""
from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional, Protocol, runtime_checkable

from .types import DONT_KNOW, Answerer, Candidate, DialogState, Question, Questioner, Summariser, is_unknown

log = logging.getLogger(__name__)

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}


@runtime_checkable
class ChatClient(Protocol):
    def complete(self, conversations: list[list[Message]]) -> list[str]:
        """One reply per conversation, in order. Raises RuntimeError when the model cannot be reached."""


# ----------------------------------------------------------------------------------------------- clients

class OpenAIChatClient:
    """POSTs each conversation to `{base_url}/chat/completions` (base_url like "http://host:8000/v1")."""

    def __init__(self, base_url: str, model: str, api_key: Optional[str] = None, timeout: float = 30.0,
                 max_tokens: int = 64, temperature: float = 0.0, workers: int = 8):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key, self.timeout = model, api_key, timeout
        self.max_tokens, self.temperature, self.workers = max_tokens, temperature, workers

    def complete(self, conversations: list[list[Message]]) -> list[str]:
        import httpx  # only when a remote model is used

        if not conversations:
            return []
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        with httpx.Client(timeout=self.timeout, headers=headers) as http:
            def one(messages: list[Message]) -> str:
                body = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens,
                        "temperature": self.temperature}
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

    def __init__(self, model_dir, max_new_tokens: int = 32, device: str = "cpu", batch_size: int = 8):
        from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy: only when a local model is used

        path = Path(model_dir).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: model directory does not exist")
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        # Decoder-only models continue the last token: pad on the left so every prompt ends at the same place,
        # and truncate on the left so the end of the prompt (the question, "assistant:") survives.
        self.tokenizer.padding_side = self.tokenizer.truncation_side = "left"
        if self.tokenizer.pad_token is None:
            if self.tokenizer.eos_token is None:
                raise ValueError(f"{path}: the tokenizer has neither a pad token nor an eos token to pad with")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True).to(device).eval()
        self.max_new_tokens, self.device, self.batch_size = max_new_tokens, device, batch_size
        limits = [n for n in (getattr(self.model.config, "max_position_embeddings", None),
                              self.tokenizer.model_max_length) if isinstance(n, int) and n < 10**6]
        self.max_prompt_tokens = max(8, min(limits) - max_new_tokens) if limits else None

    def prompt(self, messages: list[Message]) -> str:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            try:
                return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except Exception:  # some templates (Gemma) reject a system turn: fold it into the first user turn
                system = "\n".join(m["content"] for m in messages if m["role"] == "system")
                rest = [dict(m) for m in messages if m["role"] != "system"]
                if rest and system:
                    rest[0]["content"] = system + "\n\n" + rest[0]["content"]
                return tok.apply_chat_template(rest, tokenize=False, add_generation_prompt=True)
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"

    def complete(self, conversations: list[list[Message]]) -> list[str]:
        import torch

        templated = bool(getattr(self.tokenizer, "chat_template", None))
        out: list[str] = []
        for s in range(0, len(conversations), self.batch_size):
            prompts = [self.prompt(c) for c in conversations[s:s + self.batch_size]]
            # a chat template writes its own special tokens (bos); a plain prompt gets the tokenizer's
            enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=not templated,
                                 return_token_type_ids=False, truncation=self.max_prompt_tokens is not None,
                                 max_length=self.max_prompt_tokens).to(self.device)
            with torch.inference_mode():
                ids = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                          pad_token_id=self.tokenizer.pad_token_id)
            new = ids[:, enc["input_ids"].shape[1]:]
            out += [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        return out


def make_chat_client(spec: str, model: str = "default", **kw) -> ChatClient:
    """An OpenAI-compatible base URL ("http://host:8000/v1") -> OpenAIChatClient sending `model`;
    a local model directory -> LocalChatClient (`model` is ignored: the directory is the model).
    Other keyword arguments go to the client (OpenAI: api_key, timeout, max_tokens, temperature, workers;
    local: max_new_tokens, device, batch_size)."""
    spec = str(spec).strip()
    if spec.startswith(("http://", "https://")):
        return OpenAIChatClient(spec, model, **kw)
    if spec and Path(spec).expanduser().is_dir():
        return LocalChatClient(spec, **kw)
    raise ValueError(f"llm {spec!r} is neither an http(s):// base URL of an OpenAI-compatible server "
                     f"(e.g. http://localhost:8000/v1) nor an existing local model directory")


# ----------------------------------------------------------------------------------------------- parsers

# "Question:", "A:", "**Answer 2:**", "Assistant:" ... at the start of a line
_PREFIX = re.compile(r"^\s*(?:\*\*|__)?(?:question|answer|summary|description|response|output|assistant|user|"
                     r"questioner|answerer|system|q|a)\s*\d*\s*(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*", re.I)
_BULLET = re.compile(r"^\s*(?:[-*•>#]+|\d+[.)])\s+")
_QUOTES = "\"'`“”‘’*_ "
_PUNCT = ".,;:!?'\"-()/%"
_MARKERS = ("##", "[unused", "<|", "|>", "</s>", "<s>", "[PAD]", "[CLS]", "[SEP]", "[UNK]", "\ufffd")
# A question starts with one of these within its first three words ("In which room ...", "And is there ...").
_ASKING = {"is", "are", "was", "were", "does", "do", "did", "can", "could", "would", "will", "should", "has", "have",
           "had", "what", "which", "where", "how", "who", "whose", "when", "why", "any"}


def _clean_lines(text) -> list[str]:
    """Lines with role prefixes, bullets and surrounding quotes stripped; empty lines dropped."""
    if not isinstance(text, str):
        return []
    out = []
    for line in text.replace("\r", "\n").split("\n"):
        prev = None
        while prev != line:  # "- Assistant: Answer: ..." carries several
            prev = line
            line = _PREFIX.sub("", _BULLET.sub("", line)).strip(_QUOTES)
        if line:
            out.append(line)
    return out


def _words(s: str) -> list[str]:
    return s.split()


def _is_language(s: str) -> bool:
    """Plain English-looking text: mostly ASCII letters, no tokenizer debris, no word stuck in a loop.
    Greedy decoding from a broken or tiny model repeats itself ("polling polling polling")."""
    chars = [c for c in s if not c.isspace()]
    if not chars or any(m in s for m in _MARKERS):
        return False
    letters = sum(c.isascii() and c.isalpha() for c in chars)
    plain = sum(c.isascii() and (c.isalnum() or c in _PUNCT) for c in chars)
    if letters < 0.5 * len(chars) or plain < 0.95 * len(chars):
        return False
    words = [w.strip(".,;:!?\"'()").lower() for w in _words(s)]
    words = [w for w in words if w]
    if not words or _loops(words):
        return False
    return len(words) < 10 or len(set(words)) >= 0.3 * len(words)


def _loops(words: list[str], max_period: int = 3, repeats: int = 3) -> bool:
    """A run of 1 to `max_period` words said `repeats` times in a row ("a b a b a b")."""
    for p in range(1, max_period + 1):
        run = 0
        for i in range(len(words) - p):
            run = run + 1 if words[i] == words[i + p] else 0
            if run >= p * (repeats - 1):
                return True
    return False


def _cap(s: str, max_words: int, end: str) -> str:
    words = _words(s)
    if len(words) > max_words:
        s = " ".join(words[:max_words]).rstrip(",;:-–") + end
    return s


_SENTENCE = re.compile(r"[^.!?]+[.!?]+")


def _sentences(line: str) -> tuple[list[str], str]:
    """(complete sentences, the unterminated rest) of one line."""
    done = [m.group().strip() for m in _SENTENCE.finditer(line)]
    rest = _SENTENCE.sub("", line).strip()
    return [s for s in done if s], rest


def parse_question(text, max_words: int = 25) -> Optional[str]:
    """The first well-formed question in a reply ("Sure! Question: Is there a window?" -> "Is there a window?"),
    capped at `max_words` words; None when there is none (junk, a statement, fewer than 3 words)."""
    for line in _clean_lines(text):
        # a question runs back from its '?' to the previous sentence end or colon
        for m in re.finditer(r"[^.!?:]*\?", line):
            q = m.group().strip().lstrip(_QUOTES + "-•>#").strip()
            q = re.sub(r"\?+$", "?", q)
            words = _words(q)
            if len(words) < 3 or not _is_language(q):
                continue
            if not _ASKING & {w.strip(",").lower() for w in words[:3]}:
                continue
            return _cap(q[:1].upper() + q[1:], max_words, "?")
    return None


def _prose(text, max_sentences: Optional[int], max_words: int, min_words: int) -> Optional[str]:
    """The first `max_sentences` complete sentences (all when None); an unterminated reply counts as one
    sentence only when nothing complete precedes it (a reply cut by the token limit mid-sentence)."""
    sentences: list[str] = []
    for line in _clean_lines(text):
        done, rest = _sentences(line)
        sentences += done
        if rest and not sentences:
            sentences.append(rest.rstrip(",;:-–") + ".")
        if rest or (max_sentences and len(sentences) >= max_sentences):
            break
    sentences = [re.sub(r"([.!?])[.!?]+$", r"\1", s.strip(_QUOTES)) for s in sentences[:max_sentences]]
    out = " ".join(s for s in sentences if s)
    if len(_words(out)) < min_words or not _is_language(out):
        return None
    return _cap(out, max_words, ".")


def parse_answer(text, max_words: int = 40) -> Optional[str]:
    """The first one or two sentences of a reply, without "Answer:" and quotes, capped at `max_words` words;
    DONT_KNOW for any "I don't know"; None for empty or junk."""
    out = _prose(text, 2, max_words, min_words=1)
    if out is not None and is_unknown(out):
        return DONT_KNOW
    return out


def parse_summary(text, max_words: int = 80) -> Optional[str]:
    """A reply's sentences without "Summary:" and quotes, capped at `max_words` words; None for junk or
    fewer than 3 words."""
    return _prose(text, None, max_words, min_words=3)


# ----------------------------------------------------------------------------------------------- prompts

def question_messages(state: DialogState, candidates: list[Candidate], top_k: int = 5, max_words: int = 25,
                      candidate_words: int = 40) -> list[Message]:
    """The questioner's prompt: the dialog and what each of the top-k candidates looks like (never ids:
    they mean nothing to the model, and a question about "scene0011_00" means nothing to the user)."""
    system = ("You help a user find one 3D indoor scene among several candidate scenes. Ask ONE short question "
              f"in natural English (at most {max_words} words) whose answer best tells the candidate scenes apart: "
              "about the room, the objects in it, their colours or where they are. Never ask again about "
              "something the dialog already answered. Reply with the question only.")
    lines = [f"The user is looking for: {state.query.strip()}"]
    if state.turns:
        lines.append("Dialog so far:")
        for t in state.turns:
            lines += [f"Q: {t.question.strip()}", f"A: {t.answer.strip()}"]
    lines.append("Candidate scenes:")
    for n, c in enumerate(candidates[:top_k], 1):
        lines.append(f"{n}. {_cap(' '.join(c.summary).strip(), candidate_words, ' ...') or '(no description)'}")
    lines.append("Your question:")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]


def answer_messages(question: str, memory: list[str], max_words: int = 40) -> list[Message]:
    """The answerer's prompt: the memory sentences and the question, nothing else."""
    system = ("You are a person who remembers an indoor scene. Answer the question in one short sentence "
              f"(at most {max_words} words) using only your memory below. If your memory does not say, "
              f'answer exactly: {DONT_KNOW} Do not mention the memory or any ids. Reply with the answer only.')
    user = "\n".join(["Memory:", *[f"- {s.strip()}" for s in memory], f"Question: {question.strip()}", "Answer:"])
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def summary_messages(state: DialogState, max_words: int = 80) -> list[Message]:
    """The summariser's prompt: the query and the answered turns ("I don't know" turns left out)."""
    system = (f"Write ONE description (at most {max_words} words) of the object the user is looking for and of "
              "the room it is in, using only the facts below. Reply with the description only.")
    lines = [f"The user is looking for: {state.query.strip()}"]
    known = [t for t in state.turns if not is_unknown(t.answer)]
    if known:
        lines.append("When asked, the user said:")
        lines += [f"- {t.question.strip()} {t.answer.strip()}" for t in known]
    lines.append("Description:")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]


# ----------------------------------------------------------------------------------------------- backends

def _ask_model(who: str, client: ChatClient, conversations: list[list[Message]],
               parse: Callable[[str], Optional[str]], stats: dict) -> list[Optional[str]]:
    """Parsed replies, None where the reply is junk or (for all) where the call failed."""
    stats["calls"] += len(conversations)
    try:
        replies = client.complete(conversations)
        if len(replies) != len(conversations):
            raise RuntimeError(f"{len(conversations)} conversations but {len(replies)} replies")
    except Exception as e:  # the fallback answers instead; a dead endpoint must not stop an evaluation
        log.warning("llm %s: the model call failed, falling back for %d dialogs: %s", who, len(conversations), e)
        return [None] * len(conversations)
    parsed = [parse(r) for r in replies]
    for r, p in zip(replies, parsed):
        if p is None:
            log.debug("llm %s: unusable reply %r", who, r)
    return parsed


def _fill(parsed: list, stats: dict, fallback_for: Callable[[list[int]], list]) -> list:
    """`parsed` with its Nones replaced by the fallback's outputs for those positions only."""
    todo = [i for i, p in enumerate(parsed) if p is None]
    if todo:
        stats["fallbacks"] += len(todo)
        for i, v in zip(todo, fallback_for(todo)):
            parsed[i] = v
    return parsed


class LLMQuestioner:
    """Questions written by a chat model from the dialog and the top-k candidates' descriptions."""

    name = "llm"

    def __init__(self, client: ChatClient, fallback: Questioner, top_k: int = 5, max_words: int = 25,
                 candidate_words: int = 40):
        self.client, self.fallback = client, fallback
        self.top_k, self.max_words, self.candidate_words = top_k, max_words, candidate_words
        self.stats = {"calls": 0, "fallbacks": 0}  # counted in dialogs

    def ask(self, states: list[DialogState], candidates: list[list[Candidate]]) -> list[Question]:
        if len(states) != len(candidates):
            raise ValueError(f"{len(states)} dialogs but {len(candidates)} candidate lists")
        if not states:
            return []
        convs = [question_messages(st, c, self.top_k, self.max_words, self.candidate_words)
                 for st, c in zip(states, candidates)]
        texts = _ask_model("questioner", self.client, convs, lambda r: parse_question(r, self.max_words),
                           self.stats)
        out = [Question(t) if t is not None else None for t in texts]
        return _fill(out, self.stats, lambda idx: self.fallback.ask([states[i] for i in idx],
                                                                    [candidates[i] for i in idx]))


class LLMAnswerer:
    """The simulated user as a chat model that sees only the target's memory sentences and the question."""

    name = "llm"

    def __init__(self, client: ChatClient, fallback: Answerer, max_words: int = 40):
        self.client, self.fallback, self.max_words = client, fallback, max_words
        self.stats = {"calls": 0, "fallbacks": 0}  # counted in questions

    def answer(self, questions: list[str], memories: list[list[str]]) -> list[str]:
        if len(questions) != len(memories):
            raise ValueError(f"{len(questions)} questions but {len(memories)} memories")
        if not questions:
            return []
        convs = [answer_messages(q, m, self.max_words) for q, m in zip(questions, memories)]
        out = _ask_model("answerer", self.client, convs, lambda r: parse_answer(r, self.max_words), self.stats)
        return _fill(out, self.stats, lambda idx: self.fallback.answer([questions[i] for i in idx],
                                                                       [memories[i] for i in idx]))


class LLMSummariser:
    """The CoT step as a chat model: the query and the known answers rewritten as one description."""

    name = "llm"

    def __init__(self, client: ChatClient, fallback: Summariser, max_words: int = 80):
        self.client, self.fallback, self.max_words = client, fallback, max_words
        self.stats = {"calls": 0, "fallbacks": 0}  # counted in dialogs

    def summarise(self, states: list[DialogState]) -> list[str]:
        if not states:
            return []
        convs = [summary_messages(st, self.max_words) for st in states]
        out = _ask_model("summariser", self.client, convs, lambda r: parse_summary(r, self.max_words), self.stats)
        return _fill(out, self.stats, lambda idx: self.fallback.summarise([states[i] for i in idx]))


__all__ = ["ChatClient", "LLMAnswerer", "LLMQuestioner", "LLMSummariser", "LocalChatClient", "OpenAIChatClient",
           "answer_messages", "make_chat_client", "parse_answer", "parse_question", "parse_summary",
           "question_messages", "summary_messages"]
