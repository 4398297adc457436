"""Late interaction (ideal.retrieval.objects): a scene scores as its best object, worked by hand; take / pooled /
concatenate; an empty room's zero row; the object vectors file read back as written, every broken row named."""
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ideal.retrieval.objects import ObjectVectors, objects_schema, read_objects, write_objects
from ideal.scenes.types import FormatError

# three scenes of 1, 2 and 3 objects in the plane (unit vectors)
A = [[1, 0]]
B = [[0, 1], [0.6, 0.8]]
C = [[-1, 0], [0.8, 0.6], [0, -1]]
HAND = ObjectVectors(np.array(A + B + C, np.float32), [0, 1, 3, 6], [4, 0, 7, 2, 1, 5])
TEXTS = np.array([[1, 0], [0, 1]], np.float32)
IDS = ["scene0000_00", "scene0001_00", "scene0002_00"]


def test_a_scene_scores_as_its_best_object():
    # t1 = (1, 0): A 1; B max(0, 0.6) = 0.6; C max(-1, 0.8, 0) = 0.8
    # t2 = (0, 1): A 0; B max(1, 0.8) = 1;   C max(0, 0.6, -1) = 0.6
    np.testing.assert_allclose(HAND.scores(TEXTS), [[1, 0.6, 0.8], [0, 1, 0.6]], atol=1e-7)
    np.testing.assert_allclose(HAND.scores(TEXTS, np.array([2, 0])), [[0.8, 1], [0.6, 0]], atol=1e-7)
    assert HAND.scores(TEXTS[:0]).shape == (0, 3) and HAND.scores(TEXTS, np.array([], np.int64)).shape == (2, 0)
    assert len(HAND) == 3 and HAND.dim == 2
    np.testing.assert_array_equal(HAND.scene_of_row, [0, 1, 1, 2, 2, 2])


def test_texts_are_scored_in_chunks_as_a_whole(monkeypatch):
    import ideal.retrieval.objects as objects

    whole = HAND.scores(TEXTS)
    monkeypatch.setattr(objects, "SIMS_PER_CHUNK", 6)  # one text (6 object rows) at a time
    np.testing.assert_allclose(HAND.scores(TEXTS), whole, atol=1e-7)
    np.testing.assert_allclose(HAND.scores(TEXTS, np.array([1, 1])), whole[:, [1, 1]], atol=1e-7)


def test_take_pooled_and_concatenate():
    part = HAND.take([2, 0])
    np.testing.assert_array_equal(part.offsets, [0, 3, 4])
    np.testing.assert_array_equal(part.vectors, np.array(C + A, np.float32))
    np.testing.assert_array_equal(part.object_ids, [2, 1, 5, 4])
    # pooled: the normalised mean. B: (0.3, 0.9)/sqrt(0.9); C: (-0.2, -0.4)/3 -> (-1, -2)/sqrt(5)
    np.testing.assert_allclose(HAND.pooled(), [[1, 0], [0.3 / 0.9 ** 0.5, 0.9 / 0.9 ** 0.5],
                                               [-1 / 5 ** 0.5, -2 / 5 ** 0.5]], atol=1e-6)
    back = ObjectVectors.concatenate([HAND.take([0]), HAND.take([1, 2])])
    for name in ("vectors", "offsets", "object_ids"):
        np.testing.assert_array_equal(getattr(back, name), getattr(HAND, name))
    with pytest.raises(ValueError, match="no object vectors"):
        ObjectVectors.concatenate([])


def test_a_room_without_objects_is_one_zero_row_scoring_0():
    empty = ObjectVectors.concatenate([HAND.take([0]), ObjectVectors(np.zeros((1, 2)), [0, 1], [-1])])
    np.testing.assert_allclose(empty.scores(TEXTS), [[1, 0], [0, 0]])
    np.testing.assert_array_equal(empty.pooled()[1], [0, 0])  # no direction, not NaN
    with pytest.raises(ValueError, match="scene 1 has no object rows"):
        ObjectVectors(np.zeros((2, 2)), [0, 2, 2], [0, 1])
    with pytest.raises(ValueError, match="offsets must run from 0 to the 2 rows"):
        ObjectVectors(np.zeros((2, 2)), [0, 1], [0, 1])


