"""Inputs shared by the whole suite, each built once per session.

`text_encoder`: the bundled all-MiniLM-L6-v2 `TextEncoder` with its identity head. A test that changes its head or
mode puts it back (try/finally), so every other test sees the encoder as loaded.
`bench_root`: a small synthetic benchmark on disk. Read it, never write into it: a test that needs to change a
benchmark generates its own under `tmp_path`. Its size and seed are in `bench_root / "meta.json"`.
"""
import pytest

BENCH_SCENES, BENCH_SEED = 12, 7


@pytest.fixture(scope="session")
def text_encoder():
    from ideal.encoders.text import TextEncoder  # transformers is a heavy import: only for tests that need it

    return TextEncoder()


@pytest.fixture(scope="session")
def bench_root(tmp_path_factory):
    from ideal.scenes.synthetic import generate

    return generate(tmp_path_factory.mktemp("bench"), n_scenes=BENCH_SCENES, seed=BENCH_SEED, progress=False)
