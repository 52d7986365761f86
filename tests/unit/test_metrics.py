"""Top-k metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.metrics import (
    coverage_at_k,
    hit_at_k,
    intra_list_diversity,
    ndcg_at_k,
    page_ndcg,
    paired_ratio,
    recall_at_k,
    reciprocal_rank,
    summarize,
    unit_rows,
)


def test_ndcg_of_hits_at_positions_two_and_three() -> None:
    # Given relevant items 2 and 3 recommended 2nd and 3rd
    # When NDCG@10 is computed
    value = ndcg_at_k([1, 2, 3, 4], {2, 3}, 10)
    # Then DCG = 1/log2(3) + 1/log2(4), ideal = 1 + 1/log2(3)
    expected = (1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3))
    assert value == pytest.approx(expected)
    assert value == pytest.approx(0.6934, abs=1e-4)


def test_ndcg_is_one_for_a_perfect_list_and_zero_without_hits() -> None:
    assert ndcg_at_k([5, 6, 7], {5, 6}, 10) == pytest.approx(1.0)
    assert ndcg_at_k([1, 2], {5}, 10) == 0.0
    assert ndcg_at_k([1, 2], set(), 10) == 0.0


def test_ndcg_ignores_hits_beyond_k() -> None:
    # Given the only relevant item at position 3 / When k = 2 / Then nothing counts
    assert ndcg_at_k([1, 2, 3], {3}, 2) == 0.0


def test_recall_and_hit() -> None:
    # Given 4 relevant items, 2 of them in the top 3
    recommended, relevant = [1, 9, 2, 3], {1, 2, 7, 8}
    # Then recall@3 = 2/4, recall@1 = 1/4, hit@1 = 1, hit@3 of an unrelated list = 0
    assert recall_at_k(recommended, relevant, 3) == pytest.approx(0.5)
    assert recall_at_k(recommended, relevant, 1) == pytest.approx(0.25)
    assert hit_at_k(recommended, relevant, 1) == 1.0
    assert hit_at_k([4, 5, 6], relevant, 3) == 0.0


def test_coverage_counts_distinct_items_in_every_top_k() -> None:
    # Given two users' lists over a 10-item catalog / When coverage@2 / Then items {1, 2, 3} = 3/10
    assert coverage_at_k([[1, 2, 9], [2, 3, 8]], 10, 2) == pytest.approx(0.3)


def test_summarize_averages_over_users_with_relevant_items() -> None:
    # Given one user with a hit at the top and one with no hit, and a user without relevant items
    recommendations = {"a": [1, 2], "b": [3, 4], "c": [5]}
    relevant = {"a": {1}, "b": {9}, "c": set()}
    # When summarized over a 5-item catalog
    summary = summarize(recommendations, relevant, 5)
    # Then the empty user is left out
    assert summary["users"] == 2
    assert summary["ndcg@10"] == pytest.approx(0.5)
    assert summary["hit@10"] == pytest.approx(0.5)
    assert summary["recall@20"] == pytest.approx(0.5)
    assert summary["coverage@20"] == pytest.approx(4 / 5)
    assert summary["mrr"] == pytest.approx(0.5)
    assert summary["recall_curve"]["5"] == pytest.approx(0.5)


def test_reciprocal_rank_is_one_over_the_first_hit() -> None:
    assert reciprocal_rank([7, 8, 3], {3, 8}) == pytest.approx(0.5)
    assert reciprocal_rank([7], {3}) == 0.0


def test_intra_list_diversity_is_the_mean_pairwise_cosine_distance() -> None:
    # Given items 0 and 1 pointing the same way and item 2 orthogonal to both
    vectors = unit_rows(np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]]))
    # Then {0, 1} are not diverse at all, {0, 2} fully, {0, 1, 2} two of three pairs
    assert intra_list_diversity([0, 1], vectors, 10) == pytest.approx(0.0)
    assert intra_list_diversity([0, 2], vectors, 10) == pytest.approx(1.0)
    assert intra_list_diversity([0, 1, 2], vectors, 10) == pytest.approx(2 / 3)
    assert intra_list_diversity([0], vectors, 10) == 0.0
    # And summarize reports it when vectors are given
    summary = summarize({"a": [0, 2]}, {"a": {2}}, 3, vectors)
    assert summary["diversity@10"] == pytest.approx(1.0)


def test_page_ndcg_reorders_each_logged_page_by_the_scores() -> None:
    # Given two pages (3 rows, then 2) with graded relevance
    relevance = np.array([0.0, 2.0, 1.0, 1.0, 0.0])
    groups = [3, 2]
    # When the scores put each page in its ideal order / Then 1
    assert page_ndcg(relevance, groups, np.array([0.0, 3.0, 2.0, 1.0, 0.0])) == pytest.approx(1.0)
    # When the second page is reversed / Then its nDCG is 1/log2(3) and the mean halves the loss
    reversed_second = page_ndcg(relevance, groups, np.array([0.0, 3.0, 2.0, 0.0, 1.0]))
    assert reversed_second == pytest.approx((1.0 + 1.0 / math.log2(3)) / 2)


def test_the_paired_ratio_s_interval_holds_the_ratio_and_narrows_when_the_models_move_together() -> None:
    rng = np.random.default_rng(3)
    theirs = rng.random(800)
    # Given a model 5% above another on every user, and one 5% above on average with independent noise
    together = paired_ratio(theirs * 1.05, theirs, seed=1)
    noisy = paired_ratio(theirs * 1.05 + rng.normal(0.0, 0.3, 800), theirs, seed=1)
    # Then both ratios are the means' ratio and each interval holds it
    assert together["ratio"] == pytest.approx(1.05) and together["users"] == 800
    assert together["ci95"][0] == pytest.approx(1.05) and together["ci95"][1] == pytest.approx(1.05)
    low, high = noisy["ci95"]
    assert low < noisy["ratio"] < high and high - low > 0.05
    # And the same seed gives the same interval
    assert paired_ratio(theirs * 1.05 + 0.01, theirs, seed=1) == paired_ratio(
        theirs * 1.05 + 0.01, theirs, seed=1
    )


def test_the_paired_ratio_refuses_unpaired_values_and_reports_nothing_without_a_reference() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        paired_ratio(np.ones(3), np.ones(4))
    assert paired_ratio(np.ones(5), np.zeros(5)) == {"ratio": None, "ci95": None, "users": 5}
