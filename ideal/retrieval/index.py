"""The scene index: faiss top-k search by inner product, returning scene ids.

Scores are plain inner products: callers store L2-normalised embeddings (the retrievers do), so they are
cosine similarities; the index does not normalise anything itself.

Kinds:
- "flat": exact (IndexFlatIP). Right for galleries up to tens of thousands of scenes.
- "ivf":  IndexIVFFlat: k-means into `nlist` lists, search scans the `nprobe` lists nearest the query.
- "hnsw": IndexHNSWFlat: a proximity graph; `ef_search` trades speed for recall.
- "auto": flat below `ivf_threshold` scenes, else ivf.
With faiss-gpu and a visible GPU, flat and ivf indexes move to the GPU (use_gpu="auto"); nothing requires
one, and faiss has no GPU HNSW.

On disk an index is two files: PATH, written by `faiss.write_index`, and PATH.meta.json with the scene
ids, the kind and the parameters (search-time ones such as nprobe are not in the faiss file).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional, Union

import faiss
import numpy as np

from ..scenes.types import FormatError
from .embeddings import read_embeddings

KINDS = ("auto", "flat", "ivf", "hnsw")
META_SUFFIX = ".meta.json"
FORMAT = "ideal.SceneIndex/1"
TRAIN_PER_LIST = 64  # default k-means sample per IVF list
GPU_MAX_K = 2048  # faiss-gpu's largest k for flat and IVF search

UseGpu = Union[bool, str]  # True, False or "auto"


def default_nlist(n: int) -> int:
    """IVF list count for n vectors: about 4·sqrt(n), keeping >= 39 training points per list (faiss's floor)."""
    return max(1, min(round(4 * math.sqrt(n)), n // 39))


def gpu_available() -> bool:
    """True when this faiss build has GPU support and sees at least one GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def _want_gpu(use_gpu: UseGpu) -> bool:
    if use_gpu not in (True, False, "auto"):
        raise ValueError(f"use_gpu must be True, False or 'auto', got {use_gpu!r}")
    if use_gpu is True and not gpu_available():
        raise ValueError("use_gpu=True, but this faiss has no GPU support or sees no GPU")
    return use_gpu is True or (use_gpu == "auto" and gpu_available())


def _as_matrix(x, what: str) -> np.ndarray:
    """C-contiguous float32 (n, d) copy/view of `x`, with the problem named on bad input."""
    try:
        v = np.ascontiguousarray(x, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} must be a numeric array: {e}") from None
    if v.ndim != 2:
        hint = " (a single vector is the batch of one: x[None, :])" if v.ndim == 1 else ""
        raise ValueError(f"{what} must be a 2-D array (n, d), got shape {v.shape}{hint}")
    bad = np.flatnonzero(~np.isfinite(v).all(axis=1))
    if len(bad):
        raise ValueError(f"{what}: row {int(bad[0])} has non-finite values")
    return v


def _check_ids(ids, n: int) -> list[str]:
    ids = list(ids)
    if len(ids) != n:
        raise ValueError(f"{len(ids)} ids for {n} vectors")
    first: dict[str, int] = {}
    for i, sid in enumerate(ids):
        if not isinstance(sid, str):
            raise ValueError(f"ids[{i}] is {type(sid).__name__}, scene ids must be str")
        if sid in first:
            raise ValueError(f"duplicate scene id {sid!r} at positions {first[sid]} and {i}")
        first[sid] = i
    return ids


class SceneIndex:
    """Scene ids and the faiss index over their embeddings; row i of the index is scene `ids[i]`.

    Build with `SceneIndex.build` (or `from_parquet`), query with `search`, persist with `save`/`load`.
    `kind` is "flat", "ivf" or "hnsw"; `params` holds what built and tunes it (nlist, nprobe, m, ...).
    """

    def __init__(self, index: faiss.Index, ids: list[str], kind: str, params: dict, on_gpu: bool = False):
        self.index, self.ids, self.kind, self.params, self.on_gpu = index, list(ids), kind, dict(params), on_gpu

    @classmethod
    def build(cls, ids: list[str], vectors, kind: str = "auto", ivf_threshold: int = 50_000,
              nlist: Optional[int] = None, nprobe: Optional[int] = None, hnsw_m: int = 32,
              ef_search: Optional[int] = None, use_gpu: UseGpu = "auto", seed: int = 0,
              train_size: Optional[int] = None, ef_construction: int = 40) -> "SceneIndex":
        """Index (n, d) `vectors`, row i the embedding of scene `ids[i]` (unique strings).

        ivf: `nlist` lists (default `default_nlist(n)`), k-means trained on `train_size` vectors drawn with
        `seed` (default 64 per list: faiss asks for >= 39, more barely moves the centroids but costs k-means
        time); `nprobe` defaults to nlist/16.
        hnsw: `hnsw_m` links per node, `ef_construction` and `ef_search` (default 64) beam widths.
        Raises ValueError for bad shapes, non-finite values, repeated ids and impossible parameters.
        """
        if kind not in KINDS:
            raise ValueError(f"index kind must be one of {KINDS}, got {kind!r}")
        v = _as_matrix(vectors, "vectors")
        n, d = v.shape
        if d < 1:
            raise ValueError("vectors have dimension 0")
        ids = _check_ids(ids, n)
        gpu = _want_gpu(use_gpu)
        if kind == "auto":
            kind = "flat" if n < ivf_threshold else "ivf"

        if kind == "flat":
            index, params = faiss.IndexFlatIP(d), {}
        elif kind == "ivf":
            nlist = int(nlist or default_nlist(n))
            if not 1 <= nlist <= n:
                raise ValueError(f"ivf needs 1 <= nlist <= n vectors, got nlist={nlist} for n={n}")
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            m = min(n, int(train_size or TRAIN_PER_LIST * nlist))
            if m < nlist:
                raise ValueError(f"train_size={m} is below nlist={nlist}")
            sample = v if m == n else v[np.sort(np.random.default_rng(seed).choice(n, m, replace=False))]
            index.cp.seed = seed
            index.train(sample)
            del sample
            params = {"nlist": nlist, "nprobe": int(nprobe or max(1, nlist // 16)),
                      "train_size": m, "seed": seed}
        else:
            if n == 0:
                raise ValueError("hnsw needs at least one vector")
            index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
            params = {"m": hnsw_m, "ef_construction": ef_construction, "ef_search": int(ef_search or 64)}

        on_gpu = gpu and kind != "hnsw"
        if on_gpu:  # k-means ran on the CPU so that every GPU replica holds the same centroids
            index = faiss.index_cpu_to_all_gpus(index)
        index.add(v)
        out = cls(index, ids, kind, params, on_gpu)
        out.set_search_params(nprobe=params.get("nprobe"), ef_search=params.get("ef_search"))
        return out

    @classmethod
    def from_parquet(cls, path: str | Path, **build_kw) -> "SceneIndex":
        """Build from an embeddings parquet (see `ideal.retrieval.embeddings`); `build_kw` go to `build`."""
        ids, vectors = read_embeddings(path)
        return cls.build(ids, vectors, **build_kw)

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        where = ", gpu" if self.on_gpu else ""
        return f"SceneIndex({self.kind}, {len(self)} scenes, d={self.dim}, {self.params}{where})"

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def set_search_params(self, nprobe: Optional[int] = None, ef_search: Optional[int] = None) -> None:
        """Tune search without rebuilding: `nprobe` for ivf (1..nlist), `ef_search` for hnsw."""
        space = faiss.GpuParameterSpace() if self.on_gpu else faiss.ParameterSpace()
        if nprobe is not None:
            if self.kind != "ivf" or not 1 <= nprobe <= self.params["nlist"]:
                raise ValueError(f"nprobe applies to ivf, 1..nlist; got nprobe={nprobe} for {self!r}")
            space.set_index_parameter(self.index, "nprobe", int(nprobe))
            self.params["nprobe"] = int(nprobe)
        if ef_search is not None:
            if self.kind != "hnsw" or ef_search < 1:
                raise ValueError(f"ef_search applies to hnsw, >= 1; got ef_search={ef_search} for {self!r}")
            space.set_index_parameter(self.index, "efSearch", int(ef_search))
            self.params["ef_search"] = int(ef_search)

    def search(self, queries, k: int) -> tuple[list[list[str]], np.ndarray]:
        """Top-k scenes for each row of (m, d) `queries`, best first.

        Returns (ids, scores): m lists of scene ids, and an (m, k') float32 array of inner products with
        k' = min(k, len(self)). ivf and hnsw may find fewer than k' scenes for a query; that query's id
        list is then shorter and its missing scores are -inf.
        """
        rows, scores = self.search_rows(queries, k)
        ids = self.ids
        return [[ids[j] for j in row if j >= 0] for row in rows.tolist()], scores

    def search_rows(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """`search` as index rows: (rows, scores), two (m, k') arrays, row i of the index being scene `ids[i]`;
        a scene not found is row -1 with score -inf."""
        q = _as_matrix(queries, "queries")
        if q.shape[1] != self.dim:
            raise ValueError(f"queries have dimension {q.shape[1]}, the index has {self.dim}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        k = min(int(k), len(self))
        if self.on_gpu and k > GPU_MAX_K:
            raise ValueError(f"faiss-gpu searches at most k={GPU_MAX_K}, got k={k}")
        if k == 0 or len(q) == 0:
            return np.zeros((len(q), k), np.int64), np.zeros((len(q), k), np.float32)
        scores, rows = self.index.search(q, k)
        scores[rows < 0] = -np.inf  # faiss pads missing results with row -1 and score -FLT_MAX
        return rows.astype(np.int64, copy=False), scores

    def save(self, path: str | Path) -> None:
        """Write PATH (the faiss index, copied off the GPU if needed) and PATH.meta.json (ids, kind, params)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        faiss.write_index(faiss.index_gpu_to_cpu(self.index) if self.on_gpu else self.index, str(path))
        meta = {"format": FORMAT, "kind": self.kind, "dim": self.dim, "params": self.params, "ids": self.ids}
        Path(f"{path}{META_SUFFIX}").write_text(json.dumps(meta))

    @classmethod
    def load(cls, path: str | Path, use_gpu: UseGpu = "auto") -> "SceneIndex":
        """Read an index written by `save`. FormatError names the file at fault and what is wrong with it."""
        path = Path(path)
        meta_path = Path(f"{path}{META_SUFFIX}")
        for p in (path, meta_path):
            if not p.is_file():
                raise FormatError(p, "", "missing index file" if p == path else "missing index metadata file")
        try:
            meta = json.loads(meta_path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FormatError(meta_path, "", f"not JSON ({e})") from None
        for key, typ in (("kind", str), ("params", dict), ("ids", list)):
            if not isinstance(meta, dict) or not isinstance(meta.get(key), typ):
                raise FormatError(meta_path, key, f"missing or not a {typ.__name__}")
        kind, params, ids = meta["kind"], meta["params"], meta["ids"]
        if kind not in KINDS[1:]:
            raise FormatError(meta_path, "kind", f"expected one of {KINDS[1:]}, got {kind!r}")
        try:
            ids = _check_ids(ids, len(ids))
        except ValueError as e:
            raise FormatError(meta_path, "ids", str(e)) from None
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as e:
            raise FormatError(path, "", f"not a faiss index ({str(e).strip().splitlines()[-1]})") from None
        expected = {"flat": faiss.IndexFlat, "ivf": faiss.IndexIVF, "hnsw": faiss.IndexHNSW}[kind]
        if not isinstance(index, expected):
            raise FormatError(path, "", f"holds a {type(index).__name__}, its metadata says kind {kind!r}")
        if index.ntotal != len(ids):
            raise FormatError(meta_path, "ids", f"{len(ids)} ids for an index of {index.ntotal} vectors")
        if kind == "ivf":
            params["nlist"] = int(index.nlist)  # the file's truth, whatever the metadata says
        on_gpu = _want_gpu(use_gpu) and kind != "hnsw"
        if on_gpu:
            index = faiss.index_cpu_to_all_gpus(index)
        out = cls(index, ids, kind, params, on_gpu)
        out.set_search_params(nprobe=params.get("nprobe"), ef_search=params.get("ef_search"))
        return out
