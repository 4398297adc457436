"""The scene index: faiss top-k search by inner product, returning scene ids; and the object index, faiss over
the object vectors of a late-interaction gallery (`ideal.retrieval.objects`), returning the scenes of the best
objects.

Scores are plain inner products: callers store L2-normalised embeddings (the retrievers do), so they are
cosine similarities; the index does not normalise anything itself.

Kinds:
- "flat": exact (IndexFlatIP). Right for galleries up to tens of thousands of scenes.
- "ivf":  IndexIVFFlat: k-means into `nlist` lists, search scans the `nprobe` lists nearest the query.
- "hnsw": IndexHNSWFlat: a proximity graph; `ef_search` trades speed for recall.
- "auto": flat below `ivf_threshold` scenes, else ivf (the object index counts scenes too, not object rows, so
  both indexes of a gallery are approximate exactly when `ideal.config.IndexConfig` says the gallery is).
With faiss-gpu and a visible GPU, flat and ivf indexes move to the GPU (use_gpu="auto"); nothing requires
one, and faiss has no GPU HNSW.

On disk an index is two files: PATH, written by `faiss.write_index`, and PATH.meta.json with the scene
ids, the kind and the parameters (search-time ones such as nprobe are not in the faiss file); an object index's
metadata also holds each scene's number of object rows.
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
OBJECT_FORMAT = "ideal.ObjectIndex/1"
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


def _build_faiss(v: np.ndarray, kind: str, nlist: Optional[int], nprobe: Optional[int], hnsw_m: int,
                 ef_search: Optional[int], use_gpu: UseGpu, seed: int, train_size: Optional[int],
                 ef_construction: int) -> tuple[faiss.Index, dict, bool]:
    """(faiss index holding the rows of `v`, params, on_gpu) for a concrete kind (see `SceneIndex.build`)."""
    n, d = v.shape
    if d < 1:
        raise ValueError("vectors have dimension 0")
    gpu = _want_gpu(use_gpu)
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
        params = {"nlist": nlist, "nprobe": int(nprobe or max(1, nlist // 16)), "train_size": m, "seed": seed}
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
    return index, params, on_gpu


class _FaissRows:
    """A faiss inner-product index over rows 0..n-1: its kind, parameters, search and files (the part the scene
    and object indexes share)."""

    def __init__(self, index: faiss.Index, kind: str, params: dict, on_gpu: bool = False):
        self.index, self.kind, self.params, self.on_gpu = index, kind, dict(params), on_gpu

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

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the top-k rows of checked queries `q`, k <= the row count; missing: -1 and -inf."""
        if self.on_gpu and k > GPU_MAX_K:
            raise ValueError(f"faiss-gpu searches at most k={GPU_MAX_K}, got k={k}")
        if k == 0 or len(q) == 0:
            return np.zeros((len(q), k), np.int64), np.zeros((len(q), k), np.float32)
        scores, rows = self.index.search(q, k)
        scores[rows < 0] = -np.inf  # faiss pads missing results with row -1 and score -FLT_MAX
        return rows.astype(np.int64, copy=False), scores

    def _queries(self, queries) -> np.ndarray:
        q = _as_matrix(queries, "queries")
        if q.shape[1] != self.dim:
            raise ValueError(f"queries have dimension {q.shape[1]}, the index has {self.dim}")
        return q

    def _save(self, path: str | Path, meta: dict) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        faiss.write_index(faiss.index_gpu_to_cpu(self.index) if self.on_gpu else self.index, str(path))
        meta = {"kind": self.kind, "dim": self.dim, "params": self.params, **meta}
        Path(f"{path}{META_SUFFIX}").write_text(json.dumps(meta))

    @staticmethod
    def _load(path: Path, use_gpu: UseGpu, rows_of, check_meta=None) -> tuple[faiss.Index, dict, bool]:
        """(faiss index, metadata, on_gpu) of `_save`'s two files. `rows_of(meta)`: (the number of rows the metadata
        describes, its field, what a row is); `check_meta(meta, meta_path)` checks the rest of it. FormatError names
        the file at fault."""
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
        kind = meta["kind"]
        if kind not in KINDS[1:]:
            raise FormatError(meta_path, "kind", f"expected one of {KINDS[1:]}, got {kind!r}")
        try:
            meta["ids"] = _check_ids(meta["ids"], len(meta["ids"]))
        except ValueError as e:
            raise FormatError(meta_path, "ids", str(e)) from None
        if check_meta:
            check_meta(meta, meta_path)
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as e:
            raise FormatError(path, "", f"not a faiss index ({str(e).strip().splitlines()[-1]})") from None
        expected = {"flat": faiss.IndexFlat, "ivf": faiss.IndexIVF, "hnsw": faiss.IndexHNSW}[kind]
        if not isinstance(index, expected):
            raise FormatError(path, "", f"holds a {type(index).__name__}, its metadata says kind {kind!r}")
        rows, where, noun = rows_of(meta)
        if index.ntotal != rows:
            raise FormatError(meta_path, where, f"{rows} {noun} for an index of {index.ntotal} vectors")
        if kind == "ivf":
            meta["params"]["nlist"] = int(index.nlist)  # the file's truth, whatever the metadata says
        on_gpu = _want_gpu(use_gpu) and kind != "hnsw"
        if on_gpu:
            index = faiss.index_cpu_to_all_gpus(index)
        return index, meta, on_gpu

    def _tuned(self):
        self.set_search_params(nprobe=self.params.get("nprobe"), ef_search=self.params.get("ef_search"))
        return self


