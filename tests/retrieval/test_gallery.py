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
    late_interaction = False

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


# Late interaction: a scene scores as its best object vector (ideal.retrieval.objects).

class ObjectsRetriever:
    """A late-interaction stand-in: fixed object vectors per scene, texts looked up in a table."""

    name = "objects"
    late_interaction = True

    def __init__(self, objects, texts: dict):
        self.objects, self.texts = objects, texts

    def encode_text(self, texts):
        return np.stack([self.texts[t] for t in texts])

    def encode_objects(self, scenes):
        return self.objects

    def encode_scenes(self, scenes):
        raise AssertionError("a late-interaction gallery pools its object vectors instead")


@pytest.fixture(scope="module")
def late():
    """A 60-scene late-interaction gallery (1..6 random unit object vectors a scene) and 12 text embeddings."""
    from ideal.retrieval.objects import ObjectVectors

    rng = np.random.default_rng(3)
    counts = rng.integers(1, 7, size=60)
    v = rng.normal(size=(int(counts.sum()), 16))
    objects = ObjectVectors(v / np.linalg.norm(v, axis=1, keepdims=True), np.concatenate([[0], np.cumsum(counts)]),
                            np.concatenate([np.arange(c) for c in counts]))
    t = rng.normal(size=(12, 16))
    texts = {f"text {i}": (e / np.linalg.norm(e)).astype(np.float32) for i, e in enumerate(t)}
    scenes = [scene(f"s{i:02d}", ["chair"]) for i in range(60)]
    return Gallery(ObjectsRetriever(objects, texts), scenes), np.stack(list(texts.values()))


def test_a_late_interaction_gallery_scores_max_over_objects(late):
    gallery, emb = late
    objects = gallery.objects
    assert gallery.late_interaction and gallery.object_index is None
    want = np.stack([[float((objects.vectors[a:b] @ t).max()) for a, b in zip(objects.offsets, objects.offsets[1:])]
                     for t in emb])  # max over each scene's rows, one scene at a time
    np.testing.assert_allclose(gallery.score_embeddings(emb), want, atol=1e-6)
    np.testing.assert_allclose(gallery.scores([f"text {i}" for i in range(12)]), want, atol=1e-6)
    (cols,), (sims,) = gallery.candidate_scores([emb])
    assert cols is None
    np.testing.assert_allclose(sims, want, atol=1e-6)
    np.testing.assert_allclose(gallery.embeddings, objects.pooled())  # what the router's density reads
    with pytest.raises(ValueError, match="object vectors given for a retriever that scores pooled"):
        Gallery(BagOfLabelsRetriever(None), gallery.scenes, embeddings=gallery.embeddings, objects=objects)
    with pytest.raises(ValueError, match="object vectors of 2 scenes for 60 scenes"):
        Gallery(gallery.retriever, gallery.scenes, objects=objects.take([0, 1]))


def test_an_object_index_scores_the_scenes_of_the_best_objects_exactly(late):
    """With an approximate object index, a text's candidates are the scenes of its best objects and each scores
    the max over ALL its objects; every softmax over the union of candidates is the one over the whole gallery."""
    from ideal.retrieval.index import ObjectIndex
    from ideal.retrieval.meb import gallery_softmax

    gallery, emb = late
    exact = gallery.score_embeddings(emb)
    flat = ObjectIndex.build(gallery.ids, gallery.objects, kind="flat")
    five = Gallery(gallery.retriever, gallery.scenes, objects=gallery.objects, object_index=flat, candidates=5)
    got = five.score_embeddings(emb)
    assert (np.isfinite(got).sum(axis=1) == 5).all()
    top5 = np.argsort(-exact, axis=1)[:, :5]  # flat: the candidates are the exact top 5
    assert all(set(np.flatnonzero(np.isfinite(g))) == set(t) for g, t in zip(got, top5))
    np.testing.assert_allclose(got[np.isfinite(got)], exact[np.isfinite(got)], atol=1e-6)

    # ivf with one list probed of several: some candidates are found through a non-best object, scored exactly
    ivf = ObjectIndex.build(gallery.ids, gallery.objects, kind="ivf", nlist=4, nprobe=1)
    rows, hit = ivf.search_scenes(emb, 8)
    ok = rows >= 0
    assert (np.take_along_axis(exact, np.where(ok, rows, 0), 1)[ok] > hit[ok] + 1e-6).any()
    some = Gallery(gallery.retriever, gallery.scenes, objects=gallery.objects, object_index=ivf, candidates=8)
    (cols, cols2), (sims, sims2) = some.candidate_scores([emb[:7], emb[7:]])
    assert cols is cols2 and (np.diff(cols) > 0).all()
    both = np.concatenate([sims, sims2])
    found = np.isfinite(both)
    np.testing.assert_allclose(both[found], exact[:, cols][found], atol=1e-6)
    np.testing.assert_allclose(some.score_embeddings(emb)[:, cols], both, atol=0)
    for t in (0.05, 1.0):
        np.testing.assert_allclose(gallery_softmax(both, t),
                                   gallery_softmax(some.score_embeddings(emb), t)[:, cols], atol=1e-6)

    every = ObjectIndex.build(gallery.ids, gallery.objects, kind="ivf", nlist=4, nprobe=4)
    whole = Gallery(gallery.retriever, gallery.scenes, objects=gallery.objects, object_index=every, candidates=60)
    np.testing.assert_allclose(whole.score_embeddings(emb), exact, atol=1e-6)
    with pytest.raises(ValueError, match="object index's rows are not the gallery's object vectors"):
        Gallery(gallery.retriever, gallery.scenes[::-1], objects=gallery.objects, object_index=flat)
