"""The questioner's router (ideal/dialog/router.py): ρ, Ẽ and the Q1/Q2 rule against hand-computed numbers."""
import math

import numpy as np
import pytest

from ideal.dialog.router import Q1, Q2, affinity_entropy, route, scene_density

# four scenes on a plane: P0 (0,0), P1 (1,0), P2 (3,0), P3 (3,4)
# distances: P0–P1 1, P0–P2 3, P0–P3 5, P1–P2 2, P1–P3 √20 = 4.472136, P2–P3 4
POINTS = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [3.0, 4.0]])


def test_scene_density_k1_by_hand():
    # nearest other scene: P0 1, P1 1, P2 2, P3 4; ρ = 1/(d + .5)
    want = [1 / 1.5, 1 / 1.5, 1 / 2.5, 1 / 4.5]
    np.testing.assert_allclose(scene_density(POINTS, k=1, eps=0.5), want, rtol=1e-12)


def test_scene_density_k2_by_hand():
    # two nearest: P0 (1+3)/2 = 2, P1 (1+2)/2 = 1.5, P2 (2+3)/2 = 2.5, P3 (4+4.472136)/2 = 4.236068
    want = [1 / 2.5, 1 / 2.0, 1 / 3.0, 1 / (2 + math.sqrt(20) / 2 + 0.5)]
    np.testing.assert_allclose(scene_density(POINTS, k=2, eps=0.5), want, rtol=1e-12)


def test_scene_density_clips_k_and_handles_one_scene_and_duplicates():
    # k = 5 > S − 1 = 3: every other scene. P0 (1+3+5)/3 = 3, P1 (1+2+√20)/3, P2 (3+2+4)/3 = 3, P3 (5+√20+4)/3
    r20 = math.sqrt(20)
    want = [1 / 3.5, 1 / ((3 + r20) / 3 + 0.5), 1 / 3.5, 1 / ((9 + r20) / 3 + 0.5)]
    np.testing.assert_allclose(scene_density(POINTS, k=5, eps=0.5), want, rtol=1e-12)
    np.testing.assert_allclose(scene_density(np.array([[0.3, 0.4]]), k=20, eps=0.01), [100.0])
    # a copy of a scene is its neighbour at distance 0 (only the scene itself is left out): ρ = 1/(0 + .5) = 2
    dup = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(scene_density(dup, k=1, eps=0.5), [2.0, 2.0, 1 / 1.5], rtol=1e-12)


def test_scene_density_chunked_equals_unchunked():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(50, 16))
    whole = scene_density(emb, k=5, eps=1e-3, chunk=1000)
    for chunk in (1, 7, 49):
        np.testing.assert_allclose(scene_density(emb, k=5, eps=1e-3, chunk=chunk), whole, rtol=1e-10)


def test_affinity_entropy_three_scenes_by_hand():
    # sims .1, .5, .3 at τ = .2 → z = .5, 2.5, 1.5; shifted by .5: 0, 2, 1
    # Z = e² + e¹ + e⁰ = 7.389056 + 2.718282 + 1 = 11.107338, ln Z = 2.407606
    # p = (.665241, .244728, .090031) for (.5, .3, .1); Σ p·z = 2·.665241 + 1·.244728 = 1.575210
    # E = ln Z − Σ p·z = 2.407606 − 1.575210 = .832396 nats
    sims = np.array([[0.1, 0.5, 0.3]])
    np.testing.assert_allclose(affinity_entropy(sims, k=3, tau=0.2), [0.832396], atol=1e-6)
    # k = 2 keeps .5 and .3: z differ by 1, p = σ(1) = .731059, .268941
    # E = .731059·.313262 + .268941·1.313262 = .229015 + .353189 = .582203
    np.testing.assert_allclose(affinity_entropy(sims, k=2, tau=0.2), [0.582203], atol=1e-6)
    # k larger than the gallery is the whole gallery
    np.testing.assert_allclose(affinity_entropy(sims, k=20, tau=0.2), [0.832396], atol=1e-6)