class SceneIndex(_FaissRows):
    """Scene ids and the faiss index over their embeddings; row i of the index is scene `ids[i]`.

    Build with `SceneIndex.build` (or `from_parquet`), query with `search`, persist with `save`/`load`.
    `kind` is "flat", "ivf" or "hnsw"; `params` holds what built and tunes it (nlist, nprobe, m, ...).
    """

    def __init__(self, index: faiss.Index, ids: list[str], kind: str, params: dict, on_gpu: bool = False):
        super().__init__(index, kind, params, on_gpu)
        self.ids = list(ids)

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
        ids = _check_ids(ids, len(v))
        if kind == "auto":
            kind = "flat" if len(v) < ivf_threshold else "ivf"
        index, params, on_gpu = _build_faiss(v, kind, nlist, nprobe, hnsw_m, ef_search, use_gpu, seed, train_size,
                                             ef_construction)
        return cls(index, ids, kind, params, on_gpu)._tuned()

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
        q = self._queries(queries)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        return self._search(q, min(int(k), len(self)))

    def save(self, path: str | Path) -> None:
        """Write PATH (the faiss index, copied off the GPU if needed) and PATH.meta.json (ids, kind, params)."""
        self._save(path, {"format": FORMAT, "ids": self.ids})

    @classmethod
    def load(cls, path: str | Path, use_gpu: UseGpu = "auto") -> "SceneIndex":
        """Read an index written by `save`. FormatError names the file at fault and what is wrong with it."""
        index, meta, on_gpu = cls._load(Path(path), use_gpu, lambda m: (len(m["ids"]), "ids", "ids"))
        return cls(index, meta["ids"], meta["kind"], meta["params"], on_gpu)._tuned()


