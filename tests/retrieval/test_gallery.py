"""Gallery scoring: whole texts, and texts composed of separately encoded segments (dialog rounds); the scene
density ρ and the 3D knowledge, each built once."""
import numpy as np
import pytest

from ideal.dialog.knowledge import SceneKnowledge
from ideal.dialog.router import scene_density
from ideal.retrieval.gallery import Gallery
from ideal.retrieval.retriever import BagOfLabelsRetriever
from ideal.scenes.types import Scene, SceneObject


class CountingRetriever(BagOfLabelsRetriever):
    """The real bag-of-labels retriever, counting the texts its backbone encodes."""

    def __init__(self, text_encoder):
        super().__init__(text_encoder)
        self.encoded = 0

    def text_features(self, texts):
        self.encoded += len(texts)
        return super().text_features(texts)


def scene(sid, labels):
    return Scene(sid, "Office", [SceneObject(i, lab, (i, 0, 0.5), (0.5, 0.5, 1), (0.5, 0.5, 0.5))
                                 for i, lab in enumerate(labels)])


@pytest.fixture(scope="module")
def gallery(text_encoder):
    r = CountingRetriever(text_encoder)
    return Gallery(r, [scene("a", ["desk", "chair"]), scene("b", ["bed", "lamp"]), scene("c", ["sofa", "tv"])])


def test_one_segment_equals_the_whole_text(gallery):
    text = "a brown desk with a chair in front of it."
    np.testing.assert_allclose(gallery.scores_composed([[text]]), gallery.scores([text]), atol=1e-5)


def test_segments_are_token_weighted_and_encoded_once(gallery):
    r = gallery.retriever
    segs = ["the chair by the desk.", "There is a lamp.", "It is an office with a very large wooden desk."]
    before = r.encoded
    got = gallery.scores_composed([segs, segs[:2]])
    assert r.encoded - before == 3  # each distinct segment once
    feats = r.text_features(segs)
    n = np.array([len(ids) for ids in r.text_encoder.tokenizer(segs)["input_ids"]], np.float32)
    want = (n[:, None] * feats).sum(0) / n.sum()
    want /= np.linalg.norm(want)
    np.testing.assert_allclose(got[0], want @ gallery.embeddings.T, atol=1e-5)
    before = r.encoded
    gallery.scores_composed([segs[1:]])
    assert r.encoded == before  # all cached


def test_composed_ranks_like_the_concatenation(gallery):
    segs = ["I am looking for the bed.", "There is a lamp next to it.", "It is a bedroom."]
    composed = gallery.scores_composed([segs])[0]
    whole = gallery.scores([" ".join(segs)])[0]
    assert int(np.argmax(composed)) == int(np.argmax(whole)) == gallery.index_of["b"]


def test_empty_text_is_refused(gallery):
    with pytest.raises(ValueError, match="text 0 has no segments"):
        gallery.scores_composed([[]])


def test_embed_composed_is_what_scores_composed_scores(gallery):
    texts = [["the chair by the desk.", "There is a lamp."], ["It is a bedroom."]]
    emb = gallery.embed_composed(texts)
    assert emb.shape == (2, gallery.embeddings.shape[1]) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)  # projected: L2-normalised
    np.testing.assert_allclose(gallery.scores_composed(texts), gallery.score_embeddings(emb), atol=1e-6)
    np.testing.assert_allclose(gallery.score_embeddings(emb), emb @ gallery.embeddings.T, atol=1e-6)


class WholeTextRetriever:
    """A retriever without `text_features`/`project_text`: it can only encode whole texts."""

    name = "whole-text"

    def __init__(self, inner):
        self.inner = inner

    def encode_text(self, texts):
        return self.inner.encode_text(texts)

    def encode_scenes(self, scenes):
        return self.inner.encode_scenes(scenes)

    def score(self, text_emb, scene_emb):
        return self.inner.score(text_emb, scene_emb)


def test_without_segment_features_segments_are_joined(gallery):
    whole = Gallery(WholeTextRetriever(gallery.retriever), gallery.scenes)
    segs = ["the chair by the desk.", "There is a lamp."]
    np.testing.assert_allclose(whole.embed_composed([segs]), whole.embed([" ".join(segs)]), atol=0)


def test_density_is_the_routers_and_computed_once(gallery):
    rho = gallery.density(2, 1e-6)
    np.testing.assert_allclose(rho, scene_density(gallery.embeddings, 2, 1e-6), rtol=1e-12)
    assert gallery.density(2, 1e-6) is rho  # cached per (k, ε)
    other = gallery.density(1, 1e-6)
    assert other is not rho
    np.testing.assert_allclose(other, scene_density(gallery.embeddings, 1, 1e-6), rtol=1e-12)


def test_knowledge_is_read_off_the_scenes_once(gallery):
    kn = gallery.knowledge
    assert gallery.knowledge is kn
    assert kn.ids == gallery.ids and kn.labels == SceneKnowledge(gallery.scenes).labels
    assert kn.labels == ["bed", "chair", "desk", "lamp", "sofa", "tv"]


def test_stored_embeddings_and_knn_are_used_as_given(gallery):
    """A gallery built from stored embeddings scores like one that encoded its scenes, and takes the stored mean
    k-NN distances for the router's density at that k (computing it only for another k)."""
    from ideal.dialog.router import density_from_distance, mean_knn_distance

    emb = gallery.embeddings
    knn = mean_knn_distance(emb, 1)
    stored = Gallery(gallery.retriever, gallery.scenes, embeddings=emb, knn=(1, knn * 2))
    np.testing.assert_array_equal(stored.scores(["a desk"]), gallery.scores(["a desk"]))
    np.testing.assert_allclose(stored.density(1, 0.5), density_from_distance(knn * 2, 0.5))  # as stored
    np.testing.assert_allclose(stored.density(2, 0.5), scene_density(emb, 2, 0.5))  # another k: computed
    with pytest.raises(ValueError, match="2 embeddings for 3 scenes"):
        Gallery(gallery.retriever, gallery.scenes, embeddings=emb[:2])


def test_an_approximate_index_scores_each_text_against_its_candidates(gallery):
    """With an IVF index a text is scored against its `candidates` nearest scenes only (-inf elsewhere): with
    every scene a candidate that is the exact score; with one, only the exact best scene keeps its score."""
    from ideal.retrieval.index import SceneIndex

    index = SceneIndex.build(gallery.ids, gallery.embeddings, kind="ivf", nlist=1)
    texts = ["a bed and a lamp", "a sofa facing a tv"]
    exact = gallery.scores(texts)
    every = Gallery(gallery.retriever, gallery.scenes, embeddings=gallery.embeddings, index=index, candidates=3)
    np.testing.assert_allclose(every.scores(texts), exact, atol=1e-6)
    one = Gallery(gallery.retriever, gallery.scenes, embeddings=gallery.embeddings, index=index, candidates=1)
    got = one.scores(texts)
    assert (np.isfinite(got).sum(axis=1) == 1).all()
    np.testing.assert_array_equal(got.argmax(axis=1), exact.argmax(axis=1))
    np.testing.assert_allclose(got.max(axis=1), exact.max(axis=1), atol=1e-6)
