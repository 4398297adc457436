"""The scene index: faiss inner-product search over L2-normalised scene embeddings.

Flat (exact) for small galleries; IVF or HNSW above `ivf_threshold` scenes. On a machine with GPUs and
faiss-gpu, flat and IVF indexes are moved to the GPU; nothing requires one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import faiss
import numpy as np

from ..scenes.types import FormatError
from .embeddings import read_embeddings

KINDS = ("flat", "ivf", "hnsw", "auto")


def _gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def _check_vectors(vectors, what: str) -> np.ndarray:
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (n, d), got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"{what}: row {int(np.flatnonzero(~np.isfinite(v).all(1))[0])} has non-finite values")
    return v


class SceneIndex:
    """Scene ids + a faiss index. `search` returns ids and inner-product scores, best first."""

    def __init__(self, index, ids: list[str], kind: str, params: dict):
        self.index, self.ids, self.kind, self.params = index, list(ids), kind, params

    @classmethod
    def build(cls, ids: list[str], vectors, kind: str = "auto", ivf_threshold: int = 50_000,
              nlist: Optional[int] = None, nprobe: Optional[int] = None, hnsw_m: int = 32,
              ef_search: Optional[int] = None, use_gpu="auto", seed: int = 0) -> "SceneIndex":
        if kind not in KINDS:
            raise ValueError(f"index kind must be one of {KINDS}, got {kind!r}")
        v = _check_vectors(vectors, "vectors")
        if len(ids) != len(v):
            raise ValueError(f"{len(ids)} ids for {len(v)} vectors")
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise ValueError(f"duplicate scene id {dup!r}")
        n, d = v.shape
        if kind == "auto":
            kind = "flat" if n < ivf_threshold else "ivf"
        params: dict = {}
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif kind == "ivf":
            nlist = int(nlist or max(1, min(n // 39, int(4 * np.sqrt(n)))))  # faiss wants ≥39 points per list
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            sample = v if n <= 256 * nlist else v[np.random.default_rng(seed).choice(n, 256 * nlist, replace=False)]
            index.train(sample)
            index.nprobe = int(nprobe or max(1, nlist // 16))
            params = {"nlist": nlist, "nprobe": index.nprobe}
        else:
            index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = int(ef_search or 64)
            params = {"m": hnsw_m, "ef_search": index.hnsw.efSearch}
        if kind != "hnsw" and (use_gpu is True or (use_gpu == "auto" and _gpu_available())):
            index = faiss.index_cpu_to_all_gpus(index)
            params["gpu"] = True
        index.add(v)
        return cls(index, ids, kind, params)

    @classmethod
    def from_parquet(cls, path: str | Path, **build_kw) -> "SceneIndex":
        ids, vectors = read_embeddings(path)
        return cls.build(ids, vectors, **build_kw)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return self.index.d

    def set_nprobe(self, nprobe: int) -> None:
        faiss.extract_index_ivf(self.index).nprobe = nprobe
        self.params["nprobe"] = nprobe

    def search(self, queries, k: int) -> tuple[list[list[str]], np.ndarray]:
        """Top-k scene ids per query (k clipped to the gallery size) and their scores."""
        q = _check_vectors(queries, "queries")
        if q.shape[1] != self.dim:
            raise ValueError(f"queries have dimension {q.shape[1]}, the index has {self.dim}")
        k = min(int(k), len(self.ids))
        if k < 1:
            return [[] for _ in q], np.zeros((len(q), 0), np.float32)
        scores, idx = self.index.search(q, k)
        # IVF/HNSW may find fewer than k: faiss pads with -1.
        return [[self.ids[j] for j in row if j >= 0] for row in idx], scores

    def save(self, path: str | Path) -> None:
        """PATH (faiss file) + PATH.meta.json (ids, kind, params)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        index = faiss.index_gpu_to_cpu(self.index) if self.params.get("gpu") else self.index
        faiss.write_index(index, str(path))
        meta = {"kind": self.kind, "params": {k: v for k, v in self.params.items() if k != "gpu"}, "ids": self.ids}
        Path(f"{path}.meta.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, path: str | Path) -> "SceneIndex":
        path = Path(path)
        meta_path = Path(f"{path}.meta.json")
        if not path.is_file() or not meta_path.is_file():
            raise FormatError(path, "", f"missing index file or its {meta_path.name}")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as e:
            raise FormatError(path, "", f"not a faiss index: {str(e).splitlines()[0]}") from None
        meta = json.loads(meta_path.read_text())
        if len(meta["ids"]) != index.ntotal:
            raise FormatError(meta_path, "ids", f"{len(meta['ids'])} ids for an index of {index.ntotal} vectors")
        if meta["kind"] == "ivf":
            faiss.extract_index_ivf(index).nprobe = meta["params"]["nprobe"]
        elif meta["kind"] == "hnsw":  # a search-time setting, not stored in the faiss file
            index.hnsw.efSearch = meta["params"]["ef_search"]
        return cls(index, meta["ids"], meta["kind"], meta["params"])
