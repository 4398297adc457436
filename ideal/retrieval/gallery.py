"""A gallery: the scenes being searched, embedded once by a retriever, scored against texts exactly.

Dialog rounds mix every scene's score with the previous round's, so a round needs all S scores (a matrix
product; a faiss index serves top-K lookups for single-shot search instead).
"""
from __future__ import annotations

import numpy as np

from ..scenes.types import Scene


class Gallery:
    def __init__(self, retriever, scenes: list[Scene], batch_size: int = 256, cache_size: int = 200_000):
        if not scenes:
            raise ValueError("a gallery needs at least one scene")
        self.retriever = retriever
        self.scenes = list(scenes)
        self.ids = [s.scene_id for s in self.scenes]
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("gallery scene ids must be unique")
        self.index_of = {sid: i for i, sid in enumerate(self.ids)}
        self.embeddings = np.ascontiguousarray(retriever.encode_scenes(self.scenes), np.float32)
        self.batch_size, self.cache_size = batch_size, cache_size
        self._cache: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Text embeddings, each distinct text encoded once (queries recur every round)."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            if len(self._cache) + len(todo) > self.cache_size:
                self._cache.clear()
            for t, e in zip(todo, self.retriever.encode_text(todo)):
                self._cache[t] = np.asarray(e, np.float32)
        if not texts:
            return np.zeros((0, self.embeddings.shape[1]), np.float32)
        return np.stack([self._cache[t] for t in texts])

    def scores(self, texts: list[str]) -> np.ndarray:
        """(len(texts), S) retriever scores against every gallery scene."""
        return np.asarray(self.retriever.score(self.embed(texts), self.embeddings), np.float32)
