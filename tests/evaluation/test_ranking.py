import numpy as np
import pytest

from tfshop.evaluation.ranking import ranking_metrics, sample_negatives, target_ranks


def test_ranking_metrics_by_hand():
    metrics = ranking_metrics(np.array([0, 1, 9, 10, 50]), ks=(10,))
    assert metrics["hr@10"] == pytest.approx(3 / 5)
    assert metrics["recall@10"] == metrics["hr@10"]
    assert metrics["ndcg@10"] == pytest.approx((1 + 1 / np.log2(3) + 1 / np.log2(11)) / 5)
    assert metrics["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 10 + 1 / 11 + 1 / 51) / 5)


def test_ranks_count_ties_against_the_target_and_skip_excluded():
    scores = np.array([[0.5, 0.9, 0.5, 0.1], [1.0, 1.0, 1.0, 1.0]])
    assert target_ranks(scores, np.array([0, 3])).tolist() == [2, 3]
    exclude = np.array([[False, True, False, False], [True, True, False, False]])
    assert target_ranks(scores, np.array([0, 3]), exclude).tolist() == [1, 1]


def test_sampled_negatives_are_distinct_and_unseen():
    seen = [{1, 2, 3}, set(range(1, 95))]
    negatives = sample_negatives(seen, num_items=200, n=100, rng=np.random.default_rng(0))
    for row, items in enumerate(seen):
        assert len(set(negatives[row])) == 100
        assert not set(negatives[row]) & items
        assert negatives[row].min() >= 1 and negatives[row].max() <= 200
    with pytest.raises(ValueError, match="fewer than 100 unseen"):
        sample_negatives([set(range(1, 150))], num_items=200, n=100, rng=np.random.default_rng(0))


def test_empty_ranks_are_an_error():
    with pytest.raises(ValueError, match="no ranks"):
        ranking_metrics(np.array([]))
