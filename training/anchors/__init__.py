"""Baseline recommenders ("anchors"): what a careful data scientist would try before a pipeline.

- ``tuning.tuned_anchors``: recent popularity, trending, item-kNN, RP3beta, EASE and EASE blended with
  recent popularity, each tuned on a validation window and refitted (the training job scores them);
- ``served``: a tuned item-item anchor as a model's neighbour table, for the fallback that serves it;
- ``untuned``: anchors fitted with given settings (both ALS, for the learning benchmark's comparison)
  and the plain-numpy EASE reference.
"""

from training.anchors.families import ANCHOR_NAMES, NEIGHBOUR_FAMILIES
from training.anchors.ranking import Recommender, tie_ranks, top_k_reference
from training.anchors.served import anchor_ndcg, anchor_table, served_window
from training.anchors.tuning import AnchorResult, AnchorSettings, anchor_settings, tuned_anchors
from training.anchors.untuned import (
    ANCHORS,
    AlsSettings,
    Scorer,
    UserItems,
    ease_weights,
    fit_anchor,
    fit_ease,
    fit_implicit_als,
    fit_item_knn,
    fit_own_als,
    recommend,
    top_k,
    user_items,
)

__all__ = [
    "ANCHORS",
    "ANCHOR_NAMES",
    "NEIGHBOUR_FAMILIES",
    "AlsSettings",
    "AnchorResult",
    "AnchorSettings",
    "Recommender",
    "Scorer",
    "UserItems",
    "anchor_ndcg",
    "anchor_settings",
    "anchor_table",
    "ease_weights",
    "fit_anchor",
    "fit_ease",
    "fit_implicit_als",
    "fit_item_knn",
    "fit_own_als",
    "recommend",
    "served_window",
    "tie_ranks",
    "top_k",
    "top_k_reference",
    "tuned_anchors",
    "user_items",
]
