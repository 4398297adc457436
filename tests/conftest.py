"""Inputs shared by the whole suite, each built once per session.

`text_encoder`: the bundled all-MiniLM-L6-v2 `TextEncoder` with its identity head. A test that changes its head or
mode puts it back (try/finally), so every other test sees the encoder as loaded.
`bench_root`: a small synthetic benchmark on disk. Read it, never write into it: a test that needs to change a
benchmark generates its own under `tmp_path`. Its size and seed are in `bench_root / "meta.json"`.
`tiny_lm`: a local chat model directory (random weights) for the llm backends, with no download.
`ray_local`: one local Ray (2 CPUs) in this process for every test that needs Ray here; it stays up to the end.
`ray_env`: the environment for a job in a subprocess to run on that Ray (RAY_ADDRESS set).
`serve_gallery`: a 10-scene encoded gallery whose benchmark scans are deleted.
`served`: the IDeal Serve app over HTTP on that Ray, from `serve_gallery` (2 Retriever replicas, a 20 kB body
limit, the simulated user). A test may kill a replica if it waits for Serve to replace it; an app a test adds under
another name it deletes.
"""
from dataclasses import dataclass
from pathlib import Path

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


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    """A 1-layer GPT-2 with random weights and the real bundled MiniLM (BERT wordpiece) tokenizer."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from ideal.encoders.text import resolve_model_dir

    path = tmp_path_factory.mktemp("tiny_lm")
    minilm_dir, _ = resolve_model_dir()
    tok = AutoTokenizer.from_pretrained(str(minilm_dir), local_files_only=True)
    tok.save_pretrained(path)
    torch.manual_seed(0)
    config = GPT2Config(n_layer=1, n_head=2, n_embd=32, vocab_size=tok.vocab_size, n_positions=512,
                        bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id)
    GPT2LMHeadModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def ray_local():
    from tests.web import serve_app

    serve_app.init_ray()
    yield
    serve_app.stop()


@pytest.fixture(scope="session")
def ray_env(ray_local):
    import os

    import ray

    return {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}


@dataclass(frozen=True)
class Served:
    url: str
    spec: object  # the resolved ideal.serving.ServiceSpec the app runs
    root: Path  # the benchmark, without scans/
    gallery: Path


@pytest.fixture(scope="session")
def serve_gallery(tmp_path_factory):
    """(benchmark root, gallery G): the val scenes (10) of a 40-scene benchmark encoded with the IAT weights; the
    benchmark's scans are deleted."""
    from tests.web import serve_app

    return serve_app.small_gallery(tmp_path_factory.mktemp("served"))


@pytest.fixture(scope="session")
def served(ray_local, serve_gallery):
    from ideal.serving import ServiceSpec
    from tests.web import serve_app

    root, gallery = serve_gallery
    spec = ServiceSpec(gallery=str(gallery)).resolved()
    url = serve_app.run(spec, retriever_replicas=2, limits={"max_body_bytes": 20_000})
    return Served(url, spec, root, gallery)
