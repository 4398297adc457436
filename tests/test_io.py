"""atomic_write: a file appears whole or not at all, and a failed write leaves nothing behind."""
import pytest

from ideal.io import atomic_write


def test_text_bytes_and_writer(tmp_path):
    assert atomic_write(tmp_path / "a" / "x.txt", "hello").read_text() == "hello"
    assert atomic_write(tmp_path / "y.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    atomic_write(tmp_path / "z.txt", lambda tmp: tmp.write_text("from a writer"))
    assert (tmp_path / "z.txt").read_text() == "from a writer"
    atomic_write(tmp_path / "a" / "x.txt", "replaced")
    assert (tmp_path / "a" / "x.txt").read_text() == "replaced"


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    atomic_write(tmp_path / "x.txt", "old")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(tmp_path / "x.txt", broken)
    assert (tmp_path / "x.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]
