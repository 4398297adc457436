import numpy as np
import pytest

from ideal.metrics import format_table, recall_at_k, recall_from_rankings, target_ranks


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
