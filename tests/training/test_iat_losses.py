import math

import pytest
import torch
from torch.nn.functional import normalize

from ideal.training.losses import iat_loss, l_dis, l_div

# Unit vectors in 2-D whose dot products are easy by hand.
E0, E1 = [1.0, 0.0], [0.0, 1.0]
A, B = [0.8, 0.6], [0.6, 0.8]  # E0·A = .8, E0·B = .6, A·B = .96, E1·A = .6, E1·B = .8


def test_l_dis_hand_computed():
    t = torch.tensor([E0, B])
    v = torch.tensor([E0, E1, A])
    # cosines: t0 → [1, 0, .8], t1 → [.6, .8, .96]; τ = .5 doubles them.
    row0 = -math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(0.0) + math.exp(1.6)))
    row1 = -math.log(math.exp(1.6) / (math.exp(1.2) + math.exp(1.6) + math.exp(1.92)))
    got = l_dis(t, v, torch.tensor([0, 1]), 0.5)
    assert got.item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_l_dis_rejects_a_target_outside_the_scenes():
    with pytest.raises(ValueError, match="must index the 2 scene rows"):
        l_dis(torch.eye(2), torch.eye(2), torch.tensor([0, 2]), 1.0)


def test_l_div_hand_computed_excludes_same_scene_pairs():
    # t0, t1 of scene 0 (cos .8, excluded); t2 of scene 1: cos(t0, t2) = .6, cos(t1, t2) = .96.
    t = torch.tensor([E0, A, B])
    gamma = 0.5
    p02 = math.exp(-(0.6 - gamma)) * math.log(1 - 0.6)
    p12 = math.exp(-(0.96 - gamma)) * math.log(1 - 0.96)
    # Ordered pairs (0,2), (2,0), (1,2), (2,1): each unordered pair twice, so the mean is over the two.
    expected = -(p02 + p12) / 2
    got = l_div(t, torch.tensor([0, 0, 1]), gamma)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # Below γ the weight is exactly 1.
    assert l_div(t, torch.tensor([0, 0, 1]), 0.99).item() == pytest.approx(
        -(math.log(1 - 0.6) + math.log(1 - 0.96)) / 2, rel=1e-5)


def test_l_div_clamps_negative_cosine_to_zero():
    t = torch.tensor([E0, [-0.6, 0.8]])  # cos = −.6 → S = 0 → log(1) = 0
    assert l_div(t, torch.tensor([0, 1]), 0.5).item() == 0.0


def test_l_div_without_different_scene_pairs_is_zero_with_grad():
    t = torch.tensor([E0, A, B], requires_grad=True)
    loss = l_div(t, torch.tensor([4, 4, 4]), 0.5)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(t.grad, torch.zeros_like(t))


def test_l_div_weight_is_detached():
    # One pair, S = .6 > γ = .5: dL/dt0 = w/(1−S)·t1 with w constant (w' = −w would add w·log(1−S)·t1).
    t = torch.tensor([E0, B], requires_grad=True)
    l_div(t, torch.tensor([0, 1]), 0.5).backward()
    w = math.exp(-0.1)
    assert t.grad[0].tolist() == pytest.approx([w / 0.4 * 0.6, w / 0.4 * 0.8], rel=1e-5)


def _sgd_step(loss_fn, t0: torch.Tensor, lr: float = 0.1) -> torch.Tensor:
    t = t0.clone().requires_grad_()
    loss_fn(t).backward()
    with torch.no_grad():
        return normalize(t - lr * t.grad, dim=1)


def test_l_dis_step_pulls_each_text_to_its_scene():
    g = torch.Generator().manual_seed(0)
    t = normalize(torch.randn(4, 8, generator=g), dim=1)
    v = normalize(torch.randn(3, 8, generator=g), dim=1)
    targets = torch.tensor([0, 1, 2, 1])
    after = _sgd_step(lambda x: l_dis(x, v, targets, 0.1), t)
    own = lambda x: (x * v[targets]).sum(1)  # noqa: E731
    assert bool((own(after) > own(t)).all())


def test_l_div_step_pushes_different_scene_texts_apart():
    g = torch.Generator().manual_seed(1)
    # Start all texts close together so every different-scene cosine is positive (inside the clamp).
    t = normalize(torch.ones(5, 8) + 0.3 * torch.randn(5, 8, generator=g), dim=1)
    ids = torch.tensor([0, 0, 1, 2, 2])
    diff = ids[:, None] != ids[None, :]
    assert bool(((t @ t.T)[diff] > 0).all())
    after = _sgd_step(lambda x: l_div(x, ids, 0.5), t)
    assert bool(((after @ after.T)[diff] < (t @ t.T)[diff]).all())


def test_iat_loss_combines_with_lambda():
    t = torch.tensor([E0, A, B])
    v = torch.tensor([E0, E1])
    targets, ids = torch.tensor([0, 0, 1]), torch.tensor([0, 0, 1])
    dis, div = l_dis(t, v, targets, 0.5), l_div(t, ids, 0.5)
    total, parts = iat_loss(t, v, targets, ids, lam=1.0, gamma=0.5, temperature=0.5)
    assert total.item() == dis.item() and parts["l_dis"].item() == dis.item()
    assert parts["l_div"].item() == div.item()
    assert iat_loss(t, v, targets, ids, 0.0, 0.5, 0.5)[0].item() == div.item()
    total, _ = iat_loss(t, v, targets, ids, 0.3, 0.5, 0.5)
    assert total.item() == pytest.approx(0.3 * dis.item() + 0.7 * div.item(), rel=1e-6)
    with pytest.raises(ValueError, match=r"lam \(λ\) must be in \[0, 1\]"):
        iat_loss(t, v, targets, ids, 1.5, 0.5, 0.5)


def test_identical_texts_of_different_scenes_stay_finite():
    t = normalize(torch.tensor([B, B, B]), dim=1).requires_grad_()
    v = torch.tensor([E0, E1])
    total, parts = iat_loss(t, v, torch.tensor([0, 1, 1]), torch.tensor([0, 1, 1]), 0.5, 0.5, 0.05)
    assert math.isfinite(total.item()) and math.isfinite(parts["l_div"].item())
    assert parts["l_div"].item() == pytest.approx(-math.exp(-0.5) * math.log(1e-6), rel=1e-4)
    total.backward()
    assert bool(torch.isfinite(t.grad).all())
