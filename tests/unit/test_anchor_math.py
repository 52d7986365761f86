"""The tuned anchors' optimized paths against their plain-numpy references: known answers, random data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from training.anchors.ease import blend_scorer, ease_gram, ease_scorer, ease_weights_cholesky
from training.anchors.neighbours import cosine_reference, cosine_weights, rp3beta_reference, rp3beta_weights
from training.anchors.ranking import top_k, top_k_reference
from training.anchors.untuned import ease_weights

# users x items: item 0 by users 0, 1; item 1 by all; item 2 by users 1, 2
TRIANGLE = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=np.float64)


def random_matrix(seed: int, shape: tuple[int, int] = (40, 12), density: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.round(rng.random(shape) * 3, 1) * (rng.random(shape) < density)


def test_cosine_with_shrinkage_matches_the_hand_computation_and_breaks_ties_by_rank() -> None:
    # Given the triangle: x0.x1 = 2, x0.x2 = 1, x1.x2 = 2, norms sqrt2, sqrt3, sqrt2; shrink 1, 1 neighbour
    a = 2 / (np.sqrt(6) + 1)
    # column 1 has a tie (rows 0 and 2 both at a); item 2 goes first in the tie order
    ranks = np.array([1, 2, 0])
    # When item-kNN weights are computed
    weights = cosine_weights(csr_matrix(TRIANGLE), neighbours=1, shrink=1.0, ranks=ranks).toarray()
    # Then each column keeps its most similar row, the tie to the row of better rank
    expected = np.array([[0, 0, 0], [a, 0, a], [0, a, 0]])
    np.testing.assert_allclose(weights, expected, atol=1e-12)
    np.testing.assert_allclose(cosine_reference(TRIANGLE, 1, 1.0, ranks), expected, atol=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("neighbours", "shrink"), [(3, 0.0), (5, 10.0), (50, 0.5)])
def test_sparse_cosine_equals_the_dense_reference(seed: int, neighbours: int, shrink: float) -> None:
    dense = random_matrix(seed)
    ranks = np.random.default_rng(seed).permutation(dense.shape[1])
    fast = cosine_weights(csr_matrix(dense), neighbours, shrink, ranks).toarray()
    np.testing.assert_allclose(fast, cosine_reference(dense, neighbours, shrink, ranks), atol=1e-12)


def test_rp3beta_matches_the_hand_computation() -> None:
    # Given the triangle, alpha 1 and no pruning: W = P_iu P_ui with a zero diagonal (worked out by hand)
    no_pop = np.array([[0, 5 / 12, 1 / 6], [5 / 18, 0, 5 / 18], [1 / 6, 5 / 12, 0]])
    ranks = np.arange(3)
    # When beta is 0 / Then W itself; when beta is 1 / Then each column divided by its degree (2, 3, 2)
    for beta, expected in ((0.0, no_pop), (1.0, no_pop / np.array([2.0, 3.0, 2.0]))):
        fast = rp3beta_weights(csr_matrix(TRIANGLE), 1.0, beta, 10, ranks).toarray()
        np.testing.assert_allclose(fast, expected, atol=1e-12)
        np.testing.assert_allclose(rp3beta_reference(TRIANGLE, 1.0, beta, 10, ranks), expected, atol=1e-12)


@pytest.mark.parametrize("seed", [4, 5])
@pytest.mark.parametrize(("alpha", "beta", "neighbours"), [(1.0, 0.5, 4), (0.6, 0.0, 50), (1.3, 0.9, 2)])
def test_sparse_rp3beta_equals_the_dense_reference(
    seed: int, alpha: float, beta: float, neighbours: int
) -> None:
    dense = random_matrix(seed)
    ranks = np.random.default_rng(seed).permutation(dense.shape[1])
    fast = rp3beta_weights(csr_matrix(dense), alpha, beta, neighbours, ranks).toarray()
    np.testing.assert_allclose(fast, rp3beta_reference(dense, alpha, beta, neighbours, ranks), atol=1e-12)


def test_cholesky_ease_matches_the_hand_computation_and_the_general_inverse() -> None:
    # Given X with item columns (1,0,1), (1,1,1), (0,1,1) and lambda 1 (the hand computation of test_anchors)
    x = csr_matrix(np.array([[1, 1, 0], [0, 1, 1], [1, 1, 1]], dtype=np.float64))
    expected = np.array([[0.0, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.0]])
    # When B is computed through the Cholesky inverse / Then it is the hand result
    np.testing.assert_allclose(ease_weights_cholesky(ease_gram(x).gram, 1.0), expected, atol=1e-12)
    # And on random data it equals the general-inverse reference
    dense = csr_matrix(random_matrix(6, (60, 15), 0.4))
    np.testing.assert_allclose(
        ease_weights_cholesky(ease_gram(dense).gram, 2.5), ease_weights(dense, 2.5), atol=1e-10
    )


def test_ease_over_active_items_scores_like_ease_over_the_whole_catalogue() -> None:
    # Given a matrix whose items 1 and 4 nobody touched
    dense = random_matrix(7, (30, 6), 0.5)
    dense[:, [1, 4]] = 0.0
    matrix = csr_matrix(dense)
    gram = ease_gram(matrix)
    # When EASE is fitted on the active items only
    scores = ease_scorer(matrix, gram.active, ease_weights_cholesky(gram.gram, 1.5))(np.arange(30))
    # Then the scores equal full-catalogue EASE's (the inactive columns are 0 either way)
    np.testing.assert_allclose(scores, dense @ ease_weights(matrix, 1.5), atol=1e-10)
    assert gram.active.tolist() == [0, 2, 3, 5]


def test_the_blend_runs_from_ease_alone_to_popularity_alone_and_serves_new_users_popularity() -> None:
    personal = np.array([[4.0, -2.0, 1.0], [0.0, 0.0, 0.0]])
    popularity = np.array([1.0, 10.0, 5.0])
    rows = np.array([0, 1])
    ease = lambda rows: personal[rows]  # noqa: E731
    # weight 0: EASE scaled by its largest magnitude; weight 1: popularity scaled by its largest
    np.testing.assert_allclose(blend_scorer(ease, popularity, 0.0)(rows), [[1.0, -0.5, 0.25], [0, 0, 0]])
    np.testing.assert_allclose(blend_scorer(ease, popularity, 1.0)(rows)[0], [0.1, 1.0, 0.5])
    # a user without history (row of zeros) gets popularity's order at any weight
    assert np.argsort(-blend_scorer(ease, popularity, 0.3)(rows)[1]).tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match="weight"):
        blend_scorer(ease, popularity, 1.5)


def test_ease_refuses_a_non_positive_lambda_and_a_singular_system() -> None:
    with pytest.raises(ValueError, match="positive lambda"):
        ease_weights_cholesky(np.eye(3), 0.0)
    with pytest.raises(np.linalg.LinAlgError):
        ease_weights_cholesky(-10.0 * np.eye(3), 1.0)


@pytest.mark.parametrize("seed", [8, 9, 10])
@pytest.mark.parametrize("k", [1, 5, 60])
def test_vectorized_top_k_equals_the_reference_on_scores_full_of_ties(seed: int, k: int) -> None:
    # Given integer scores (many exact ties), a few -inf and NaN, random exclusions and a tie order
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, size=(20, 50)).astype(np.float64)
    scores[rng.random(scores.shape) < 0.05] = -np.inf
    scores[rng.random(scores.shape) < 0.05] = np.nan
    scores[3] = 0.0  # a new shopper: every score tied
    excluded = csr_matrix(rng.random(scores.shape) < 0.2)
    ranks = rng.permutation(50)
    # When both take the top k / Then they agree line for line, and no excluded or non-finite item is kept
    fast, slow = top_k(scores, excluded, ranks, k), top_k_reference(scores, excluded, ranks, k)
    for line, (got, want) in enumerate(zip(fast, slow, strict=True)):
        assert got.tolist() == want.tolist(), line
        assert not excluded.toarray()[line, got].any() and np.isfinite(scores[line, got]).all()
