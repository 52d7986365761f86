"""The second stage: the LightGBM LambdaRank ranker over ``features.ranking_features``, and the order
used when a model has no ranker."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np

from merchandiser.catalog import ItemModel
from merchandiser.ranking.features import ranking_features
from merchandiser.retrieval import Candidates
from merchandiser.shopper import UserState

RankerError = lgb.basic.LightGBMError


def load_ranker(path: Path) -> lgb.Booster:
    # threads are set per predict call (num_threads=1): params here would be ignored
    return lgb.Booster(model_file=str(path))


def score(
    ranker: lgb.Booster | None, items: ItemModel, user: UserState, candidates: Candidates, now: float
) -> np.ndarray:
    """float64 score per candidate, higher is better; without a ranker, the ALS inner product with a
    popularity tie-break."""
    if len(candidates) == 0:
        return np.empty(0, dtype=np.float64)
    if ranker is not None:
        features = ranking_features(user, candidates, items, now)
        return np.asarray(ranker.predict(features, num_threads=1), dtype=np.float64)
    rows = candidates.rows
    primary = np.zeros(len(rows))
    if user.vector is not None:
        primary = items.item_factors[rows].astype(np.float64) @ user.vector.astype(np.float64)
    popularity = np.log1p(items.popularity[rows].astype(np.float64))
    # popularity only separates (near) equal preferences
    return primary + 1e-6 * popularity / max(float(popularity.max()), 1.0)
