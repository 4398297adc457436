"""Readers on corrupted files: a real file of each published format from the synthetic benchmark, cut short, with
bytes overwritten or inserted (hypothesis), is read or refused with `FormatError` naming the file; never another
exception."""
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ideal.retrieval.embeddings import read_embeddings, write_embeddings
from ideal.scenes import FormatError, load_synthetic
from ideal.scenes.parquet import read_scenes, write_scenes
from ideal.scenes.referit3d import read_nr3d, read_sr3d
from ideal.scenes.scannet import read_scan
from ideal.scenes.scanrefer import read_scanrefer

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@st.composite
def corruption(draw):
    """A function bytes -> bytes: truncate, overwrite a span, or insert bytes."""
    kind = draw(st.sampled_from(["cut", "overwrite", "insert"]))
    at = draw(st.floats(0, 1))
    junk = draw(st.one_of(st.binary(min_size=1, max_size=64),
                          st.sampled_from([b"\x00", b"\xff\xfe", b'"', b"{", b"]", b",", b"\n", b"-1", b"1e999",
                                           b"NaN", b"\xed\xa0\x80"])))

    def apply(data: bytes) -> bytes:
        i = int(at * len(data))
        if kind == "cut":
            return data[:i]
        if kind == "overwrite":
            return data[:i] + junk + data[i + len(junk):]
        return data[:i] + junk + data[i:]
    return apply


@pytest.fixture(scope="module")
def originals(bench_root, tmp_path_factory):
    """One real file of each kind, and how to read it."""
    tmp = tmp_path_factory.mktemp("originals")
    ds = load_synthetic(bench_root, "val", points_per_object=0)
    scenes = [ds.scenes[s] for s in sorted(ds.scenes)]
    write_scenes(scenes[:2], tmp / "scenes.parquet", with_points=False)
    import numpy as np

    write_embeddings(tmp / "embeddings.parquet", [s.scene_id for s in scenes], np.ones((len(scenes), 4), np.float32))
    scan = sorted((bench_root / "scans").iterdir())[0]
    return {"scan": scan, "scanrefer": bench_root / "ScanRefer_filtered_val.json", "nr3d": bench_root / "nr3d.csv",
            "sr3d": bench_root / "sr3d.csv", "scenes": tmp / "scenes.parquet", "embeddings": tmp / "embeddings.parquet"}


SCAN_FILES = [".aggregation.json", "_vh_clean_2.0.010000.segs.json", "_vh_clean_2.ply", ".txt"]
READERS = {"scanrefer": read_scanrefer, "nr3d": read_nr3d, "sr3d": read_sr3d, "scenes": read_scenes,
           "embeddings": read_embeddings}


def refused_or_read(read, path: Path):
    try:
        read(path)
    except FormatError as e:
        assert str(path) in str(e) or path.name in str(e), str(e)


@FUZZ
@given(st.sampled_from(sorted(READERS)), corruption())
def test_a_corrupted_description_or_table_file_is_read_or_refused_naming_it(originals, kind, corrupt):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / originals[kind].name
        path.write_bytes(corrupt(originals[kind].read_bytes()))
        refused_or_read(READERS[kind], path)


@FUZZ
@given(st.sampled_from(SCAN_FILES), corruption())
def test_a_scan_folder_with_a_corrupted_file_is_read_or_refused_naming_it(originals, suffix, corrupt):
    scan = originals["scan"]
    with tempfile.TemporaryDirectory() as d:
        copy = Path(d) / scan.name
        shutil.copytree(scan, copy)
        target = copy / f"{scan.name}{suffix}"
        target.write_bytes(corrupt(target.read_bytes()))
        try:
            read_scan(copy, points_per_object=16)
        except FormatError as e:
            assert scan.name in str(e), str(e)


@FUZZ
@given(st.sampled_from(["model.safetensors", "config.json"]), corruption())
def test_a_corrupted_checkpoint_is_loaded_or_refused_naming_the_file(name, corrupt):
    """The shipped base checkpoint with one file corrupted: FormatError naming that file, or a model."""
    from ideal.checkpoints import DEFAULT_WEIGHTS
    from ideal.retrieval.model import load_model

    with tempfile.TemporaryDirectory() as d:
        copy = Path(d) / "ckpt"
        shutil.copytree(DEFAULT_WEIGHTS, copy)
        (copy / name).write_bytes(corrupt((copy / name).read_bytes()))
        try:
            load_model(copy)
        except FormatError as e:
            assert str(copy / name) in str(e), str(e)
