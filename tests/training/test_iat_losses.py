import math

import pytest
import torch
from torch.nn.functional import normalize

from ideal.training.losses import div_weight, iat_loss, l_dis, l_div

# Unit vectors in 2-D whose dot products are easy by hand.
E0, E1 = [1.0, 0.0], [0.0, 1.0]
A, B = [0.8, 0.6], [0.6, 0.8]  # E0·A = .8, E0·B = .6, A·B = .96, E1·A = .6, E1·B = .8

# The shared example: three texts, two scenes. Texts t0 = E0, t1 = A of scene 0 and t2 = B of scene 1;
# the scene features are v0 = E0 (scene 0) and v1 = E1 (scene 1).
TEXTS = [E0, A, B]
SCENES = [E0, E1]
TARGETS = [0, 0, 1]  # each text's row in SCENES
IDS = [0, 0, 1]  # each text's scene id

ATOL = 1e-5


def test_l_dis_hand_computed():
    # τ = .5 doubles the cosines. Logits over (v0, v1), positive first:
    #   t0 = E0: [2, 0]     → −log(e² / (e² + e⁰))        = log(1 + e^−2)  = 0.126928
    #   t1 = A:  [1.6, 1.2] → −log(e^1.6 / (e^1.6 + e^1.2)) = log(1 + e^−.4) = 0.513015
    #   t2 = B:  [1.2, 1.6], positive v1 → the same          = log(1 + e^−.4) = 0.513015
    # L_dis = (0.126928 + 2 · 0.513015) / 3 = 0.384320
    got = l_dis(torch.tensor(TEXTS), torch.tensor(SCENES), torch.tensor(TARGETS), 0.5)
    assert got.item() == pytest.approx(0.384320, abs=ATOL)
    assert got.item() == pytest.approx((math.log(1 + math.exp(-2)) + 2 * math.log(1 + math.exp(-0.4))) / 3,
                                       abs=ATOL)


def test_l_dis_with_y_matrix_counts_a_duplicated_scene_row_as_positive():
    t, v = torch.tensor(TEXTS), torch.tensor(SCENES)
    y = torch.tensor(IDS)[:, None] == torch.tensor([0, 1])[None, :]
    # A one-hot y is the same loss as the row indices.
    assert l_dis(t, v, y, 0.5).item() == pytest.approx(l_dis(t, v, torch.tensor(TARGETS), 0.5).item(), abs=ATOL)
    # Scene 0 twice (rows 0 and 2, as when two workers gather it). Text A, τ = .5: logits [1.6, 1.2, 1.6];
    # both scene-0 rows are positives: −log(2e^1.6 / (2e^1.6 + e^1.2)) = 0.289051.
    got = l_dis(torch.tensor([A]), torch.tensor([E0, E1, E0]), torch.tensor([[True, False, True]]), 0.5)
    assert got.item() == pytest.approx(0.289051, abs=ATOL)


def test_l_dis_rejects_a_target_outside_the_scenes():
    with pytest.raises(ValueError, match="must index the 2 scene rows"):
        l_dis(torch.eye(2), torch.eye(2), torch.tensor([0, 2]), 1.0)
    with pytest.raises(ValueError, match="a row of y is all False"):
        l_dis(torch.eye(2), torch.eye(2), torch.tensor([[True, False], [False, False]]), 1.0)


def test_div_weight_is_one_up_to_gamma_then_exp_decay():
    s = torch.tensor([0.0, 0.2, 0.5, 0.7, 1.0], requires_grad=True)
    w = div_weight(s, 0.5)
    # S ≤ γ → 1; above: exp(−(S − γ)): exp(−.2) = 0.818731, exp(−.5) = 0.606531.
    assert w.tolist() == pytest.approx([1.0, 1.0, 1.0, 0.818731, 0.606531], abs=ATOL)
    assert not w.requires_grad  # a weight, not a path for the gradient


def test_l_div_hand_computed_excludes_same_scene_pairs():
    # t0, t1 share scene 0 (cos .8, not in the sum). Different-scene pairs, γ = .5:
    #   (t0, t2): S = .6,  w = exp(−.1)  = 0.904837, −log(1 − .6)  = 0.916291 → 0.829094
    #   (t1, t2): S = .96, w = exp(−.46) = 0.631284, −log(1 − .96) = 3.218876 → 2.032024
    # Ordered pairs (0,2), (2,0), (1,2), (2,1) count each twice, so the mean is (0.829094 + 2.032024) / 2.
    got = l_div(torch.tensor(TEXTS), torch.tensor(IDS), 0.5)
    assert got.item() == pytest.approx(1.430559, abs=ATOL)
    # γ = .99 puts both pairs below γ: w = 1, L = (0.916291 + 3.218876) / 2 = 2.067584.
    assert l_div(torch.tensor(TEXTS), torch.tensor(IDS), 0.99).item() == pytest.approx(2.067584, abs=ATOL)


def test_l_div_ignores_how_close_same_scene_texts_are():
    # Moving t1 onto t0 (same scene) changes only its different-scene cosine: t1 = E0 makes both pairs
    # (t0, t2) and (t1, t2) have S = .6, so L = w(.6)·(−log .4) = 0.829094, whatever cos(t0, t1) = 1 is.
    got = l_div(torch.tensor([E0, E0, B]), torch.tensor(IDS), 0.5)
    assert got.item() == pytest.approx(0.829094, abs=ATOL)


