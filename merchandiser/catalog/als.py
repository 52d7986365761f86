"""Implicit-feedback matrix factorization (Hu, Koren & Volinsky 2008), solved by alternating least squares.

Each observed (user, item) pair has a weight ``w`` (event weights times recency decay); its preference is
1 and its confidence ``confidence(w, alpha)``; every unobserved pair has preference 0 and confidence 1. The
loss is ``sum c_ui (p_ui - x_u . y_i)^2 + regularization * (|X|^2 + |Y|^2)``.

``fit_als`` runs a few conjugate-gradient steps per user (then per item) each sweep, warm-started from the
previous factors, as benfred/implicit does; a chunk of users is stepped at once with sparse products, so a
sweep costs a handful of passes over the non-zeros, each chunk's within the CPU cache.
``fit_als_reference`` solves each least-squares problem exactly in plain numpy and exists to test the fast
path. ``fold_in`` is the exact user step for one user, used at serving time to turn a history into a vector
against fixed item factors.

Only numpy is imported at module level: serving imports ``fold_in`` and ``confidence``; scipy is imported
inside the training functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix


CHUNK_NNZ = 1 << 12  # non-zeros per chunk of rows in a CG sweep (measured fastest of 2^11..2^16, 2^30)


@dataclass(frozen=True)
class Factors:
    user_factors: np.ndarray  # float32 (n_users, factors)
    item_factors: np.ndarray  # float32 (n_items, factors)


def confidence(weights: np.ndarray, alpha: float) -> np.ndarray:
    """How sure we are that a user likes an item they interacted with with total weight ``weights``."""
    return 1.0 + alpha * np.asarray(weights)


def initial_factors(n_users: int, n_items: int, factors: int, seed: int) -> Factors:
    """Small random start, identical for the CG and the reference solver."""
    rng = np.random.default_rng(seed)
    users = (rng.random((n_users, factors), dtype=np.float32) - 0.5) * 0.02
    items = (rng.random((n_items, factors), dtype=np.float32) - 0.5) * 0.02
    return Factors(users, items)


def fold_in(
    item_factors: np.ndarray,
    gram: np.ndarray,
    rows: np.ndarray,
    weights: np.ndarray,
    regularization: float,
    alpha: float,
) -> np.ndarray:
    """Closed-form user step: the vector that minimizes the loss for one user against fixed item factors.

    ``gram`` is ``item_factors.T @ item_factors`` (computed once per model); ``rows`` must be unique.
    """
    rows = np.asarray(rows, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    y = item_factors[rows].astype(np.float64)
    conf = confidence(weights, alpha)
    a = gram + (y.T * (conf - 1.0)) @ y + regularization * np.eye(gram.shape[0])
    b = y.T @ conf
    return np.linalg.solve(a, b).astype(np.float32)


def fit_als(
    matrix: csr_matrix,
    factors: int = 64,
    regularization: float = 0.05,
    alpha: float = 1.0,
    iterations: int = 15,
    cg_steps: int = 3,
    seed: int = 7,
    threads: int = 1,
) -> Factors:
    """Weighted ALS with conjugate-gradient steps. ``matrix`` is users x items with the weights as values.
    ``threads`` > 1: each sweep's chunks of rows are stepped by that many threads (numpy, scipy and BLAS
    release the GIL; BLAS itself then runs one thread per chunk); the factors are the same, as rows are
    independent within a sweep."""
    start = initial_factors(matrix.shape[0], matrix.shape[1], factors, seed)
    user_factors, item_factors = start.user_factors.copy(), start.item_factors.copy()
    by_user = matrix.tocsr().astype(np.float32)
    by_item = by_user.T.tocsr()
    with _chunk_pool(threads) as pool:
        for _ in range(iterations):
            user_factors = _cg_sweep(
                by_user, user_factors, item_factors, regularization, alpha, cg_steps, pool=pool
            )
            item_factors = _cg_sweep(
                by_item, item_factors, user_factors, regularization, alpha, cg_steps, pool=pool
            )
    return Factors(user_factors, item_factors)


@contextmanager
def _chunk_pool(threads: int) -> Iterator[ThreadPoolExecutor | None]:
    """None for one thread; else a pool, with BLAS held to one thread per call while it runs."""
    if threads <= 1:
        yield None
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"), ThreadPoolExecutor(threads) as pool:
        yield pool


def _cg_sweep(
    matrix: csr_matrix,
    x: np.ndarray,
    y: np.ndarray,
    regularization: float,
    alpha: float,
    cg_steps: int,
    chunk_nnz: int = CHUNK_NNZ,
    pool: ThreadPoolExecutor | None = None,
) -> np.ndarray:
    """A few CG steps on every row's system ``(Y'Y + Y'(C-I)Y + reg I) x = Y'C p``.

    Rows are independent, so they are stepped a chunk of rows at a time: a chunk's gathered factors
    (one row of ``y`` per non-zero) stay in the CPU cache, and memory stays small on big matrices.
    """
    x = x.astype(np.float32)  # a copy: the caller's factors stay as they were
    base = (y.T @ y).astype(np.float32) + np.float32(regularization) * np.eye(y.shape[1], dtype=np.float32)
    indptr = matrix.indptr
    bounds = []
    lo = 0
    while lo < matrix.shape[0]:
        # the rows whose non-zeros fit in chunk_nnz (at least one row)
        hi = max(int(np.searchsorted(indptr, indptr[lo] + chunk_nnz, side="right")) - 1, lo + 1)
        hi = min(hi, matrix.shape[0])
        bounds.append((lo, hi))
        lo = hi

    def step(chunk: tuple[int, int]) -> None:  # each chunk writes only its own rows of x
        _cg_rows(matrix, chunk[0], chunk[1], x[chunk[0] : chunk[1]], y, base, alpha, cg_steps)

    for _ in map(step, bounds) if pool is None else pool.map(step, bounds):
        pass
    return x


def _cg_rows(
    matrix: csr_matrix,
    lo: int,
    hi: int,
    x: np.ndarray,
    y: np.ndarray,
    base: np.ndarray,
    alpha: float,
    cg_steps: int,
) -> None:
    """CG steps for rows ``lo:hi`` of ``matrix``, all at once with sparse products; ``x`` (those rows'
    factors, a view) is stepped in place."""
    from scipy.sparse import csr_matrix

    start, end = matrix.indptr[lo], matrix.indptr[hi]
    indptr = matrix.indptr[lo : hi + 1] - start
    counts = np.diff(indptr)  # non-zeros of each row: np.repeat(v, counts) lines v up with them
    conf_minus_one = (confidence(matrix.data[start:end], alpha) - 1.0).astype(np.float32)
    weighted = csr_matrix(
        (conf_minus_one, matrix.indices[start:end], indptr), shape=(hi - lo, matrix.shape[1])
    )
    y_nz = y[weighted.indices]  # gathered once: y stays fixed while x is solved

    def data_term(coefficients: np.ndarray) -> np.ndarray:
        # sum over a row's non-zeros of coefficient * y_i: a sparse (rows x items) @ dense product
        weighted.data = coefficients
        return np.asarray(weighted @ y, dtype=np.float32)

    dots = np.vecdot(np.repeat(x, counts, axis=0), y_nz)
    r = data_term(conf_minus_one + 1.0 - conf_minus_one * dots) - x @ base
    p = r.copy()
    rs_old = np.vecdot(r, r)
    for _ in range(cg_steps):
        active = rs_old > 1e-20
        if not active.any():
            break
        p_dots = np.vecdot(np.repeat(p, counts, axis=0), y_nz)
        ap = p @ base + data_term(conf_minus_one * p_dots)
        denominator = np.vecdot(p, ap)
        step = np.where(active & (denominator > 0), rs_old / np.where(denominator > 0, denominator, 1.0), 0.0)
        x += step[:, None] * p
        r -= step[:, None] * ap
        rs_new = np.vecdot(r, r)
        beta = np.where(active, rs_new / np.where(rs_old > 0, rs_old, 1.0), 0.0)
        p = r + beta[:, None] * p
        rs_old = rs_new


def fit_als_reference(
    matrix: csr_matrix,
    factors: int = 64,
    regularization: float = 0.05,
    alpha: float = 1.0,
    iterations: int = 15,
    seed: int = 7,
) -> Factors:
    """Plain-numpy ALS with an exact solve per row; slow, for tests only."""
    start = initial_factors(matrix.shape[0], matrix.shape[1], factors, seed)
    user_factors = start.user_factors.astype(np.float64)
    item_factors = start.item_factors.astype(np.float64)
    dense = np.asarray(matrix.todense(), dtype=np.float64)
    for _ in range(iterations):
        user_factors = _exact_sweep(dense, item_factors, regularization, alpha)
        item_factors = _exact_sweep(dense.T, user_factors, regularization, alpha)
    return Factors(user_factors.astype(np.float32), item_factors.astype(np.float32))


def _exact_sweep(dense: np.ndarray, y: np.ndarray, regularization: float, alpha: float) -> np.ndarray:
    gram = y.T @ y
    solved = np.zeros((dense.shape[0], y.shape[1]))
    for row in range(dense.shape[0]):
        observed = np.flatnonzero(dense[row])
        solved[row] = fold_in(y, gram, observed, dense[row, observed], regularization, alpha)
    return solved


def loss(
    matrix: csr_matrix,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    regularization: float,
    alpha: float,
) -> float:
    """The weighted objective both solvers minimize (dense: tests only)."""
    dense = np.asarray(matrix.todense(), dtype=np.float64)
    predicted = user_factors.astype(np.float64) @ item_factors.T.astype(np.float64)
    conf = np.where(dense > 0, confidence(dense, alpha), 1.0)
    preference = (dense > 0).astype(np.float64)
    penalty = regularization * (np.sum(user_factors.astype(np.float64) ** 2) + np.sum(item_factors**2))
    return float(np.sum(conf * (preference - predicted) ** 2) + penalty)
