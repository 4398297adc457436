"""Fused re-ranking math (λ1·p1 + λ2·p2 + λ3·p3, α mixing, softmax(score/β)) against hand-computed numbers."""
import math

import numpy as np
import pytest

from ideal.retrieval.fusion import fuse, mix, softmax_weights

P1 = np.array([[0.5, 0.1, -0.2]])
P2 = np.array([[0.0, 0.4, 0.2]])
P3 = np.array([[1.0, 0.0, 0.3]])


def test_fuse_hand_numbers():
    # 0.2·p1 + 0.4·p2 + 0.4·p3:
    #   scene 0: 0.10 + 0.00 + 0.40 = 0.50; scene 1: 0.02 + 0.16 + 0.00 = 0.18; scene 2: -0.04 + 0.08 + 0.12 = 0.16
    got = fuse(P1, P2, P3, (0.2, 0.4, 0.4))
    assert got.shape == (1, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, [[0.50, 0.18, 0.16]], atol=1e-6)


def test_fuse_single_view_and_unnormalised_weights():
    np.testing.assert_allclose(fuse(None, P2, None, (0.0, 1.0, 0.0)), P2, atol=1e-7)
    # weights need not sum to 1: 2·p1 + 1·p3 = [2.0, 0.2, -0.1]
    np.testing.assert_allclose(fuse(P1, None, P3, (2.0, 0.0, 1.0)), [[2.0, 0.2, -0.1]], atol=1e-6)


def test_fuse_ignores_a_zero_weighted_view_even_when_given():
    np.testing.assert_allclose(fuse(P1, P2, P3, (0.0, 0.5, 0.5)), fuse(None, P2, P3, (0.0, 0.5, 0.5)))


def test_fuse_batches():
    p = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(fuse(p, p, None, (0.25, 0.5, 0.0)), 0.75 * p)


def test_fuse_errors():
    with pytest.raises(ValueError, match="p2 is missing but its weight is 0.4"):
        fuse(P1, None, P3, (0.2, 0.4, 0.4))
    with pytest.raises(ValueError, match="p3"):
        fuse(P1, P2, None, (0.2, 0.4, 0.4))
    with pytest.raises(ValueError, match="all fusion weights are zero"):
        fuse(P1, P2, P3, (0.0, 0.0, 0.0))


def test_mix_hand_numbers():
    new, prev = np.array([1.0, 0.0, 0.5]), np.array([0.0, 1.0, 0.5])
    # 0.7·new + 0.3·prev
    got = mix(new, prev, 0.7)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [0.7, 0.3, 0.5], atol=1e-6)
    np.testing.assert_allclose(mix(new, prev, 1.0), new)
    np.testing.assert_allclose(mix(new, prev, 0.0), prev)


def test_mix_first_round_is_the_new_scores():
    new = np.array([0.3, -0.1])
    for alpha in (0.0, 0.4, 1.0):
        np.testing.assert_allclose(mix(new, None, alpha), new, atol=1e-7)


@pytest.mark.parametrize("alpha", [-0.1, 1.01, 2.0])
def test_mix_alpha_out_of_range(alpha):
    with pytest.raises(ValueError, match="alpha must be in"):
        mix(np.zeros(2), np.zeros(2), alpha)


def test_softmax_weights_hand_numbers():
    scores = np.array([[0.3, 0.2, 0.1]])
    # β = 0.1: z = [3, 2, 1]; weights = e^z / (e^3 + e^2 + e^1)
    z = [math.exp(3), math.exp(2), math.exp(1)]
    expected = [v / sum(z) for v in z]
    got = softmax_weights(scores, 0.1)
    np.testing.assert_allclose(got, [expected], rtol=1e-9)
    assert expected[0] == pytest.approx(0.66524, abs=1e-5)


def test_softmax_weights_temperature_and_stability():
    scores = np.array([[0.3, 0.2, 0.1], [1000.0, 1000.0, 1000.0]])
    w = softmax_weights(scores, 1e-3)
    np.testing.assert_allclose(w.sum(axis=-1), 1.0)
    assert w[0, 0] > 0.999  # small β: all weight on the best
    np.testing.assert_allclose(w[1], [1 / 3] * 3)  # large scores do not overflow
    flat = softmax_weights(scores[:1], 1e6)  # large β: near uniform
    np.testing.assert_allclose(flat, [[1 / 3] * 3], atol=1e-6)


@pytest.mark.parametrize("beta", [0.0, -0.5])
def test_softmax_weights_beta_must_be_positive(beta):
    with pytest.raises(ValueError, match="beta must be > 0"):
        softmax_weights(np.zeros((1, 3)), beta)
