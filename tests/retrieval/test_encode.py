"""The shard plan of a gallery build (ideal.retrieval.encode): a re-run of the same plan is let in, any other plan
for the same folder is refused naming what differs, shards of unknown origin are refused, and what is left to do
is exactly the missing outputs."""
import json

import pytest

from ideal import checkpoints
from ideal.retrieval.encode import PLAN_FILE, pending_work, plan_shards

SHARDS = [["scene0000_00", "scene0001_00"], ["scene0002_00"]]


def test_same_plan_again_and_other_plans_refused(tmp_path):
    paths = plan_shards(tmp_path, SHARDS, source="/data/scans", weights="/w", weights_sha256="ab")
    assert [p.name for p in paths] == ["part-00000", "part-00001"]
    stored = json.loads((tmp_path / PLAN_FILE).read_text())
    assert stored["shards"] == 2 and stored["scenes"] == 3 and stored["source"] == "/data/scans"
    assert plan_shards(tmp_path, SHARDS, source="/data/scans", weights="/w", weights_sha256="ab") == paths
    with pytest.raises(ValueError, match=r"weights_sha256 'ab' -> 'cd'"):
        plan_shards(tmp_path, SHARDS, source="/data/scans", weights="/w", weights_sha256="cd")
    with pytest.raises(ValueError, match="shard_ids_sha256"):  # the same scenes cut into other shards
        plan_shards(tmp_path, [["scene0000_00"], ["scene0001_00", "scene0002_00"]], source="/data/scans",
                    weights="/w", weights_sha256="ab")


def test_shards_without_a_plan_are_refused(tmp_path):
    (tmp_path / "part-00000.parquet").write_bytes(b"")
    with pytest.raises(ValueError, match="no plan.json"):
        plan_shards(tmp_path, SHARDS, source="x")


def test_pending_work_is_the_missing_outputs(tmp_path):
    tables = [tmp_path / "t0", tmp_path / "t1"]
    emb = {"base": [tmp_path / "b0.parquet", tmp_path / "b1.parquet"]}
    assert len(pending_work(SHARDS, tables, emb)) == 2
    tables[0].mkdir()
    emb["base"][0].write_bytes(b"x")
    emb["base"][1].write_bytes(b"x")
    (row,) = pending_work(SHARDS, tables, emb)
    assert row == {"scene_ids": SHARDS[1], "tables": str(tables[1]), "encodings": {}}


def test_checkpoint_digest_follows_the_bytes(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"1234")
    (tmp_path / "config.json").write_text("{}")
    first = checkpoints.digest(tmp_path)
    assert checkpoints.digest(tmp_path) == first
    (tmp_path / "model.safetensors").write_bytes(b"1235")  # retrained in place
    assert checkpoints.digest(tmp_path) != first
    assert checkpoints.digest("labels") == "labels"
    with pytest.raises(ValueError, match="not a checkpoint folder"):
        checkpoints.resolve(tmp_path / "nowhere")
