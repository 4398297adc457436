"""ReferIt3D referring descriptions: read and write the Nr3D and Sr3D CSVs.

Real headers (confirmed against published files, e.g. ripl/Transcrib3D data/referit3d/nr3d_sampled_05.csv
and sr3d_test_between.csv, and the columns referit3d's own loaders use: in_out/neural_net_oriented.py,
data_generation/sr3d/create_sr3d.py):

    nr3d.csv: assignmentid,stimulus_id,utterance,correct_guess,speaker_id,listener_id,scan_id,
              instance_type,target_id,tokens,dataset,mentions_target_class,uses_object_lang,
              uses_spatial_lang,uses_color_lang,uses_shape_lang
    sr3d.csv: scan_id,target_id,distractor_ids,utterance,stimulus_id,coarse_reference_type,
              reference_type,instance_type,anchors_types,anchor_ids,tokens,dataset,
              mentions_target_class,correct_guess

stimulus_id is "{scan}-{instance_type with _ for spaces}-{n same-class objects}-{target}-{distractors...}"
(SameInstanceStimulus.__str__); list columns (tokens, distractor_ids, anchors_types, anchor_ids) are
Python list literals; booleans are True/False. Readers need only scan_id, target_id, utterance and
instance_type, in any column order, and ignore the rest.
"""
from __future__ import annotations

import csv
import io
import re
import zlib
from collections.abc import Iterator

from .scanrefer import read_utf8_text
from .types import Description, FormatError, Scene, SceneObject

NR3D_COLUMNS = (
    "assignmentid", "stimulus_id", "utterance", "correct_guess", "speaker_id", "listener_id", "scan_id",
    "instance_type", "target_id", "tokens", "dataset", "mentions_target_class", "uses_object_lang",
    "uses_spatial_lang", "uses_color_lang", "uses_shape_lang",
)
SR3D_COLUMNS = (
    "scan_id", "target_id", "distractor_ids", "utterance", "stimulus_id", "coarse_reference_type",
    "reference_type", "instance_type", "anchors_types", "anchor_ids", "tokens", "dataset",
    "mentions_target_class", "correct_guess",
)
REQUIRED = ("scan_id", "target_id", "utterance", "instance_type")

# Sr3D fine reference type -> coarse type (referit3d data_generation/sr3d/reference.py).
COARSE_REFERENCE_TYPE = {
    "left": "allocentric", "right": "allocentric", "front": "allocentric", "back": "allocentric",
    "above": "vertical", "below": "vertical",
    "closest": "horizontal", "farthest": "horizontal",
    # Not in the published Sr3D; our synthetic benchmark's "the X that is next to the Y" template.
    "next to": "horizontal",
    "supported-by": "support", "supporting": "support",
    "between": "between",
}

# Speaker/listener ids in Nr3D are anonymised worker numbers in about this range.
N_WORKERS = 720

_INT_RE = re.compile(r"[0-9]+")
_NR3D_ID_RE = re.compile(r"nr3d/([0-9]+)")

# A cut-down version of referit3d's Nr3D text clean-up (data_generation/nr3d/tokenization.py):
# contractions expanded, punctuation dropped, small numbers spelled out, a few spellings unified.
_CONTRACTIONS = [
    (re.compile(r"\bcan't\b"), "cannot"), (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"n't\b"), " not"), (re.compile(r"'re\b"), " are"), (re.compile(r"'m\b"), " am"),
    (re.compile(r"'ve\b"), " have"), (re.compile(r"'ll\b"), " will"), (re.compile(r"\blet's\b"), "let us"),
    (re.compile(r"\b(it|that|there|here|what|where|who|he|she)'s\b"), r"\1 is"),
]
_SPELLING = {
    "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven", "8": "eight",
    "9": "nine", "10": "ten", "11": "eleven", "12": "twelve", "1st": "first", "2nd": "second", "3rd": "third",
    "furthest": "farthest", "further": "farther", "gray": "grey",
}

