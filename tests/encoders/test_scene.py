"""Scene encoder: shapes, masks, set invariance, open vocabulary. Label vectors here are arbitrary fixed
inputs (the encoder's job is what it does with them); the real text encoder feeds them in training."""
import zlib

import numpy as np
import torch

from ideal.config import SceneEncoderConfig
from ideal.encoders.scene import LabelBank, SceneEncoder, collate_scenes
from ideal.scenes.synthetic import generate_scene
from ideal.scenes.types import Scene, SceneObject

DIM = 32


def label_vectors(labels):
    return np.stack([np.random.default_rng(zlib.crc32(lb.encode())).normal(size=DIM) for lb in labels])


def make(cfg=None):
    torch.manual_seed(0)
    cfg = cfg or SceneEncoderConfig(width=32, layers=2, heads=4, ffn=64, dropout=0.0, output="scene",
                                    relation_bias=False)
    return SceneEncoder(cfg, text_dim=DIM, out_dim=24).eval(), cfg


def test_shapes_masks_and_norm():
    enc, cfg = make()
    scenes = [generate_scene(0, i).scene for i in range(3)]
    batch = collate_scenes(scenes, LabelBank(label_vectors), cfg)
    n = max(len(s.furniture()) for s in scenes)
    assert batch.label_emb.shape == (3, n, DIM) and batch.geom.shape == (3, n, 9) and batch.mask.shape == (3, n)
    assert batch.mask.sum(1).tolist() == [len(s.furniture()) for s in scenes]  # walls/floor are not tokens
    out = enc(batch)
    assert out.shape == (3, 24)
    np.testing.assert_allclose(out.norm(dim=1).detach().numpy(), 1.0, rtol=1e-5)


def test_padding_does_not_change_a_scene():
    enc, cfg = make()
    small, big = generate_scene(0, 0).scene, generate_scene(0, 1).scene
    bank = LabelBank(label_vectors)
    alone = enc(collate_scenes([small], bank, cfg))
    padded = enc(collate_scenes([small, big] if len(big.furniture()) > len(small.furniture()) else [big, small],
                                bank, cfg))
    row = 0 if len(big.furniture()) > len(small.furniture()) else 1
    torch.testing.assert_close(alone[0], padded[row], atol=1e-5, rtol=1e-5)


def test_object_order_does_not_matter():
    enc, cfg = make()
    scene = generate_scene(0, 2).scene
    shuffled = Scene(scene.scene_id, scene.scene_type, list(reversed(scene.objects)))
    bank = LabelBank(label_vectors)
    torch.testing.assert_close(enc(collate_scenes([scene], bank, cfg)), enc(collate_scenes([shuffled], bank, cfg)),
                               atol=1e-5, rtol=1e-5)


def test_content_matters_and_unseen_labels_are_embedded():
    enc, cfg = make()
    calls = []

    def embed(labels):
        calls.append(list(labels))
        return label_vectors(labels)

    bank = LabelBank(embed)
    a = Scene("a", "Office", [SceneObject(0, "desk", (1, 1, .4), (1.4, .7, .75), (.4, .3, .1))])
    b = Scene("b", "Office", [SceneObject(0, "harpsichord", (1, 1, .4), (1.4, .7, .75), (.4, .3, .1))])
    ea, eb = enc(collate_scenes([a], bank, cfg)), enc(collate_scenes([b], bank, cfg))
    assert not torch.allclose(ea, eb)
    assert calls == [["desk"], ["harpsichord"]]  # each label embedded once, when first seen
    enc(collate_scenes([a, b], bank, cfg))
    assert len(calls) == 2


