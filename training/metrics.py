"""Top-k accuracy metrics with binary relevance (an item is relevant if the user interacted with it)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

RECALL_CURVE = (5, 10, 20, 50, 100)
HEAD_SHARE = 0.2  # the most popular fifth of the catalogue is the head; every other item is the long tail


def ndcg_at_k(recommended: Sequence[int], relevant: set[int], k: int) -> float:
    """DCG of the top k (gain 1 / log2(position + 1), positions from 1) over the best possible DCG."""
    if not relevant:
        return 0.0
    gains = [1.0 / np.log2(position + 2) for position, item in enumerate(recommended[:k]) if item in relevant]
    ideal = sum(1.0 / np.log2(position + 2) for position in range(min(len(relevant), k)))
    return float(sum(gains) / ideal)


def page_ndcg(relevance: np.ndarray, groups: Sequence[int], scores: np.ndarray, at: int = 10) -> float:
    """Mean graded nDCG@``at`` of logged pages (``groups``: each page's row count, rows in page order),
    each page re-ordered by ``scores``, gains = ``relevance`` (e.g. a simulator's true relevance)."""
    bounds = np.r_[0, np.cumsum(groups)]
    discounts = 1.0 / np.log2(np.arange(2, at + 2))
    values = []
    for a, b in itertools.pairwise(bounds):
        order = np.argsort(-scores[a:b], kind="stable")[:at]
        ideal = np.sort(relevance[a:b])[::-1][:at]
        values.append(relevance[a:b][order] @ discounts[: len(order)] / (ideal @ discounts[: len(ideal)]))
    return float(np.mean(values))


def recall_at_k(recommended: Sequence[int], relevant: set[int], k: int) -> float:
    """Share of the relevant items found in the top k."""
    if not relevant:
        return 0.0
    return len(set(recommended[:k]) & relevant) / len(relevant)


def hit_at_k(recommended: Sequence[int], relevant: set[int], k: int) -> float:
    """1 when at least one relevant item is in the top k."""
    return float(bool(set(recommended[:k]) & relevant))


def coverage_at_k(recommendations: Iterable[Sequence[int]], n_items: int, k: int) -> float:
    """Share of the catalog that appears in at least one user's top k."""
    if n_items <= 0:
        return 0.0
    shown: set[int] = set()
    for recommended in recommendations:
        shown.update(recommended[:k])
    return len(shown) / n_items


def long_tail_items(popularity: np.ndarray, head_share: float = HEAD_SHARE) -> np.ndarray:
    """Boolean per item: outside the ``head_share`` most popular items (ties by row, items without any
    popularity are always tail)."""
    popularity = np.asarray(popularity, dtype=np.float64)
    n_head = int(len(popularity) * head_share)
    tail = np.ones(len(popularity), dtype=bool)
    if n_head:
        head = np.lexsort((np.arange(len(popularity)), -popularity))[:n_head]
        tail[head[popularity[head] > 0]] = False
    return tail


def long_tail_share(recommendations: Iterable[Sequence[int]], tail: np.ndarray, k: int) -> float:
    """Share of the top-k slots, over every list, taken by long-tail items: the share of impressions the
    tail would get if each list were served as a page of ``k``."""
    shown = tail_count = 0
    for recommended in recommendations:
        rows = list(recommended[:k])
        shown += len(rows)
        tail_count += int(tail[np.asarray(rows, dtype=np.int64)].sum()) if rows else 0
    return tail_count / shown if shown else 0.0


def reciprocal_rank(recommended: Sequence[int], relevant: set[int]) -> float:
    """1 / position of the first relevant item (positions from 1), 0 when none is recommended."""
    for position, item in enumerate(recommended):
        if item in relevant:
            return 1.0 / (position + 1)
    return 0.0


def intra_list_diversity(recommended: Sequence[int], unit_vectors: np.ndarray, k: int) -> float:
    """Mean pairwise cosine distance (1 - cosine) between the top k items' vectors; 0 for fewer than 2."""
    rows = np.asarray(list(recommended[:k]), dtype=np.int64)
    if len(rows) < 2:
        return 0.0
    vectors = unit_vectors[rows].astype(np.float64)
    similarity = vectors @ vectors.T
    pairs = len(rows) * (len(rows) - 1)
    return float((pairs - (similarity.sum() - np.trace(similarity))) / pairs)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def summarize(
    recommendations: Mapping[str, Sequence[int]],
    relevant: Mapping[str, set[int]],
    n_items: int,
    unit_vectors: np.ndarray | None = None,
    tail: np.ndarray | None = None,
) -> dict[str, Any]:
    """Accuracy averaged over the users in ``relevant``; coverage@20 over the catalog; diversity@10 when
    item vectors (unit rows) are given; long_tail@20 (``long_tail_share``) when the tail mask is given."""
    users = [user for user in relevant if relevant[user]]
    names = (
        "ndcg@10",
        "recall@20",
        "recall@100",
        "hit@10",
        "mrr",
        "coverage@20",
        "diversity@10",
        "long_tail@20",
    )
    if not users:
        return {
            **dict.fromkeys(names, 0.0),
            "recall_curve": dict.fromkeys(map(str, RECALL_CURVE), 0.0),
            "users": 0,
        }
    summary = {
        "ndcg@10": float(np.mean([ndcg_at_k(recommendations[u], relevant[u], 10) for u in users])),
        "recall@20": float(np.mean([recall_at_k(recommendations[u], relevant[u], 20) for u in users])),
        "recall@100": float(np.mean([recall_at_k(recommendations[u], relevant[u], 100) for u in users])),
        "hit@10": float(np.mean([hit_at_k(recommendations[u], relevant[u], 10) for u in users])),
        "mrr": float(np.mean([reciprocal_rank(recommendations[u], relevant[u]) for u in users])),
        "coverage@20": coverage_at_k((recommendations[u] for u in users), n_items, 20),
        "diversity@10": (
            float(np.mean([intra_list_diversity(recommendations[u], unit_vectors, 10) for u in users]))
            if unit_vectors is not None
            else 0.0
        ),
        "long_tail@20": (
            long_tail_share((recommendations[u] for u in users), tail, 20) if tail is not None else 0.0
        ),
        "recall_curve": {
            str(k): float(np.mean([recall_at_k(recommendations[u], relevant[u], k) for u in users]))
            for k in RECALL_CURVE
        },
        "users": len(users),
    }
    return summary


def paired_ratio(
    ours: np.ndarray, theirs: np.ndarray, resamples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """mean(``ours``) / mean(``theirs``), two models' values for the same users, with the 95% interval of a
    paired bootstrap (``scipy.stats.bootstrap``: users drawn with replacement, both values of a user
    together, percentile interval): how far one test window's ratio can be trusted."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    if len(ours) != len(theirs):
        raise ValueError(f"paired values differ in length: {len(ours)} and {len(theirs)}")
    result: dict[str, Any] = {"ratio": None, "ci95": None, "users": len(ours)}
    if len(ours) < 2 or theirs.sum() <= 0:
        return result

    def ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        below = b.mean(axis=axis)
        return np.where(below > 0, a.mean(axis=axis) / np.where(below > 0, below, 1.0), np.inf)

    interval = stats.bootstrap(
        (ours, theirs),
        ratio,
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    ).confidence_interval
    result["ratio"] = float(ours.mean() / theirs.mean())
    result["ci95"] = [float(interval.low), float(interval.high)]
    return result


def interval_note(paired: dict[str, Any] | None) -> str:
    """``" (95% interval [lo, hi], paired bootstrap over N shoppers)"``, or nothing when not measured."""
    if not paired or not paired.get("ci95"):
        return ""
    low, high = paired["ci95"]
    return f" (95% interval {low:.3f}x to {high:.3f}x, paired bootstrap over {paired['users']:,} shoppers)"
