"""Never worse than the best simple list: when the training job found, on its validation window, that a
simple list (recent popularity or trending, tuned for the shop) beats the pipeline's page, the model's
manifest says so (``fallback_to_anchor``) and the recommendations page blends that list's order into the
ranker's with the weight the job chose (1: the list's order alone).

The blend is reciprocal-rank fusion of the two orders over the same candidates (``RRF_K`` as in Cormack
et al. 2009), so it does not depend on the scale of either score; the list's items are among the candidates
because its source (``recent_popularity`` or ``trending``) proposes them. Serving and the training job's
evaluation both call ``anchor_blend`` on the ranker's scores before the page's rules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from merchandiser.catalog import ItemModel
from merchandiser.retrieval import Candidates, best_positions

FALLBACK = "fallback_to_anchor"  # the manifest's key
RRF_K = 60
# The signal that holds each simple list's order in a model (training/simple_lists.py fits both).
ANCHOR_SIGNALS = {"pop_recent": "recent_popularity", "trending": "trending"}


def fallback_of(model: ItemModel) -> dict[str, Any] | None:
    """The model's fallback when it is engaged, else None."""
    fallback = model.manifest.get(FALLBACK) or {}
    if not fallback.get("engaged") or fallback.get("anchor") not in ANCHOR_SIGNALS:
        return None
    return dict(fallback)


def anchor_scores(model: ItemModel, anchor: str) -> np.ndarray:
    signal = ANCHOR_SIGNALS[anchor]
    return np.asarray(getattr(model.signals, signal), dtype=np.float64)


def blend(
    model: ItemModel, candidates: Candidates, scores: np.ndarray, anchor: str, weight: float
) -> np.ndarray:
    """The ranker's ``scores`` and the ``anchor`` list's order fused with ``weight`` on the list's side."""
    scores = np.asarray(scores, dtype=np.float64)
    if weight <= 0.0 or len(scores) == 0:
        return scores
    ties = model.tie_rank[candidates.rows]
    listed = anchor_scores(model, anchor)[candidates.rows]
    fused = weight / (RRF_K + 1.0 + _ranks(listed, ties))
    if weight < 1.0:
        fused += (1.0 - weight) / (RRF_K + 1.0 + _ranks(scores, ties))
    return fused


def anchor_blend(model: ItemModel, candidates: Candidates, scores: np.ndarray) -> np.ndarray:
    """The scores the page orders by: the ranker's, blended with the model's fallback list when engaged."""
    fallback = fallback_of(model)
    if fallback is None:
        return np.asarray(scores, dtype=np.float64)
    return blend(model, candidates, scores, str(fallback["anchor"]), float(fallback.get("weight", 1.0)))


def _ranks(scores: np.ndarray, ties: np.ndarray) -> np.ndarray:
    order = best_positions(scores, len(scores), ties)
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(len(scores), dtype=np.float64)
    return ranks
