"""Interaction-like texts ũ for IAT (paper §3.3): simulated answers over the TRAINING scenes only.

For each sampled training query, the simulated user — whose memory merges every training description of the
scene with what its geometry shows (fine memory) — is asked a fixed number of detail probes (Q1, `iat.q1`)
and then diverge explorations (Q2, `iat.q2`) by the same questioner, answerer and `run_round` as evaluation.
Each informative answer is one text ũ (encoded whole, as evaluation encodes a response) whose positive is
its scene. The gallery the questioner sees holds only training scenes. With `iat.roles=llm` the questioner, the
answer writer and the reconstruction are dialog.llm's model (e.g. `--set dialog.llm=smollm2`), as in `ideal-llm`.

Written as parquet shards (text, segments, scene_id, kind, round, dialog_id), reproducible from the seed;
shards already on disk are kept, so an interrupted run continues.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ..config import Config
from ..io import atomic_write
from .. import build
from ..dialog.methods import method_config
from ..dialog.round import run_round, start
from ..dialog.types import is_unknown
from ..retrieval.gallery import Gallery
from ..scenes.dataset import SceneDataset

SCHEMA = pa.schema([("text", pa.string()), ("segments", pa.list_(pa.string())), ("scene_id", pa.string()),
                    ("kind", pa.string()), ("round", pa.int32()), ("dialog_id", pa.string())])


def pick_queries(ds: SceneDataset, n: int, seed: int, sources=("scanrefer", "nr3d", "sr3d")):
    descs = [d for d in ds.descriptions if d.source in sources]
    if not descs:
        raise ValueError(f"no training descriptions from sources {list(sources)}")
    idx = np.random.default_rng(seed).choice(len(descs), size=min(n, len(descs)), replace=False)
    return [descs[i] for i in sorted(idx)]


def generate_interaction_texts(train_ds: SceneDataset, retriever, text_encoder, cfg: Config, out_dir: str | Path,
                               progress: bool = True) -> list[Path]:
    """Ask cfg.iat.q1 Q1 then cfg.iat.q2 Q2 questions about each of cfg.iat.dialogs training queries and write
    the informative answers as texts; returns the shards."""
    ic = cfg.iat
    if ic.q1 < 0 or ic.q2 < 0 or ic.q1 + ic.q2 < 1:
        raise ValueError(f"iat.q1 and iat.q2 must be >= 0 and ask at least one question, got {ic.q1}, {ic.q2}")
    if ic.roles not in ("grounded", "llm"):
        raise ValueError(f"iat.roles must be grounded or llm, got {ic.roles!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    method = "ideal-llm" if ic.roles == "llm" else "ideal"  # llm: every role on dialog.llm's model
    dcfg = dataclasses.replace(method_config(method, cfg.dialog), memory="fine")
    queries = pick_queries(train_ds, ic.dialogs, ic.seed, cfg.train.sources)
    gallery = Gallery(retriever, [train_ds.scenes[s] for s in sorted(train_ds.scenes)])
    roles = build.roles(dcfg, gallery, train_ds.memories, text=text_encoder)
    questioner, summariser, user = roles.questioner, roles.summariser, roles.answerer
    # round r's question is Q1 for the first q1 rounds, then Q2 (the router is not consulted)
    rounds = ic.q1 + ic.q2
    forced = [dataclasses.replace(dcfg, route="q1" if r < ic.q1 else "q2") for r in range(rounds)] + [dcfg]
    shards = []
    plan = range(0, len(queries), ic.shard_size)
    for a in tqdm(plan, desc="interaction texts", unit="shard", disable=not progress):
        descs = queries[a:a + ic.shard_size]
        path = out / f"part-{a // ic.shard_size:05d}.parquet"
        shards.append(path)
        if path.exists():
            continue
        states = start([d.text for d in descs], [d.scene_id for d in descs], [d.desc_id for d in descs])
        for r in range(rounds + 1):
            states = run_round(states, gallery, questioner, user, forced[r], summariser, ask=r < rounds)
        rows = [{"text": t.answer.strip(), "segments": [t.answer.strip()], "scene_id": st.target, "kind": t.kind,
                 "round": j + 1, "dialog_id": st.dialog_id}
                for st in states for j, t in enumerate(st.turns) if not is_unknown(t.answer)]
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        atomic_write(path, lambda tmp: pq.write_table(table, tmp))  # whole or absent
    return shards


def read_interaction_texts(shards: list[Path]) -> pa.Table:
    return pa.concat_tables([pq.read_table(p, schema=SCHEMA) for p in shards])


def iat_arrays(scene_arrays, table: pa.Table, text_encoder):
    """TrainArrays whose texts are the interaction texts (composed from their segments, as at evaluation),
    sharing the scene arrays of the base training set."""
    from dataclasses import replace

    from ..retrieval.gallery import SegmentEncoder

    row = {sid: i for i, sid in enumerate(scene_arrays.scene_ids)}
    scene_ids = table.column("scene_id").to_pylist()
    missing = sorted({s for s in scene_ids if s not in row})
    if missing:
        raise ValueError(f"interaction texts name scenes outside the training set: {missing[:5]}")
    enc = SegmentEncoder(text_encoder.embed_backbone, text_encoder.tokenizer)
    feats = enc.features(table.column("segments").to_pylist())
    return replace(scene_arrays, text_feats=np.asarray(feats, np.float32),
                   text_scene=np.array([row[s] for s in scene_ids], np.int64), text_slot=None)
