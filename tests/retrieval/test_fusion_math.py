"""Feature-level fusion (ideal/retrieval/meb.py): p̂ softmax, minimum enclosing ball, shell rule, ū — by hand."""
import math

import numpy as np
import pytest

from ideal.retrieval.meb import (_exact_meb, fuse_responses, gallery_softmax, minimum_enclosing_ball,
                                 split_boundary)


# --- p̂(u) = softmax over the gallery (Eq. 3) ---

def test_gallery_softmax_hand_numbers():
    # scores [1, 0, -1] / 0.5 = [2, 0, -2]; e² = 7.389056, e⁰ = 1, e⁻² = 0.135335; sum = 8.524391
    #   p̂ = [7.389056, 1, 0.135335] / 8.524391 = [0.866813, 0.117310, 0.015876]
    got = gallery_softmax(np.array([[1.0, 0.0, -1.0]]), 0.5)
    assert got.dtype == np.float32 and got.shape == (1, 3)
    np.testing.assert_allclose(got, [[0.866813, 0.117310, 0.015876]], atol=1e-6)


def test_gallery_softmax_is_stable_for_large_scores_and_rejects_bad_temperature():
    # 1000/0.01 = 1e5 would overflow exp() without the max subtracted; shifted it is the example above
    got = gallery_softmax(np.array([1000.02, 1000.0, 999.98]), 0.01)
    np.testing.assert_allclose(got, [0.866813, 0.117310, 0.015876], atol=1e-5)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="temperature"):
            gallery_softmax(np.zeros(3), bad)


# --- minimum enclosing ball (o*, R*) ---

def _check_ball(points, centre, radius, want_centre, want_radius, atol=1e-9):
    np.testing.assert_allclose(centre, want_centre, atol=atol)
    assert radius == pytest.approx(want_radius, abs=atol)


def test_meb_two_points_is_midpoint_and_half_distance():
    # (0,0), (4,2): midpoint (2,1), radius |(4,2)|/2 = √20/2 = √5
    pts = np.array([[0.0, 0.0], [4.0, 2.0]])
    _check_ball(pts, *minimum_enclosing_ball(pts), [2.0, 1.0], math.sqrt(5))


def test_meb_equilateral_triangle_is_its_circumcircle():
    # side 2: circumcentre (1, 1/√3), circumradius 2/√3
    pts = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, math.sqrt(3)]])
    _check_ball(pts, *minimum_enclosing_ball(pts), [1.0, 1 / math.sqrt(3)], 2 / math.sqrt(3))


def test_meb_obtuse_triangle_is_the_longest_side_not_the_circumcircle():
    # (0,0), (4,0), (1,1): at (1,1) the edges (-1,-1)·(3,-1) = -2 < 0, an obtuse angle, so the ball is on
    # the longest side: centre (2,0), radius 2 ((1,1) is √2 away, inside). The circumcircle would be (2,-1), √5.
    pts = np.array([[0.0, 0.0], [4.0, 0.0], [1.0, 1.0]])
    _check_ball(pts, *minimum_enclosing_ball(pts), [2.0, 0.0], 2.0)


def test_meb_square_corners_and_centre():
    # (±1, ±1) and (0,0): centre (0,0), radius √2 (the centre point is interior)
    pts = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0], [0.0, 0.0]])
    _check_ball(pts, *minimum_enclosing_ball(pts), [0.0, 0.0], math.sqrt(2))


def test_meb_small_sets_are_exact_whatever_the_iteration_budget():
    # ≤ 6 distinct points take the exact path: one iteration allowed changes nothing
    pts = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, math.sqrt(3)], [1.0, 0.5]])
    _check_ball(pts, *minimum_enclosing_ball(pts, eps=0.5, max_iter=1), [1.0, 1 / math.sqrt(3)], 2 / math.sqrt(3))


def test_meb_single_point_and_duplicates():
    _check_ball(np.array([[3.0, -1.0, 2.0]]), *minimum_enclosing_ball(np.array([[3.0, -1.0, 2.0]])),
                [3.0, -1.0, 2.0], 0.0)
    # (1,1) twice and (3,1): midpoint (2,1), radius 1
    pts = np.array([[1.0, 1.0], [1.0, 1.0], [3.0, 1.0]])
    _check_ball(pts, *minimum_enclosing_ball(pts), [2.0, 1.0], 1.0)


def test_meb_rejects_empty_and_non_finite_input():
    with pytest.raises(ValueError, match="empty"):
        minimum_enclosing_ball(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="NaN"):
        minimum_enclosing_ball(np.array([[0.0, 1.0], [np.nan, 0.0]]))
    with pytest.raises(ValueError, match="NaN"):
        minimum_enclosing_ball(np.array([[0.0, 1.0], [np.inf, 0.0]]))


def _contains(points, centre, radius):
    return np.linalg.norm(points - centre, axis=1).max() <= radius * (1 + 1e-9)


