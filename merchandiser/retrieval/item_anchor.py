"""``item_anchor``: a personal anchor's (item-kNN or RP3beta) items for the shopper, when the training job
found on its validation window that this anchor beats the pipeline's page and serves it (its fallback,
``merchandiser.reranking.fallback``); it proposes nothing otherwise.

The anchor scores an item j as ``sum_i x_i W_ij`` over the shopper's history i (profile and session), with
``W`` the item-item weights the job fitted (``Signals.item_anchor``) and ``x_i`` the history's cell in the
anchor's matrix: 1 for a ``binary`` matrix, ``log(1 + weight)`` for ``log_weight``, the weight being the
state's ``raw_history`` (events summed at the stream's weights without decay, as the anchor's matrix sums
them), so the served anchor scores a shopper as the anchor itself did. A profile written without raw weights
falls back to the state's history (recency-decayed, at the tuned event weights): on the ``sparse_views``
regime that cost the served order 1.7% of the anchor's NDCG@10.
"""

from __future__ import annotations

import numpy as np

from merchandiser.catalog import ItemModel
from merchandiser.retrieval.proposal import Ask, Proposal, top_scores
from merchandiser.shopper import UserState

NAME = "item_anchor"
FALLBACK = "fallback_to_anchor"  # the manifest's key of the fallback record (its ``matrix``: the weighting)
PERSONAL_ANCHORS = ("item_knn", "rp3beta")  # the anchors whose weights the table holds
MATRIX_KINDS = ("binary", "log_weight")


def shopper_scores(items: ItemModel, user: UserState) -> np.ndarray | None:
    """float64 (n_items,): the anchor's score of every item for ``user``; None when the model holds no
    table or the shopper's history gives no item a positive score (nothing known of them)."""
    table = items.signals.item_anchor
    if len(table.indices) == 0:
        return None
    cells = user.raw_history or user.history
    rows = np.array([row for row, weight in cells.items() if weight > 0], dtype=np.int64)
    if len(rows) == 0:
        return None
    if history_matrix(items) == "log_weight":
        weights = np.log1p(np.array([cells[row] for row in rows.tolist()], dtype=np.float64))
    else:
        weights = np.ones(len(rows), dtype=np.float64)
    scores = table.scores(rows, weights)
    return scores if bool((scores > 0).any()) else None


def history_matrix(items: ItemModel) -> str:
    """How the history's cells are weighted: the matrix the anchor was fitted on (``binary`` by default)."""
    kind = str((items.manifest.get(FALLBACK) or {}).get("matrix", "binary"))
    return kind if kind in MATRIX_KINDS else "binary"


def propose(items: ItemModel, user: UserState, ask: Ask) -> Proposal | None:
    scores = shopper_scores(items, user)
    if scores is None:
        return None
    return top_scores(scores, ask.k, ask.allowed, user.purchased, tie=items.tie_rank)