def test_density_compensation_flips_the_route():
    # A tight pair of scenes (A1, A2, 0.15 apart) and a loose pair (B1, B2, 0.75 apart), far from each other.
    gallery = np.array([[0.0, 0.0], [0.15, 0.0], [0.0, 3.0], [0.75, 3.0]])
    # k = 1, ε = .05: ρ(A) = 1/(.15 + .05) = 5, ρ(B) = 1/(.75 + .05) = 1.25
    rho = scene_density(gallery, k=1, eps=0.05)
    np.testing.assert_allclose(rho, [5.0, 5.0, 1.25, 1.25], rtol=1e-12)
    # the text feature's similarities to A1, A2, B1, B2
    sims = np.array([[0.8, 0.1, 0.4, 0.0]])
    beta = 0.5
    # uncorrected, k = 2: .8 and .4 at τ = .2 → z differ by 2, p = σ(2) = .880797, .119203
    #   E = .880797·.126928 + .119203·2.126928 = .111798 + .253536 = .365334 ≤ β → informative → Q2
    plain = affinity_entropy(sims, k=2, tau=0.2)
    np.testing.assert_allclose(plain, [0.365334], atol=1e-6)
    # corrected: S̃ = (.8/√5, .1/√5, .4/√1.25, 0) = (.357771, .044721, .357771, 0): the two kept are equal,
    #   p = (½, ½), Ẽ = ln 2 = .693147 > β → uninformative → Q1
    corrected = affinity_entropy(sims, k=2, tau=0.2, density=rho)
    np.testing.assert_allclose(corrected, [math.log(2)], atol=1e-9)
    assert route(plain, beta, [[Q2]], force_q2_after=2) == [Q2]
    assert route(corrected, beta, [[Q2]], force_q2_after=2) == [Q1]


def test_affinity_entropy_picks_the_k_nearest_by_corrected_similarity():
    # S = (.5, .45, .3), ρ = (4, 4, .25) → sqrt ρ = (2, 2, .5), S̃ = (.25, .225, .6)
    # k = 2 by S̃ keeps .6 and .25: at τ = .1, z differ by 3.5, p = σ(3.5) = .970688, .029312
    #   E = −(.970688·ln .970688 + .029312·ln .029312) = .028878 + .103465 = .132343
    # (keeping the two largest S instead, .25 and .225, would give .685395)
    got = affinity_entropy(np.array([[0.5, 0.45, 0.3]]), k=2, tau=0.1, density=np.array([4.0, 4.0, 0.25]))
    np.testing.assert_allclose(got, [0.132343], atol=1e-6)


def test_affinity_entropy_checks_its_arguments():
    sims = np.zeros((2, 3))
    with pytest.raises(ValueError, match="density"):
        affinity_entropy(sims, k=2, tau=0.1, density=np.ones(4))
    with pytest.raises(ValueError, match="tau"):
        affinity_entropy(sims, k=2, tau=0.0)
    with pytest.raises(ValueError, match="k"):
        affinity_entropy(sims, k=0, tau=0.1)


def test_route_round_zero_asks_q1_whatever_the_entropy():
    assert route(np.array([0.0, 5.0]), 1.0, [[], []], force_q2_after=2) == [Q1, Q1]


def test_route_threshold_both_sides():
    # Ẽ > β → Q1; Ẽ ≤ β (equality included) → Q2
    got = route(np.array([2.01, 2.0, 1.5]), 2.0, [[Q2], [Q2], [Q1, Q2]], force_q2_after=2)
    assert got == [Q1, Q2, Q2]


def test_route_forces_q2_after_a_run_of_q1():
    high = np.full(4, 3.0)      # every dialog uninformative: the threshold alone would say Q1
    previous = [[Q1], [Q1, Q1], [Q2, Q1, Q1], [Q1, Q2]]
    # force_q2_after = 2: only dialogs whose last two questions were both Q1 are forced
    assert route(high, 2.0, previous, force_q2_after=2) == [Q1, Q2, Q2, Q1]
    # 0 turns the rule off
    assert route(high, 2.0, previous, force_q2_after=0) == [Q1, Q1, Q1, Q1]
    # 1: any dialog whose last question was a Q1
    assert route(high, 2.0, previous, force_q2_after=1) == [Q2, Q2, Q2, Q1]


def test_route_checks_its_arguments():
    with pytest.raises(ValueError, match="previous"):
        route(np.array([1.0]), 2.0, [[], []], force_q2_after=2)
    with pytest.raises(ValueError, match="force_q2_after"):
        route(np.array([1.0]), 2.0, [[Q1]], force_q2_after=-1)
    with pytest.raises(ValueError, match="unknown"):
        route(np.array([1.0]), 2.0, [["Q3"]], force_q2_after=2)


def test_entropy_leaves_out_scenes_that_are_not_candidates():
    """A scene an approximate index did not find scores -inf: it is outside N_k(u) even when k is larger."""
    sims = np.array([[0.9, 0.5, -np.inf, -np.inf]])
    got = affinity_entropy(sims, k=4, tau=0.1)
    want = affinity_entropy(sims[:, :2], k=2, tau=0.1)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want)
