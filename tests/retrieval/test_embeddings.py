import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ideal.retrieval.embeddings import embedding_schema, embeddings_table, read_embeddings, write_embeddings
from ideal.scenes.types import FormatError


def vectors(n, d=8, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


IDS = [f"scene{i:04d}_00" for i in range(100)]


def test_round_trip_schema_and_values(tmp_path):
    v = vectors(100)
    write_embeddings(tmp_path / "e.parquet", IDS, v)
    assert pq.read_schema(tmp_path / "e.parquet").remove_metadata() == embedding_schema(8)
    ids, back = read_embeddings(tmp_path / "e.parquet")
    assert ids == IDS and back.dtype == np.float32 and back.flags.c_contiguous
    np.testing.assert_array_equal(back, v)


def test_round_trip_many_row_groups_and_empty(tmp_path):
    v = vectors(100)
    pq.write_table(embeddings_table(IDS, v), tmp_path / "g.parquet", row_group_size=7)
    ids, back = read_embeddings(tmp_path / "g.parquet")
    assert ids == IDS
    np.testing.assert_array_equal(back, v)
    write_embeddings(tmp_path / "empty.parquet", [], np.zeros((0, 8), np.float32))
    ids, back = read_embeddings(tmp_path / "empty.parquet")
    assert ids == [] and back.shape == (0, 8)


def test_table_is_built_from_one_buffer():
    v = vectors(5, d=3)
    emb = embeddings_table(IDS[:5], v).column("embedding").chunk(0)
    assert emb.type == pa.list_(pa.field("item", pa.float32(), nullable=False), 3)
    np.testing.assert_array_equal(emb.values.to_numpy(), v.ravel())


def test_reads_float64_lists_from_other_tools(tmp_path):
    p = tmp_path / "pandas.parquet"
    pq.write_table(pa.table({"scene_id": pa.array(["a", "b"], pa.large_string()),
                             "embedding": [[1.0, 2.0], [3.0, 4.5]], "other": [1, 2]}), p)
    ids, v = read_embeddings(p)
    assert ids == ["a", "b"] and v.dtype == np.float32
    np.testing.assert_array_equal(v, [[1, 2], [3, 4.5]])


def test_writer_rejects_bad_input():
    with pytest.raises(ValueError, match="2 ids for 3 vectors"):
        embeddings_table(["a", "b"], vectors(3))
    with pytest.raises(ValueError, match=r"ids\[2\]: scene_id 'a' repeats row 0"):
        embeddings_table(["a", "b", "a"], vectors(3))
    with pytest.raises(ValueError, match=r"got shape \(8,\)"):
        embeddings_table(["a"], vectors(1)[0])
    bad = vectors(3)
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match=r"row 1 \('b'\) has non-finite"):
        embeddings_table(["a", "b", "c"], bad)


def write(path, scene_id, embedding, **types):
    cols = {"scene_id": pa.array(scene_id, types.get("id_type")),
            "embedding": pa.array(embedding, types.get("emb_type"))}
    pq.write_table(pa.table(cols), path)
    return path


FL2 = pa.list_(pa.float32(), 2)


@pytest.mark.parametrize("scene_id, embedding, types, error", [
    (["a", "b"], [[1.0, 2.0], [1.0]], {}, r"bad\.parquet: row 1: embedding has 1 values, row 0 has 2"),
    (["a", "b"], [[1.0, 2.0], [float("nan"), 1.0]], {}, r"bad\.parquet: row 1: embedding has non-finite values"),
    (["a", "b", "c"], [[1, 2], [1, 2], [float("inf"), 0]], {"emb_type": FL2}, r"row 2: embedding has non-finite"),
    (["a", "b"], [[1.0, 2.0], [1e300, 0.0]], {}, r"row 1: embedding has non-finite values"),  # overflows float32
    (["a", None], [[1.0, 2.0], [1.0, 2.0]], {}, r"bad\.parquet: row 1: scene_id is null"),
    (["a", "b", "c"], [[1, 2], None, [1, 2]], {"emb_type": FL2}, r"bad\.parquet: row 1: embedding is null"),
    (["a", "b", "c"], [[1, 2], [1, 2], [1, None]], {"emb_type": FL2}, r"row 2: embedding has a null value"),
    (["a", "b", "a"], [[1, 2], [3, 4], [5, 6]], {"emb_type": FL2}, r"bad\.parquet: row 2: scene_id 'a' repeats row 0"),
    ([1, 2], [[1.0, 2.0], [1.0, 2.0]], {}, r"column 'scene_id': expected string, got int64"),
    (["a"], [["x", "y"]], {}, r"column 'embedding': expected fixed_size_list<float32>\[d\], got list<element: string>"),
    (["a"], [1.0], {}, r"column 'embedding': expected fixed_size_list<float32>\[d\], got double"),
    (["a"], [[]], {"emb_type": pa.list_(pa.float32())}, r"column 'embedding': embeddings have no values"),
])
def test_read_errors_name_file_and_row(tmp_path, scene_id, embedding, types, error):
    with pytest.raises(FormatError, match=error):
        read_embeddings(write(tmp_path / "bad.parquet", scene_id, embedding, **types))


def test_read_error_rows_count_across_row_groups(tmp_path):
    v = vectors(100)
    v[57, 3] = np.inf
    table = pa.table({"scene_id": IDS, "embedding": pa.FixedSizeListArray.from_arrays(v.ravel(), 8)})
    pq.write_table(table, tmp_path / "g.parquet", row_group_size=10)
    with pytest.raises(FormatError, match="row 57: embedding has non-finite"):
        read_embeddings(tmp_path / "g.parquet")
    table = pa.table({"scene_id": IDS[:99] + [IDS[42]], "embedding": pa.FixedSizeListArray.from_arrays(
        vectors(100).ravel(), 8)})
    pq.write_table(table, tmp_path / "g.parquet", row_group_size=10)
    with pytest.raises(FormatError, match="row 99: scene_id 'scene0042_00' repeats row 42"):
        read_embeddings(tmp_path / "g.parquet")


def test_missing_columns_and_unreadable_files(tmp_path):
    p = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"scene_id": ["a"]}), p)
    with pytest.raises(FormatError, match=r"bad\.parquet: schema: missing column 'embedding'; columns are"):
        read_embeddings(p)
    pq.write_table(pa.table({"embedding": [[1.0]]}), p)
    with pytest.raises(FormatError, match=r"schema: missing column 'scene_id'"):
        read_embeddings(p)
    (tmp_path / "text.parquet").write_text("scene_id,embedding\n")
    with pytest.raises(FormatError, match=r"text\.parquet: not a readable parquet file"):
        read_embeddings(tmp_path / "text.parquet")
    with pytest.raises(FormatError, match=r"absent\.parquet: not a readable parquet file"):
        read_embeddings(tmp_path / "absent.parquet")
