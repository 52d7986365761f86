"""Item-item anchors: item-kNN (cosine with shrinkage) and RP3beta, each as a sparse item x item matrix W.

A user's score for item j is ``sum_i x_ui W_ij`` over their history.

- item-kNN: ``W_ij = x_i . x_j / (|x_i| |x_j| + shrink)`` (columns of the user x item matrix), the
  diagonal zero, and each target column j keeps its ``neighbours`` largest entries (as Dacrema et al.'s
  ``Compute_Similarity`` does);
- RP3beta (Paudel et al. 2017): ``W = (P_iu)^alpha (P_ui)^alpha`` with ``P_ui`` the user rows of X scaled
  to sum 1, ``P_iu`` the item rows of binary X' scaled to sum 1, each column j divided by
  ``degree_j^beta`` (users who touched j), the diagonal zero, and each source row i keeping its
  ``neighbours`` largest entries (as Dacrema et al.'s ``RP3betaRecommender``).

The sparse paths are vectorized over COO arrays; ``*_reference`` are dense, plain-numpy definitions
that the tests hold them to. Equal entries at the pruning border are kept by the tie order of
``ranking.tie_ranks`` (recent popularity), never by item id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix, diags

from merchandiser.catalog import Neighbours
from training.anchors.ranking import Scorer


def keep_largest(lines: csr_matrix, per_line: int, ranks: np.ndarray) -> csr_matrix:
    """The ``per_line`` largest entries of each row of ``lines``, equal values kept by the ``ranks`` of
    their columns. A loop over the rows longer than ``per_line`` with a partition each: sorting all the
    entries at once (millions on a few thousand items) costs far more."""
    lines = lines.tocsr()
    indptr, columns, values = lines.indptr, lines.indices, lines.data
    counts = np.diff(indptr)
    keep = np.repeat(counts <= per_line, counts)
    for line in np.flatnonzero(counts > per_line).tolist():
        start, end = indptr[line], indptr[line + 1]
        line_values = values[start:end]
        kth = np.partition(line_values, len(line_values) - per_line)[len(line_values) - per_line]
        above = line_values > kth
        tied = np.flatnonzero(line_values == kth)
        room = per_line - int(above.sum())
        chosen = tied[np.argsort(ranks[columns[start:end][tied]], kind="stable")[:room]]
        keep[start + np.flatnonzero(above)] = True
        keep[start + chosen] = True
    rows = np.repeat(np.arange(lines.shape[0]), counts)
    return csr_matrix((values[keep], (rows[keep], columns[keep])), shape=lines.shape)


@dataclass(frozen=True)
class ItemGram:
    """The off-diagonal non-zeros of X'X with the product of their columns' norms: the costly part of
    item-kNN, the same for every neighbours and shrink tried."""

    rows: np.ndarray
    columns: np.ndarray
    dots: np.ndarray
    norm_products: np.ndarray
    n_items: int


def item_gram(matrix: csr_matrix) -> ItemGram:
    gram = (matrix.T @ matrix).tocoo()
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=0)).ravel())
    off = (gram.row != gram.col) & (gram.data > 0)
    rows, columns = gram.row[off], gram.col[off]
    return ItemGram(rows, columns, gram.data[off], norms[rows] * norms[columns], matrix.shape[1])


def cosine_weights(
    matrix: csr_matrix, neighbours: int, shrink: float, ranks: np.ndarray, gram: ItemGram | None = None
) -> csr_matrix:
    """item-kNN W (items, items); ``gram`` is ``item_gram(matrix)`` when the caller already has it."""
    gram = item_gram(matrix) if gram is None else gram
    similarity = gram.dots / (gram.norm_products + shrink)
    # pruned per target column: laid out with the targets as lines, then transposed back
    shape = (gram.n_items, gram.n_items)
    by_target = csr_matrix((similarity, (gram.columns, gram.rows)), shape=shape)
    return keep_largest(by_target, neighbours, ranks).T.tocsr()


def cosine_reference(matrix: np.ndarray, neighbours: int, shrink: float, ranks: np.ndarray) -> np.ndarray:
    x = np.asarray(matrix, dtype=np.float64)
    n_items = x.shape[1]
    norms = np.sqrt((x * x).sum(axis=0))
    weights = np.zeros((n_items, n_items))
    for j in range(n_items):
        column = [(float(x[:, i] @ x[:, j]) / (norms[i] * norms[j] + shrink), i) for i in range(n_items)]
        column = [(value, i) for value, i in column if i != j and value > 0]
        for value, i in sorted(column, key=lambda entry: (-entry[0], ranks[entry[1]]))[:neighbours]:
            weights[i, j] = value
    return weights


def rp3beta_weights(
    matrix: csr_matrix, alpha: float, beta: float, neighbours: int, ranks: np.ndarray
) -> csr_matrix:
    """RP3beta W (items, items) from the weighted user x item matrix."""
    n_items = matrix.shape[1]
    user_to_item = _rows_to_unit_sum(matrix.astype(np.float64))
    touched = matrix.T.tocsr().astype(np.float64)
    touched.data = np.ones_like(touched.data)
    degree = np.asarray(touched.sum(axis=1)).ravel()
    item_to_user = _rows_to_unit_sum(touched)
    user_to_item.data **= alpha
    item_to_user.data **= alpha
    scale = np.zeros(n_items)
    scale[degree > 0] = degree[degree > 0] ** -beta
    walk: coo_matrix = (item_to_user @ user_to_item @ diags(scale)).tocoo()
    off = (walk.row != walk.col) & (walk.data > 0)
    by_source = csr_matrix((walk.data[off], (walk.row[off], walk.col[off])), shape=(n_items, n_items))
    return keep_largest(by_source, neighbours, ranks)


def _rows_to_unit_sum(matrix: csr_matrix) -> csr_matrix:
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    inverse = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    scaled: csr_matrix = diags(inverse) @ matrix
    return scaled.tocsr()


def rp3beta_reference(
    matrix: np.ndarray, alpha: float, beta: float, neighbours: int, ranks: np.ndarray
) -> np.ndarray:
    x = np.asarray(matrix, dtype=np.float64)
    n_users, n_items = x.shape
    p_ui = np.zeros_like(x)
    p_iu = np.zeros((n_items, n_users))
    for u in range(n_users):
        if x[u].sum() > 0:
            p_ui[u] = (x[u] / x[u].sum()) ** alpha * (x[u] > 0)
    touched = (x > 0).astype(np.float64).T
    for i in range(n_items):
        if touched[i].sum() > 0:
            p_iu[i] = (touched[i] / touched[i].sum()) ** alpha * (touched[i] > 0)
    degree = touched.sum(axis=1)
    walk = p_iu @ p_ui
    weights = np.zeros((n_items, n_items))
    for i in range(n_items):
        line = [(walk[i, j] / degree[j] ** beta, j) for j in range(n_items) if j != i and walk[i, j] > 0]
        for value, j in sorted(line, key=lambda entry: (-entry[0], ranks[entry[1]]))[:neighbours]:
            weights[i, j] = value
    return weights


def item_item_scorer(matrix: csr_matrix, weights: csr_matrix) -> Scorer:
    """Scores of window rows: their matrix rows times W."""
    return lambda rows: np.asarray((matrix[rows] @ weights).toarray())


def weights_table(weights: csr_matrix) -> Neighbours:
    """W (items, items) as the model's neighbour table (``merchandiser.catalog.Neighbours``): row i holds
    the weights i gives the others, strongest first (equal ones by column), float32."""
    weights = weights.tocsr()
    weights.sum_duplicates()
    weights.eliminate_zeros()
    counts = np.diff(weights.indptr)
    lines = np.repeat(np.arange(weights.shape[0]), counts)
    order = np.lexsort((weights.indices, -weights.data, lines))
    return Neighbours(
        indptr=weights.indptr.astype(np.int64),
        indices=weights.indices[order].astype(np.int32),
        similarity=weights.data[order].astype(np.float32),
    )
