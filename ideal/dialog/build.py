"""Build the dialog roles named in a DialogConfig (grounded by default; llm backends on request)."""
from __future__ import annotations

from ..config import DialogConfig
from ..retrieval.gallery import Gallery
from .answerer import GroundedAnswerWriter, SimulatedAnswerer
from .knowledge import labels_of
from .questioner import GroundedQuestioner
from .summary import GroundedSummariser


def _llm_client(cfg: DialogConfig):
    from .llm import make_chat_client

    if not cfg.llm:
        raise ValueError("an llm backend needs dialog.llm: an OpenAI-compatible base URL or a local model directory")
    return make_chat_client(cfg.llm, model=cfg.llm_model)


def build_questioner(cfg: DialogConfig, gallery: Gallery, client=None):
    """The questioner: it knows the gallery's 3D data (`gallery.knowledge`) and the dialog, no memory."""
    grounded = GroundedQuestioner(gallery.knowledge)
    if cfg.questioner == "grounded":
        return grounded
    if cfg.questioner == "llm":
        from .llm import LLMQuestioner

        return LLMQuestioner(client or _llm_client(cfg), fallback=grounded, top_k=max(cfg.k, 1))
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

        return LLMAnswerWriter(client or _llm_client(cfg), fallback=grounded)
    raise ValueError(f"dialog.answerer must be 'grounded' or 'llm', got {cfg.answerer!r}")


def build_summariser(cfg: DialogConfig, gallery: Gallery, client=None):
    """The CoT reconstruction writer; its object vocabulary is the gallery's classes (from 3D data: `gallery`
    needs `scenes`)."""
    grounded = GroundedSummariser(labels_of(gallery.scenes), cot=cfg.cot)
    if cfg.summariser == "grounded":
        return grounded
    if cfg.summariser == "llm":
        from .llm import LLMSummariser

        return LLMSummariser(client or _llm_client(cfg), fallback=grounded, cot=cfg.cot)
    raise ValueError(f"dialog.summariser must be 'grounded' or 'llm', got {cfg.summariser!r}")


def build_answerer(cfg: DialogConfig, memories, text_encoder=None, client=None, embed=None) -> SimulatedAnswerer:
    """The simulated user: the answerer over each dialog's memory (coarse or fine, cfg.memory)."""
    if cfg.memory not in ("coarse", "fine"):
        raise ValueError(f"dialog.memory must be 'coarse' or 'fine', got {cfg.memory!r}")
    writer = build_answer_writer(cfg, text_encoder, client, embed)
    return SimulatedAnswerer(writer, memories, cfg.memory, cfg.noise, cfg.seed)
