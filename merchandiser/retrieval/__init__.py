"""Retrieval, the first stage: candidate sources (one module each, one row each in ``registry``) and the
merge of their proposals into the candidates the ranker orders."""

from merchandiser.retrieval.ann import ann_source, build_index
from merchandiser.retrieval.popularity import popularity_source
from merchandiser.retrieval.proposal import Ask, Candidates, Proposal, best_of, merge, top_scores
from merchandiser.retrieval.registry import (
    ALSO_VIEWED,
    ANN,
    BOUGHT_TOGETHER,
    CONTENT,
    GRADUATED,
    PERSONAL_SOURCES,
    POPULARITY,
    SOURCE_NAMES,
    SOURCE_REASONS,
    SOURCE_SHARES,
    SOURCES,
    TRENDING,
    Source,
)
from merchandiser.retrieval.retriever import (
    CANDIDATES,
    bought_together,
    candidates,
    candidates_for,
    merge_proposals,
    popular,
    proposals,
    similar,
)

__all__ = [
    "ALSO_VIEWED",
    "ANN",
    "BOUGHT_TOGETHER",
    "CANDIDATES",
    "CONTENT",
    "GRADUATED",
    "PERSONAL_SOURCES",
    "POPULARITY",
    "SOURCES",
    "SOURCE_NAMES",
    "SOURCE_REASONS",
    "SOURCE_SHARES",
    "TRENDING",
    "Ask",
    "Candidates",
    "Proposal",
    "Source",
    "ann_source",
    "best_of",
    "bought_together",
    "build_index",
    "candidates",
    "candidates_for",
    "merge",
    "merge_proposals",
    "popular",
    "popularity_source",
    "proposals",
    "similar",
    "top_scores",
]
