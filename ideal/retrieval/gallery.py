"""A gallery: the scenes being searched and their embeddings under one retriever, scored against texts.

A dialog round needs every scene's score (p̂ is a softmax over the whole gallery): a matrix product over the
gallery. A gallery given an approximate faiss index (IVF, for large galleries) scores each text only against
the `candidates` scenes the index finds nearest, the others get -inf (so p̂ gives them 0).

A late-interaction retriever (`retriever.late_interaction`) scores a scene as its best object
(`ideal.retrieval.objects`): the gallery holds every scene's object vectors, and its approximate index is an
`ObjectIndex` over them, whose candidates are the scenes of each text's best objects, scored exactly (the max
over all of each candidate's objects). Its `embeddings` are then the pooled object vectors, which only the
router's density (scene-to-scene neighbours) reads.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..scenes.types import Scene
from .objects import ObjectVectors


class SegmentEncoder:
    """Features of texts given as lists of segments (sentences), each segment encoded once and cached.

    A text's features are the token-weighted mean of its segments' features: what mean pooling over the
    concatenation gives, without attention across segments and without the encoder's max_length cut. A dialog
    round thus encodes only its new sentences. Training (IAT) and retrieval compose texts the same way."""

    def __init__(self, text_features: Callable[[list[str]], np.ndarray], tokenizer=None, cache_size: int = 200_000):
        self.text_features, self.tokenizer, self.cache_size = text_features, tokenizer, cache_size
        self._cache: dict[str, tuple[np.ndarray, int]] = {}
        self.encoded = 0  # segments sent to the encoder so far

    def _token_counts(self, texts: list[str]) -> list[int]:
        if self.tokenizer is None:
            return [max(1, len(t.split())) for t in texts]
        return [max(1, len(ids)) for ids in self.tokenizer(texts, add_special_tokens=True)["input_ids"]]

    def features(self, texts: list[list[str]]) -> np.ndarray:
        todo = list(dict.fromkeys(s for segs in texts for s in segs if s not in self._cache))
        if todo:
            if len(self._cache) + len(todo) > self.cache_size:
                self._cache.clear()
            for t, f, n in zip(todo, self.text_features(todo), self._token_counts(todo)):
                self._cache[t] = (np.asarray(f, np.float32), n)
            self.encoded += len(todo)
        out = []
        for i, segs in enumerate(texts):
            if not segs:
                raise ValueError(f"text {i} has no segments")
            f = np.stack([self._cache[s][0] for s in segs])
            n = np.array([self._cache[s][1] for s in segs], np.float32)
            out.append((n[:, None] * f).sum(0) / n.sum())
        return np.stack(out) if out else np.zeros((0, 0), np.float32)


class Gallery:
    """Scenes (in the given order) and their embeddings under `retriever`.

    embeddings: the scenes' stored embeddings (an encoded gallery's), else they are encoded here (for a
    late-interaction retriever: the pooled object vectors, `ObjectVectors.pooled`).
    knn: (k, each scene's mean distance to its k nearest scenes), stored with the embeddings, for the router's
    density at that k. index: an approximate SceneIndex over the same rows (see the module docstring); for a
    late-interaction retriever it serves the density only.
    objects: a late-interaction retriever's object vectors of the scenes (an encoded gallery's), else encoded here
    with `retriever.encode_objects`. object_index: an approximate ObjectIndex over them: each text is then scored
    against the `candidates` scenes of its best objects (see `candidate_scores`).
    knowledge: a function giving the scenes' SceneKnowledge (an encoded gallery's stored one), called on first
    use; else it is built from the scenes."""

    def __init__(self, retriever, scenes: list[Scene], batch_size: int = 256, cache_size: int = 200_000,
                 embeddings: Optional[np.ndarray] = None, knn: Optional[tuple[int, np.ndarray]] = None,
                 index=None, candidates: int = 1024, knowledge: Optional[Callable] = None,
                 objects: Optional[ObjectVectors] = None, object_index=None):
        if not scenes:
            raise ValueError("a gallery needs at least one scene")
        self.retriever = retriever
        self.scenes = list(scenes)
        self.ids = [s.scene_id for s in self.scenes]
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("gallery scene ids must be unique")
        self.index_of = {sid: i for i, sid in enumerate(self.ids)}
        self.late_interaction = bool(retriever.late_interaction)
        if not self.late_interaction and (objects is not None or object_index is not None):
            raise ValueError(f"object vectors given for a retriever that scores pooled scene vectors "
                             f"({type(retriever).__name__})")
        if self.late_interaction and objects is None:
            objects = retriever.encode_objects(self.scenes)
        if objects is not None and len(objects) != len(self.ids):
            raise ValueError(f"object vectors of {len(objects)} scenes for {len(self.ids)} scenes")
        if object_index is not None and (object_index.ids != self.ids
                                         or not np.array_equal(object_index.offsets, objects.offsets)):
            raise ValueError("the object index's rows are not the gallery's object vectors in order")
        self.objects, self.object_index = objects, object_index
        if embeddings is None:
            embeddings = objects.pooled() if objects is not None else retriever.encode_scenes(self.scenes)
        self.embeddings = np.ascontiguousarray(embeddings, np.float32)
        if self.embeddings.shape[0] != len(self.ids):
            raise ValueError(f"{self.embeddings.shape[0]} embeddings for {len(self.ids)} scenes")
        if index is not None and index.ids != self.ids:
            raise ValueError("the index's rows are not the gallery's scenes in order")
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        self.index, self.candidates = index, candidates
        self.batch_size, self.cache_size = batch_size, cache_size
        self._cache: dict[str, np.ndarray] = {}
        self._segments: Optional[SegmentEncoder] = None
        self._knn = knn
        self._density: dict[tuple[int, float], np.ndarray] = {}
        self._knowledge, self._load_knowledge = None, knowledge

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

    def embed_composed(self, texts: list[list[str]]) -> np.ndarray:
        """Embeddings of texts given as lists of segments (sentences); see SegmentEncoder. Retrievers without
        `text_features`/`project_text` get the segments joined and encoded whole."""
        r = self.retriever
        if not (hasattr(r, "text_features") and hasattr(r, "project_text")):
            return self.embed([" ".join(segs) for segs in texts])
        if self._segments is None:
            tok = getattr(getattr(r, "text_encoder", None), "tokenizer", None)
            self._segments = SegmentEncoder(r.text_features, tok, self.cache_size)
        return np.asarray(r.project_text(self._segments.features(texts)), np.float32)

    def scores_composed(self, texts: list[list[str]]) -> np.ndarray:
        """(len(texts), S) scores of texts given as lists of segments (see `embed_composed`)."""
        return self.score_embeddings(self.embed_composed(texts))

    def score_embeddings(self, text_emb: np.ndarray) -> np.ndarray:
        """(B, S) retriever scores of text embeddings against every gallery scene (with an approximate index:
        against each text's `candidates` nearest scenes, -inf elsewhere)."""
        (cols,), (sims,) = self.candidate_scores([text_emb])
        if cols is None:
            return sims
        out = np.full((len(sims), len(self.ids)), -np.inf, np.float32)
        out[:, cols] = sims
        return out

    def candidate_scores(self, text_embs: list[np.ndarray]) -> tuple[list, list[np.ndarray]]:
        """`score_embeddings` of several (B_i, d) arrays over the columns that can be non-zero: returns
        ([cols] * n, [sims_i]) with sims_i (B_i, C) the scores against gallery columns `cols` (C sorted
        indices). Exact galleries: cols is None (every scene, C = S). With an approximate index the arrays
        share one cols, the union of all their texts' candidates, and a text scores -inf on the columns that
        are not its own candidates: softmaxes over C equal those over the whole gallery. A late-interaction
        gallery's candidates are the scenes of each text's best objects (until `candidates` scenes), each scored
        as the best of ALL its objects."""
        text_embs = [np.asarray(e, np.float32) for e in text_embs]
        approximate = self.object_index if self.late_interaction else self.index
        if approximate is None or not sum(len(e) for e in text_embs):
            return [None] * len(text_embs), [self.exact_scores(e) for e in text_embs]
        emb = np.concatenate(text_embs)
        if self.late_interaction:
            rows, _ = self.object_index.search_scenes(emb, self.candidates)
        else:
            rows, _ = self.index.search_rows(emb, self.candidates)
        cols = np.unique(rows[rows >= 0])
        sub = self.exact_scores(emb, cols)
        sims = np.full_like(sub, -np.inf)
        for i, found in enumerate(rows):
            at = np.searchsorted(cols, found[found >= 0])
            sims[i, at] = sub[i, at]
        splits = np.cumsum([len(e) for e in text_embs])[:-1]
        return [cols] * len(text_embs), np.split(sims, splits)

    def exact_scores(self, text_emb: np.ndarray, cols: Optional[np.ndarray] = None) -> np.ndarray:
        """(B, C) exact scores against the gallery columns `cols` (default every scene)."""
        if self.late_interaction:  # score(t, scene) = max over the scene's objects o of t·o
            return self.objects.scores(text_emb, cols)
        scene_emb = self.embeddings if cols is None else self.embeddings[cols]
        return np.asarray(self.retriever.score(text_emb, scene_emb), np.float32)

    @property
    def knowledge(self):
        """What the system reads off the scenes' 3D data (`ideal.dialog.knowledge.SceneKnowledge`), built once."""
        if self._knowledge is None:
            from ..dialog.knowledge import SceneKnowledge

            self._knowledge = self._load_knowledge() if self._load_knowledge else SceneKnowledge(self.scenes)
            if self._knowledge.ids != self.ids:
                raise ValueError("the scene knowledge's rows are not the gallery's scenes in order")
        return self._knowledge

    def density(self, k: int, eps: float) -> np.ndarray:
        """ρ(v_i) of every scene (the router's density compensation), computed once per (k, ε)."""
        from ..dialog.router import density_from_distance, mean_knn_distance

        key = (k, eps)
        if key not in self._density:
            if self._knn is not None and self._knn[0] == k:
                dist = self._knn[1]
            else:
                dist = mean_knn_distance(self.embeddings, k, self.index)
            self._density[key] = density_from_distance(dist, eps)
        return self._density[key]

    def scores(self, texts: list[str]) -> np.ndarray:
        """(len(texts), S) retriever scores against every gallery scene (see `score_embeddings`)."""
        return self.score_embeddings(self.embed(texts))
