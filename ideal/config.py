"""One config tree for every knob. Defaults are the ones the README's results were made with.

Load from YAML and/or `section.key=value` overrides:

    cfg = load_config("my.yaml", ["train.epochs=5", "scene_encoder.use_points=true"])
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union, get_args, get_origin, get_type_hints

import yaml


@dataclass
class DataConfig:
    root: Optional[str] = None  # synthetic benchmark folder; None: data/synthetic-<scenes>-s<seed>
    scenes: int = 400
    seed: int = 0

    def synthetic_root(self) -> Path:
        return Path(self.root or f"data/synthetic-{self.scenes}-s{self.seed}")


@dataclass
class TextEncoderConfig:
    model_dir: Optional[str] = None  # None: the bundled all-MiniLM-L6-v2
    max_length: int = 256  # as the model was trained (sentence-transformers max_seq_length)
    batch_size: int = 64


@dataclass
class SceneEncoderConfig:
    width: int = 256  # transformer width; the output is projected to the text dimension
    layers: int = 2
    heads: int = 4
    ffn: int = 512
    dropout: float = 0.1
    max_objects: int = 64
    use_points: bool = False  # a tiny PointNet over each object's point sample
    points_per_object: int = 64
    # scene: one pooled vector per scene | objects: a vector per object in its room's context, a scene scored by
    # its best object (late interaction; `ideal.retrieval.objects`)
    output: str = "objects"
    relation_bias: bool = True  # attention logits get a learned function of each pair's geometry


@dataclass
class TrainConfig:
    epochs: int = 8
    batch_size: int = 256  # descriptions per step (global, across workers)
    lr: float = 1e-3
    weight_decay: float = 0.01
    temperature: float = 0.05  # InfoNCE softmax temperature
    seed: int = 0
    num_workers: int = 1  # Ray Train workers
    use_gpu: bool = False
    sources: tuple = ("scanrefer", "nr3d", "sr3d")  # which training descriptions to use
    # training scenes beyond the benchmark's train split (`ideal.scenes.synthetic_train`: new scenes only, val and
    # dev untouched), each described `passes` times; 0: the benchmark's train split alone
    extra_scenes: int = 1400
    passes: int = 2
    texts_per_scene: int = 4  # a batch holds runs of up to this many texts of one scene (fewer scenes to encode)
    object_loss: float = 1.0  # scene_encoder.output=objects: weight of the object-level InfoNCE (named object)
    max_failures: int = 2  # Ray Train, both stages: lost workers recovered from the last checkpoint (-1: no limit)


@dataclass
class IATConfig:
    """Interaction Adaptation Tuning: fine-tune on simulated dialog texts of the TRAINING scenes."""

    dialogs: int = 1500  # training queries whose interactions are simulated (seeded sample)
    q1: int = 1  # detail-probe questions per training query
    q2: int = 3  # diverge-exploration questions per training query
    shard_size: int = 250  # dialogs per interaction-text parquet shard
    roles: str = "grounded"  # grounded | llm: questioner, answerer and reconstruction on dialog.llm (as ideal-llm)
    epochs: int = 4
    batch_size: int = 256
    lr: float = 3e-4
    weight_decay: float = 0.01
    temperature: float = 0.05  # S in L_dis: softmax over scenes
    lam: float = 0.2  # L = lam * L_dis + (1 - lam) * L_div (paper: [0.2, 0.5]; 0.2 chosen on dev)
    gamma: float = 0.5  # L_div's weight margin (paper: [0.1, 0.8])
    tune: str = "head"  # head: the text projection head | all: head + scene encoder
    seed: int = 0
    num_workers: int = 1
    use_gpu: bool = False


@dataclass
class IndexConfig:
    """The faiss index of an encoded gallery. Below ivf_threshold scenes every score is exact (one matrix
    product over the gallery); at or above it each p̂ is a softmax over the `candidates` scenes the index finds
    nearest to the text (the rest get 0), so a round costs about the same at 100k scenes as at 100."""

    kind: str = "auto"  # flat | ivf | hnsw | auto (flat below ivf_threshold, else ivf)
    ivf_threshold: int = 50_000
    candidates: int = 1024  # scenes each text is scored against in a gallery served from an approximate index


@dataclass
class DialogConfig:
    """Interactive retrieval refinement: the router questioner, the simulated answerer and the fused retriever.

    Defaults are the `ideal` method's, chosen on the dev split (`python jobs/tune.py`); val is only reported.
    """

    rounds: int = 5
    memory: str = "fine"  # coarse: an expansion of the query (no new information) | fine: the whole scene
    questioner: str = "grounded"  # grounded | llm
    answerer: str = "grounded"  # grounded | llm
    summariser: str = "grounded"  # grounded | llm: the CoT reconstruction s (p̂3)
    cot: bool = True  # two-step reconstruction (extract objects, then reconstruct); false: one step (w/o CoT)
    # llm backends: a named local model (smollm2), an OpenAI-compatible base URL (vLLM) or a local model directory
    llm: Optional[str] = None
    llm_model: str = "default"  # model name sent to the endpoint
    # a local model on: auto (vLLM when installed, else transformers) | transformers (batches padded) | vllm (`.[llm]`)
    llm_engine: str = "auto"
    # a local model's weights: float32 (greedy replies do not depend on the batch) | bfloat16 (CPUs with AMX or
    # AVX512-BF16, GPUs: faster; replies can change with what is batched together)
    llm_dtype: str = "float32"
    # the llm roles' replies constrained while decoding (structured outputs: a question about an object the dialog
    # names, an answer in memory words, the reconstruction's objects from the gallery's classes); false: free text
    llm_structured: bool = True
    llm_timeout: float = 60.0  # seconds one reply from an OpenAI-compatible server may take before the role falls back
    questioner_llm: Optional[str] = None  # this role's model instead of dialog.llm
    answerer_llm: Optional[str] = None
    summariser_llm: Optional[str] = None
    # router (paper §3.2.1): density-compensated affinity entropy of the last round's text feature
    route: str = "router"  # router | q1 (w/o Q2: detail probes only) | q2 (w/o Q1: diverge explorations only)
    router_k: int = 20  # k nearest scenes N_k(u) of the entropy
    tau: float = 0.05  # softmax temperature of the affinity p(u, v_j)
    beta: float = 2.5  # entropy threshold: above -> Q1 (detail probe), else Q2 (diverge exploration)
    density_k: int = 20  # neighbours of the density rho(v_i)
    density_eps: float = 1e-6  # epsilon of rho(v_i)
    force_q2_after: int = 2  # this many Q1 rounds in a row force a Q2 (0: never)
    k: int = 5  # candidate scenes whose 3D data the grounded questioner reads to choose what to ask
    # retriever (paper Eqs. 3-5): p̂c = λ1·p̂1(u) + λ2·p̂2(ū) + λ3·p̂3(s), each a softmax over the gallery
    temperature: float = 0.1  # of p̂ = softmax(S(u, v)/temperature) over the whole gallery
    lambda1: float = 0.2  # p̂1: the initial query u
    lambda2: float = 0.4  # p̂2: ū, the feature-level fusion of the responses
    lambda3: float = 0.4  # p̂3: s, the semantic-level (CoT) reconstruction
    alpha: float = 0.75  # Q1 responses: u^j <- α·u^j + (1−α)·u^{j−1}
    # how p̂2 matches ū against a late-interaction gallery (one vector per object): feature (ū as one vector, scored
    # by a scene's best object) | score (ū's coefficients over u, u¹..uʳ applied to their own best-object scores,
    # `meb.fusion_coefficients`); on pooled scene vectors the two are the same score
    fusion: str = "score"
    shell: float = 0.1  # hypersphere: features at >= (1 − shell)·R* from the centre are the boundary set
    scoring: str = "ideal"  # ideal (also rewrite) | dialog (chatir) | answers (sum) | refine (merlin) | rerank (ir)
    compose: bool = True  # a dialog's turns encoded one by one (each once) and pooled; false: joined, one text
    # the simulated user as unreliable as people are (shares of answers, drawn per seed, dialog and round):
    wrong_answers: float = 0.0  # another object or colour of the scene, or an object of another scene
    unknown_answers: float = 0.0  # "I don't know", whatever the memory holds
    min_relevance: float = 0.35  # the answerer says "I don't know" below this sentence similarity
    answer_support: int = 2  # memory sentences the answerer adds to a short answer (what came to mind)
    seed: int = 0  # the simulated user's choices (which remembered sentences it says)
    batch_size: int = 256  # dialogs per batch


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    text_encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    scene_encoder: SceneEncoderConfig = field(default_factory=SceneEncoderConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    dialog: DialogConfig = field(default_factory=DialogConfig)
    iat: IATConfig = field(default_factory=IATConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_EXPECTED = {bool: "true/false", int: "an integer", float: "a number", str: "a string", tuple: "a list"}


def _parse(text: str, hint: Any) -> Any:
    """A string (a flag's value; in YAML, a quoted value or one like `1e-3`) as a value of type `hint`."""
    if hint is bool:
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"expected true/false, got {text!r}")
    if hint is tuple:
        return tuple(v for v in text.split(",") if v)
    return hint(text)


