"""``content``: items placed in the ALS space by their attributes (no interactions yet).

Up to ``EXACT_ROWS`` placed items are searched exactly. A larger set (a marketplace of a million items holds
hundreds of thousands never bought) is searched through the HNSW index, which holds the placed items with
the others: the query asks for enough neighbours that ``k`` of them are placed items at the catalogue's
share of them, and keeps those. Items the catalogue overlay added since training are not in the index and
are always searched exactly. When placed items are too rare for that (under ``MIN_INDEX_SHARE`` of the
index), the exact search stays.
"""

from __future__ import annotations

import math

import numpy as np

from merchandiser.catalog import ItemModel
from merchandiser.retrieval.ann import ann_source
from merchandiser.retrieval.proposal import Ask, Proposal, best_of
from merchandiser.shopper import UserState

NAME = "content"
EXACT_ROWS = 100_000  # about 1.5 ms of exact search (64 factors, one core)
MIN_INDEX_SHARE = 0.25  # below it the query would ask for more than 4 x k neighbours
INDEX_MARGIN = 1.25  # neighbours asked beyond k / share: the placed items are not spread evenly


def propose(items: ItemModel, user: UserState, ask: Ask) -> Proposal | None:
    if user.vector is None or not len(items.placed_rows):
        return None
    placed = items.placed_rows  # ascending
    indexed = items.index.get_current_count()
    in_index = int(np.searchsorted(placed, indexed))  # the overlay's rows come after the index's
    share = in_index / max(indexed, 1)
    vector = user.vector.astype(np.float32)
    if in_index <= EXACT_ROWS or share < MIN_INDEX_SHARE:
        rows, vectors = placed, items.placed_factors
        rows, scores = _allowed(rows, vectors, vector, ask.allowed)
        return best_of(rows, scores, ask.k, user.purchased, tie=items.tie_rank)
    fetch = min(indexed, math.ceil((ask.k + len(user.purchased)) * INDEX_MARGIN / share))
    found = ann_source(items.index, vector, fetch, ask.allowed)
    keep = items.signals.placed[found.rows]
    added = placed[in_index:]
    extra_rows, extra_scores = _allowed(added, items.item_factors[added], vector, ask.allowed)
    rows = np.concatenate([found.rows[keep], extra_rows])
    scores = np.concatenate([found.scores[keep], extra_scores])
    return best_of(rows, scores, ask.k, user.purchased, tie=items.tie_rank)


def _allowed(
    rows: np.ndarray, vectors: np.ndarray, vector: np.ndarray, allowed: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``allowed`` ones of ``rows`` and their exact scores."""
    if allowed is not None:
        keep = allowed[rows]
        rows, vectors = rows[keep], vectors[keep]
    return rows, (np.asarray(vectors, dtype=np.float32) @ vector).astype(np.float64)
