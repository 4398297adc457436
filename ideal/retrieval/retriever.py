"""Retrievers: anything that embeds texts and scenes into one space and scores them (plug-and-play).

- `TrainedRetriever`: the text encoder (+ trained projection head) and the trained scene encoder.
- `BagOfLabelsRetriever`: training-free floor: the text encoder over the scene's object-label list.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from ..config import Config
from ..encoders.scene import LabelBank, collate_scenes, scene_objects
from ..scenes.words import count_phrase
from ..scenes.types import STRUCTURE_LABELS, Scene
from .objects import ObjectVectors


@runtime_checkable
class Retriever(Protocol):
    """Embeds texts and scenes into one space. A late-interaction retriever (`late_interaction` True) also has
    `encode_objects(scenes) -> ObjectVectors`, and scores a scene as its best object."""

    name: str
    late_interaction: bool

    def encode_text(self, texts: list[str]) -> np.ndarray: ...

    def encode_scenes(self, scenes: list[Scene]) -> np.ndarray: ...

    def score(self, text_emb: np.ndarray, scene_emb: np.ndarray) -> np.ndarray: ...


def cosine_scores(text_emb: np.ndarray, scene_emb: np.ndarray) -> np.ndarray:
    """(Q, S) inner products of L2-normalised embeddings."""
    return np.asarray(text_emb, np.float32) @ np.asarray(scene_emb, np.float32).T


class BagOfLabelsRetriever:
    """A scene is the sentence of its object labels ("two chairs, a desk and a lamp"), embedded like a text."""

    name = "bag-of-labels"
    late_interaction = False

    def __init__(self, text_encoder, batch_size: int = 64):
        self.text_encoder, self.batch_size = text_encoder, batch_size

    @staticmethod
    def scene_text(scene: Scene) -> str:
        counts = Counter(o.label for o in scene.objects if o.label not in STRUCTURE_LABELS)
        items = [count_phrase(n, label) for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        return "a room with " + (", ".join(items) if items else "nothing") + "."

    def encode_text(self, texts: list[str]) -> np.ndarray:
        return self.text_encoder.embed_backbone(texts, batch_size=self.batch_size)

    def text_features(self, texts: list[str]) -> np.ndarray:
        """Backbone features that `project_text` turns into embeddings (see Gallery.embed_composed)."""
        return self.text_encoder.embed_backbone(texts, batch_size=self.batch_size)

    def project_text(self, feats: np.ndarray) -> np.ndarray:
        feats = np.asarray(feats, np.float32)
        return feats / np.clip(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12, None)

    def encode_scenes(self, scenes: list[Scene]) -> np.ndarray:
        return self.text_encoder.embed_backbone([self.scene_text(s) for s in scenes], batch_size=self.batch_size)

    def score(self, text_emb, scene_emb) -> np.ndarray:
        return cosine_scores(text_emb, scene_emb)


class TrainedRetriever:
    """Text encoder + trained head on the text side, the trained scene encoder on the scene side.

    A checkpoint whose scene encoder outputs objects (`scene_encoder.output=objects`) is late-interaction:
    `encode_objects` gives every object's vector and a scene scores as its best object; its `encode_scenes` is
    then the pooled object vectors, for what needs one vector per scene (the router's density)."""

    name = "trained"

    def __init__(self, text_encoder, model, cfg: Config, scene_batch_size: int = 64):
        self.text_encoder, self.model, self.cfg = text_encoder, model.eval(), cfg
        self.bank = LabelBank(lambda labels: text_encoder.embed_backbone(labels))
        self.scene_batch_size = scene_batch_size

    @classmethod
    def from_checkpoint(cls, path: str | Path, text_encoder) -> "TrainedRetriever":
        from .model import load_model

        model, cfg = load_model(path, text_encoder.dim)
        return cls(text_encoder, model, cfg)

    @torch.inference_mode()
    def project_text(self, feats: np.ndarray) -> np.ndarray:
        return self.model.encode_text_features(torch.from_numpy(np.asarray(feats, np.float32))).numpy()

    def text_features(self, texts: list[str]) -> np.ndarray:
        return self.text_encoder.embed_backbone(texts, batch_size=self.cfg.text_encoder.batch_size)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        return self.project_text(self.text_features(texts))

    @property
    def late_interaction(self) -> bool:
        return self.model.scene_encoder.object_level

    @torch.inference_mode()
    def encode_objects(self, scenes: list[Scene]) -> ObjectVectors:
        """Every scene's object vectors (the objects the scene encoder sees, in `scene_objects` order)."""
        if not self.late_interaction:
            raise ValueError("this checkpoint's scene encoder pools one vector per scene (scene_encoder.output="
                             "scene); object vectors need one trained with scene_encoder.output=objects")
        dim, se = self.model.text_head.out_features, self.cfg.scene_encoder
        rows, ids = [], []
        for i in range(0, len(scenes), self.scene_batch_size):
            chunk = scenes[i:i + self.scene_batch_size]
            vecs = self.model.scene_encoder.objects(collate_scenes(chunk, self.bank, se)).numpy()
            for j, scene in enumerate(chunk):
                objs = scene_objects(scene, se.max_objects)  # collate_scenes fills slots 0..len-1 in this order
                if objs:
                    rows.append(vecs[j, :len(objs)])
                    ids.append([o.object_id for o in objs])
                else:  # a room without objects scores 0 against every text
                    rows.append(np.zeros((1, dim), np.float32))
                    ids.append([-1])
        counts = [len(x) for x in ids]
        return ObjectVectors(np.concatenate(rows) if rows else np.zeros((0, dim), np.float32),
                             np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                             np.concatenate([np.asarray(x, np.int32) for x in ids]) if ids else np.zeros(0, np.int32))

    @torch.inference_mode()
    def encode_scenes(self, scenes: list[Scene]) -> np.ndarray:
        if self.late_interaction:
            return self.encode_objects(scenes).pooled()
        out = [np.zeros((0, self.model.text_head.out_features), np.float32)]
        for i in range(0, len(scenes), self.scene_batch_size):
            batch = collate_scenes(scenes[i:i + self.scene_batch_size], self.bank, self.cfg.scene_encoder)
            out.append(self.model.scene_encoder(batch).numpy())
        return np.concatenate(out)

    def score(self, text_emb, scene_emb) -> np.ndarray:
        return cosine_scores(text_emb, scene_emb)
