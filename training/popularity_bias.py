"""The popularity-bias correction of the ranker (``Hyperparameters.popularity_correction``).

The labels the ranker learns from are what shoppers interacted with, and shoppers interact most with
what they were shown most: the popular items. Left alone, LambdaRank learns that popularity itself is
relevance and fills every page with the same head of the catalogue. The correction weighs each positive
example by the inverse of its item's popularity propensity, ``(1 + popularity)^-beta``, normalised so
the positives keep their total weight (the negatives keep 1): a long-tail item a shopper chose counts
for more than a best seller they chose. ``beta`` = 0 is no correction, 1 the full inverse propensity;
weights are clipped at ``MAX_WEIGHT`` times the mean so that a handful of one-off items cannot steer the
trees. The benchmark (``training.bench_popularity``) measures what each ``beta`` costs in NDCG@10 and
gains in coverage@20 and long-tail share.

``als_popularity_correction`` does the same to the ALS matrix (``als_pair_weights``): each (shopper,
item) weight is multiplied by ``(1 + shoppers of the item)^-beta``, normalised to keep the matrix's
mean weight, so that the item vectors are not pulled towards the best sellers every shopper touched
(the single-machine engine; Spark learns ALS uncorrected).
"""

from __future__ import annotations

import numpy as np

from merchandiser.ranking import FEATURE_NAMES

MAX_WEIGHT = 10.0
POPULARITY_COLUMN = FEATURE_NAMES.index("item_popularity_log")  # log1p of the item's decayed popularity


def positive_weights(features: np.ndarray, labels: np.ndarray, beta: float) -> np.ndarray | None:
    """Per-row LightGBM weights for ranker examples (``ranking_features`` rows and 0/1 labels); None when
    ``beta`` is 0 (LightGBM then weighs every row 1)."""
    if beta < 0:
        raise ValueError(f"popularity_correction must not be negative, got {beta}")
    if beta == 0 or not len(labels):
        return None
    weights = np.ones(len(labels), dtype=np.float64)
    positive = labels > 0
    if not positive.any():
        return weights
    log_popularity = np.nan_to_num(features[positive, POPULARITY_COLUMN].astype(np.float64), nan=0.0)
    inverse = np.exp(-beta * log_popularity)  # (1 + popularity) ** -beta
    inverse = np.minimum(inverse / inverse.mean(), MAX_WEIGHT)
    weights[positive] = inverse / inverse.mean()
    return weights


def als_pair_weights(rows: np.ndarray, n_items: int, beta: float) -> np.ndarray | None:
    """A factor per (shopper, item) pair of the ALS matrix (``rows``: the pairs' item rows): the inverse
    of the item's shopper count to the power ``beta``, mean 1 over the pairs; None when ``beta`` is 0."""
    if beta < 0:
        raise ValueError(f"als_popularity_correction must not be negative, got {beta}")
    if beta == 0 or not len(rows):
        return None
    shoppers = np.bincount(rows, minlength=n_items).astype(np.float64)
    factors = (1.0 + shoppers[rows]) ** -beta
    return factors / factors.mean()