def _takes(value: Any, hint: Any) -> bool:
    """Whether a non-string YAML/JSON value fits a field of type `hint` (an int is a float; a bool is no number)."""
    if isinstance(value, bool):
        return hint is bool
    if hint is float:
        return isinstance(value, (int, float))
    if hint is tuple:
        return isinstance(value, (list, tuple))
    return isinstance(value, hint)


def _coerce(value: Any, hint: Any) -> Any:
    """`value`, from YAML, JSON or a `key=value` flag, as a value of the field type `hint`, or a ValueError."""
    optional = get_origin(hint) is Union and type(None) in get_args(hint)
    if optional:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        (hint,) = [a for a in get_args(hint) if a is not type(None)]
    if hint not in _EXPECTED:
        return value  # a field type this loader does not know is taken as given
    if isinstance(value, str) and hint is not str:
        return _parse(value, hint)
    if not _takes(value, hint):
        raise ValueError(f"expected {_EXPECTED[hint]}{' or null' if optional else ''}, "
                         f"got {value!r} ({type(value).__name__})")
    return hint(value)  # an int for a float field becomes a float, a list a tuple


def _apply(obj, key_path: str, value: Any, source: str) -> None:
    *parents, leaf = key_path.split(".")
    for i, p in enumerate(parents):
        names = {f.name for f in dataclasses.fields(obj)}
        if p not in names:
            raise ValueError(f"{source}: unknown config section {p!r} in {key_path!r}")
        obj = getattr(obj, p)
        if not dataclasses.is_dataclass(obj):
            raise ValueError(f"{source}: {key_path!r}: {'.'.join(parents[:i + 1])} is a value, not a config section")
    names = {f.name for f in dataclasses.fields(obj)}
    if leaf not in names:
        raise ValueError(f"{source}: unknown config key {key_path!r}; {type(obj).__name__} has {sorted(names)}")
    current = getattr(obj, leaf)
    if dataclasses.is_dataclass(current):
        if value is None or value == {}:
            return  # a YAML section with every key commented out (or left empty) changes nothing
        example = dataclasses.fields(current)[0].name
        raise ValueError(f"{source}: {key_path!r} is a config section, not a value (got {value!r}); "
                         f"set its keys, e.g. {key_path}.{example}")
    try:
        value = _coerce(value, get_type_hints(type(obj))[leaf])
    except (ValueError, OverflowError) as e:  # OverflowError: an int too large for a float field
        raise ValueError(f"{source}: {key_path}: {e}") from None
    setattr(obj, leaf, value)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:  # an empty mapping is kept: a value for a leaf, nothing for a section
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def load_config(path: Optional[str | Path] = None, overrides: Optional[list[str]] = None) -> Config:
    """Defaults, then the YAML file, then `a.b=value` overrides; unknown keys are errors."""
    cfg = Config()
    if path is not None:
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of config sections at the top level")
        for k, v in _flatten(data).items():
            _apply(cfg, k, v, str(path))
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r}: expected section.key=value")
        _apply(cfg, key.strip(), value.strip(), "override")
    return cfg


def config_from_dict(d: dict) -> Config:
    cfg = Config()
    for k, v in _flatten(d).items():
        _apply(cfg, k, v, "config")
    return cfg
