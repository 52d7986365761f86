"""Never worse than the best simple list: when the training job found, on its validation window, that an
anchor (recent popularity or trending, one score per item; or item-kNN or RP3beta, personal: scores from
the shopper's own history), tuned for the shop, beats the pipeline's page, the model's manifest says so
(``fallback_to_anchor``) and the recommendations page blends that anchor's order into the ranker's with the
weight the job chose (1: the anchor's order alone).

The blend is reciprocal-rank fusion of the two orders over the same candidates (``RRF_K`` as in Cormack
et al. 2009), so it does not depend on the scale of either score; the anchor's items are among the
candidates because its source (``recent_popularity``, ``trending`` or ``item_anchor``) proposes them. A
personal anchor that knows nothing of the shopper (no history, or none with weights in its table) leaves
the ranker's order as it is. Serving and the training job's evaluation both call ``anchor_blend`` on the
ranker's scores before the page's rules, and the job's search scores its options with ``blend``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from merchandiser.catalog import ItemModel
from merchandiser.retrieval import FALLBACK, PERSONAL_ANCHORS, Candidates, best_positions, shopper_scores
from merchandiser.shopper import UserState

RRF_K = 60
# The signal that holds each simple list's order in a model (training/simple_lists.py fits both).
ANCHOR_SIGNALS = {"pop_recent": "recent_popularity", "trending": "trending"}
# The personal anchors' weights are in the signals' item-item table (``Signals.item_anchor``).
SERVABLE_ANCHORS = (*ANCHOR_SIGNALS, *PERSONAL_ANCHORS)


def fallback_of(model: ItemModel) -> dict[str, Any] | None:
    """The model's fallback when it is engaged, else None."""
    fallback = model.manifest.get(FALLBACK) or {}
    if not fallback.get("engaged") or fallback.get("anchor") not in SERVABLE_ANCHORS:
        return None
    return dict(fallback)


def anchor_scores(model: ItemModel, anchor: str, user: UserState) -> np.ndarray | None:
    """The ``anchor``'s score of every item for ``user``: a simple list's one score per item, a personal
    anchor's from the shopper's history (None when it knows nothing of them)."""
    if anchor in ANCHOR_SIGNALS:
        return np.asarray(getattr(model.signals, ANCHOR_SIGNALS[anchor]), dtype=np.float64)
    if anchor in PERSONAL_ANCHORS:
        return shopper_scores(model, user)
    raise ValueError(f"unknown anchor {anchor!r}: one of {', '.join(SERVABLE_ANCHORS)}")


def blend(
    model: ItemModel,
    candidates: Candidates,
    scores: np.ndarray,
    user: UserState,
    anchor: str,
    weight: float,
) -> np.ndarray:
    """The ranker's ``scores`` and the ``anchor``'s order for ``user`` fused with ``weight`` on the
    anchor's side; the ranker's scores unchanged when the anchor has nothing for this shopper."""
    scores = np.asarray(scores, dtype=np.float64)
    if weight <= 0.0 or len(scores) == 0:
        return scores
    listed = anchor_scores(model, anchor, user)
    if listed is None:
        return scores
    by_ranker = _ranks(scores, model.tie_rank[candidates.rows])
    # where the anchor scores candidates alike (a personal anchor gives most of them nothing), the
    # ranker's order settles them, not the catalogue's tie order
    fused = weight / (RRF_K + 1.0 + _ranks(listed[candidates.rows], by_ranker))
    if weight < 1.0:
        fused += (1.0 - weight) / (RRF_K + 1.0 + by_ranker)
    return fused


def anchor_blend(model: ItemModel, candidates: Candidates, scores: np.ndarray, user: UserState) -> np.ndarray:
    """The scores the page orders by: the ranker's, blended with the model's fallback anchor when engaged."""
    fallback = fallback_of(model)
    if fallback is None:
        return np.asarray(scores, dtype=np.float64)
    anchor, weight = str(fallback["anchor"]), float(fallback.get("weight", 1.0))
    return blend(model, candidates, scores, user, anchor, weight)


def _ranks(scores: np.ndarray, ties: np.ndarray) -> np.ndarray:
    order = best_positions(scores, len(scores), ties)
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(len(scores), dtype=np.float64)
    return ranks
