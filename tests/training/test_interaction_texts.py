"""IAT's interaction texts: answers to a fixed number of Q1 then Q2 questions per training query, over
training scenes only, reproducible, resumable."""
import pyarrow.parquet as pq
import pytest

from ideal.config import load_config
from ideal.encoders.scene import LabelBank
from ideal.retrieval.retriever import BagOfLabelsRetriever
from ideal.scenes import load_synthetic
from ideal.scenes.dataset import split_scene_ids
from ideal.scenes.scanrefer import read_scanrefer
from ideal.training.data import build_train_arrays
from ideal.training.interaction_texts import generate_interaction_texts, iat_arrays, read_interaction_texts

CFG = ["iat.dialogs=6", "iat.q1=1", "iat.q2=2", "iat.shard_size=4", "scene_encoder.width=32", "scene_encoder.ffn=64"]


@pytest.fixture(scope="module")
def setup(bench_root, text_encoder):
    return (bench_root, load_synthetic(bench_root, "train", points_per_object=0), text_encoder,
            BagOfLabelsRetriever(text_encoder))


def run(setup, out):
    root, train_ds, text, retriever = setup
    return generate_interaction_texts(train_ds, retriever, text, load_config(None, CFG), out, progress=False)


@pytest.fixture(scope="module")
def shards(setup, tmp_path_factory):
    """One run's shards, read by every test below (the tests only read them)."""
    return run(setup, tmp_path_factory.mktemp("iat"))


def test_only_training_scenes_and_descriptions(setup, shards):
    root, train_ds, _, _ = setup
    table = read_interaction_texts(shards).to_pylist()
    assert len(table) > 0
    # round 1 is the detail probe, rounds 2-3 the diverge explorations; only informative answers are kept
    assert {r["round"] for r in table} <= {1, 2, 3} and {r["kind"] for r in table} <= {"Q1", "Q2"}
    assert all((r["kind"] == "Q1") == (r["round"] == 1) for r in table)
    assert not any(r["text"].lower().startswith("i don't know") for r in table)
    assert all(r["segments"] == [r["text"]] for r in table)
    assert len({(r["dialog_id"], r["round"]) for r in table}) == len(table)  # one text per answer
    train_ids, val_ids = set(split_scene_ids(root, "train")), set(split_scene_ids(root, "val"))
    assert not train_ids & set(split_scene_ids(root, "dev"))
    assert {r["scene_id"] for r in table} <= train_ids
    val_texts = [d.text.lower() for d in read_scanrefer(root / "ScanRefer_filtered_val.json")]
    val_texts += [d.text.lower() for d in load_synthetic(root, "val", points_per_object=0).descriptions]
    blob = "\n".join(r["text"].lower() for r in table)
    leaked = [t for t in val_texts if len(t) > 25 and t in blob]
    assert not leaked, leaked[:3]
    assert not any(v in blob for v in val_ids)


def test_reproducible_and_resumable(setup, shards, tmp_path):
    """A copy of the run's folder with a shard lost: run again, the kept shard is not rewritten and the lost one
    comes back identical (each shard's dialogs are seeded by their ids, not by the run)."""
    import shutil

    a = read_interaction_texts(shards).to_pylist()
    assert len(shards) == 2  # 6 dialogs in shards of 4
    out = tmp_path / "b"
    shutil.copytree(shards[0].parent, out)
    kept, lost = out / shards[0].name, out / shards[1].name
    stamp = kept.stat().st_mtime_ns
    lost.unlink()
    again = run(setup, out)
    assert [p.name for p in again] == [p.name for p in shards]
    assert kept.stat().st_mtime_ns == stamp  # a kept shard is not rewritten
    assert pq.read_table(lost).equals(pq.read_table(shards[1]))
    assert read_interaction_texts(again).to_pylist() == a


def test_iat_arrays_map_texts_to_their_scenes(setup, shards):
    root, train_ds, text, _ = setup
    cfg = load_config(None, CFG)
    base = build_train_arrays(train_ds, text, LabelBank(text.embed_backbone), cfg.scene_encoder, progress=False)
    table = read_interaction_texts(shards)
    arr = iat_arrays(base, table, text)
    assert arr.text_feats.shape == (table.num_rows, 384)
    assert [base.scene_ids[i] for i in arr.text_scene] == table.column("scene_id").to_pylist()
    bad = table.set_column(table.schema.get_field_index("scene_id"), "scene_id",
                           [["scene9999_00"] * table.num_rows])
    with pytest.raises(ValueError, match="outside the training set"):
        iat_arrays(base, bad, text)


def test_llm_roles_write_the_interaction_texts(setup, tmp_path, monkeypatch):
    """iat.roles=llm: the questioner, the simulated user's answers and the reconstruction run on dialog.llm's model
    (SmolLM2, no network); the texts are the model's answers about training scenes."""
    from ideal import build
    from ideal.dialog import models
    from ideal.training import interaction_texts

    models.ensure_model("smollm2")
    made, roles_of = [], build.roles

    def spy(*args, **kwargs):
        made.append(roles_of(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(interaction_texts.build, "roles", spy)
    root, train_ds, text, retriever = setup
    cfg = load_config(None, CFG + ["iat.dialogs=2", "iat.q1=1", "iat.q2=1", "iat.roles=llm", "dialog.llm=smollm2",
                                        "dialog.llm_engine=transformers"])
    table = read_interaction_texts(generate_interaction_texts(train_ds, retriever, text, cfg, tmp_path,
                                                              progress=False)).to_pylist()
    roles, = made
    assert roles.questioner.name == "llm" and roles.questioner.stats["calls"] == 4
    assert roles.answerer.writer.stats["parsed"] >= 1  # the model wrote answers, not only the grounded fallback
    assert 0 < len(table) <= 4 and {r["kind"] for r in table} <= {"Q1", "Q2"}
    assert {r["scene_id"] for r in table} <= set(split_scene_ids(root, "train"))
    with pytest.raises(ValueError, match="iat.roles"):
        generate_interaction_texts(train_ds, retriever, text, load_config(None, CFG + ["iat.roles=gpt"]), tmp_path)
