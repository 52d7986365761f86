"""Top-k accuracy metrics with binary relevance (an item is relevant if the user interacted with it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np


def ndcg_at_k(recommended: Sequence[int], relevant: set[int], k: int) -> float:
    """DCG of the top k (gain 1 / log2(position + 1), positions from 1) over the best possible DCG."""
    if not relevant:
        return 0.0
    gains = [1.0 / np.log2(position + 2) for position, item in enumerate(recommended[:k]) if item in relevant]
    ideal = sum(1.0 / np.log2(position + 2) for position in range(min(len(relevant), k)))
    return float(sum(gains) / ideal)


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


def summarize(
    recommendations: Mapping[str, Sequence[int]], relevant: Mapping[str, set[int]], n_items: int
) -> dict[str, Any]:
    """NDCG@10, Recall@20, hit@10 averaged over the users in ``relevant``; coverage@20 over the catalog."""
    users = [user for user in relevant if relevant[user]]
    if not users:
        return {"ndcg@10": 0.0, "recall@20": 0.0, "hit@10": 0.0, "coverage@20": 0.0, "users": 0}
    return {
        "ndcg@10": float(np.mean([ndcg_at_k(recommendations[u], relevant[u], 10) for u in users])),
        "recall@20": float(np.mean([recall_at_k(recommendations[u], relevant[u], 20) for u in users])),
        "hit@10": float(np.mean([hit_at_k(recommendations[u], relevant[u], 10) for u in users])),
        "coverage@20": coverage_at_k((recommendations[u] for u in users), n_items, 20),
        "users": len(users),
    }