def test_points_branch_and_empty_scene():
    cfg = SceneEncoderConfig(width=32, layers=1, heads=4, ffn=64, dropout=0.0, use_points=True, points_per_object=16)
    enc, _ = make(cfg)
    pts = np.random.default_rng(0).random((40, 6)).astype(np.float32)
    with_pts = Scene("p", "Office", [SceneObject(0, "chair", (1, 1, .45), (.5, .5, .9), (.5, .5, .5), pts)])
    empty = Scene("e", "Office", [SceneObject(0, "floor", (1, 1, 0), (2, 2, .05), (.5, .5, .5))])
    batch = collate_scenes([with_pts, empty], LabelBank(label_vectors), cfg)
    assert batch.points.shape == (2, 1, 16, 6) and batch.mask.tolist() == [[True], [True]]
    out = enc(batch)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert enc.pointnet.mlp[0].weight.grad is not None and enc.pointnet.mlp[0].weight.grad.abs().sum() > 0


def make_objects(relation_bias=True):
    torch.manual_seed(0)
    cfg = SceneEncoderConfig(width=32, layers=2, heads=4, ffn=64, dropout=0.0, output="objects",
                             relation_bias=relation_bias)
    return SceneEncoder(cfg, text_dim=DIM, out_dim=24).eval(), cfg


def test_object_vectors_follow_their_objects_under_padding_and_order():
    enc, cfg = make_objects()
    small, big = generate_scene(0, 0).scene, generate_scene(0, 1).scene
    if len(big.furniture()) < len(small.furniture()):
        small, big = big, small
    bank = LabelBank(label_vectors)
    alone = enc(collate_scenes([small], bank, cfg))
    both = enc(collate_scenes([small, big], bank, cfg))
    n = len(small.furniture())
    assert alone.shape == (1, n, 24) and both.shape[:2] == (2, len(big.furniture()))
    torch.testing.assert_close(alone[0], both[0, :n], atol=1e-5, rtol=1e-5)   # padding changes no real object
    assert not torch.isnan(both).any()
    np.testing.assert_allclose(both[0, :n].norm(dim=-1).detach().numpy(), 1.0, rtol=1e-5)
    shuffled = Scene(small.scene_id, small.scene_type, list(reversed(small.objects)))
    rev = enc(collate_scenes([shuffled], bank, cfg))[0]
    torch.testing.assert_close(rev.flip(0), alone[0], atol=1e-5, rtol=1e-5)  # the same vectors, in object order


def test_relation_bias_sees_where_the_neighbours_are():
    enc, cfg = make_objects()
    scene = generate_scene(0, 2).scene
    bank = LabelBank(label_vectors)
    base = enc(collate_scenes([scene], bank, cfg))[0]
    # move one other object: the first object's vector changes through the pairwise bias (and attention)
    objs = list(scene.objects)
    furniture = [i for i, o in enumerate(objs) if o in scene.furniture()]
    j = furniture[-1]
    o = objs[j]
    objs[j] = SceneObject(o.object_id, o.label, np.asarray(o.center) + np.array([0.0, 0.0, 1.0]), o.size, o.color_rgb)
    moved = enc(collate_scenes([Scene(scene.scene_id, scene.scene_type, objs)], bank, cfg))[0]
    assert (moved[0] - base[0]).abs().max() > 1e-4


def test_pair_features_hand_computed():
    from ideal.encoders.scene import pair_features

    # object 0: centre (0, 0, .5), size 1; object 1: centre (3, 4, 1.5), size 1 (sits 1 m higher, 5 m away)
    geom = torch.tensor([[[0, 0, .5, 1, 1, 1, 0, 0, 0], [3, 4, 1.5, 1, 1, 1, 0, 0, 0]]], dtype=torch.float32)
    f = pair_features(geom)[0, 0, 1]
    # |dx| |dy| dz, dxy, gaps (2, 3, 0), gap norm, bottom of 1 (1.0) minus top of 0 (1.0)
    torch.testing.assert_close(f, torch.tensor([3, 4, 1, 5, 2, 3, 0, 13 ** 0.5, 0.0]))
    torch.testing.assert_close(pair_features(geom)[0, 1, 0, :3], torch.tensor([3.0, 4.0, -1.0]))
