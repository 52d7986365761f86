"""Baseline recommenders ("anchors") for the learning benchmark: what a data scientist would try first.

Every anchor learns from the same weighted user x item matrix the pipeline learns from (one row per
user with a history, one column per catalog row, values = summed event weight x recency decay) and
recommends the top k item rows per user, with the user's purchased rows masked with -inf before the
top k (as benfred/implicit filters liked items), equal scores going to the more popular item. Users
without a history get popularity, as in ``training/evaluation.py``.

- ``own_als``: the project's ``merchandiser.catalog.fit_als``, users folded in exactly as serving does;
- ``implicit_als``: ``implicit.cpu.als.AlternatingLeastSquares`` on the same objective;
- ``item_knn``: ``implicit.nearest_neighbours`` cosine or BM25 item-item neighbours;
- ``ease``: Steck 2019, ``B = I - P / diag(P)`` with ``P = (X'X + lambda I)^-1`` and ``diag(B) = 0``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from merchandiser.catalog import confidence, fit_als, fold_in
from training.anchors.ranking import tie_ranks
from training.anchors.ranking import top_k as ranked_top_k

TOP_K = 20
ANCHORS = ("own_als", "implicit_als", "item_knn", "ease")

# Scores of every catalog row for a batch of matrix rows: float array (len(rows), n_items).
Scorer = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class UserItems:
    """The weighted user x item matrix and, in the same shape, what each user has purchased."""

    user_ids: np.ndarray  # str, matrix row -> user id, sorted
    weights: csr_matrix  # float32 (users, items)
    purchased: csr_matrix  # bool (users, items)

    def row_of(self) -> dict[str, int]:
        return {str(user): row for row, user in enumerate(self.user_ids)}


@dataclass(frozen=True)
class AlsSettings:
    """The ALS hyperparameters both ALS anchors share (``training.fit.Hyperparameters`` values)."""

    factors: int = 64
    regularization: float = 0.05
    alpha: float = 1.0
    iterations: int = 15
    cg_steps: int = 3
    seed: int = 7
    threads: int = 1


def user_items(pairs: pd.DataFrame, n_items: int) -> UserItems:
    """From one row per (user_id, row) with ``weight`` and ``purchased`` (``fit.user_item_weights``)."""
    user_ids, user_rows = np.unique(pairs["user_id"].to_numpy(dtype=str), return_inverse=True)
    items = pairs["row"].to_numpy(dtype=np.int64)
    shape = (len(user_ids), n_items)
    weights = csr_matrix((pairs["weight"].to_numpy(np.float32), (user_rows, items)), shape=shape)
    bought = pairs["purchased"].to_numpy(dtype=bool)
    purchased = csr_matrix(
        (np.ones(int(bought.sum()), dtype=bool), (user_rows[bought], items[bought])), shape=shape
    )
    return UserItems(user_ids, weights, purchased)


def fit_own_als(data: UserItems, settings: AlsSettings) -> Scorer:
    """The project's ALS; each user is folded in against the item factors, as ``recommend_als`` does."""
    from threadpoolctl import threadpool_limits

    # fit_als parallelises only through BLAS: give it the same thread count implicit gets
    with threadpool_limits(settings.threads, "blas"):
        factors = fit_als(
            data.weights,
            settings.factors,
            settings.regularization,
            settings.alpha,
            settings.iterations,
            settings.cg_steps,
            settings.seed,
        )
    items = factors.item_factors.astype(np.float64)
    gram = items.T @ items
    weights = data.weights

    def scores(rows: np.ndarray) -> np.ndarray:
        vectors = np.zeros((len(rows), items.shape[1]))
        for position, row in enumerate(rows):
            start, end = weights.indptr[row], weights.indptr[row + 1]
            if end > start:
                vectors[position] = fold_in(
                    items,
                    gram,
                    weights.indices[start:end],
                    weights.data[start:end],
                    settings.regularization,
                    settings.alpha,
                )
        return vectors @ items.T

    return scores


def fit_implicit_als(data: UserItems, settings: AlsSettings) -> Scorer:
    """``implicit``'s ALS on the same objective, scored with the user factors it learnt.

    implicit reads a matrix value as the confidence itself (``c = alpha * value``; unobserved pairs
    have confidence 1), whereas the project uses ``c = 1 + alpha * w``; so implicit gets the matrix
    of ``1 + alpha * w`` with its own alpha at 1, and both minimise the same loss.
    """
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    confidences = data.weights.copy()
    confidences.data = confidence(confidences.data, settings.alpha).astype(np.float32)
    model = AlternatingLeastSquares(
        factors=settings.factors,
        regularization=settings.regularization,
        alpha=1.0,
        iterations=settings.iterations,
        num_threads=settings.threads,
        random_state=settings.seed,
    )
    model.cg_steps = settings.cg_steps
    # implicit parallelises over users itself and asks for a single-threaded BLAS underneath
    with threadpool_limits(1, "blas"):
        model.fit(confidences, show_progress=False)
    users = np.asarray(model.user_factors, dtype=np.float64)
    items = np.asarray(model.item_factors, dtype=np.float64)
    return lambda rows: users[rows] @ items.T


