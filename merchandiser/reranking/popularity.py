"""The long-tail correction of the page: the ranker's scores less a calibrated popularity term, with the
strength the training job chose on its validation window (the manifest's ``long_tail_correction``).

A candidate's page score is ``z(score) - strength * z(log(1 + popularity))``, both standardised over the
page's candidates: the ranker's score counted in its own spread, less the item's log popularity counted in
its spread. This is the post-processing family of Abdollahpouri, Burke and Mobasher, "Managing Popularity
Bias in Recommender Systems with Personalized Re-ranking" (FLAIRS 2019), with the log-linear popularity
term of Zhang et al., "Causal Intervention for Leveraging Popularity Bias in Recommendation" (SIGIR 2021:
the ranking score times popularity to a power, i.e. a weight on log popularity). Chosen over xQuAD and over
a reciprocal-rank fusion with an inverse-popularity order because

- it is applied after the models, so every engine (single machine, Spark) and every ranker get it, and the
  ranker's popularity features stay what they learnt;
- standardising both terms over the page makes ``strength`` mean the same on every page and for every
  model whatever the scale of its scores (LambdaRank's margins, the ALS inner product, a fallback's
  reciprocal-rank blend), so a strength chosen on validation carries to serving;
- it keeps the ranker's margins: a best seller the ranker is sure of keeps its place, one it barely
  prefers gives way to a close long-tail item (a rank fusion moves every item by its popularity rank
  whatever the ranker's margin; xQuAD needs a per-shopper tail appetite the models do not learn).

``strength`` 0 is no correction; the job tries a small grid on validation and keeps the largest strength
that costs at most 2% of NDCG@10 while coverage@20 and the long-tail share rise (``training.tuning``'s
long-tail stage). Serving and the training job's evaluation both call ``long_tail_correct`` (through
``page_scores``) on the scores the page orders by.
"""

from __future__ import annotations

import numpy as np

from merchandiser.catalog import ItemModel
from merchandiser.retrieval import Candidates

LONG_TAIL = "long_tail_correction"  # the manifest's key
MAX_STRENGTH = 5.0  # beyond it popularity alone orders the page: the correction is then a popularity inverse


def check_strength(strength: float) -> float:
    """``strength`` as a float when usable, else a ValueError (negative, not finite or above the maximum)."""
    strength = float(strength)
    if not np.isfinite(strength) or not 0.0 <= strength <= MAX_STRENGTH:
        raise ValueError(f"long-tail strength must be within 0 and {MAX_STRENGTH}, got {strength}")
    return strength


def strength_of(model: ItemModel) -> float:
    """The model's chosen strength: 0 when its manifest has none (older models) or an unusable one."""
    record = model.manifest.get(LONG_TAIL) or {}
    try:
        return check_strength(record.get("strength", 0.0))
    except (TypeError, ValueError):
        return 0.0


def standardized(values: np.ndarray) -> np.ndarray:
    """``values`` less their mean over their spread (the standard deviation); 0 everywhere when all equal."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return values
    spread = float(values.std())
    if not np.isfinite(spread) or spread <= 0.0:
        return np.zeros(len(values), dtype=np.float64)
    return (values - values.mean()) / spread


def long_tail_scores(
    model: ItemModel, candidates: Candidates, scores: np.ndarray, strength: float
) -> np.ndarray:
    """The candidates' ``scores`` corrected with ``strength``: unchanged at 0."""
    strength = check_strength(strength)
    scores = np.asarray(scores, dtype=np.float64)
    if strength == 0.0 or len(scores) == 0:
        return scores
    popularity = np.log1p(np.maximum(np.asarray(model.popularity, dtype=np.float64)[candidates.rows], 0.0))
    return standardized(scores) - strength * standardized(popularity)


def long_tail_correct(model: ItemModel, candidates: Candidates, scores: np.ndarray) -> np.ndarray:
    """The page's scores under the model's chosen long-tail correction (none when it chose 0)."""
    return long_tail_scores(model, candidates, scores, strength_of(model))
