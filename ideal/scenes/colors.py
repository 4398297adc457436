"""Colour names: the small palette people use when describing furniture ("the brown chair").

The palette is spaced widely enough that a scanned object's mean colour maps back to the name it was
painted with, even after per-vertex noise.
"""
from __future__ import annotations

import numpy as np

PALETTE: dict[str, tuple[float, float, float]] = {
    "white": (0.93, 0.93, 0.91),
    "black": (0.08, 0.08, 0.09),
    "gray": (0.50, 0.50, 0.52),
    "brown": (0.45, 0.28, 0.14),
    "beige": (0.84, 0.76, 0.58),
    "red": (0.78, 0.12, 0.12),
    "blue": (0.16, 0.28, 0.72),
    "green": (0.18, 0.56, 0.24),
    "yellow": (0.93, 0.84, 0.16),
    "orange": (0.93, 0.50, 0.10),
    "pink": (0.95, 0.62, 0.74),
    "purple": (0.48, 0.22, 0.60),
}

_NAMES = list(PALETTE)
_RGB = np.array([PALETTE[n] for n in _NAMES])


def color_name(rgb) -> str:
    """Nearest palette name for an RGB triple in [0, 1]."""
    d = np.linalg.norm(_RGB - np.asarray(rgb, dtype=np.float64)[None, :3], axis=1)
    return _NAMES[int(np.argmin(d))]