def fit_item_knn(data: UserItems, neighbours: int, kind: str = "cosine", threads: int = 1) -> Scorer:
    """``implicit``'s item-item neighbours (``kind`` cosine or bm25); a user scores an item by the
    similarity-weighted sum over their history, as implicit's own scorer does."""
    import warnings

    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, ItemItemRecommender
    from implicit.utils import ParameterWarning

    model: ItemItemRecommender
    if kind == "cosine":
        model = CosineRecommender(K=neighbours, num_threads=threads)
    elif kind == "bm25":
        model = BM25Recommender(K=neighbours, num_threads=threads)
    else:
        raise ValueError(f"unknown item-kNN kind {kind!r}: cosine or bm25")
    with warnings.catch_warnings():
        # implicit's own weighting hands its kNN a COO matrix and then warns about it
        warnings.simplefilter("ignore", ParameterWarning)
        model.fit(data.weights, show_progress=False)
    similarity = csr_matrix(model.similarity)
    weights = data.weights
    return lambda rows: (weights[rows] @ similarity).toarray()


def ease_weights(matrix: csr_matrix, regularization: float, binary: bool = False) -> np.ndarray:
    """EASE item-item weights (n_items, n_items): ``B = I - P / diag(P)``, ``diag(B) = 0``."""
    x = matrix.astype(np.float64)
    if binary:
        x.data = np.ones_like(x.data)
    gram = np.asarray((x.T @ x).toarray())
    gram[np.diag_indices_from(gram)] += regularization
    precision = np.linalg.inv(gram)
    weights = -precision / np.diag(precision)[None, :]  # column j divided by P_jj
    np.fill_diagonal(weights, 0.0)
    return weights


def fit_ease(data: UserItems, regularization: float, binary: bool = False) -> Scorer:
    weights = ease_weights(data.weights, regularization, binary).astype(np.float32)
    x = data.weights.astype(np.float32)
    if binary:
        x.data = np.ones_like(x.data)
    return lambda rows: np.asarray(x[rows] @ weights)


def fit_anchor(name: str, data: UserItems, settings: AlsSettings, options: dict[str, Any]) -> Scorer:
    """One anchor by name; ``options`` are the anchor's own (item_knn: neighbours, kind; ease: ...)."""
    if name == "own_als":
        return fit_own_als(data, settings)
    if name == "implicit_als":
        return fit_implicit_als(data, settings)
    if name == "item_knn":
        return fit_item_knn(data, int(options["neighbours"]), str(options["kind"]), settings.threads)
    if name == "ease":
        return fit_ease(data, float(options["regularization"]), bool(options["binary"]))
    raise ValueError(f"unknown anchor {name!r}: one of {', '.join(ANCHORS)}")


def top_k(
    scores: np.ndarray, purchased: csr_matrix, k: int = TOP_K, ranks: np.ndarray | None = None
) -> list[list[int]]:
    """Best k rows per line of ``scores``, purchased rows never; equal scores in the order of ``ranks``
    (``ranking.tie_ranks``: recent popularity first), by default a seeded shuffle, never the row."""
    n_items = np.shape(scores)[1]
    if ranks is None:
        ranks = tie_ranks(None, np.zeros(n_items), np.zeros(n_items))
    return [line.tolist() for line in ranked_top_k(np.asarray(scores), purchased, ranks, k)]


def recommend(
    scorer: Scorer | None,
    data: UserItems,
    users: Sequence[str],
    popularity: np.ndarray,
    k: int = TOP_K,
    batch: int = 512,
) -> dict[str, list[int]]:
    """Top k per user: the scorer for users with a row in ``data``, popularity for the others; equal scores
    go to the more popular item.

    ``scorer=None`` is the popularity anchor (purchased rows excluded).
    """
    row_of = data.row_of()
    n_items = data.weights.shape[1]
    ranks = tie_ranks(popularity, np.zeros(n_items), np.zeros(n_items))
    result: dict[str, list[int]] = {}
    known = [user for user in users if user in row_of]
    for user in users:
        if scorer is None or user not in row_of:
            bought = (
                data.purchased[[row_of[user]]] if user in row_of else csr_matrix((1, n_items), dtype=bool)
            )
            result[user] = top_k(popularity[None, :], bought, k, ranks)[0]
    if scorer is None:
        return result
    for start in range(0, len(known), batch):
        chunk = known[start : start + batch]
        rows = np.array([row_of[user] for user in chunk], dtype=np.int64)
        best = top_k(scorer(rows), data.purchased[rows], k, ranks)
        result.update(zip(chunk, best, strict=True))
    return {user: result[user] for user in users}
