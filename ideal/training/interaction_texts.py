"""Interaction-like texts for IAT: simulated dialogs over the TRAINING scenes only.

The simulated user's memory is built from training scenes and training descriptions; the gallery the
questioner and retriever see holds only training scenes; queries are training descriptions. Each round of
each dialog yields two texts with their scene: ū (query + answers, p2's view) and s (the CoT summary, p3's
view). The same questioner, answerer, summariser and `run_round` as evaluation produce them.

Written as parquet shards (text, scene_id, kind, round, dialog_id), reproducible from the seed; shards
already on disk are kept, so an interrupted run continues.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ..config import Config
from ..dialog.build import build_questioner, build_summariser, build_user
from ..dialog.methods import method_config
from ..dialog.round import run_round, start
from ..dialog.summary import enriched_query, enriched_segments, segments
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
    """Run cfg.iat.dialogs simulated dialogs (method `ideal`) on `train_ds` and write the texts; returns the shards."""
    ic = cfg.iat
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dcfg = method_config("ideal", cfg.dialog)
    queries = pick_queries(train_ds, ic.dialogs, ic.seed, cfg.train.sources)
    gallery = Gallery(retriever, [train_ds.scenes[s] for s in sorted(train_ds.scenes)])
    questioner, summariser = build_questioner(dcfg, gallery), build_summariser(dcfg)
    user = build_user(dcfg, train_ds.memories, text_encoder)
    shards = []
    plan = range(0, len(queries), ic.shard_size)
    for a in tqdm(plan, desc="interaction texts", unit="shard", disable=not progress):
        descs = queries[a:a + ic.shard_size]
        path = out / f"part-{a // ic.shard_size:05d}.parquet"
        shards.append(path)
        if path.exists():
            continue
        states = start([d.text for d in descs], [d.scene_id for d in descs], [d.desc_id for d in descs])
        rows = []
        for r in range(ic.rounds + 1):
            states = run_round(states, gallery, questioner, user, dcfg, summariser, ask=r < ic.rounds)
            if r == 0:
                continue
            for st in states:
                # the segments are what the retriever encodes at evaluation time (Gallery.scores_composed)
                rows.append({"text": enriched_query(st), "segments": enriched_segments(st), "scene_id": st.target,
                             "kind": "u_bar", "round": r, "dialog_id": st.dialog_id})
                if st.summary:
                    rows.append({"text": st.summary, "segments": segments(st.summary), "scene_id": st.target,
                                 "kind": "summary", "round": r, "dialog_id": st.dialog_id})
        tmp = path.with_suffix(".tmp")
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), tmp)
        tmp.replace(path)  # whole or absent
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
                   text_scene=np.array([row[s] for s in scene_ids], np.int64))