def test_badoiu_clarkson_matches_brute_force_on_a_small_set():
    # 7 points in 3-d take the approximate path; the brute force tries every support set of ≤ 4 points
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(7, 3))
    exact_c, exact_r = _exact_meb(pts)
    assert _contains(pts, exact_c, exact_r)
    # no ball is smaller than half the diameter
    diameter = max(np.linalg.norm(a - b) for a in pts for b in pts)
    assert exact_r >= diameter / 2 - 1e-12
    eps = 0.01
    c, r = minimum_enclosing_ball(pts, eps=eps, max_iter=10_000)   # 1/eps² = 10 000 steps
    assert _contains(pts, c, r)
    assert exact_r - 1e-12 <= r <= (1 + eps) * exact_r


def test_badoiu_clarkson_on_50_points_in_8d_with_a_known_ball():
    # c ± e₁ are on any enclosing ball's boundary at best (distance 2 apart), and the other 48 points are
    # drawn within 0.9 of c, so the minimum enclosing ball is exactly (c, 1).
    rng = np.random.default_rng(1)
    centre = rng.normal(size=8)
    directions = rng.normal(size=(48, 8))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    inner = centre + directions * 0.9 * rng.uniform(size=(48, 1)) ** (1 / 8)
    e1 = np.eye(8)[0]
    pts = np.vstack([inner[:20], centre + e1, inner[20:], centre - e1])
    eps = 0.01
    c, r = minimum_enclosing_ball(pts, eps=eps, max_iter=10_000)
    assert _contains(pts, c, r)
    assert r >= 1.0 - 1e-12 and r <= 1.0 + eps
    # any centre c reaches at least √(R*² + |c − o*|²), so a ball of radius r is centred within √(r² − R*²) of o*
    assert np.linalg.norm(c - centre) <= math.sqrt(r**2 - 1.0) + 1e-9


# --- shell rule: boundary set U¹ ---

def test_split_boundary_shell_rule_by_hand():
    # centre (0,0), radius 2; distances 0, 1, 1.5, 1.6, 2
    pts = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, -1.5], [1.6, 0.0], [0.0, 2.0]])
    centre = np.zeros(2)
    # shell 0.25: boundary when distance ≥ 0.75·2 = 1.5
    assert split_boundary(pts, centre, 2.0, 0.25).tolist() == [False, False, True, True, True]
    # shell 0: only the points on the sphere
    assert split_boundary(pts, centre, 2.0, 0.0).tolist() == [False, False, False, False, True]
    # shell 1: every point
    assert split_boundary(pts, centre, 2.0, 1.0).all()
    # a ball of radius 0 has no boundary
    assert not split_boundary(np.array([[1.0, 1.0]]), np.array([1.0, 1.0]), 0.0, 0.5).any()
    with pytest.raises(ValueError, match="shell"):
        split_boundary(pts, centre, 2.0, 1.5)


# --- ū: fuse_responses ---

def test_fuse_one_q1_response_by_hand():
    # u⁰ = (1,0); Q1 answer (0,1) with α = .75: u¹ = .75·(0,1) + .25·(1,0) = (.25, .75)
    # ball of {(1,0), (.25,.75)}: o* = (.625, .375), both points on the sphere → U² empty → ū = o*
    # |o*| = √(.390625 + .140625) = √.53125 = .728869 → ū = (.857493, .514496)
    got = fuse_responses(np.array([1.0, 0.0]), np.array([[0.0, 1.0]]), [True], alpha=0.75, shell=0.1)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [0.857493, 0.514496], atol=1e-6)


def test_fuse_mixed_dialog_by_hand():
    # u⁰ = (1,0); Q1 (0,1) → u¹ = .75·(0,1) + .25·(1,0) = (.25,.75); Q2 (-1,0) → u² = (-1,0); Q2 (0,-.5) → u³
    # ball: (1,0) and (-1,0) are 2 apart and the others are inside the unit circle (|u¹| = √.625 = .7906,
    # |u³| = .5), so o* = (0,0), R* = 1.
    query = np.array([1.0, 0.0])
    responses = np.array([[0.0, 1.0], [-1.0, 0.0], [0.0, -0.5]])
    detail = [True, False, False]
    # shell .25: boundary when distance ≥ .75 → U¹ = {u⁰, u¹, u²}, U² = {u³}
    #   ū = ½·((0,0) + (0,-.5)) = (0,-.25) → normalised (0,-1)
    np.testing.assert_allclose(fuse_responses(query, responses, detail, 0.75, 0.25), [0.0, -1.0], atol=1e-6)
    # shell .2: boundary when distance ≥ .8 → u¹ (.7906) is central too: mean(U²) = ((.25+0)/2, (.75-.5)/2)
    #   = (.125,.125); ū = ½·((0,0) + (.125,.125)) = (.0625,.0625) → normalised (1/√2, 1/√2)
    s = 1 / math.sqrt(2)
    np.testing.assert_allclose(fuse_responses(query, responses, detail, 0.75, 0.2), [s, s], atol=1e-6)
    # had the Q1 answer not been fused, (0,1) would lie on the sphere and ū would be (0,-1) again
    np.testing.assert_allclose(fuse_responses(query, responses, [False, False, False], 0.75, 0.2),
                               [0.0, -1.0], atol=1e-6)


