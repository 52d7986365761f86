"""Ranking, the second stage: the features of (shopper, candidate) pairs, computed by one function for
training and serving, and the learned ranker that scores them."""

from merchandiser.ranking.features import FEATURE_NAMES, ranking_features, source_ranks
from merchandiser.ranking.ranker import RankerError, load_ranker, score

__all__ = ["FEATURE_NAMES", "RankerError", "load_ranker", "ranking_features", "score", "source_ranks"]
