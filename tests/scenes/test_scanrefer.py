"""Tests for ideal/scenes/scanrefer.py: fixtures are written in the published ScanRefer layout."""
from __future__ import annotations

import json

import pytest

from ideal.scenes.scanrefer import read_scanrefer, tokenize, write_scanrefer
from ideal.scenes.types import Description, FormatError

# The first entry is a published ScanRefer record as quoted in public READMEs (its token list was
# cut there after "brown"; the rest is filled in by the same word/punctuation rule). The second uses
# the values of the official README's "Data format" example (object_id "34", "coffee_table", ann_id "1").
PUBLISHED = """[{"scene_id": "scene0011_00", "object_id": "5", "object_name": "chair", "ann_id": "3", \
"description": "there is a dark brown wooden and leather chair. placed in the table of the kitchen.", \
"token": ["there", "is", "a", "dark", "brown", "wooden", "and", "leather", "chair", ".", "placed", "in", "the", \
"table", "of", "the", "kitchen", "."]}, \
{"scene_id": "scene0000_00", "object_id": "34", "object_name": "coffee_table", "ann_id": "1", \
"description": "this is a brown coffee table. it is in front of the couch.", \
"token": ["this", "is", "a", "brown", "coffee", "table", ".", "it", "is", "in", "front", "of", "the", "couch", "."]}]"""


def entry(**overrides):
    base = {"scene_id": "scene0000_00", "object_id": "2", "object_name": "kitchen_cabinets", "ann_id": "0",
            "description": "the kitchen cabinets under the sink.", "token": ["the", "kitchen", "cabinets"]}
    base.update(overrides)
    return base


def write_json(tmp_path, value, name="ScanRefer_filtered_val.json"):
    path = tmp_path / name
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def test_published_excerpt(tmp_path):
    path = tmp_path / "ScanRefer_filtered_val.json"
    path.write_text(PUBLISHED, encoding="utf-8")
    chair, table = read_scanrefer(path)
    assert chair == Description(
        desc_id="scene0011_00/5/3", scene_id="scene0011_00", object_id=5, object_name="chair",
        text="there is a dark brown wooden and leather chair. placed in the table of the kitchen.",
        source="scanrefer",
    )
    assert table.object_id == 34 and table.object_name == "coffee table" and table.desc_id == "scene0000_00/34/1"


def test_tokenize_like_scanrefer():
    published = json.loads(PUBLISHED)
    for e in published:
        assert tokenize(e["description"]) == e["token"]
    assert tokenize("It's next to the TV, left.") == ["it's", "next", "to", "the", "tv", ",", "left", "."]


def test_underscores_become_spaces_and_text_is_stripped(tmp_path):
    path = write_json(tmp_path, [entry(description="  the kitchen cabinets under the sink.\n")])
    (d,) = read_scanrefer(path)
    assert d.object_name == "kitchen cabinets"
    assert d.text == "the kitchen cabinets under the sink."
    assert d.desc_id == "scene0000_00/2/0"


def test_extra_keys_are_ignored_and_key_order_does_not_matter(tmp_path):
    e = entry(eval_type="st_w_d", camera={"position": [0, 0, 1]})
    reordered = {k: e[k] for k in reversed(list(e))}
    (d,) = read_scanrefer(write_json(tmp_path, [reordered]))
    assert d.object_id == 2 and d.object_name == "kitchen cabinets"


def test_round_trip(tmp_path):
    descriptions = [
        Description("scene0000_00/2/0", "scene0000_00", 2, "kitchen cabinets", "the cabinets under the sink."),
        Description("scene0000_00/2/1", "scene0000_00", 2, "kitchen cabinets", "brown cabinets, by the fridge."),
        Description("scene0011_00/5/3", "scene0011_00", 5, "chair", "a dark brown chair."),
    ]
    path = tmp_path / "out.json"
    write_scanrefer(path, descriptions)
    assert read_scanrefer(path) == descriptions
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert list(raw[0]) == ["scene_id", "object_id", "object_name", "ann_id", "description", "token"]
    assert raw[0]["object_id"] == "2" and raw[0]["ann_id"] == "0" and raw[0]["object_name"] == "kitchen_cabinets"
    assert raw[1]["token"] == ["brown", "cabinets", ",", "by", "the", "fridge", "."]


