import numpy as np
import pytest

from ideal.metrics import (best_rank_integral, format_table, paired_bootstrap, per_query_rsum, recall_at_k,
                           recall_from_ranks, recall_from_rankings, round_metrics, target_ranks)


def test_recall_hand_computed():
    # 4 queries over 12 scenes; targets ranked 0, 3, 7 and 11.
    scores = np.tile(-np.arange(12, dtype=float), (4, 1))  # scene j has rank j for every query
    r = recall_at_k(scores, [0, 3, 7, 11])
    assert r == {"R@1": 25.0, "R@5": 50.0, "R@10": 75.0, "Rsum": 150.0}


def test_ties_count_against_the_target():
    assert list(target_ranks(np.array([[1.0, 1.0, 0.0]]), [0])) == [1]


def test_rankings_agree_with_scores():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50, 30))
    targets = rng.integers(30, size=50)
    ids = [f"s{j}" for j in range(30)]
    rankings = [[ids[j] for j in np.argsort(-row)[:10]] for row in scores]
    assert recall_from_rankings(rankings, [ids[t] for t in targets]) == recall_at_k(scores, targets)
    with pytest.raises(ValueError, match="without its target; R@10 is undefined"):
        recall_from_rankings([r[:5] for r in rankings], [ids[t] for t in targets])


def test_whole_gallery_smaller_than_k():
    # three scenes ranked completely: R@5 and R@10 are certain hits, R@1 only for the first query
    r = recall_from_rankings([["a", "b", "c"], ["a", "b", "c"]], ["a", "c"])
    assert r == {"R@1": 50.0, "R@5": 100.0, "R@10": 100.0, "Rsum": 250.0}


def test_table():
    t = format_table({"static": {"R@1": 1, "R@5": 2, "R@10": 3, "Rsum": 6}})
    assert t.splitlines()[2] == "| static | 1.0 | 2.0 | 3.0 | 6.0 |"


# ------------------------------------------------------------------------------------------------ per round


def test_round_metrics_by_hand():
    # 0-based ranks of three queries over rounds 0..2; 1-based: (5, 1, 1), (21, 13, 4), (51, 61, 71)
    m = round_metrics(np.array([[4, 0, 0], [20, 12, 3], [50, 60, 70]]))
    assert sorted(m) == ["0", "1", "2"]
    assert m["0"]["BRI"] is None and m["0"]["Rsum"] == pytest.approx(100 / 3 * 2)
    # BRI after one round: ½(log 5 + log 1), ½(log 21 + log 13), ½(log 51 + log 51) (the best rank stays 51)
    want1 = np.mean([0.5 * np.log(5), 0.5 * (np.log(21) + np.log(13)), np.log(51)])
    assert m["1"]["BRI"] == pytest.approx(want1)
    want2 = np.mean([(0.5 * np.log(5) + 0) / 2, (0.5 * (np.log(21) + np.log(13)) + 0.5 * (np.log(13) + np.log(4))) / 2,
                     np.log(51)])
    assert m["2"]["BRI"] == pytest.approx(want2)
    # Hits@10 up to t: query 1 from round 0; query 2 from round 2 (rank 4); query 3 never
    assert [m[t]["Hits@10"] for t in "012"] == pytest.approx([100 / 3, 100 / 3, 200 / 3])
    assert [m[t]["success@10"] for t in "012"] == [m[t]["Hits@10"] for t in "012"]
    # first round at rank 1: query 1 at round 1; nobody at round 0
    assert m["0"]["success@1"] == 0 and m["0"]["rounds@1"] is None
    assert m["2"]["success@1"] == pytest.approx(100 / 3) and m["2"]["rounds@1"] == 1.0
    assert m["2"]["rounds@10"] == pytest.approx((0 + 2) / 2)
    assert m["2"]["mean rank"] == pytest.approx((1 + 4 + 71) / 3) and m["2"]["median rank"] == 4.0
    # R@K at a round is of that round's rank, not the best so far (query 3 got worse)
    assert m["2"]["R@10"] == pytest.approx(200 / 3)


def test_bri_of_a_target_found_first_is_zero_and_ties_count_against_the_target():
    assert best_rank_integral(np.ones((4, 6))).tolist() == np.zeros((4, 5)).tolist()
    # ties count against the target in target_ranks: two scenes tied with the target -> rank 2 (0-based)
    ranks = target_ranks(np.array([[0.5, 0.5, 0.5, 0.1]]), [0])
    assert ranks.tolist() == [2]
    # a target never found (scored -inf beyond an index's candidates) ranks last among the tied
    never = target_ranks(np.array([[0.9, -np.inf, -np.inf, -np.inf]]), [2])
    m = round_metrics(np.stack([ranks, never], axis=1))
    assert m["1"]["mean rank"] == 4.0 and m["1"]["Hits@10"] == 100.0
    assert m["1"]["BRI"] == pytest.approx(np.log(3))  # ½(log 3 + log 3): the best rank stays 3
    with pytest.raises(ValueError, match="1-based"):
        best_rank_integral(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="ranks must be"):
        round_metrics(np.zeros((0, 3)))


def test_paired_bootstrap_of_identical_methods_contains_zero_and_a_shift_excludes_it():
    rng = np.random.default_rng(1)
    ranks = rng.integers(0, 30, size=500)
    a = per_query_rsum(ranks)
    assert a.mean() == pytest.approx(recall_from_ranks(ranks)["Rsum"])
    d, lo, hi = paired_bootstrap(a, a.copy())
    assert d == 0 and lo <= 0 <= hi
    better = per_query_rsum(np.maximum(ranks - 5, 0))  # every target moved up by 5
    d, lo, hi = paired_bootstrap(better, a)
    assert d > 0 and 0 < lo <= d <= hi
    d2, lo2, hi2 = paired_bootstrap(a, better)
    assert hi2 < 0 and d2 == pytest.approx(-d)
    with pytest.raises(ValueError, match="equal-length"):
        paired_bootstrap(a, a[:-1])
