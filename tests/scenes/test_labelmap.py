"""Tests for ideal/scenes/labelmap.py: fixtures follow scannetv2-labels.combined.tsv's layout."""
from __future__ import annotations

import pytest

from ideal.scenes.labelmap import HEADER, read_label_map, write_label_map
from ideal.scenes.types import FormatError

HEAD = "\t".join(HEADER)
# Rows in the published layout (17 tab-separated fields; some left empty, as in the real file).
ROWS = [
    "1\twall\twall\t8277\t1\t12\tWall\twall\twall\twall\t\twall\t04460130\tn04546855\twall.n.01\twall\t1",
    "2\tchair\tchair\t4646\t5\t4\tChair\tchair\tchair\tchair\tchair\tchair\t03001627\tn03001627\tchair.n.01\t"
    "chair\t3",
    "22\tOffice Chair \toffice chair\t595\t5\t4\tChair\tchair\tchair\tchair\tchair\tchair\t03001627\t"
    "n04373704\tswivel_chair.n.01\tchair\t3",
    "338\tdecoration\tdecoration\t60\t40\t7\t\t\totherprop\t\t\t\t\tn03169390\tdecoration.n.01\tmisc\t40",
]


def write(tmp_path, rows, head=HEAD):
    path = tmp_path / "scannetv2-labels.combined.tsv"
    path.write_text("\n".join([head, *rows]) + "\n", encoding="utf-8")
    return path


def test_raw_to_nyu40class(tmp_path):
    mapping = read_label_map(write(tmp_path, ROWS))
    # Keys are stripped and lower-cased; decoration's empty nyu40class is skipped.
    assert mapping == {"wall": "wall", "chair": "chair", "office chair": "chair"}


def test_raw_to_category_gives_scannet200_names(tmp_path):
    mapping = read_label_map(write(tmp_path, ROWS), to_column="category")
    assert mapping["office chair"] == "office chair" and mapping["decoration"] == "decoration"


def test_identical_duplicates_and_blank_lines_are_fine(tmp_path):
    assert read_label_map(write(tmp_path, [ROWS[1], "", ROWS[1]])) == {"chair": "chair"}


def test_missing_column_named_with_header(tmp_path):
    with pytest.raises(FormatError) as e:
        read_label_map(write(tmp_path, ROWS), to_column="nyu41class")
    assert e.value.where == "line 1" and "'nyu41class'" in e.value.problem and "mpcat40index" in e.value.problem


def test_row_with_too_few_fields(tmp_path):
    with pytest.raises(FormatError) as e:
        read_label_map(write(tmp_path, [ROWS[0], "7\tbed\tbed\t370"]))
    assert e.value.where == "line 3" and "4 fields" in e.value.problem


def test_conflicting_duplicate(tmp_path):
    clash = ROWS[1].replace("\tchair\t3", "\tfurniture\t3").replace("\tChair\tchair\t", "\tChair\tseat\t")
    with pytest.raises(FormatError) as e:
        read_label_map(write(tmp_path, [ROWS[0], ROWS[1], clash]))
    assert e.value.where == "line 4" and "'seat'" in e.value.problem and "line 3" in e.value.problem


def test_write_then_read(tmp_path):
    path = tmp_path / "labels.tsv"
    write_label_map(path, [{"id": 1, "raw_category": "dining chair", "category": "chair", "nyu40class": "chair"},
                           {"id": 2, "raw_category": "lamp", "category": "lamp"}])
    lines = path.read_text().splitlines()
    assert lines[0] == HEAD and lines[2] == "2\tlamp\tlamp" + "\t" * 14
    assert all(len(line.split("\t")) == 17 for line in lines)
    assert read_label_map(path) == {"dining chair": "chair"}
    assert read_label_map(path, to_column="category") == {"dining chair": "chair", "lamp": "lamp"}


def test_write_rejects_unknown_column(tmp_path):
    with pytest.raises(ValueError, match="nyu41"):
        write_label_map(tmp_path / "x.tsv", [{"raw_category": "lamp", "nyu41": "lamp"}])