def test_the_file_is_read_back_as_written(tmp_path):
    write_objects(tmp_path / "o.parquet", IDS, HAND)
    assert pq.read_schema(tmp_path / "o.parquet").remove_metadata() == objects_schema(2)
    back = read_objects(tmp_path / "o.parquet", IDS, dim=2)
    for name in ("vectors", "offsets", "object_ids"):
        np.testing.assert_array_equal(getattr(back, name), getattr(HAND, name))
    pq.write_table(pq.read_table(tmp_path / "o.parquet"), tmp_path / "groups.parquet", row_group_size=2)
    np.testing.assert_array_equal(read_objects(tmp_path / "groups.parquet", IDS).offsets, HAND.offsets)
    with pytest.raises(ValueError, match="2 scene ids for the object vectors of 3 scenes"):
        write_objects(tmp_path / "x.parquet", IDS[:2], HAND)


def rows(**changes):
    """The hand example's rows as Python lists, with some rows replaced: {row: (scene_id, embedding)}."""
    sids = [IDS[i] for i in HAND.scene_of_row]
    embs = HAND.vectors.tolist()
    for row, (sid, emb) in changes.get("at", {}).items():
        sids[row], embs[row] = sid, emb
    return sids, HAND.object_ids.tolist(), embs


def write(path, sids, oids, embs, fixed=None):
    emb = pa.array(embs, pa.list_(pa.float32(), fixed) if fixed else pa.list_(pa.float64()))
    pq.write_table(pa.table({"scene_id": sids, "object_id": pa.array(oids, pa.int32()), "embedding": emb}), path)
    return path


@pytest.mark.parametrize("at, message", [
    ({4: (IDS[2], [float("nan"), 0])}, r"row 4: embedding has non-finite values"),
    ({2: (IDS[1], [0.6, 0.8, 0.0])}, r"row 2: embedding has 3 values, row 0 has 2"),
    ({3: ("scene0999_00", C[0])}, r"row 3: scene scene0999_00 is not in the gallery"),
    ({0: (IDS[1], A[0])}, r"row 0: scene scene0001_00 out of order: expected scene scene0000_00"),
    ({2: (IDS[2], B[1]), 3: (IDS[1], C[0])}, r"row 3: scene scene0001_00 again: its rows must be together"),
])
def test_broken_rows_are_named(tmp_path, at, message):
    path = write(tmp_path / "o.parquet", *rows(at=at))
    with pytest.raises(FormatError, match=r"o\.parquet: " + message):
        read_objects(path, IDS, dim=2)


def test_wrong_dimension_missing_scene_and_bad_columns_are_named(tmp_path):
    sids, oids, embs = rows()
    path = write(tmp_path / "d3.parquet", sids, oids, [e + [0.0] for e in embs], fixed=3)
    with pytest.raises(FormatError, match=r"d3\.parquet: row 0: embedding has 3 values, the encoding's are 2"):
        read_objects(path, IDS, dim=2)
    path = write(tmp_path / "two.parquet", sids[:3], oids[:3], embs[:3])
    with pytest.raises(FormatError, match=r"two\.parquet: scene_id: scene scene0002_00 has no rows"):
        read_objects(path, IDS)
    pq.write_table(pa.table({"scene_id": sids, "embedding": embs}), tmp_path / "noid.parquet")
    with pytest.raises(FormatError, match=r"noid\.parquet: schema: missing column 'object_id'"):
        read_objects(tmp_path / "noid.parquet", IDS)
    pq.write_table(pa.table({"scene_id": sids, "object_id": [str(o) for o in oids], "embedding": embs}),
                   tmp_path / "strid.parquet")
    with pytest.raises(FormatError, match=r"strid\.parquet: column 'object_id': expected an integer type"):
        read_objects(tmp_path / "strid.parquet", IDS)
