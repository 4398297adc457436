"""Simulated-user evaluation of the dialog loop: every query becomes a dialog with a simulated user who
knows the target scene's memory; after each round the target's rank is recorded.

Work is cut into shards (a method x a slice of the queries) that are pure functions of an `EvalSpec`, so a
job can run them anywhere (a Ray task here, `ray job submit` on a cluster), store each shard's result, and
skip finished shards when resubmitted. `EvalContext` holds the models a worker builds once.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from . import build, checkpoints
from .config import config_from_dict
from .io import atomic_write
from .dialog.methods import ABLATIONS, METHODS, method_config
from .dialog.round import run_round, start
from .metrics import round_metrics, target_ranks
from .scenes.types import Description

# methods that are a retriever alone, evaluated on the initial query (round 0)
STATIC = {"static": "base", "bag-of-labels": "labels", "static (pooled)": "pooled"}
# plug-and-play (Table 2): IDeal wrapped around another retriever (no IAT)
PLUG = {"ideal (pooled)": "pooled", "ideal (bag-of-labels)": "labels"}
# `ideal` and its ablations run on the IAT-tuned retriever when one is given; the baselines and `static` keep
# the base retriever, and the IAT ablations name the checkpoint they use instead.
IAT_WEIGHTS = {"w/o IAT": "base", "w/o L_dis": "iat_no_ldis", "w/o L_div": "iat_no_ldiv"}
# the checkpoint an IAT ablation needs to mean anything ("w/o IAT" is only an ablation when IAT is on)
IAT_REQUIRES = {"w/o IAT": "iat", "w/o L_dis": "iat_no_ldis", "w/o L_div": "iat_no_ldiv"}
BASELINES = ("chatir", "rewrite", "merlin", "ir", "sum")
ALL_METHODS = tuple(STATIC) + tuple(m for m in METHODS if m != "static") + tuple(PLUG)


def queries(descriptions: list[Description], sources=("scanrefer",), limit: Optional[int] = None
            ) -> list[Description]:
    """The evaluation descriptions: the chosen sources, in file order, the first `limit` of them."""
    picked = [d for d in descriptions if d.source in sources] or list(descriptions)
    return picked[:limit] if limit else picked


@dataclass(frozen=True)
class EvalSpec:
    """Everything a worker needs to rebuild the evaluation (JSON-able).

    gallery: an encoded gallery directory (`ideal.store`); query_files: {"scanrefer": path, "nr3d": .., "sr3d": ..}
    whose descriptions (of the gallery's scenes) are the queries, else the gallery's own descriptions.
    weights / iat_weights: the checkpoints of the base and IAT retrievers; the gallery holds their encodings."""

    gallery: str
    query_files: dict = field(default_factory=dict)
    sources: tuple = ("scanrefer",)
    limit: Optional[int] = None
    weights: str = str(checkpoints.DEFAULT_WEIGHTS)
    iat_weights: dict = field(default_factory=dict)  # {"iat": dir, "iat_no_ldis": dir, "iat_no_ldiv": dir}
    config: dict = field(default_factory=dict)
    # where dialog.llm is served for this run (the eval job's shared engine): {"url": base URL, "model": model id};
    # how the model is reached, not what it says, so not part of `key`
    llm_server: Optional[dict] = None

    def key(self) -> str:
        """What makes the evaluation's results: the spec with the config sections a dialog reads (training's and
        IAT's are jobs/train.py's; the weights are named by folder), so an output folder outlives unrelated knobs."""
        spec = dataclasses.asdict(self)
        spec.pop("llm_server")
        spec["config"] = {k: v for k, v in spec["config"].items() if k not in _NOT_EVALUATED}
        return json.dumps(spec, sort_keys=True, default=str)


_NOT_EVALUATED = ("train", "iat")  # config sections no evaluation reads


class EvalContext:
    """Dataset, retrievers, galleries and roles for one EvalSpec, read from the gallery directory (built lazily,
    reused by shards)."""

    def __init__(self, spec: EvalSpec):
        from .scenes.dataset import attach_descriptions, read_descriptions

        self.spec, self.cfg = spec, config_from_dict(spec.config)
        self.store = build.open_gallery(spec.gallery)
        descs = None
        if spec.query_files:
            scenes = {s.scene_id: s for s in self.store.scenes()}
            descs = attach_descriptions(read_descriptions(**spec.query_files), scenes)
        self.ds = self.store.dataset(descs)
        self.descs = queries(self.ds.descriptions, spec.sources, spec.limit)
        if not self.descs:
            raise ValueError(f"no queries to evaluate in {spec.gallery} {spec.query_files or ''}")
        self._galleries: dict = {}
        self._parts: dict = {}

    @property
    def text(self):
        """The text encoder, loaded on first use (a job's driver reads only the data)."""
        return build.text_encoder(self.cfg.text_encoder)

    def parts(self, method: str):
        """(config, gallery, questioner, summariser, simulated user) of a dialog method, built once: their
        caches (sentence embeddings, scene knowledge) carry over from shard to shard."""
        if method not in self._parts:
            cfg = method_config("ideal" if method in PLUG else method, self.cfg.dialog)
            if self.spec.llm_server:  # the run's shared engine serves dialog.llm
                server = self.spec.llm_server
                cfg = dataclasses.replace(cfg, llm=server["url"], llm_model=server["model"],
                                          llm_timeout=server.get("timeout", cfg.llm_timeout))
            gallery = self.gallery(weights_for(method, self.spec))
            r = build.roles(cfg, gallery, self.ds.memories, embed=self.embed)
            self._parts[method] = (cfg, gallery, r.questioner, r.summariser, r.answerer)
        return self._parts[method]

    def embed(self, texts: list[str]):
        """The text encoder's backbone embeddings, each text encoded once per process: every method's simulated
        user reads the same memory sentences."""
        cache = _EMBEDDED.setdefault(id(self.text), {})
        todo = list(dict.fromkeys(t for t in texts if t not in cache))
        if todo:
            if len(cache) + len(todo) > 500_000:
                cache.clear()
            cache.update(zip(todo, self.text.embed_backbone(todo)))
        return np.stack([cache[t] for t in texts]) if texts else np.zeros((0, self.text.dim), np.float32)

    def checkpoint(self, retriever: str) -> str:
        """The checkpoint of "base", "labels", "pooled" (shipped) or an IAT checkpoint key."""
        fixed = {"base": self.spec.weights, "labels": "labels", "pooled": str(checkpoints.SHIPPED["pooled"])}
        return fixed.get(retriever) or self.spec.iat_weights[retriever]

    def check(self, methods: list[str]) -> None:
        """ValueError, saying how to add it, when the gallery lacks an encoding a method needs."""
        for m in methods:
            self.store.encoding_name(self.checkpoint(STATIC.get(m) or weights_for(m, self.spec)))

    def gallery(self, retriever: str):
        """The gallery under "base", "labels", "pooled" or an IAT checkpoint key, from its stored encoding."""
        if retriever not in self._galleries:
            ckpt = self.checkpoint(retriever)
            scenes = next(iter(self._galleries.values())).scenes if self._galleries else None
            self._galleries[retriever] = build.gallery(self.store, ckpt, self.text, self.cfg.index, scenes=scenes)
        return self._galleries[retriever]


_CONTEXTS: dict[str, EvalContext] = {}
_EMBEDDED: dict = {}  # id(text encoder) -> {text: backbone embedding}
MAX_CONTEXTS = 4  # a worker alternating between a few settings (memory, query set) keeps their caches


def context(spec: EvalSpec) -> EvalContext:
    """One context per spec per process (a Ray worker reuses it across shards)."""
    key = json.dumps([spec.key(), spec.llm_server], sort_keys=True)
    if key not in _CONTEXTS:
        if len(_CONTEXTS) >= MAX_CONTEXTS:
            _CONTEXTS.pop(next(iter(_CONTEXTS)))
        _CONTEXTS[key] = EvalContext(spec)
    return _CONTEXTS[key]


def iat_checkpoints(iat: Optional[str] = None, ablations: Optional[tuple] = None) -> dict[str, str]:
    """{"iat": .., "iat_no_ldis": .., "iat_no_ldiv": ..}: the IAT-tuned checkpoint (`iat`: a folder, default the
    shipped one, "none" for no IAT) and the two ablation ones (default shipped), those that exist."""
    if (iat or "").lower() == "none":
        return {}
    if iat and not checkpoints.is_checkpoint(iat):
        raise ValueError(f"--iat-weights {iat}: not a checkpoint folder (no model.safetensors)")
    s = checkpoints.SHIPPED
    found = {"iat": iat or s["iat"], "iat_no_ldis": ablations[0] if ablations else s["iat_no_ldis"],
             "iat_no_ldiv": ablations[1] if ablations else s["iat_no_ldiv"]}
    return {k: str(Path(v).resolve()) for k, v in found.items() if checkpoints.is_checkpoint(v)}


def weights_for(method: str, spec: EvalSpec) -> str:
    """Which retriever a method runs on: "base", "iat", "iat_no_ldis" or "iat_no_ldiv"."""
    if method in IAT_WEIGHTS:
        key = IAT_WEIGHTS[method]
        if key != "base" and key not in spec.iat_weights:
            raise ValueError(f"{method} needs the {key} checkpoint, which was not given")
        return key
    if method in PLUG:
        return PLUG[method]
    if method in STATIC or method in BASELINES or "iat" not in spec.iat_weights:
        return "base"
    return "iat"


def method_rounds(method: str, rounds: int) -> int:
    return 0 if method in STATIC else rounds


def run_shard(spec: EvalSpec, method: str, start_at: int, stop_at: int, rounds: int) -> dict:
    """Dialogs [start_at, stop_at) of the query list under `method`: target ranks per round and transcripts.

    Returns {"dialog_ids": [...], "ranks": (n, R+1) int list, "transcript": [row, ...]}, and for llm roles
    "llm": {role: {"calls", "parsed", "fallbacks"}}: conversations sent, outputs the model gave, outputs the
    grounded fallback gave; the questioner's also "repeats" and "retries" (questions the model asked again, and
    sent again), "dialogs" and "repeated_dialogs" (dialogs that asked a question twice).
    """
    ctx = context(spec)
    descs = ctx.descs[start_at:stop_at]
    if method in STATIC:
        gallery, cfg = ctx.gallery(STATIC[method]), ctx.cfg.dialog
        questioner = user = summariser = None
        r_max = 0
    else:
        cfg, gallery, questioner, summariser, user = ctx.parts(method)
        r_max = rounds
    writers = {"questioner": questioner, "answerer": getattr(user, "writer", None), "summariser": summariser}
    writers = {k: w for k, w in writers.items() if isinstance(getattr(w, "stats", None), dict)}
    before = {k: dict(w.stats) for k, w in writers.items()}
    targets = [gallery.index_of[d.scene_id] for d in descs]
    states = start([d.text for d in descs], [d.scene_id for d in descs], [d.desc_id for d in descs])
    ranks = np.zeros((len(descs), r_max + 1), np.int64)
    rows = []
    for r in range(r_max + 1):
        states = run_round(states, gallery, questioner, user, cfg, summariser, ask=r < r_max)
        ranks[:, r] = target_ranks(np.stack([st.scores for st in states]), targets)
        for st, rank in zip(states, ranks[:, r]):
            last = st.turns[-1] if r > 0 and st.turns else None
            rows.append({"method": method, "dialog_id": st.dialog_id, "target": st.target, "round": r,
                         "query": st.query if r == 0 else "", "question": last.question if last else "",
                         "answer": last.answer if last else "", "summary": st.summary,
                         "target_rank": int(rank) + 1, "top1": gallery.ids[int(np.argmax(st.scores))]})
    out = {"dialog_ids": [d.desc_id for d in descs], "ranks": ranks.tolist(), "transcript": rows}
    if writers:  # this shard's share of each llm role's counts (the roles live on across shards)
        out["llm"] = {k: {n: w.stats[n] - before[k].get(n, 0) for n in w.stats} for k, w in writers.items()}
        if "questioner" in out["llm"]:
            from .dialog.replies import repeated_dialogs

            out["llm"]["questioner"].update(dialogs=len(states), repeated_dialogs=repeated_dialogs(states))
    return out


def shard_plan(n_queries: int, methods: list[str], shard_size: int) -> list[tuple[str, int, int]]:
    """(method, start, stop) for every shard, methods in the given order."""
    if shard_size < 1:
        raise ValueError(f"shard size must be >= 1, got {shard_size}")
    return [(m, s, min(s + shard_size, n_queries)) for m in methods for s in range(0, n_queries, shard_size)]


def recall_per_round(ranks: np.ndarray) -> dict[str, dict]:
    """{round: {R@1, R@5, R@10, Rsum, Hits@10, BRI, success@K, rounds@K, mean rank, median rank}} from 0-based
    target ranks (n, R+1) (`ideal.metrics.round_metrics`)."""
    return round_metrics(ranks)


def check_methods(names: list[str]) -> list[str]:
    """Methods by name ("labels" is the bag-of-labels floor); unknown names are an error listing the known."""
    out = []
    for n in names:
        n = "bag-of-labels" if n == "labels" else n
        if n not in ALL_METHODS and n not in ABLATIONS:
            raise ValueError(f"unknown method {n!r}; methods: {', '.join(ALL_METHODS)}; "
                             f"ablations: {', '.join(ABLATIONS)}")
        out.append(n)
    return out


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


class ShardStore:
    """Finished shards of one evaluation setting on disk: OUT/shards/SETTING/METHOD/START-STOP.json, each written
    whole or not at all, and OUT/shards/SETTING/spec.json, the EvalSpec that made them. A resubmitted job skips
    the shards that exist; shards of another spec in the same folder are refused."""

    def __init__(self, out: str | Path, setting: str, spec: EvalSpec):
        self.dir = Path(out) / "shards" / slug(setting)
        self.dir.mkdir(parents=True, exist_ok=True)
        fingerprint, path = json.loads(spec.key()), self.dir / "spec.json"
        if path.exists() and json.loads(path.read_text()) != fingerprint:
            raise ValueError(f"{self.dir} holds shards of a different evaluation (data, config or weights differ); "
                             "use another --out or delete that folder")
        atomic_write(path, json.dumps(fingerprint, indent=1) + "\n")
        self.llm: dict = {}

    def llm_counts(self, method: str, add: Optional[dict] = None) -> dict:
        """{role: {"calls", "parsed", "fallbacks"}} of a method's llm roles over the shards collected so far."""
        total = self.llm.setdefault(method, {})
        for role, counts in (add or {}).items():
            for n, v in counts.items():
                total.setdefault(role, {}).setdefault(n, 0)
                total[role][n] += v
        return total

    def path(self, method: str, start_at: int, stop_at: int) -> Path:
        return self.dir / slug(method) / f"{start_at:07d}-{stop_at:07d}.json"

    def save(self, method: str, start_at: int, stop_at: int, result: dict) -> None:
        atomic_write(self.path(method, start_at, stop_at), json.dumps(result))

    def collect(self, method: str, shards: list[tuple[int, int]], n_queries: int) -> tuple[np.ndarray, list[dict]]:
        """(ranks (n, R+1), transcript rows) of a method from its finished shards; every dialog exactly once."""
        ranks, ids, rows = [], [], []
        for a, b in shards:
            res = json.loads(self.path(method, a, b).read_text())
            ranks += res["ranks"]
            ids += res["dialog_ids"]
            rows += res["transcript"]
            self.llm_counts(method, res.get("llm", {}))
        if len(ids) != n_queries or len(set(ids)) != n_queries:
            raise ValueError(f"{self.dir.name} {method}: {len(ids)} dialogs in shards, {len(set(ids))} distinct, "
                             f"expected {n_queries}")
        return np.array(ranks), rows
