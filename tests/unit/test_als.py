"""ALS: the conjugate-gradient solver against the exact reference, fold-in, and a known block structure."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from merchandiser.catalog import confidence, fit_als, fit_als_reference, fold_in, loss


def two_blocks(n_users: int = 12, n_items: int = 10) -> csr_matrix:
    """Users 0..5 like items 0..4, users 6..11 like items 5..9; each user misses one item of the block."""
    dense = np.zeros((n_users, n_items), dtype=np.float32)
    half_users, half_items = n_users // 2, n_items // 2
    for user in range(n_users):
        block = range(half_items) if user < half_users else range(half_items, n_items)
        for offset, item in enumerate(block):
            if offset != user % half_items:
                dense[user, item] = 1.0 + (user + item) % 3
    return csr_matrix(dense)


def test_confidence_is_one_plus_alpha_times_weight() -> None:
    # Given weights and alpha / When confidence is computed / Then it is 1 + alpha * w
    assert confidence(np.array([0.0, 2.0]), 3.0).tolist() == [1.0, 7.0]


def test_one_sweep_of_cg_with_enough_steps_equals_the_exact_solve() -> None:
    # Given a small random matrix and the same start
    matrix = csr_matrix(
        np.random.default_rng(1).random((15, 9)) * (np.random.default_rng(2).random((15, 9)) < 0.4)
    )
    # When one sweep runs with as many CG steps as needed to converge, and one exact sweep
    fast = fit_als(matrix, factors=4, regularization=0.1, alpha=2.0, iterations=1, cg_steps=12, seed=3)
    exact = fit_als_reference(matrix, factors=4, regularization=0.1, alpha=2.0, iterations=1, seed=3)
    # Then both give the same factors
    np.testing.assert_allclose(fast.user_factors, exact.user_factors, atol=1e-4)
    np.testing.assert_allclose(fast.item_factors, exact.item_factors, atol=1e-4)


def test_cg_with_three_steps_reaches_the_reference_loss() -> None:
    # Given the block matrix
    matrix = two_blocks()
    # When both solvers run 25 sweeps (CG with only 3 steps per row per sweep)
    fast = fit_als(matrix, factors=4, regularization=0.1, alpha=2.0, iterations=25, cg_steps=3, seed=5)
    exact = fit_als_reference(matrix, factors=4, regularization=0.1, alpha=2.0, iterations=25, seed=5)
    # Then their objectives agree within 1% and their predictions within 0.05
    fast_loss = loss(matrix, fast.user_factors, fast.item_factors, 0.1, 2.0)
    exact_loss = loss(matrix, exact.user_factors, exact.item_factors, 0.1, 2.0)
    assert fast_loss == pytest.approx(exact_loss, rel=0.01)
    np.testing.assert_allclose(
        fast.user_factors @ fast.item_factors.T, exact.user_factors @ exact.item_factors.T, atol=0.05
    )


def test_fold_in_of_a_trained_user_recovers_its_factors() -> None:
    # Given factors trained by the CG solver until (nearly) converged
    matrix = two_blocks()
    model = fit_als(matrix, factors=4, regularization=0.1, alpha=2.0, iterations=80, cg_steps=3, seed=5)
    gram = model.item_factors.astype(np.float64).T @ model.item_factors.astype(np.float64)
    for user in (0, 7):
        row = matrix.getrow(user)
        # When the user's row is folded in against the item factors
        vector = fold_in(model.item_factors, gram, row.indices, row.data, 0.1, 2.0)
        # Then it is (almost) the vector training found
        np.testing.assert_allclose(vector, model.user_factors[user], atol=5e-3)


def test_a_user_of_one_block_is_recommended_that_block_first() -> None:
    # Given factors learnt on two disjoint blocks
    model = fit_als(two_blocks(), factors=4, regularization=0.1, alpha=2.0, iterations=15, seed=7)
    gram = model.item_factors.T.astype(np.float64) @ model.item_factors.astype(np.float64)
    # When a new user who bought items 0 and 1 is folded in and scored
    vector = fold_in(model.item_factors, gram, np.array([0, 1]), np.array([8.0, 8.0]), 0.1, 2.0)
    scores = model.item_factors @ vector
    scores[[0, 1]] = -np.inf  # already bought
    # Then the rest of block 0..4 comes before every item of the other block
    assert set(np.argsort(-scores)[:3].tolist()) == {2, 3, 4}


def test_sweeps_stepped_by_several_threads_give_the_same_factors() -> None:
    # Given a matrix big enough for many chunks of rows per sweep
    rng = np.random.default_rng(9)
    matrix = csr_matrix(rng.random((3000, 400)) * (rng.random((3000, 400)) < 0.02)).astype(np.float32)
    # When ALS runs on one thread and on three
    one = fit_als(matrix, factors=8, regularization=0.1, alpha=2.0, iterations=3, seed=4)
    three = fit_als(matrix, factors=8, regularization=0.1, alpha=2.0, iterations=3, seed=4, threads=3)
    # Then every factor is the same, bit for bit: rows are independent within a sweep
    assert np.array_equal(one.user_factors, three.user_factors)
    assert np.array_equal(one.item_factors, three.item_factors)
