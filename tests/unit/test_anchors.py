"""Anchors of the learning benchmark: EASE by hand, masking, item-kNN and both ALS on toy matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from training.anchors import (
    AlsSettings,
    UserItems,
    ease_weights,
    fit_ease,
    fit_implicit_als,
    fit_item_knn,
    fit_own_als,
    recommend,
    top_k,
    user_items,
)


def data_of(dense: np.ndarray, purchased: np.ndarray | None = None) -> UserItems:
    bought = np.zeros(dense.shape, dtype=bool) if purchased is None else purchased
    ids = np.array([f"u{row}" for row in range(dense.shape[0])])
    return UserItems(ids, csr_matrix(dense.astype(np.float32)), csr_matrix(bought))


def test_ease_on_three_items_matches_the_hand_computation() -> None:
    # Given X with item columns (1,0,1), (1,1,1), (0,1,1) and lambda = 1:
    # X'X + I = [[3,2,1],[2,4,2],[1,2,3]], its inverse P = [[.5,-.25,0],[-.25,.5,-.25],[0,-.25,.5]]
    x = csr_matrix(np.array([[1, 1, 0], [0, 1, 1], [1, 1, 1]], dtype=np.float64))
    # When the EASE weights are computed
    weights = ease_weights(x, regularization=1.0)
    # Then B = -P / diag(P) off the diagonal and 0 on it
    expected = np.array([[0.0, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.0]])
    np.testing.assert_allclose(weights, expected, atol=1e-12)


def test_each_ease_column_is_the_ridge_regression_of_that_item_on_the_others() -> None:
    # Given a random sparse matrix
    rng = np.random.default_rng(3)
    dense = rng.random((30, 6)) * (rng.random((30, 6)) < 0.5)
    # When EASE is fitted with lambda = 2
    weights = ease_weights(csr_matrix(dense), regularization=2.0)
    # Then column j solves min |x_j - X_-j b|^2 + 2 |b|^2 (the constraint diag(B) = 0)
    for item in range(6):
        others = [column for column in range(6) if column != item]
        a = dense[:, others]
        ridge = np.linalg.solve(a.T @ a + 2.0 * np.eye(5), a.T @ dense[:, item])
        np.testing.assert_allclose(weights[others, item], ridge, atol=1e-9)
        assert weights[item, item] == 0.0


def test_purchased_rows_are_masked_before_the_top_k() -> None:
    # Given scores where the best two items were purchased by the first user only
    scores = np.array([[5.0, 4.0, 3.0, 2.0], [5.0, 4.0, 3.0, 2.0]])
    purchased = csr_matrix(np.array([[True, True, False, False], [False, False, False, False]]))
    # When the top 2 are taken
    best = top_k(scores, purchased, k=2)
    # Then the first user gets the best unpurchased items, the second the best items; scores untouched
    assert best == [[2, 3], [0, 1]]
    assert scores[0, 0] == 5.0


def test_ties_follow_the_tie_ranks_not_the_row_and_masked_rows_never_fill_the_list() -> None:
    # Given equal scores and a user who bought all but one item
    scores = np.array([[1.0, 1.0, 1.0]])
    purchased = csr_matrix(np.array([[True, False, True]]))
    # When the top 3 are taken / Then only the one unpurchased item comes back
    assert top_k(scores, purchased, k=3) == [[1]]
    # and equal scores go in the order of the tie ranks (item 2, then 0), not by row
    assert top_k(scores, csr_matrix((1, 3), dtype=bool), k=2, ranks=np.array([1, 2, 0])) == [[2, 0]]


def test_equal_scores_go_to_the_more_popular_item() -> None:
    # Given a known user whose model scores items 0, 1 and 3 equally, and popularity 3 > 1 > 0
    data = data_of(np.array([[1.0, 0.0, 0.0, 0.0]]), purchased=np.array([[False, False, True, False]]))
    popularity = np.array([1.0, 2.0, 9.0, 5.0], dtype=np.float32)
    flat = lambda rows: np.ones((len(rows), 4))  # noqa: E731
    # When the model anchor recommends / Then the bought item 2 is left out and ties go by popularity
    assert recommend(flat, data, ["u0"], popularity, k=3) == {"u0": [3, 1, 0]}


def test_item_knn_recommends_the_item_that_co_occurs_with_the_history() -> None:
    # Given items 0 and 1 always bought together, 2 and 3 together, and a user who has only item 0
    dense = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1], [1, 0, 0, 0]], dtype=float)
    data = data_of(dense, purchased=dense > 0)
    for kind in ("cosine", "bm25"):
        # When item-kNN recommends
        scorer = fit_item_knn(data, neighbours=10, kind=kind)
        best = recommend(scorer, data, ["u4"], popularity=np.zeros(4), k=1)
        # Then the co-occurring item comes first
        assert best == {"u4": [1]}, kind


def test_ease_recommends_the_item_that_co_occurs_with_the_history() -> None:
    dense = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1], [1, 0, 0, 0]], dtype=float)
    data = data_of(dense, purchased=dense > 0)
    assert recommend(fit_ease(data, 1.0), data, ["u4"], popularity=np.zeros(4), k=1) == {"u4": [1]}


def test_users_without_history_get_popularity_without_their_purchases() -> None:
    # Given one known user and a popularity ranking 2 > 0 > 1 > 3
    data = data_of(np.array([[1.0, 0.0, 1.0, 0.0]]), purchased=np.array([[False, False, True, False]]))
    popularity = np.array([3.0, 2.0, 5.0, 1.0], dtype=np.float32)
    # When the popularity anchor and a model anchor recommend to the known user and a stranger
    by_popularity = recommend(None, data, ["u0", "stranger"], popularity, k=2)
    by_model = recommend(
        lambda rows: np.tile([0.0, 1.0, 2.0, 3.0], (len(rows), 1)), data, ["stranger"], popularity
    )
    # Then the known user's purchase is left out, and the stranger gets the most popular items
    assert by_popularity == {"u0": [0, 1], "stranger": [2, 0]}
    assert by_model["stranger"][:2] == [2, 0]


def test_both_als_recommend_the_missing_item_of_the_users_block() -> None:
    # Given users 0..5 on items 0..4 and users 6..11 on items 5..9, each user missing one item of the block
    dense = np.zeros((12, 10))
    for user in range(12):
        block = range(5) if user < 6 else range(5, 10)
        for offset, item in enumerate(block):
            if offset != user % 5:
                dense[user, item] = 1.0
    data = data_of(dense, purchased=dense > 0)
    settings = AlsSettings(factors=4, regularization=0.05, alpha=4.0, iterations=15, seed=1)
    for fit in (fit_own_als, fit_implicit_als):
        # When each ALS recommends one item to user 2 (who misses item 2) and user 8 (misses item 8)
        best = recommend(fit(data, settings), data, ["u2", "u8"], popularity=np.zeros(10), k=1)
        # Then it is the item missing from the user's block
        assert best == {"u2": [2], "u8": [8]}, fit.__name__


def test_user_items_builds_the_matrix_and_the_purchases_from_pairs() -> None:
    pairs = pd.DataFrame(
        {
            "user_id": ["b", "a", "a"],
            "row": [2, 0, 1],
            "weight": [1.5, 2.0, 0.5],
            "purchased": [True, False, True],
        }
    )
    data = user_items(pairs, n_items=3)
    assert data.user_ids.tolist() == ["a", "b"]
    assert data.weights.toarray().tolist() == [[2.0, 0.5, 0.0], [0.0, 0.0, 1.5]]
    assert data.purchased.toarray().tolist() == [[False, True, False], [False, False, True]]


def test_the_chunked_cg_sweep_equals_one_sweep_over_all_rows() -> None:
    # Given a random matrix whose rows are stepped in chunks of a few non-zeros, or all at once
    from merchandiser.catalog.als import _cg_sweep, initial_factors

    rng = np.random.default_rng(5)
    matrix = csr_matrix(rng.random((40, 25)) * (rng.random((40, 25)) < 0.3)).astype(np.float32)
    start = initial_factors(40, 25, 4, seed=2)
    # When one sweep runs each way / Then every row gets the same factors (rows are independent)
    chunked = _cg_sweep(matrix, start.user_factors, start.item_factors, 0.1, 2.0, 3, chunk_nnz=7)
    whole = _cg_sweep(matrix, start.user_factors, start.item_factors, 0.1, 2.0, 3, chunk_nnz=10**9)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)
    assert not np.allclose(chunked, start.user_factors)
