"""The retriever's final prediction p̂c = λ1·p̂1 + λ2·p̂2 + λ3·p̂3 (paper Eq. 5) against hand-computed numbers."""
import numpy as np
import pytest

from ideal.retrieval.fusion import fuse

# three distributions over three scenes
P1 = np.array([[0.5, 0.3, 0.2]])
P2 = np.array([[0.1, 0.6, 0.3]])
P3 = np.array([[0.7, 0.0, 0.3]])


def test_fuse_hand_numbers():
    # 0.2·p1 + 0.4·p2 + 0.4·p3:
    #   scene 0: 0.10 + 0.04 + 0.28 = 0.42; scene 1: 0.06 + 0.24 + 0.00 = 0.30; scene 2: 0.04 + 0.12 + 0.12 = 0.28
    got = fuse(P1, P2, P3, (0.2, 0.4, 0.4))
    assert got.shape == (1, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, [[0.42, 0.30, 0.28]], atol=1e-6)
    assert got.sum() == pytest.approx(1.0)  # weights summing to 1 keep a distribution


def test_a_view_with_zero_weight_may_be_missing():
    np.testing.assert_allclose(fuse(None, P2, None, (0.0, 1.0, 0.0)), P2, atol=1e-7)
    # 0.5·p1 + 0.5·p3 = [0.6, 0.15, 0.25]
    np.testing.assert_allclose(fuse(P1, None, P3, (0.5, 0.0, 0.5)), [[0.6, 0.15, 0.25]], atol=1e-6)
    # ... and is ignored when given
    np.testing.assert_allclose(fuse(P1, P2, P3, (0.0, 0.5, 0.5)), fuse(None, P2, P3, (0.0, 0.5, 0.5)))


def test_weights_need_not_sum_to_one():
    # 2·p1 + 1·p3 = [1.7, 0.6, 0.7]
    np.testing.assert_allclose(fuse(P1, None, P3, (2.0, 0.0, 1.0)), [[1.7, 0.6, 0.7]], atol=1e-6)


def test_fuse_batches():
    p = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(fuse(p, p, None, (0.25, 0.5, 0.0)), 0.75 * p)
    np.testing.assert_allclose(fuse(p[0], None, p[0], (1.0, 0.0, 1.0)), 2 * p[0])  # one dialog: (S,)


def test_a_weighted_view_must_be_given():
    with pytest.raises(ValueError, match="p2 is missing but its weight is 0.4"):
        fuse(P1, None, P3, (0.2, 0.4, 0.4))
    with pytest.raises(ValueError, match="p3 is missing"):
        fuse(P1, P2, None, (0.2, 0.4, 0.4))


@pytest.mark.parametrize("lambdas", [(-0.1, 0.6, 0.5), (0.2, -1e-9, 0.8), (0.0, 0.0, -1.0)])
def test_negative_weights_are_rejected(lambdas):
    with pytest.raises(ValueError, match="fusion weights must be >= 0"):
        fuse(P1, P2, P3, lambdas)


def test_all_zero_weights_are_rejected():
    with pytest.raises(ValueError, match="all fusion weights are zero"):
        fuse(P1, P2, P3, (0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="all fusion weights are zero"):
        fuse(None, None, None, (0.0, 0.0, 0.0))
