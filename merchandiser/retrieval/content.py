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
# An exact search reads every placed item's vector: at 100,000 items the bench shop has 45,000 placed
# (11.5 MB), 0.1 ms in a loop that keeps them in the CPU's caches but 0.8 ms in a page, whose other work
# evicts them; its own index's search of the few hundred rows the page can take is cheaper from about ten
# thousand (measured 2026-12-01 on one 100,000-item model: retrieval 3.6 to 3.8 -> 3.2 ms p50).
EXACT_ROWS = 10_000
# Searching its index, the source asks for what the merge can take from it: twice its quota of the
# candidates (the merge fills that many places from it first, and a placed item reaches the candidates
# through this source alone, the main index holding the trained items), at least INDEX_MIN_ROWS; not the
# whole ``k`` as the exact search, which scores every placed item anyway, gives.
INDEX_ROWS_PER_QUOTA = 2
INDEX_MIN_ROWS = 100


def propose(items: ItemModel, user: UserState, ask: Ask) -> Proposal | None:
    if user.vector is None or not len(items.placed_rows):
        return None
    vector = user.vector.astype(np.float32)
    if items.content_index is None:
        rows, scores = _exact(items.placed_rows, items.placed_factors, vector, ask.allowed)
        return best_of(rows, scores, ask.k, user.purchased, tie=items.tie_rank)
    wanted = index_rows(ask)
    found = ann_source(items.content_index, vector, wanted + len(user.purchased), ask.allowed)
    added = items.overlay_rows
    added_rows, added_scores = _exact(added, items.item_factors[added], vector, ask.allowed)
    rows = np.concatenate([found.rows, added_rows])
    scores = np.concatenate([found.scores, added_scores])
    return best_of(rows, scores, wanted, user.purchased, tie=items.tie_rank)


def index_rows(ask: Ask) -> int:
    """How many rows to take from the placed items' index: ``ask.k``, or less when the quota is known."""
    if ask.quota is None:
        return ask.k
    return min(ask.k, max(INDEX_ROWS_PER_QUOTA * ask.quota, INDEX_MIN_ROWS))


def _exact(
    rows: np.ndarray, vectors: np.ndarray, vector: np.ndarray, allowed: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``allowed`` ones of ``rows`` and their exact scores."""
    if allowed is not None:
        keep = allowed[rows]
        rows, vectors = rows[keep], vectors[keep]
    return rows, (np.asarray(vectors, dtype=np.float32) @ vector).astype(np.float64)