# Keyword lists behind the Nr3D language flags (the real flags were annotated; ours are a heuristic).
SPATIAL_WORDS = frozenset(
    "left right front behind back near nearest next closest closer farthest farther far between above below "
    "under underneath beneath over on top bottom middle center centre corner beside against facing opposite "
    "across inside outside side end edge toward towards by".split()
)
COLOR_WORDS = frozenset(
    "white black grey brown red blue green yellow orange purple pink beige tan silver gold golden dark light "
    "colored coloured colorful wooden".split()
)
SHAPE_WORDS = frozenset(
    "round square rectangular circular oval curved flat tall short long wide narrow thin thick big bigger "
    "biggest small smaller smallest large larger largest tiny huge tallest shortest longest higher lower "
    "taller shorter".split()
)


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens without punctuation, as in the Nr3D/Sr3D `tokens` column."""
    text = text.lower().replace("\u2019", "'")
    for pattern, repl in _CONTRACTIONS:
        text = pattern.sub(repl, text)
    return [_SPELLING.get(t, t) for t in re.findall(r"[a-z0-9]+", text)]


# ---------------------------------------------------------------- reading


def _rows(path, required: tuple[str, ...]) -> Iterator[tuple[int, str, dict[str, str]]]:
    """(0-based row index, "row n (line l)", {column: value}) for each data row.

    Blank lines are skipped and not counted, as pandas does, so the index matches `pd.read_csv`'s.
    """
    reader = csv.reader(io.StringIO(read_utf8_text(path), newline=""))
    header = None
    index, line = 0, 0
    try:
        for record in reader:
            start, line = line + 1, reader.line_num
            if not record:
                continue
            if header is None:
                header = [name.strip() for name in record]
                duplicates = sorted({n for n in header if header.count(n) > 1})
                if duplicates:
                    raise FormatError(path, f"header (line {start})", f"duplicate column(s) {', '.join(duplicates)}")
                missing = [c for c in required if c not in header]
                if missing:
                    raise FormatError(
                        path, f"header (line {start})",
                        f"missing required column(s) {', '.join(missing)}; header found: {','.join(header)}",
                    )
                continue
            where = f"row {index + 1} (line {start})"
            if len(record) != len(header):
                raise FormatError(path, where, f"has {len(record)} fields, the header has {len(header)}")
            yield index, where, dict(zip(header, record))
            index += 1
    except csv.Error as e:
        raise FormatError(path, f"line {reader.line_num}", f"CSV error: {e}") from None
    if header is None:
        raise FormatError(path, "", "file is empty")


def _int(path, where: str, row: dict[str, str], key: str) -> int:
    value = row[key].strip()
    if not _INT_RE.fullmatch(value):
        raise FormatError(path, where, f"{key} {row[key]!r} is not an integer")
    return int(value)


def _text(path, where: str, row: dict[str, str], key: str) -> str:
    value = row[key].strip()
    if not value:
        raise FormatError(path, where, f"empty {key}")
    return value


def _bool(path, where: str, row: dict[str, str], key: str) -> bool:
    value = row[key].strip().lower()
    if value not in ("true", "false"):
        raise FormatError(path, where, f"{key} {row[key]!r} is not True or False")
    return value == "true"


def _description(path, where: str, row: dict[str, str], desc_id: str, source: str) -> Description:
    return Description(
        desc_id=desc_id,
        scene_id=_text(path, where, row, "scan_id"),
        object_id=_int(path, where, row, "target_id"),
        object_name=_text(path, where, row, "instance_type"),
        text=_text(path, where, row, "utterance"),
        source=source,
    )


def read_nr3d(path, only_correct: bool = False) -> list[Description]:
    """Read an Nr3D CSV (nr3d.csv or a split of it) into Descriptions, in file order.

    desc_id is "nr3d/{assignmentid}" when that column is present, else "nr3d/{row}" (0-based row,
    the pandas index). With only_correct, rows whose correct_guess is False (the listener picked the
    wrong object) are dropped; the file then needs a correct_guess column. Bad input raises
    FormatError naming the file and the row.
    """
    required = REQUIRED + (("correct_guess",) if only_correct else ())
    out = []
    for index, where, row in _rows(path, required):
        desc_id = f"nr3d/{_int(path, where, row, 'assignmentid')}" if "assignmentid" in row else f"nr3d/{index}"
        description = _description(path, where, row, desc_id, "nr3d")
        correct = _bool(path, where, row, "correct_guess") if "correct_guess" in row else True
        if correct or not only_correct:
            out.append(description)
    return out


def read_sr3d(path) -> list[Description]:
    """Read an Sr3D CSV (sr3d.csv, sr3d+.csv or a split) into Descriptions, in file order.

    desc_id is "sr3d/{row}" with the 0-based row index (the pandas index). Bad input raises
    FormatError naming the file and the row.
    """
    return [_description(path, where, row, f"sr3d/{index}", "sr3d") for index, where, row in _rows(path, REQUIRED)]


# ---------------------------------------------------------------- writing


def _target(scenes: dict[str, Scene], d: Description) -> tuple[Scene, SceneObject]:
    if d.scene_id not in scenes:
        raise ValueError(f"{d.desc_id}: no scene {d.scene_id!r} among the {len(scenes)} scenes given")
    scene = scenes[d.scene_id]
    try:
        return scene, scene.object(d.object_id)
    except KeyError as e:
        raise ValueError(f"{d.desc_id}: {e.args[0]}") from None


def _context(scene: Scene, target: SceneObject, instance_type: str) -> tuple[list[int], str]:
    """Distractor ids (same-label objects, scene order) and the stimulus_id they make."""
    distractors = [o.object_id for o in scene.objects if o.label == target.label and o.object_id != target.object_id]
    parts = [scene.scene_id, instance_type, str(len(distractors) + 1), str(target.object_id)]
    return distractors, "-".join(parts + [str(i) for i in distractors]).replace(" ", "_")


def _noun_forms(label: str) -> set[str]:
    head = label.lower().split()[-1] if label.split() else ""
    forms = {head, head + "s", head + "es"}
    if head.endswith("y"):
        forms.add(head[:-1] + "ies")
    if head.endswith("f"):
        forms.add(head[:-1] + "ves")
    return forms - {""}


def _mentions(tokens: list[str], label: str) -> bool:
    return not _noun_forms(label).isdisjoint(tokens)


def _text_or_fail(d: Description) -> str:
    text = d.text.strip()
    if not text:
        raise ValueError(f"{d.desc_id}: empty description text")
    return text


def _write_csv(path, header: tuple[str, ...], rows: list[list]) -> None:
    # pandas' to_csv conventions: "\n" line ends, minimal quoting, True/False, list reprs.
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _assignment_ids(descriptions: list[Description]) -> list[int]:
    """The id in an "nr3d/{n}" desc_id, else the row index; duplicates are an error."""
    ids, seen = [], {}
    for i, d in enumerate(descriptions):
        m = _NR3D_ID_RE.fullmatch(d.desc_id)
        aid = int(m.group(1)) if m else i
        if aid in seen:
            raise ValueError(f"{d.desc_id} and {seen[aid]} would both get assignmentid {aid}")
        seen[aid] = d.desc_id
        ids.append(aid)
    return ids


def write_nr3d(path, descriptions: list[Description], scenes: dict[str, Scene]) -> None:
    """Write Descriptions as an Nr3D CSV with every published column filled.

    The target is looked up in `scenes`; distractors are the scene's other objects with the
    target's label. assignmentid comes from an "nr3d/{n}" desc_id (else the row index),
    correct_guess is True, speaker/listener ids are stable hashes of desc_id, tokens is
    `tokenize(text)`, and the language flags come from keyword tests on the tokens. Deterministic.
    """
    rows = []
    for d, aid in zip(descriptions, _assignment_ids(descriptions)):
        scene, target = _target(scenes, d)
        _, stimulus_id = _context(scene, target, d.object_name)
        text = _text_or_fail(d)
        tokens = tokenize(text)
        others = {o.label for o in scene.objects if o.label != target.label}
        rows.append([
            aid, stimulus_id, text, True,
            zlib.crc32(d.desc_id.encode()) % N_WORKERS, zlib.crc32(f"{d.desc_id}#listener".encode()) % N_WORKERS,
            d.scene_id, d.object_name, d.object_id, repr(tokens), "nr3d",
            _mentions(tokens, d.object_name) or _mentions(tokens, target.label),
            any(_mentions(tokens, label) for label in sorted(others)),
            not SPATIAL_WORDS.isdisjoint(tokens),
            not COLOR_WORDS.isdisjoint(tokens),
            not SHAPE_WORDS.isdisjoint(tokens),
        ])
    _write_csv(path, NR3D_COLUMNS, rows)


def write_sr3d(
    path,
    descriptions: list[Description],
    scenes: dict[str, Scene],
    anchor_ids: list[list[int]],
    reference_types: list[str],
) -> None:
    """Write Descriptions as an Sr3D CSV with every published column filled.

    `reference_types` are Sr3D's fine types (closest, farthest, above, below, supported-by,
    supporting, left, right, front, back, between); the coarse type is derived from them.
    "between" takes two anchors, every other type one. anchors_types are the anchors' scene labels.
    Rows are written in order, so read_sr3d gives them back as "sr3d/{row}". Deterministic.
    """
    if not len(descriptions) == len(anchor_ids) == len(reference_types):
        raise ValueError(
            f"{len(descriptions)} descriptions need as many anchor_ids and reference_types, "
            f"got {len(anchor_ids)} and {len(reference_types)}"
        )
    rows = []
    for d, anchors, ref_type in zip(descriptions, anchor_ids, reference_types):
        if ref_type not in COARSE_REFERENCE_TYPE:
            raise ValueError(f"{d.desc_id}: unknown Sr3D reference type {ref_type!r}; "
                             f"expected one of {', '.join(COARSE_REFERENCE_TYPE)}")
        expected = 2 if ref_type == "between" else 1
        if len(anchors) != expected:
            raise ValueError(f"{d.desc_id}: a {ref_type!r} reference has {expected} anchor(s), got {list(anchors)}")
        scene, target = _target(scenes, d)
        anchor_labels = []
        for aid in anchors:
            try:
                anchor_labels.append(scene.object(aid).label)
            except KeyError as e:
                raise ValueError(f"{d.desc_id}: anchor {e.args[0]}") from None
        distractors, stimulus_id = _context(scene, target, d.object_name)
        text = _text_or_fail(d)
        tokens = tokenize(text)
        rows.append([
            d.scene_id, d.object_id, repr(distractors), text, stimulus_id,
            COARSE_REFERENCE_TYPE[ref_type], ref_type, d.object_name,
            repr(anchor_labels), repr([int(a) for a in anchors]), repr(tokens), "sr3d",
            _mentions(tokens, d.object_name) or _mentions(tokens, target.label), True,
        ])
    _write_csv(path, SR3D_COLUMNS, rows)
