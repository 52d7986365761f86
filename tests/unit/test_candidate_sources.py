"""Candidate sources: HNSW recall against brute force, popularity with a category, merge quotas."""

from __future__ import annotations

import numpy as np

from merchandiser.retrieval import Proposal, ann_source, build_index, merge, popularity_source
from merchandiser.retrieval.proposal import RowLookup


def test_hnsw_recall_against_brute_force_inner_product() -> None:
    # Given 2000 random 32-d item vectors and 50 random queries
    rng = np.random.default_rng(42)
    items = rng.normal(size=(2000, 32)).astype(np.float32)
    queries = rng.normal(size=(50, 32)).astype(np.float32)
    index = build_index(items, seed=7)
    found = 0
    for query in queries:
        # When the index returns the top 10
        proposal = ann_source(index, query, 10)
        exact = np.argsort(-(items @ query))[:10]
        found += len(set(proposal.rows.tolist()) & set(exact.tolist()))
        # Then scores are the inner products, best first
        np.testing.assert_allclose(proposal.scores, items[proposal.rows] @ query, rtol=1e-4, atol=1e-4)
        assert np.all(np.diff(proposal.scores) <= 1e-6)
    # Then at least 95% of the true neighbours are found
    assert found / (10 * len(queries)) >= 0.95


def test_ann_with_a_category_mask_returns_only_allowed_items() -> None:
    # Given 100 items of which only the even rows are allowed
    rng = np.random.default_rng(1)
    items = rng.normal(size=(100, 8)).astype(np.float32)
    allowed = np.arange(100) % 2 == 0
    # When the top 5 are asked for
    proposal = ann_source(build_index(items, seed=7), items[3], 5, allowed)
    # Then they are the best 5 even rows
    assert set(proposal.rows.tolist()) <= set(np.flatnonzero(allowed).tolist())
    exact = np.flatnonzero(allowed)[np.argsort(-(items[allowed] @ items[3]))[:5]]
    assert set(proposal.rows.tolist()) == set(exact.tolist())


def test_ann_asking_for_more_than_the_index_holds() -> None:
    items = np.eye(3, dtype=np.float32)
    proposal = ann_source(build_index(items, seed=7), np.array([1.0, 0.5, 0.0]), 10)
    assert proposal.rows.tolist() == [0, 1, 2]


def test_popularity_overall_and_within_a_category() -> None:
    # Given five items in two categories
    popularity = np.array([5.0, 1.0, 9.0, 3.0, 7.0], dtype=np.float32)
    categories = np.array(["a", "b", "a", "b", "b"])
    # When the top 2 are asked for, overall and in category b, and without item 2
    overall = popularity_source(popularity, 2)
    in_b = popularity_source(popularity, 2, categories, "b")
    without = popularity_source(popularity, 2, exclude=frozenset({2}))
    # Then they are ranked by popularity
    assert overall.rows.tolist() == [2, 4]
    assert in_b.rows.tolist() == [4, 3]
    assert in_b.scores.tolist() == [7.0, 3.0]
    assert without.rows.tolist() == [4, 0]


def test_merge_fills_quotas_dedupes_and_tags_sources() -> None:
    # Given two sources that share items 2 and 4
    ann = Proposal(np.array([1, 2, 3, 4, 5]), np.array([0.9, 0.8, 0.7, 0.6, 0.5]))
    popular = Proposal(np.array([2, 6, 7, 4]), np.array([40.0, 30.0, 20.0, 10.0]))
    # When 5 candidates are merged with quotas ann 3, popularity 2, item 3 excluded
    merged = merge(
        {"ann": ann, "popularity": popular}, {"ann": 3, "popularity": 2}, 5, exclude=frozenset({3})
    )
    # Then ann fills 3 (1, 2, 4: 3 is excluded), popularity adds 6 and 7 (2 is taken)
    assert merged.rows.tolist() == [1, 2, 4, 6, 7]
    assert merged.rows.dtype == np.int64
    # And every row is tagged with the first source that proposed it
    assert merged.sources == ["ann", "ann", "ann", "popularity", "popularity"]
    # And carries each source's score, NaN where the source did not propose it
    np.testing.assert_allclose(merged.scores["ann"], [0.9, 0.8, 0.6, np.nan, np.nan])
    np.testing.assert_allclose(merged.scores["popularity"], [np.nan, 40.0, 10.0, 30.0, 20.0])


def test_merge_leaves_out_blocked_rows_as_it_leaves_out_excluded_ones() -> None:
    ann = Proposal(np.array([1, 2, 3, 4, 5]), np.array([0.9, 0.8, 0.7, 0.6, 0.5]))
    popular = Proposal(np.array([2, 6, 7, 4]), np.array([40.0, 30.0, 20.0, 10.0]))
    found, quotas = {"ann": ann, "popularity": popular}, {"ann": 3, "popularity": 2}
    blocked = np.zeros(9, dtype=bool)
    blocked[[3, 6]] = True  # e.g. out of stock
    by_mask = merge(found, quotas, 5, exclude=frozenset({1}), blocked=blocked)
    by_set = merge(found, quotas, 5, exclude=frozenset({1, 3, 6}))
    assert by_mask.rows.tolist() == by_set.rows.tolist() == [2, 4, 5, 7]
    assert by_mask.sources == by_set.sources
    assert np.flatnonzero(blocked).tolist() == [3, 6]  # the mask itself is left as it was


def test_merge_gives_unused_quota_to_the_other_sources() -> None:
    # Given a short popularity list / When 4 are asked with quota 1 for ann / Then ann fills the rest
    ann = Proposal(np.array([1, 2, 3, 4]), np.array([4.0, 3.0, 2.0, 1.0]))
    popular = Proposal(np.array([9]), np.array([1.0]))
    merged = merge({"ann": ann, "popularity": popular}, {"ann": 1, "popularity": 3}, 4)
    assert merged.rows.tolist() == [1, 9, 2, 3]
    assert len(merged) == 4


def test_a_proposal_scores_rows_from_its_support_or_what_it_proposed() -> None:
    rows = np.array([9, 2, 5, 7])
    # a source that scores rows 2, 5, 9 (ascending support) but proposed only its two best
    supported = Proposal(
        np.array([9, 5]), np.array([3.0, 2.0]), support=(np.array([2, 5, 9]), np.array([1.0, 2.0, 3.0]))
    )
    np.testing.assert_array_equal(supported.score_of(rows), [3.0, 1.0, 2.0, np.nan])
    # without a support, what it proposed, a score of 0 included (a filler's); a dense vector's 0 is no score
    proposed = Proposal(np.array([7, 2, 5]), np.array([0.5, 0.25, 0.0]))
    np.testing.assert_array_equal(proposed.score_of(rows), [np.nan, 0.25, 0.0, 0.5])
    dense = Proposal(np.array([9]), np.array([4.0]), dense=np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 4.0]))
    np.testing.assert_array_equal(dense.score_of(rows), [4.0, 1.0, np.nan, np.nan])
    assert np.isnan(Proposal.empty().score_of(rows)).all()
    # merge sorts the candidates once for every proposal: the same scores through the shared lookup
    lookup = RowLookup.of(rows)
    for proposal in (supported, proposed, dense, Proposal.empty()):
        np.testing.assert_array_equal(proposal.score_of(rows, lookup), proposal.score_of(rows))
    outside = Proposal(np.array([3, 4]), np.array([1.0, 2.0]))
    assert np.isnan(outside.score_of(rows, lookup)).all()
    assert np.isnan(proposed.score_of(rows[:0], RowLookup.of(rows[:0]))).all()
