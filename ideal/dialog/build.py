"""Build the dialog roles named in a DialogConfig (grounded by default; llm backends on request)."""
from __future__ import annotations

from ..config import DialogConfig
from ..retrieval.gallery import Gallery
from .answerer import GroundedAnswerWriter, SimulatedAnswerer
from .knowledge import labels_of
from .questioner import GroundedQuestioner
from .summary import GroundedSummariser


_CLIENTS: dict = {}


def _llm_client(cfg: DialogConfig, role: str):
    """The chat client of a role's model (dialog.<role>_llm, else dialog.llm), a local one run by dialog.llm_engine;
    one client per model and process, so roles on the same local model share its weights (and vLLM engine)."""
    from .chat import resolve_engine
    from .llm import make_chat_client
    from .models import resolve_llm

    spec = getattr(cfg, f"{role}_llm") or cfg.llm
    if not spec:
        raise ValueError(f"the llm {role} needs a model: dialog.llm (or dialog.{role}_llm) is a named model "
                         "(smollm2), an OpenAI-compatible base URL or a local model directory")
    key = (resolve_llm(spec), cfg.llm_model, resolve_engine(cfg.llm_engine), cfg.llm_dtype, cfg.llm_timeout)
    if key not in _CLIENTS:
        remote = {"timeout": cfg.llm_timeout} if key[0].startswith(("http://", "https://")) else {}
        _CLIENTS[key] = make_chat_client(key[0], model=cfg.llm_model, engine=key[2], dtype=cfg.llm_dtype, **remote)
    client = _CLIENTS[key]
    return client.limited(REPLY_TOKENS[role]) if hasattr(client, "limited") else client


# the longest reply each role asks for, in tokens: a question (25 words), an answer (40 words), the
# reconstruction (80 words); a model that runs on (small ones repeat themselves) stops there
REPLY_TOKENS = {"questioner": 48, "answerer": 64, "summariser": 128}


def build_questioner(cfg: DialogConfig, gallery: Gallery, client=None):
    """The questioner: it knows the gallery's 3D data (`gallery.knowledge`) and the dialog, no memory."""
    grounded = GroundedQuestioner(gallery.knowledge)
    if cfg.questioner == "grounded":
        return grounded
    if cfg.questioner == "llm":
        from .llm import LLMQuestioner

        return LLMQuestioner(client or _llm_client(cfg, "questioner"), fallback=grounded, top_k=max(cfg.k, 1),
                             knowledge=gallery.knowledge, structured=cfg.llm_structured)
    raise ValueError(f"dialog.questioner must be 'grounded' or 'llm', got {cfg.questioner!r}")


def build_answer_writer(cfg: DialogConfig, text_encoder=None, client=None, embed=None):
    """The answerer; `embed` (texts -> rows) overrides `text_encoder.embed_backbone`, e.g. a cache shared by
    several simulated users."""
    embed = embed or (text_encoder.embed_backbone if text_encoder is not None else None)
    grounded = GroundedAnswerWriter(embed=embed, min_relevance=cfg.min_relevance, support=cfg.answer_support)
    if cfg.answerer == "grounded":
        return grounded
    if cfg.answerer == "llm":
        from .llm import LLMAnswerWriter

        return LLMAnswerWriter(client or _llm_client(cfg, "answerer"), fallback=grounded,
                               structured=cfg.llm_structured)
    raise ValueError(f"dialog.answerer must be 'grounded' or 'llm', got {cfg.answerer!r}")


def build_summariser(cfg: DialogConfig, gallery: Gallery, client=None):
    """The CoT reconstruction writer; its object vocabulary is the gallery's classes (from 3D data: `gallery`
    needs `scenes`)."""
    vocabulary = labels_of(gallery.scenes)
    grounded = GroundedSummariser(vocabulary, cot=cfg.cot)
    if cfg.summariser == "grounded":
        return grounded
    if cfg.summariser == "llm":
        from .llm import LLMSummariser

        return LLMSummariser(client or _llm_client(cfg, "summariser"), fallback=grounded, cot=cfg.cot,
                             vocabulary=vocabulary, structured=cfg.llm_structured)
    raise ValueError(f"dialog.summariser must be 'grounded' or 'llm', got {cfg.summariser!r}")


def build_answerer(cfg: DialogConfig, memories, text_encoder=None, client=None, embed=None) -> SimulatedAnswerer:
    """The simulated user: the answerer over each dialog's memory (coarse or fine, cfg.memory)."""
    if cfg.memory not in ("coarse", "fine"):
        raise ValueError(f"dialog.memory must be 'coarse' or 'fine', got {cfg.memory!r}")
    writer = build_answer_writer(cfg, text_encoder, client, embed)
    return SimulatedAnswerer(writer, memories, cfg.memory, cfg.wrong_answers, cfg.unknown_answers, cfg.seed)
