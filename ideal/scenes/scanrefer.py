"""ScanRefer referring descriptions: read and write `ScanRefer_filtered_{train,val}.json`.

The published file is one JSON list of entries (daveredrum/ScanRefer README, "Data format"):

    {"scene_id": "scene0011_00", "object_id": "5", "object_name": "chair", "ann_id": "3",
     "description": "there is a dark brown wooden and leather chair. ...",
     "token": ["there", "is", "a", "dark", "brown", ...]}

object_id is a *string* holding the ScanNet aggregation objectId, ann_id a string counter per
(scene, object), and object_name the aggregation label with underscores for spaces
("kitchen_cabinets"); ScanRefer's own loader turns them back with `" ".join(name.split("_"))`.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

from .types import Description, FormatError

SOURCE = "scanrefer"
# Key order of the published entries; the writer keeps it so its output diffs cleanly against theirs.
KEYS = ("scene_id", "object_id", "object_name", "ann_id", "description", "token")
REQUIRED = ("scene_id", "object_id", "object_name", "ann_id", "description")

_UTF8_BOM = b"\xef\xbb\xbf"
_INT_RE = re.compile(r"[0-9]+")
# Words (keeping in-word apostrophes: "it's") and every other non-space character on its own,
# so "chair. it" -> ["chair", ".", "it"] as in ScanRefer's token lists.
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*|[^\sa-z0-9]")


def read_utf8_text(path) -> str:
    """The file's text, decoded as UTF-8 (a leading BOM is dropped).

    Raises FormatError naming the line and byte offset of the first invalid byte, or if the file is empty.
    """
    data = Path(path).read_bytes()
    skip = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    try:
        text = data[skip:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = skip + e.start
        line = data.count(b"\n", 0, offset) + 1
        raise FormatError(
            path, f"line {line}", f"not UTF-8: invalid byte 0x{data[offset]:02x} at byte offset {offset}"
        ) from None
    if not text.strip():
        raise FormatError(path, "", "file is empty")
    return text


def tokenize(text: str) -> list[str]:
    """Lower-case word/punctuation tokens, the way ScanRefer's `token` lists look."""
    return _TOKEN_RE.findall(text.lower())


def _int_field(path, where: str, entry: dict, key: str) -> int:
    # The published ids are digit strings; a bare JSON integer is accepted too (bool is not).
    value = entry[key]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        return int(value)
    raise FormatError(path, where, f"{key} {value!r} is not an integer string")


def _str_field(path, where: str, entry: dict, key: str) -> str:
    value = entry[key]
    if not isinstance(value, str):
        raise FormatError(path, where, f"{key} must be a string, got {type(value).__name__} {value!r}")
    if not value.strip():
        raise FormatError(path, where, f"empty {key}")
    return value.strip()


def read_scanrefer(path) -> list[Description]:
    """Read a ScanRefer JSON file into Descriptions, in file order.

    desc_id is "{scene_id}/{object_id}/{ann_id}", object_name has underscores turned into spaces,
    text is the description stripped of surrounding whitespace. Extra keys (and `token`) are
    ignored. Any bad input raises FormatError naming the file and the entry index.
    """
    text = read_utf8_text(path)
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as e:
        raise FormatError(path, f"line {e.lineno} column {e.colno}", f"invalid JSON: {e.msg}") from None
    if not isinstance(entries, list):
        raise FormatError(path, "top level", f"expected a JSON list of entries, got a {type(entries).__name__}")

    out = []
    for i, entry in enumerate(entries):
        where = f"entry {i}"
        if not isinstance(entry, dict):
            raise FormatError(path, where, f"expected an object, got {type(entry).__name__} {entry!r:.60}")
        for key in REQUIRED:
            if key not in entry:
                raise FormatError(path, where, f"missing {key!r}")
        scene_id = _str_field(path, where, entry, "scene_id")
        object_id = _int_field(path, where, entry, "object_id")
        ann_id = _int_field(path, where, entry, "ann_id")
        object_name = _str_field(path, where, entry, "object_name").replace("_", " ")
        description = _str_field(path, where, entry, "description")
        out.append(
            Description(
                desc_id=f"{scene_id}/{object_id}/{ann_id}",
                scene_id=scene_id,
                object_id=object_id,
                object_name=object_name,
                text=description,
                source=SOURCE,
            )
        )
    return out


def _assign_ann_ids(descriptions: list[Description]) -> list[int]:
    """ann_id per description: the one in a "{scene}/{object}/{ann}" desc_id, else the smallest
    number not yet taken for that (scene, object), so ids read from ScanRefer survive a rewrite."""
    parsed: list[Optional[int]] = []
    taken: dict[tuple[str, int], set[int]] = {}
    for d in descriptions:
        prefix = f"{d.scene_id}/{d.object_id}/"
        rest = d.desc_id[len(prefix):] if d.desc_id.startswith(prefix) else ""
        ann = int(rest) if _INT_RE.fullmatch(rest) else None
        parsed.append(ann)
        if ann is not None:
            taken.setdefault((d.scene_id, d.object_id), set()).add(ann)
    anns = []
    for d, ann in zip(descriptions, parsed):
        if ann is None:
            used = taken.setdefault((d.scene_id, d.object_id), set())
            ann = next(n for n in range(len(used) + 1) if n not in used)
            used.add(ann)
        anns.append(ann)
    return anns


def write_scanrefer(path, descriptions: list[Description], ann_ids: Optional[list[int]] = None) -> None:
    """Write Descriptions as a ScanRefer JSON list, in the published layout.

    object_id and ann_id are written as strings, object_name with spaces as underscores, and
    `token` is `tokenize(text)`. Without `ann_ids`, each ann_id comes from a ScanRefer-style desc_id
    ("{scene}/{object}/{ann}") or is the next free number for its (scene, object). The output is
    deterministic: the same input gives the same bytes.
    """
    if ann_ids is None:
        ann_ids = _assign_ann_ids(descriptions)
    elif len(ann_ids) != len(descriptions):
        raise ValueError(f"ann_ids has {len(ann_ids)} items for {len(descriptions)} descriptions")

    seen: dict[tuple[str, int, int], str] = {}
    entries = []
    for d, ann in zip(descriptions, ann_ids):
        if isinstance(ann, bool) or not isinstance(ann, int) or ann < 0:
            raise ValueError(f"{d.desc_id}: ann_id must be a non-negative integer, got {ann!r}")
        key = (d.scene_id, d.object_id, ann)
        if key in seen:
            raise ValueError(f"{d.desc_id} and {seen[key]} would both be {d.scene_id}/{d.object_id}/{ann}")
        seen[key] = d.desc_id
        text = d.text.strip()
        if not text:
            raise ValueError(f"{d.desc_id}: empty description text")
        entries.append(
            dict(
                zip(
                    KEYS,
                    (d.scene_id, str(d.object_id), d.object_name.replace(" ", "_"), str(ann), text, tokenize(text)),
                )
            )
        )
    with open(path, "w", encoding="utf-8", newline="") as f:
        json.dump(entries, f)
