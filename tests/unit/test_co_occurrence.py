"""Co-occurrence neighbours on hand-built baskets with known cosine similarities."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from merchandiser.catalog import Neighbours, Signals, fit_neighbours


def baskets() -> tuple[np.ndarray, np.ndarray]:
    # basket 0: items 0, 1; basket 1: 0, 1, 2; basket 2: 2, 3; basket 3: only 3 (says nothing about pairs)
    groups = np.array([0, 0, 1, 1, 1, 2, 2, 3])
    rows = np.array([0, 1, 0, 1, 2, 2, 3, 3])
    return groups, rows


def test_cosine_neighbours_of_hand_built_baskets() -> None:
    groups, rows = baskets()
    # When the neighbours of 4 items are fitted
    neighbours = fit_neighbours(groups, rows, np.ones(len(rows)), n_items=4, top_n=10)
    # Then item 0 co-occurs with 1 twice (cos 2 / sqrt(2 * 2) = 1) and with 2 once (1 / sqrt(2 * 2))
    found, similarity = neighbours.of(0)
    assert found.tolist() == [1, 2]
    np.testing.assert_allclose(similarity, [1.0, 0.5], rtol=1e-6)
    # And item 3's single-item basket is ignored: its norm counts basket 2 only, cos(2, 3) = 1 / sqrt(2)
    found, similarity = neighbours.of(3)
    assert found.tolist() == [2]
    np.testing.assert_allclose(similarity, [1 / math.sqrt(2)], rtol=1e-6)
    # And no item is its own neighbour
    assert all(row not in neighbours.of(row)[0] for row in range(4))


def test_top_n_keeps_the_strongest_and_blocks_give_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    groups, rows = baskets()
    whole = fit_neighbours(groups, rows, np.ones(len(rows)), n_items=4, top_n=1)
    assert [whole.of(row)[0].tolist() for row in range(4)] == [[1], [0], [3], [2]]
    # When the product is computed one item per block
    monkeypatch.setattr("merchandiser.catalog.neighbours.BLOCK_ITEMS", 1)
    blocked = fit_neighbours(groups, rows, np.ones(len(rows)), n_items=4, top_n=1)
    # Then the result is identical
    assert blocked.indptr.tolist() == whole.indptr.tolist()
    assert blocked.indices.tolist() == whole.indices.tolist()


def test_scores_sum_weighted_similarities() -> None:
    groups, rows = baskets()
    neighbours = fit_neighbours(groups, rows, np.ones(len(rows)), n_items=4, top_n=10)
    # Given a shopper with items 0 (weight 2) and 3 (weight 1)
    scores = neighbours.scores(np.array([0, 3]), np.array([2.0, 1.0]))
    # Then each item scores the weighted sum of its similarities to them, matching the sparse product
    dense = neighbours.matrix().toarray()
    np.testing.assert_allclose(scores, 2.0 * dense[0] + dense[3])
    assert neighbours.scores(np.array([], dtype=np.int64), np.array([])).tolist() == [0.0] * 4


def test_sparse_scores_are_the_dense_scores_on_the_items_they_score() -> None:
    rng = np.random.default_rng(3)
    groups = rng.integers(0, 60, 600)
    rows = rng.integers(0, 40, 600)
    neighbours = fit_neighbours(groups, rows, rng.uniform(0.5, 2.0, 600), n_items=40, top_n=7)
    # Given a history of repeated and unrelated rows, with weights
    history = np.array([3, 17, 3, 39, 0])
    weights = np.array([1.0, 0.5, 2.0, 0.25, 1.5])
    dense = neighbours.scores(history, weights)
    known, values = neighbours.sparse_scores(history, weights)
    # Then the sparse form names exactly the rows the dense one scores, ascending, with the same sums
    assert known.tolist() == np.flatnonzero(dense).tolist()
    np.testing.assert_array_equal(values, dense[known])
    empty = neighbours.sparse_scores(np.array([], dtype=np.int64), np.array([]))
    assert empty[0].tolist() == [] and empty[1].tolist() == []


def test_no_groups_give_no_neighbours() -> None:
    empty = fit_neighbours(np.array([]), np.array([]), np.array([]), n_items=3, top_n=5)
    assert empty.n_items == 3 and len(empty.indices) == 0


def test_signals_round_trip(tmp_path: Path) -> None:
    groups, rows = baskets()
    neighbours = fit_neighbours(groups, rows, np.ones(len(rows)), n_items=4, top_n=10)
    signals = Signals(
        trending=np.array([1.0, 0.0, 2.0, 3.0], np.float32),
        also_viewed=neighbours,
        bought_together=Neighbours.empty(4),
        placed=np.array([False, False, True, False]),
        segments={"country=FR": np.arange(4, dtype=np.float32)},
    )
    signals.save(tmp_path / "signals.npz")
    loaded = Signals.load(tmp_path / "signals.npz")
    assert loaded.trending.tolist() == signals.trending.tolist()
    assert loaded.also_viewed.of(0)[0].tolist() == [1, 2]
    assert loaded.placed.tolist() == [False, False, True, False]
    assert list(loaded.segments) == ["country=FR"] and loaded.content is None
