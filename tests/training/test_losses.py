import math

import pytest
import torch

from ideal.training.losses import info_nce


def test_info_nce_hand_computed():
    # Two texts of scene 7, one of scene 9; unit vectors in 2-D, τ = 1.
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    ids_t, ids_v = torch.tensor([7, 7, 9]), torch.tensor([7, 9])
    # logits = t·v: [[1, 0], [0, 1], [.6, .8]]
    t2s = (-math.log(math.e / (math.e + 1)) - math.log(1 / (1 + math.e))
           - math.log(math.exp(.8) / (math.exp(.6) + math.exp(.8)))) / 3
    # scene 7 column: [1, 0, .6], positives texts 0 and 1; scene 9 column: [0, 1, .8], positive text 2.
    col7 = -math.log((math.e + 1) / (math.e + 1 + math.exp(.6)))
    col9 = -math.log(math.exp(.8) / (1 + math.e + math.exp(.8)))
    expected = (t2s + (col7 + col9) / 2) / 2
    assert info_nce(t, v, ids_t, ids_v, 1.0).item() == pytest.approx(expected, rel=1e-6)


def test_same_scene_texts_are_not_negatives():
    # Two identical texts of one scene: perfect alignment must give ~0 loss with a sharp temperature.
    t = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss = info_nce(t, v, torch.tensor([0, 0, 1]), torch.tensor([0, 1]), 0.01)
    assert loss.item() < 1e-6


def test_gradient_pulls_text_to_its_scene():
    t = torch.nn.functional.normalize(torch.tensor([[1.0, 1.0]]), dim=1).requires_grad_()
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    info_nce(t, v, torch.tensor([0]), torch.tensor([0, 1]), 0.1).backward()
    assert t.grad[0, 0] < 0 < t.grad[0, 1]  # descending the loss moves the text toward scene 0


def test_missing_positive_is_an_error():
    with pytest.raises(ValueError, match="not among the scene rows"):
        info_nce(torch.eye(2), torch.eye(2), torch.tensor([0, 5]), torch.tensor([0, 1]), 1.0)


# Late interaction: a scene is its object vectors (U, N, d) with a mask; it scores as its best real object.
OBJECTS = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [9.0, 9.0]],     # scene 0: two objects, a padded slot
                        [[0.6, 0.8], [0.0, 0.0], [0.0, 0.0]]])    # scene 1: one object
MASK = torch.tensor([[True, True, False], [True, False, False]])


def test_scene_similarity_is_the_best_real_object():
    from ideal.training.losses import scene_similarity

    t = torch.tensor([[1.0, 0.0], [-0.6, 0.8]])
    # text 0: scene 0 max(1, 0) = 1 (the padded 9 is ignored), scene 1: .6; text 1: max(-.6, .8) = .8, scene 1: .28
    expected = torch.tensor([[1.0, 0.6], [0.8, -0.36 + 0.64]])
    torch.testing.assert_close(scene_similarity(t, OBJECTS, MASK), expected)
    torch.testing.assert_close(scene_similarity(t, OBJECTS[:, 0]), t @ OBJECTS[:, 0].T)  # (U, d): inner products
    with pytest.raises(ValueError, match="mask"):
        scene_similarity(t, OBJECTS)


def test_info_nce_over_objects_hand_computed():
    t = torch.tensor([[0.0, 1.0]])  # scene 0's second object; scores [1, .8] against scenes 0, 1
    loss = info_nce(t, OBJECTS, torch.tensor([0]), torch.tensor([0, 1]), 1.0, MASK)
    t2s = -math.log(math.e / (math.e + math.exp(0.8)))
    assert loss.item() == pytest.approx((t2s + 0.0) / 2, rel=1e-6)  # scene 0's only text is its positive: s2t = 0


def test_object_nce_hand_computed():
    from ideal.training.losses import object_nce

    t = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    # text 0 names scene 0 slot 1; text 1 names an object that was not encoded (-1): left out; text 2 scene 1 slot 0
    slots = torch.tensor([1, -1, 0])
    loss = object_nce(t, OBJECTS, MASK, torch.tensor([0, 0, 1]), slots, torch.tensor([0, 1]), 1.0)
    # real objects: (0,0) [1,0], (0,1) [0,1], (1,0) [.6,.8]
    l0 = -math.log(math.e / (1 + math.e + math.exp(0.8)))
    l2 = -math.log(math.exp(1.0) / (math.exp(0.6) + math.exp(0.8) + math.exp(1.0)))
    assert loss.item() == pytest.approx((l0 + l2) / 2, rel=1e-6)
    none = object_nce(t, OBJECTS, MASK, torch.tensor([0, 0, 1]), torch.tensor([-1, -1, -1]), torch.tensor([0, 1]), 1.0)
    assert none.item() == 0.0
    with pytest.raises(ValueError, match="named object"):  # slot 2 of scene 0 is padding
        object_nce(t[:1], OBJECTS, MASK, torch.tensor([0]), torch.tensor([2]), torch.tensor([0, 1]), 1.0)