def test_l_div_clamps_negative_cosine_to_zero():
    t = torch.tensor([E0, [-0.6, 0.8]])  # cos = −.6 → S = 0 → log(1) = 0
    assert l_div(t, torch.tensor([0, 1]), 0.5).item() == 0.0


def test_l_div_without_different_scene_pairs_is_zero_with_grad():
    t = torch.tensor(TEXTS, requires_grad=True)
    loss = l_div(t, torch.tensor([4, 4, 4]), 0.5)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(t.grad, torch.zeros_like(t))


def test_l_div_weight_is_detached():
    # One pair, S = .6 > γ = .5: dL/dt0 = w/(1−S)·t1 with w constant (w' = −w would add w·log(1−S)·t1).
    t = torch.tensor([E0, B], requires_grad=True)
    l_div(t, torch.tensor([0, 1]), 0.5).backward()
    w = math.exp(-0.1)
    assert t.grad[0].tolist() == pytest.approx([w / 0.4 * 0.6, w / 0.4 * 0.8], abs=ATOL)


def _sgd_step(loss_fn, t0: torch.Tensor, lr: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    t = t0.clone().requires_grad_()
    loss_fn(t).backward()
    with torch.no_grad():
        return normalize(t - lr * t.grad, dim=1), t.grad


def test_l_dis_step_pulls_each_text_to_its_scene():
    g = torch.Generator().manual_seed(0)
    t = normalize(torch.randn(4, 8, generator=g), dim=1)
    v = normalize(torch.randn(3, 8, generator=g), dim=1)
    targets = torch.tensor([0, 1, 2, 1])
    after, _ = _sgd_step(lambda x: l_dis(x, v, targets, 0.1), t)
    own = lambda x: (x * v[targets]).sum(1)  # noqa: E731
    assert bool((own(after) > own(t)).all())


def test_l_div_step_pushes_different_scene_texts_apart():
    g = torch.Generator().manual_seed(1)
    # Start all texts close together so every different-scene cosine is positive (inside the clamp).
    t = normalize(torch.ones(5, 8) + 0.3 * torch.randn(5, 8, generator=g), dim=1)
    ids = torch.tensor([0, 0, 1, 2, 2])
    diff = ids[:, None] != ids[None, :]
    assert bool(((t @ t.T)[diff] > 0).all())
    after, _ = _sgd_step(lambda x: l_div(x, ids, 0.5), t)
    dist = lambda x: (x[:, None] - x[None, :]).norm(dim=-1)  # noqa: E731
    assert bool((dist(after)[diff] > dist(t)[diff]).all())


def test_l_div_gradient_has_no_same_scene_term():
    # t0, t1 of scene 0 and t2 of scene 1: only pairs with t2 are in the sum, so
    # dL/dt0 = c02·t2 and dL/dt1 = c12·t2, never along the same-scene partner. With |P| = 4 ordered pairs
    # and each unordered pair in P twice, c = 2 · w/(1 − S) / 4.
    t = torch.tensor(TEXTS)
    _, grad = _sgd_step(lambda x: l_div(x, torch.tensor(IDS), 0.5), t)
    c02 = math.exp(-0.1) / 0.4 / 2
    c12 = math.exp(-0.46) / 0.04 / 2
    assert grad[0].tolist() == pytest.approx([c02 * 0.6, c02 * 0.8], abs=ATOL)
    assert grad[1].tolist() == pytest.approx([c12 * 0.6, c12 * 0.8], abs=ATOL)


def test_iat_loss_combines_with_lambda():
    t, v = torch.tensor(TEXTS), torch.tensor(SCENES)
    targets, ids = torch.tensor(TARGETS), torch.tensor(IDS)
    dis, div = l_dis(t, v, targets, 0.5), l_div(t, ids, 0.5)
    total, parts = iat_loss(t, v, targets, ids, lam=1.0, gamma=0.5, temperature=0.5)
    assert total.item() == dis.item() and parts["l_dis"].item() == dis.item()  # λ = 1: L_dis alone
    assert parts["l_div"].item() == div.item()
    assert iat_loss(t, v, targets, ids, 0.0, 0.5, 0.5)[0].item() == div.item()  # λ = 0: L_div alone
    # λ = .3: .3 · 0.384320 + .7 · 1.430559 = 1.116687
    total, _ = iat_loss(t, v, targets, ids, 0.3, 0.5, 0.5)
    assert total.item() == pytest.approx(1.116687, abs=ATOL)
    with pytest.raises(ValueError, match=r"lam \(λ\) must be in \[0, 1\]"):
        iat_loss(t, v, targets, ids, 1.5, 0.5, 0.5)


def test_identical_texts_of_different_scenes_stay_finite():
    t = normalize(torch.tensor([B, B, B]), dim=1).requires_grad_()
    v = torch.tensor(SCENES)
    total, parts = iat_loss(t, v, torch.tensor([0, 1, 1]), torch.tensor([0, 1, 1]), 0.5, 0.5, 0.05)
    assert math.isfinite(total.item()) and math.isfinite(parts["l_div"].item())
    # S clamps to 1 − 1e-6: w = exp(−.5), −log(1e-6) = 13.815511 → 8.379552.
    assert parts["l_div"].item() == pytest.approx(-math.exp(-0.5) * math.log(1e-6), rel=1e-4)
    total.backward()
    assert bool(torch.isfinite(t.grad).all())
