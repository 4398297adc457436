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
