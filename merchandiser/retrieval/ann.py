"""``ann``: nearest items to the shopper's ALS vector in an hnswlib inner-product index over item vectors."""

from __future__ import annotations

from collections.abc import Callable

import hnswlib
import numpy as np

from merchandiser.catalog import ItemModel
from merchandiser.retrieval.proposal import Ask, Proposal
from merchandiser.shopper import UserState

NAME = "ann"
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
MIN_EF = 50


def propose(items: ItemModel, user: UserState, ask: Ask) -> Proposal | None:
    if user.vector is None:
        return None
    # ask for more than k, then drop the purchases: the k best of the rest
    found = ann_source(items.index, user.vector, ask.k + len(user.purchased), ask.allowed)
    if not user.purchased:
        return found
    keep = ~np.isin(found.rows, np.fromiter(user.purchased, dtype=np.int64, count=len(user.purchased)))
    return Proposal(found.rows[keep][: ask.k], found.scores[keep][: ask.k])


def build_index(item_factors: np.ndarray, seed: int, rows: np.ndarray | None = None) -> hnswlib.Index:
    """Inner-product HNSW index over the given item ``rows`` (default: all); labels are item rows. One
    thread so the same input gives the same file."""
    rows = np.arange(len(item_factors), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    index = hnswlib.Index(space="ip", dim=item_factors.shape[1])
    index.init_index(
        max_elements=max(len(rows), 1), M=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION, random_seed=seed
    )
    index.set_num_threads(1)
    if len(rows):
        index.add_items(np.asarray(item_factors[rows], dtype=np.float32), rows, num_threads=1)
    return index


def ann_source(
    index: hnswlib.Index,
    vector: np.ndarray,
    k: int,
    allowed: np.ndarray | None = None,
) -> Proposal:
    """The ``k`` items with the largest inner product with ``vector``; ``allowed``: per-row boolean mask."""
    available = index.get_current_count() if allowed is None else int(np.count_nonzero(allowed))
    k = min(k, available)
    if k <= 0:
        return Proposal.empty()
    index.set_ef(max(k, MIN_EF))
    accept: Callable[[int], bool] | None = None
    if allowed is not None:
        mask = allowed

        def accept(label: int) -> bool:
            return bool(mask[label])

    query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    try:
        labels, distances = index.knn_query(query, k=k, num_threads=1, filter=accept)
    except RuntimeError:
        # the graph could not reach k allowed items (tiny or heavily filtered index): search exhaustively
        return _brute_force(index, query[0], k, allowed)
    # hnswlib's "ip" distance is 1 - inner product
    return Proposal(labels[0].astype(np.int64), 1.0 - distances[0].astype(np.float64))


def _brute_force(index: hnswlib.Index, vector: np.ndarray, k: int, allowed: np.ndarray | None) -> Proposal:
    labels = np.asarray(index.get_ids_list(), dtype=np.int64)
    if allowed is not None:
        labels = labels[allowed[labels]]
    scores = np.asarray(index.get_items(labels), dtype=np.float32) @ vector if len(labels) else np.empty(0)
    order = np.argsort(-scores, kind="stable")[:k]
    return Proposal(labels[order], scores[order].astype(np.float64))
