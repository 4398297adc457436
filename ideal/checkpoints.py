"""Where retriever checkpoints live: the shipped ones (ideal/weights/), names for them, and their digest.

    resolve("iat")            -> ideal/weights/iat          (a shipped checkpoint by name)
    resolve("runs/iat/final") -> runs/iat/final            (any checkpoint folder)
    resolve("labels")         -> "labels"                   (the training-free bag-of-labels retriever)
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Union

WEIGHTS_DIR = Path(__file__).parent / "weights"
# base: the retriever trained on the synthetic benchmark's train split; iat: tuned with IAT (what `ideal` runs
# on); iat_no_ldis / iat_no_ldiv: IAT without one of its two terms (Table 3).
# base: the object-level retriever; iat*: IAT on it and its two ablations; pooled: one vector per scene, trained
# on the same data (Table 2's second trained retriever)
SHIPPED = {name: WEIGHTS_DIR / name for name in ("base", "iat", "iat_no_ldis", "iat_no_ldiv", "pooled")}
DEFAULT_WEIGHTS = SHIPPED["base"]
LABELS = "labels"  # the bag-of-labels retriever: no checkpoint


def is_checkpoint(path: Union[str, Path]) -> bool:
    return (Path(path) / "model.safetensors").is_file()


def resolve(name_or_path: Union[str, Path]) -> Union[Path, str]:
    """A shipped checkpoint's folder by name, "labels" as is, or any checkpoint folder (absolute)."""
    s = str(name_or_path)
    if s == LABELS:
        return LABELS
    if s in SHIPPED:
        return SHIPPED[s]
    path = Path(s).resolve()
    if not is_checkpoint(path):
        raise ValueError(f"{s}: not a checkpoint folder (no model.safetensors); shipped: {', '.join(SHIPPED)}")
    return path


def serving_default() -> Path:
    """The checkpoint Serve and `ideal` use when none is named: the shipped IAT one, else base."""
    return SHIPPED["iat"] if is_checkpoint(SHIPPED["iat"]) else DEFAULT_WEIGHTS


def digest(name_or_path: Union[str, Path]) -> str:
    """sha256 over a checkpoint folder's files (names and bytes): weights retrained in place are new weights.
    The bag-of-labels retriever's digest is its name."""
    target = resolve(name_or_path)
    if target == LABELS:
        return LABELS
    h = hashlib.sha256()
    for f in sorted(p for p in Path(target).iterdir() if p.is_file()):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()