def test_fuse_q1_after_q2_leans_on_the_q2_answer_and_the_ball_is_off_origin():
    # u⁰ = (2,1); Q2 (0,1) → u¹ = (0,1); Q1 (1,2) with α = .5 → u² = .5·(1,2) + .5·u¹ = (.5,1.5)
    # ball: u⁰ and u¹ are 2 apart around (1,1); u² − (1,1) = (−.5,.5), .7071 away, inside → o* = (1,1), R* = 1
    # shell .25: boundary when distance ≥ .75 → U² = {u²}; ū = ½·((1,1) + (.5,1.5)) = (.75,1.25)
    # |ū| = √2.125 = 1.457738 → (.514496, .857493)
    got = fuse_responses(np.array([2.0, 1.0]), np.array([[0.0, 1.0], [1.0, 2.0]]), [False, True], 0.5, 0.25)
    np.testing.assert_allclose(got, [0.514496, 0.857493], atol=1e-6)


def test_fuse_alpha_one_keeps_q1_answers_as_they_are():
    rng = np.random.default_rng(2)
    query, responses = rng.normal(size=4), rng.normal(size=(3, 4))
    # α = 1: u^j ← 1·u^j + 0·u^{j−1}, exactly what a Q2 answer gets
    np.testing.assert_allclose(fuse_responses(query, responses, [True, True, True], 1.0, 0.2),
                               fuse_responses(query, responses, [False, False, False], 1.0, 0.2), atol=1e-7)


def test_fuse_alpha_zero_repeats_the_previous_feature():
    rng = np.random.default_rng(3)
    query, responses = rng.normal(size=4), rng.normal(size=(3, 4))
    # α = 0: every Q1 answer becomes u^{j−1}; all Q1 → every point is u⁰, a ball of radius 0 → ū = u⁰/|u⁰|
    np.testing.assert_allclose(fuse_responses(query, responses, [True, True, True], 0.0, 0.2),
                               query / np.linalg.norm(query), atol=1e-6)
    # Q2 then Q1: u² = u¹, a duplicate point, so the dialog is the Q2 answer alone
    np.testing.assert_allclose(fuse_responses(query, responses[:2], [False, True], 0.0, 0.2),
                               fuse_responses(query, responses[:1], [False], 0.0, 0.2), atol=1e-6)


def test_fuse_without_responses_is_the_query_and_checks_its_arguments():
    np.testing.assert_allclose(fuse_responses(np.array([3.0, 4.0]), np.zeros((0, 2)), [], 0.75, 0.2),
                               [0.6, 0.8], atol=1e-7)
    for bad in (-0.1, 1.1):
        with pytest.raises(ValueError, match="alpha"):
            fuse_responses(np.array([1.0, 0.0]), np.array([[0.0, 1.0]]), [True], bad, 0.2)
    with pytest.raises(ValueError, match="detail"):
        fuse_responses(np.array([1.0, 0.0]), np.array([[0.0, 1.0]]), [True, False], 0.75, 0.2)


# --- ū as coefficients over its inputs (p̂2 by score) ---

def test_fusion_coefficients_rebuild_u_bar():
    from ideal.retrieval.meb import fusion_coefficients

    rng = np.random.default_rng(5)
    for r in range(6):
        for _ in range(20):
            pts = rng.normal(size=(r + 1, 8))
            pts /= np.linalg.norm(pts, axis=1, keepdims=True)
            detail = list(rng.random(r) < 0.5)
            coef, norm = fusion_coefficients(pts[0], pts[1:], detail, 0.75, 0.1)
            assert coef.shape == (r + 1,) and (coef >= 0).all() and coef.sum() == pytest.approx(1.0)
            np.testing.assert_allclose(coef @ pts / norm, fuse_responses(pts[0], pts[1:], detail, 0.75, 0.1),
                                       atol=1e-6)
    # by hand: one Q1 response blended with α = 0.75 -> points u and ¾u¹ + ¼u; the ball's centre is their
    # midpoint and both lie on its sphere, so ū ∝ ½u + ½(¾u¹ + ¼u) = ⅝u + ⅜u¹
    coef, norm = fusion_coefficients(np.array([1.0, 0.0]), np.array([[0.0, 1.0]]), [True], 0.75, 0.1)
    np.testing.assert_allclose(coef, [0.625, 0.375])
    assert norm == pytest.approx(np.hypot(0.625, 0.375))
    assert fusion_coefficients(np.array([3.0, 4.0]), np.zeros((0, 2)), [], 0.75, 0.1)[1] == pytest.approx(5.0)
