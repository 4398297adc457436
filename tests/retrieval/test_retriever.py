"""Both retrievers behind the Retriever protocol, on the real text encoder, called as the library calls them: the
gallery (`encode_scenes` once, `encode_text` per new text, `score` against the stored embeddings) and the static
evaluation (a faiss inner-product index over `encode_scenes`, searched with `encode_text`)."""
import numpy as np
import pytest

from ideal.checkpoints import DEFAULT_WEIGHTS
from ideal.config import load_config
from ideal.retrieval.gallery import Gallery
from ideal.retrieval.retriever import BagOfLabelsRetriever, TrainedRetriever
from ideal.scenes.synthetic import generate_scene
from ideal.training.train import RetrievalModel, save_checkpoint, TrainState

ROOM_QUERIES = {"Kitchen": "a room with a refrigerator, a stove and kitchen cabinets",
                "Bathroom": "a bathroom with a toilet, a sink and a bathtub",
                "Bedroom / Hotel": "a bedroom with a bed and two nightstands"}


@pytest.fixture(scope="module")
def scenes():
    return [generate_scene(0, i).scene for i in range(30)]


@pytest.fixture(scope="module")
def fresh_checkpoint(tmp_path_factory):
    """A small untrained model written by the training code, so `from_checkpoint` reads what `fit` writes."""
    cfg = load_config(None, ["scene_encoder.width=32", "scene_encoder.ffn=64"])
    path = tmp_path_factory.mktemp("ck") / "ck"
    save_checkpoint(path, RetrievalModel(cfg), None, cfg, TrainState(0, []))
    return path


def make_retriever(kind, text_encoder, fresh_checkpoint=None):
    if kind == "labels":
        return BagOfLabelsRetriever(text_encoder)
    return TrainedRetriever.from_checkpoint(fresh_checkpoint if kind == "fresh" else DEFAULT_WEIGHTS, text_encoder)


def test_bag_of_labels_text():
    scene = generate_scene(0, 1).scene
    t = BagOfLabelsRetriever.scene_text(scene)
    assert t.startswith("a room with ") and "wall" not in t and "floor" not in t


@pytest.mark.parametrize("kind", ["labels", "fresh", "shipped"])
def test_the_protocol_as_the_gallery_and_the_evaluation_call_it(kind, text_encoder, fresh_checkpoint, scenes):
    r = make_retriever(kind, text_encoder, fresh_checkpoint)
    assert isinstance(r.name, str) and r.name  # results and logs are keyed by it
    texts = ["a bed with pillows", "a fridge in the kitchen", "a desk by the window"]
    s = r.encode_scenes(scenes[:4])
    t = r.encode_text(texts)
    assert s.shape == (4, 384) and t.shape == (3, 384) and s.dtype == t.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(s, axis=1), 1, rtol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1, rtol=1e-4)
    # batch first: the batch of one is a row of the batch
    np.testing.assert_allclose(r.encode_text(texts[1:2]), t[1:2], atol=1e-5)
    np.testing.assert_allclose(r.encode_scenes(scenes[2:3]), s[2:3], atol=1e-5)
    # score: (texts, scenes), the inner product the evaluation's index ranks by; a text batch of none scores none
    scores = r.score(t, s)
    assert scores.shape == (3, 4)
    np.testing.assert_allclose(scores, t @ s.T, atol=1e-5)
    assert r.score(t[:0], s).shape == (0, 4)
    # the gallery scores each text against every scene: by the scene vectors, or for a late-interaction retriever
    # by each scene's best object (encode_scenes is then the pooled object vectors, for the router's density)
    if r.late_interaction:
        objects = r.encode_objects(scenes[:4])
        np.testing.assert_allclose(s, objects.pooled(), atol=1e-5)
        scores = objects.scores(t)
    np.testing.assert_allclose(Gallery(r, scenes[:4]).scores(texts), scores, atol=1e-5)


def test_bag_of_labels_finds_each_scene_by_its_own_label_text(text_encoder, scenes):
    r = BagOfLabelsRetriever(text_encoder)
    queries = [BagOfLabelsRetriever.scene_text(s) for s in scenes]
    scores = r.score(r.encode_text(queries), r.encode_scenes(scenes))
    # a scene whose label text is another's too is found as that twin: the same object list
    best = [queries[int(i)] for i in np.argmax(scores, axis=1)]
    assert best == queries


@pytest.mark.parametrize("kind", ["labels", "shipped"])
def test_a_room_query_ranks_a_room_of_its_type_first(kind, text_encoder, scenes):
    r = make_retriever(kind, text_encoder)
    scene_emb = r.encode_scenes(scenes)
    assert set(ROOM_QUERIES) <= {s.scene_type for s in scenes}
    for room_type, query in ROOM_QUERIES.items():
        scores = r.score(r.encode_text([query]), scene_emb)[0]
        assert scenes[int(np.argmax(scores))].scene_type == room_type, (query, r.name)
