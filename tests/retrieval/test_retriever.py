"""Both retrievers behind one interface, on the real text encoder."""
import numpy as np
import pytest

from ideal.config import load_config
from ideal.encoders.text import TextEncoder
from ideal.retrieval.retriever import BagOfLabelsRetriever, Retriever, TrainedRetriever
from ideal.scenes.synthetic import generate_scene
from ideal.training.train import RetrievalModel, save_checkpoint, TrainState


@pytest.fixture(scope="module")
def text():
    return TextEncoder()


def test_bag_of_labels_text():
    scene = generate_scene(0, 1).scene
    t = BagOfLabelsRetriever.scene_text(scene)
    assert t.startswith("a room with ") and "wall" not in t and "floor" not in t


@pytest.mark.parametrize("kind", ["labels", "trained"])
def test_interface(kind, text, tmp_path):
    if kind == "labels":
        r = BagOfLabelsRetriever(text)
    else:
        cfg = load_config(None, ["scene_encoder.width=32", "scene_encoder.ffn=64"])
        save_checkpoint(tmp_path / "ck", RetrievalModel(cfg), None, cfg, TrainState(0, []))
        r = TrainedRetriever.from_checkpoint(tmp_path / "ck", text)
    assert isinstance(r, Retriever)
    scenes = [generate_scene(0, i).scene for i in range(4)]
    s = r.encode_scenes(scenes)
    t = r.encode_text(["a bed with pillows", "a fridge in the kitchen"])
    assert s.shape == (4, 384) and t.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(s, axis=1), 1, rtol=1e-4)
    assert r.score(t, s).shape == (2, 4)


def test_bag_of_labels_finds_the_obvious_room(text):
    scenes = [generate_scene(0, i).scene for i in range(30)]
    r = BagOfLabelsRetriever(text)
    kitchen = next(i for i, s in enumerate(scenes) if any(o.label == "refrigerator" for o in s.objects))
    scores = r.score(r.encode_text(["a room with a refrigerator, a stove and kitchen cabinets"]),
                     r.encode_scenes(scenes))[0]
    assert scenes[int(np.argmax(scores))].scene_type == scenes[kitchen].scene_type
