"""ScanNet label maps: `scannetv2-labels.combined.tsv`, from raw annotation labels to category sets.

Tab-separated, one header line, one row per raw annotation label. Mapping raw_category to nyu40class
gives the NYUv2 40 classes of the ScanNet benchmark; to category gives ScanNet200-style names.
"""
from __future__ import annotations

from pathlib import Path

from .types import FormatError

HEADER = ("id", "raw_category", "category", "count", "nyu40id", "eigen13id", "nyuClass", "nyu40class",
          "eigen13class", "ModelNet40", "ModelNet10", "ShapeNetCore55", "synsetoffset", "wnsynsetid",
          "wnsynsetkey", "mpcat40", "mpcat40index")


def read_label_map(path, from_column: str = "raw_category", to_column: str = "nyu40class") -> dict[str, str]:
    """{from value (stripped, lower-cased): to value (stripped)} for every row with both values.

    Raises FormatError for a missing column, a row too short to hold both columns, or a from value
    mapped to two different to values.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise FormatError(path, "", "file not found") from None
    except UnicodeDecodeError as e:
        raise FormatError(path, f"byte {e.start}", "not UTF-8 text") from None
    if not lines:
        raise FormatError(path, "line 1", "empty file: expected a tab-separated header")
    header = [h.strip() for h in lines[0].split("\t")]
    for column in (from_column, to_column):
        if column not in header:
            raise FormatError(path, "line 1", f"no column {column!r}; the header has: {', '.join(header)}")
    src, dst = header.index(from_column), header.index(to_column)
    # Only the two columns used must be present, so rows cut short after them still read.
    needed = max(src, dst) + 1
    mapping: dict[str, str] = {}
    line_of: dict[str, int] = {}
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < needed:
            raise FormatError(path, f"line {n}", f"{len(fields)} fields, too few to hold column {needed} "
                                                 f"({header[needed - 1]!r}); the header has {len(header)}")
        key, value = fields[src].strip().lower(), fields[dst].strip()
        if not key or not value:
            continue
        if key in mapping and mapping[key] != value:
            raise FormatError(path, f"line {n}", f"{from_column} {key!r} maps to {value!r} here but to "
                                                 f"{mapping[key]!r} on line {line_of[key]}")
        mapping[key] = value
        line_of.setdefault(key, n)
    return mapping


def write_label_map(path, rows: list[dict]) -> None:
    """Write rows (dicts keyed by HEADER column names; missing columns left empty) under ScanNet's header."""
    lines = ["\t".join(HEADER)]
    for i, row in enumerate(rows):
        unknown = sorted(set(row) - set(HEADER))
        if unknown:
            raise ValueError(f"rows[{i}] has columns {unknown} that are not in the ScanNet header")
        cells = ["" if row.get(c) is None else str(row[c]) for c in HEADER]
        bad = [c for c, v in zip(HEADER, cells) if "\t" in v or "\n" in v or "\r" in v]
        if bad:
            raise ValueError(f"rows[{i}]: {bad} contain a tab or newline, which the TSV cannot hold")
        lines.append("\t".join(cells))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
