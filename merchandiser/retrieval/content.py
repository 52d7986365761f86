"""``content``: items placed in the ALS space by their attributes (no interactions yet).

Up to ``EXACT_ROWS`` placed items are searched exactly. Beyond (a marketplace of a million items holds
hundreds of thousands never bought), training gives them an HNSW index of their own (``ItemModel
.content_index``; the main index then holds the items with interactions), searched as ``ann`` searches its
own: the main index could not stand in, as the placed items' vectors (a regression on attributes) seldom
reach the top of a shopper's inner products among the others (measured at 1,000,000 items: 1.6 of the 50
places the source fills). Items the catalogue overlay added since training are in no index and are always
searched exactly.
"""

from __future__ import annotations

import numpy as np

from merchandiser.catalog import ItemModel
from merchandiser.retrieval.ann import ann_source
from merchandiser.retrieval.proposal import Ask, Proposal, best_of
from merchandiser.shopper import UserState

NAME = "content"
EXACT_ROWS = 100_000  # about 1.5 ms of exact search (64 factors, one core)


def propose(items: ItemModel, user: UserState, ask: Ask) -> Proposal | None:
    if user.vector is None or not len(items.placed_rows):
        return None
    vector = user.vector.astype(np.float32)
    if items.content_index is None:
        rows, scores = _exact(items.placed_rows, items.placed_factors, vector, ask.allowed)
        return best_of(rows, scores, ask.k, user.purchased, tie=items.tie_rank)
    found = ann_source(items.content_index, vector, ask.k + len(user.purchased), ask.allowed)
    added = items.overlay_rows
    added_rows, added_scores = _exact(added, items.item_factors[added], vector, ask.allowed)
    rows = np.concatenate([found.rows, added_rows])
    scores = np.concatenate([found.scores, added_scores])
    return best_of(rows, scores, ask.k, user.purchased, tie=items.tie_rank)


def _exact(
    rows: np.ndarray, vectors: np.ndarray, vector: np.ndarray, allowed: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``allowed`` ones of ``rows`` and their exact scores."""
    if allowed is not None:
        keep = allowed[rows]
        rows, vectors = rows[keep], vectors[keep]
    return rows, (np.asarray(vectors, dtype=np.float32) @ vector).astype(np.float64)
