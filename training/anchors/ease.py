"""EASE (Steck 2019) and EASE blended with recent popularity.

``B = I - P / diag(P)`` with ``P = (X'X + lambda I)^-1`` and ``diag(B) = 0``, over the items with events
in the window only: an item no one touched has a zero column in X, hence zero weights both ways, so
leaving it out changes no score and keeps the dense matrices to the active items.

``ease_weights_cholesky`` inverts the symmetric positive definite ``X'X + lambda I`` through its Cholesky
factor (LAPACK ``potrf`` + ``potri``, a third of a general inverse's work); ``untuned.ease_weights`` (a
general ``numpy.linalg.inv``) is the plain reference the tests hold it to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack
from scipy.sparse import csr_matrix

from training.anchors.ranking import Scorer


@dataclass(frozen=True)
class EaseGram:
    """X'X over the active items of one window matrix: computed once, shared by every lambda tried."""

    active: np.ndarray  # int64: catalogue rows of the items with events
    gram: np.ndarray  # float64 (active, active)

    @property
    def mean_diagonal(self) -> float:
        """lambda is searched as a multiple of this, so one range suits binary and weighted matrices."""
        return float(np.mean(np.diag(self.gram))) if len(self.active) else 1.0


def active_items(matrix: csr_matrix) -> np.ndarray:
    return np.flatnonzero(matrix.getnnz(axis=0) > 0).astype(np.int64)


def ease_gram(matrix: csr_matrix) -> EaseGram:
    active = active_items(matrix)
    columns = matrix[:, active]
    return EaseGram(active, np.asarray((columns.T @ columns).toarray(), dtype=np.float64))


def ease_weights_cholesky(gram: np.ndarray, regularization: float) -> np.ndarray:
    """EASE B (n, n) from X'X through the Cholesky inverse of ``X'X + lambda I``."""
    if regularization <= 0:
        raise ValueError(f"EASE needs a positive lambda, got {regularization}")
    system = np.array(gram, dtype=np.float64, order="F")
    system[np.diag_indices_from(system)] += regularization
    factor, info = lapack.dpotrf(system, lower=0, clean=1, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"X'X + lambda I is not positive definite (potrf info {info})")
    upper, info = lapack.dpotri(factor, lower=0, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"cannot invert the Cholesky factor (potri info {info})")
    precision = np.triu(upper) + np.triu(upper, 1).T  # potri fills the upper triangle only
    weights = -precision / np.diag(precision)[None, :]  # column j divided by P_jj
    np.fill_diagonal(weights, 0.0)
    return weights


def ease_scorer(matrix: csr_matrix, active: np.ndarray, weights: np.ndarray) -> Scorer:
    """Scores of window rows over the whole catalogue; items outside ``active`` score 0."""
    n_items = matrix.shape[1]
    history = matrix[:, active].tocsr()

    def scores(rows: np.ndarray) -> np.ndarray:
        result = np.zeros((len(rows), n_items))
        result[:, active] = np.asarray(history[rows] @ weights)
        return result

    return scores


def blend_scorer(ease: Scorer, popularity: np.ndarray, weight: float) -> Scorer:
    """``(1 - weight) * EASE / max|EASE| + weight * popularity / max popularity``, per user: both on a
    [-1, 1] scale whatever the data's size, so one weight range suits every shop. A user without
    history (all-zero EASE row) gets popularity."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the popularity weight must be in [0, 1], got {weight}")
    top = float(np.max(popularity, initial=0.0))
    scaled_popularity = popularity / top if top > 0 else np.zeros_like(popularity)

    def scores(rows: np.ndarray) -> np.ndarray:
        personal = ease(rows)
        largest = np.abs(personal).max(axis=1, keepdims=True)
        personal = np.divide(personal, largest, out=np.zeros_like(personal), where=largest > 0)
        return (1.0 - weight) * personal + weight * scaled_popularity[None, :]

    return scores