class ObjectIndex(_FaissRows):
    """The faiss index over a late-interaction gallery's object vectors (`ObjectVectors`, scene i owning rows
    offsets[i]:offsets[i+1]), searched for scenes: a scene scores as the best of its objects the search finds.

    Build with `ObjectIndex.build`, query with `search_scenes`, persist with `save`/`load` (the scene ids and the
    per-scene row counts go to the metadata file).
    """

    def __init__(self, index: faiss.Index, ids: list[str], offsets, kind: str, params: dict, on_gpu: bool = False):
        super().__init__(index, kind, params, on_gpu)
        self.ids = list(ids)
        self.offsets = np.asarray(offsets, np.int64)
        self.scene_of_row = np.repeat(np.arange(len(self.ids), dtype=np.int64), np.diff(self.offsets))

    @classmethod
    def build(cls, ids: list[str], objects, kind: str = "auto", ivf_threshold: int = 50_000,
              nlist: Optional[int] = None, nprobe: Optional[int] = None, hnsw_m: int = 32,
              ef_search: Optional[int] = None, use_gpu: UseGpu = "auto", seed: int = 0,
              train_size: Optional[int] = None, ef_construction: int = 40) -> "ObjectIndex":
        """Index the rows of `objects` (an ObjectVectors of the scenes `ids`, in order). kind "auto" is flat below
        `ivf_threshold` scenes (not object rows), else ivf with `default_nlist(object rows)` lists; the other
        parameters as `SceneIndex.build`'s, over object rows."""
        if kind not in KINDS:
            raise ValueError(f"index kind must be one of {KINDS}, got {kind!r}")
        if len(ids) != len(objects):
            raise ValueError(f"{len(ids)} ids for the object vectors of {len(objects)} scenes")
        ids = _check_ids(ids, len(objects))
        v = _as_matrix(objects.vectors, "object vectors")
        if kind == "auto":
            kind = "flat" if len(ids) < ivf_threshold else "ivf"
        index, params, on_gpu = _build_faiss(v, kind, nlist, nprobe, hnsw_m, ef_search, use_gpu, seed, train_size,
                                             ef_construction)
        return cls(index, ids, objects.offsets, kind, params, on_gpu)._tuned()

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        where = ", gpu" if self.on_gpu else ""
        return (f"ObjectIndex({self.kind}, {len(self)} scenes, {int(self.offsets[-1])} objects, d={self.dim}, "
                f"{self.params}{where})")

    def search_scenes(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The top-k scenes of each row of (m, d) `queries`, best first, as gallery rows: (rows, scores), two
        (m, k') arrays with k' = min(k, len(self)). A scene's score is the best inner product among its objects
        the search returned (with flat search, or ivf scanning every list, exactly max over its objects). The
        search gathers object hits until k distinct scenes are found or the index has no more for that query;
        a scene not found is row -1 with score -inf."""
        q = self._queries(queries)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        k = min(int(k), len(self))
        n_rows = int(self.offsets[-1])
        out_rows = np.full((len(q), k), -1, np.int64)
        out_scores = np.full((len(q), k), -np.inf, np.float32)
        todo = np.arange(len(q))
        want = min(n_rows, 2 * k)  # object hits per query this pass; doubled for the queries still short
        while len(todo) and k:
            if self.on_gpu:
                want = min(want, GPU_MAX_K)
            rows, scores = self._search(q[todo], want)
            short = []
            for i, row, score in zip(todo, rows, scores):
                found = row >= 0
                scenes = self.scene_of_row[row[found]]
                _, first = np.unique(scenes, return_index=True)  # hits are best first: a scene's first is its max
                first = np.sort(first)[:k]
                out_rows[i, :len(first)] = scenes[first]
                out_scores[i, :len(first)] = score[found][first]
                exhausted = found.sum() < want or want >= n_rows or (self.on_gpu and want >= GPU_MAX_K)
                if len(first) < k and not exhausted:
                    short.append(i)
            todo = np.asarray(short, np.int64)
            want = min(n_rows, 2 * want)
        return out_rows, out_scores

    def save(self, path: str | Path) -> None:
        """Write PATH (the faiss index) and PATH.meta.json (scene ids, object rows per scene, kind, params)."""
        self._save(path, {"format": OBJECT_FORMAT, "ids": self.ids,
                          "objects_per_scene": np.diff(self.offsets).tolist()})

    @classmethod
    def load(cls, path: str | Path, use_gpu: UseGpu = "auto") -> "ObjectIndex":
        """Read an index written by `save`. FormatError names the file at fault and what is wrong with it."""
        def check(meta, meta_path):
            counts = meta.get("objects_per_scene")
            if not isinstance(counts, list) or len(counts) != len(meta["ids"]) \
                    or not all(isinstance(c, int) and c >= 1 for c in counts):
                raise FormatError(meta_path, "objects_per_scene", f"expected one count >= 1 for each of the "
                                  f"{len(meta['ids'])} scenes")

        index, meta, on_gpu = cls._load(Path(path), use_gpu, lambda m: (sum(m["objects_per_scene"]), "objects_per_scene", "object rows"), check)
        offsets = np.concatenate([[0], np.cumsum(meta["objects_per_scene"], dtype=np.int64)])
        return cls(index, meta["ids"], offsets, meta["kind"], meta["params"], on_gpu)._tuned()