def test_write_is_deterministic(tmp_path):
    descriptions = [Description("x", "scene0001_00", 7, "office chair", "The black office chair.", "nr3d")]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_scanrefer(a, descriptions)
    write_scanrefer(b, list(descriptions))
    assert a.read_bytes() == b.read_bytes()


def test_write_numbers_foreign_ids_per_object(tmp_path):
    descriptions = [
        Description("nr3d/17", "scene0001_00", 7, "chair", "the red chair"),
        Description("scene0001_00/7/0", "scene0001_00", 7, "chair", "the chair by the door"),
        Description("nr3d/18", "scene0001_00", 7, "chair", "the chair by the window"),
        Description("nr3d/19", "scene0001_00", 8, "desk", "the desk"),
    ]
    path = tmp_path / "out.json"
    write_scanrefer(path, descriptions)
    assert [d.desc_id for d in read_scanrefer(path)] == [
        "scene0001_00/7/1", "scene0001_00/7/0", "scene0001_00/7/2", "scene0001_00/8/0"]


def test_write_with_explicit_ann_ids(tmp_path):
    descriptions = [Description("a", "scene0001_00", 7, "chair", "the red chair")]
    path = tmp_path / "out.json"
    write_scanrefer(path, descriptions, ann_ids=[4])
    assert read_scanrefer(path)[0].desc_id == "scene0001_00/7/4"
    with pytest.raises(ValueError, match="ann_ids has 2 items"):
        write_scanrefer(path, descriptions, ann_ids=[1, 2])
    with pytest.raises(ValueError, match="would both be"):
        write_scanrefer(path, descriptions * 2, ann_ids=[1, 1])


# ---------------------------------------------------------------- one test per error path


def test_error_missing_key(tmp_path):
    e = entry()
    del e["description"]
    path = write_json(tmp_path, [entry()] * 17 + [e])
    with pytest.raises(FormatError) as err:
        read_scanrefer(path)
    assert err.value.where == "entry 17" and err.value.problem == "missing 'description'"
    assert str(path) in str(err.value)


def test_error_object_id_not_an_integer_string(tmp_path):
    with pytest.raises(FormatError, match=r"entry 1: object_id 'abc' is not an integer string"):
        read_scanrefer(write_json(tmp_path, [entry(), entry(object_id="abc")]))


def test_error_ann_id_not_an_integer_string(tmp_path):
    with pytest.raises(FormatError, match=r"entry 0: ann_id '-1' is not an integer string"):
        read_scanrefer(write_json(tmp_path, [entry(ann_id="-1")]))


def test_error_empty_description(tmp_path):
    with pytest.raises(FormatError, match=r"entry 0: empty description"):
        read_scanrefer(write_json(tmp_path, [entry(description="   ")]))


def test_error_description_not_a_string(tmp_path):
    with pytest.raises(FormatError, match=r"entry 0: description must be a string, got list"):
        read_scanrefer(write_json(tmp_path, [entry(description=["a"])]))


def test_error_entry_not_an_object(tmp_path):
    with pytest.raises(FormatError, match=r"entry 1: expected an object, got str"):
        read_scanrefer(write_json(tmp_path, [entry(), "scene0000_00"]))


def test_error_top_level_not_a_list(tmp_path):
    with pytest.raises(FormatError, match=r"top level: expected a JSON list of entries, got a dict"):
        read_scanrefer(write_json(tmp_path, {"entries": [entry()]}))


def test_error_invalid_json_names_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"scene_id": "scene0000_00",\n   "object_id": 2,,}\n]', encoding="utf-8")
    with pytest.raises(FormatError, match=r"line 3 column 19: invalid JSON") as err:
        read_scanrefer(path)
    assert err.value.where == "line 3 column 19"


def test_error_not_utf8_gives_byte_offset(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes(b'[{"description": "caf\xe9"}]')
    with pytest.raises(FormatError, match=r"line 1: not UTF-8: invalid byte 0xe9 at byte offset 21"):
        read_scanrefer(path)


def test_error_empty_file(tmp_path):
    path = tmp_path / "empty.json"
    path.write_bytes(b"  \n")
    with pytest.raises(FormatError, match=r"empty\.json: file is empty"):
        read_scanrefer(path)


def test_bom_is_tolerated(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps([entry()]).encode())
    assert len(read_scanrefer(path)) == 1
