"""Files written whole or not at all: a reader (or a resumed job) never sees half a file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Union


def atomic_write(path: str | Path, data: Union[str, bytes, Callable[[Path], None]]) -> Path:
    """Write `data` (text, bytes, or a function that writes the file it is given) to a temporary file beside
    `path`, then rename it over `path`. Returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        if isinstance(data, str):
            tmp.write_text(data)
        elif isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            data(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
