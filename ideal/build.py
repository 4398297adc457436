"""The one way to build what a dialog needs, shared by the eval job, the Serve roles, the benchmarks, IAT and
notebooks (as open_clip's `create_model_and_transforms` is for its users):

    from ideal import build
    g = build.open_gallery(build.ensure_gallery())          # the embedded default, encoded once and cached
    cfg = build.config().dialog
    gallery = build.gallery(g, "iat")                       # retriever + the stored scene embeddings
    roles = build.roles(cfg, gallery, g.memories())         # questioner, summariser, answerer (simulated user)
    states = run_round(start(["the brown chair by the window"]), gallery, roles.questioner, None, cfg,
                       roles.summariser)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from . import checkpoints
from .config import Config, DialogConfig, IndexConfig, TextEncoderConfig, load_config
from .store import GalleryDir

_TEXT: dict = {}


def config(path: Optional[str] = None, overrides: tuple[str, ...] | list[str] = ()) -> Config:
    return load_config(path, list(overrides))


def text_encoder(cfg: Optional[TextEncoderConfig] = None):
    """The text encoder of `cfg` (default: the bundled all-MiniLM-L6-v2), loaded once per process."""
    from .encoders.text import TextEncoder

    cfg = cfg or TextEncoderConfig()
    key = (cfg.model_dir, cfg.max_length)
    if key not in _TEXT:
        _TEXT[key] = TextEncoder(cfg.model_dir, max_length=cfg.max_length)
    return _TEXT[key]


def retriever(checkpoint: Union[str, Path], text=None):
    """The retriever of a checkpoint folder or shipped name (`ideal.checkpoints`); "labels": bag-of-labels."""
    from .retrieval.retriever import BagOfLabelsRetriever, TrainedRetriever

    target = checkpoints.resolve(checkpoint)
    text = text or text_encoder()
    if target == checkpoints.LABELS:
        return BagOfLabelsRetriever(text)
    return TrainedRetriever.from_checkpoint(target, text)


def default_encodings() -> dict[str, str]:
    """What a gallery is encoded with unless told otherwise: every shipped checkpoint, and bag-of-labels
    (the retrievers of every method and ablation of the paper's tables)."""
    out = {name: str(path) for name, path in checkpoints.SHIPPED.items() if checkpoints.is_checkpoint(path)}
    return {**out, checkpoints.LABELS: checkpoints.LABELS}


def synthetic_source(root: Union[str, Path], split: str = "val"):
    """The synthetic benchmark's scans and descriptions of one split (train, dev or val) as a gallery source."""
    from .retrieval.encode import Source
    from .scenes.dataset import split_scene_ids

    root = Path(root)
    if split not in ("train", "dev", "val"):
        raise ValueError(f"a gallery is one split: train, dev or val, got {split!r}")
    listed = "val" if split == "val" else "train"
    return Source(scannet_dir=str(root / "scans"), label_map=str(root / "scannetv2-labels.combined.tsv"),
                  scanrefer=str(root / f"ScanRefer_filtered_{listed}.json"), nr3d=str(root / "nr3d.csv"),
                  sr3d=str(root / "sr3d.csv"), scene_ids=split_scene_ids(root, split))


def build_gallery(source, out: Union[str, Path], encodings: Optional[dict[str, str]] = None, shard_size: int = 64,
                  density_k: Optional[int] = None, index: Optional[IndexConfig] = None, progress: bool = True) -> Path:
    """Write (or finish) the encoded gallery `out` from `source` in this process; finished shards are kept."""
    from tqdm import tqdm

    from .retrieval.encode import ShardEncoder, finish_gallery, gallery_plan, pending_work

    encodings = encodings or default_encodings()
    index = index or IndexConfig()
    shards, tables, embedded = gallery_plan(out, source, encodings, shard_size)
    todo = pending_work(shards, tables, embedded)
    if todo:
        encoder = ShardEncoder(source.to_dict(), {n: encodings[n] for n in {k for r in todo for k in r["encodings"]}})
        for row in tqdm(todo, desc=f"encoding {Path(out).name}", unit="shard", disable=not progress):
            encoder.encode(row["scene_ids"], row["tables"], row["encodings"])
    finish_gallery(out, source, tables, embedded, encodings, density_k or DialogConfig().density_k, index.kind,
                   index.ivf_threshold)
    return Path(out)


def ensure_gallery(cfg: Optional[Config] = None, split: str = "val", out: Optional[Union[str, Path]] = None,
                   progress: bool = True) -> Path:
    """The embedded default's gallery: the synthetic benchmark (generated on first use), one split, encoded
    with `default_encodings()` once and cached (under the benchmark's folder unless `out`)."""
    from .scenes.synthetic import generate
    from .store import read_manifest

    cfg = cfg or Config()
    root = Path(generate(cfg.data.synthetic_root(), cfg.data.scenes, cfg.data.seed, progress=progress)).resolve()
    out = Path(out) if out else root / "galleries" / split
    encodings = default_encodings()
    try:
        manifest = read_manifest(out)
        have = {n: e["sha256"] for n, e in manifest["encodings"].items()}
        if all(have.get(n) == checkpoints.digest(c) for n, c in encodings.items()):
            return out
    except ValueError:
        pass
    _drop_stale_shards(out, encodings)
    return build_gallery(synthetic_source(root, split), out, encodings, density_k=cfg.dialog.density_k,
                         index=cfg.index, progress=progress)


def _drop_stale_shards(out: Path, encodings: dict[str, str]) -> None:
    """In the default gallery's cache: delete the shards of an encoding whose checkpoint has changed since they
    were written (retrained weights), so that they are encoded again rather than refused."""
    import json
    import shutil

    for name, ckpt in encodings.items():
        plan = out / "shards" / name / "plan.json"
        if plan.is_file() and json.loads(plan.read_text()).get("checkpoint_sha256") != checkpoints.digest(ckpt):
            shutil.rmtree(plan.parent)


def open_gallery(path: Union[str, Path]) -> GalleryDir:
    return GalleryDir(path)


def gallery(g: GalleryDir, checkpoint: Union[str, Path], text=None, index: Optional[IndexConfig] = None,
            scenes: Optional[list] = None):
    """The Gallery of G's encoding made with `checkpoint`: its stored embeddings (and, for a late-interaction
    retriever, object vectors), density and (for a large gallery) its faiss indexes; nothing is re-encoded.
    `scenes`: G's scenes if already read."""
    from .retrieval.gallery import Gallery

    name = g.encoding_name(checkpoint)
    index = index or IndexConfig()
    approximate = len(g.ids) >= index.ivf_threshold
    objects, r = g.objects(name), retriever(checkpoint, text)
    if r.late_interaction and objects is None:
        raise ValueError(f"{g.path}: encoding {name!r} holds no object vectors, and {checkpoint} scores a scene by "
                         f"its best object; encode it again with python jobs/encode_scenes.py ... --weights "
                         f"{checkpoint} --out DIR")
    return Gallery(r, scenes if scenes is not None else g.scenes(),
                   embeddings=g.embeddings(name), knn=g.mean_knn_distance(name),
                   index=g.index(name) if approximate else None, candidates=index.candidates,
                   knowledge=g.knowledge, objects=objects,
                   object_index=g.object_index(name) if approximate and objects is not None else None)


@dataclass
class Roles:
    """The three roles of a dialog besides the retriever (any may be None where a caller does not need it)."""

    questioner: Any = None
    summariser: Any = None
    answerer: Any = None  # the simulated user


def roles(cfg: DialogConfig, gallery=None, memories: Optional[dict] = None, text=None, client=None, embed=None,
          questioner: bool = True) -> Roles:
    """The questioner and summariser over `gallery` (a Gallery or a Catalog: `ids`, `scenes`, `knowledge`) and,
    with `memories`, the simulated user. `client`: a ChatClient for llm backends; `embed` overrides the
    answerer's sentence embedder (e.g. a cache shared by several simulated users). questioner=False leaves the
    questioner out (a Retriever replica needs only the summariser, not the 3D knowledge table)."""
    from .dialog.build import build_answerer, build_questioner, build_summariser

    out = Roles()
    if gallery is not None:
        out.questioner = build_questioner(cfg, gallery, client=client) if questioner else None
        out.summariser = build_summariser(cfg, gallery, client=client)
    if memories is not None:
        text = text if text is not None or embed is not None else text_encoder()
        out.answerer = build_answerer(cfg, memories, text, client=client, embed=embed)
    return out
