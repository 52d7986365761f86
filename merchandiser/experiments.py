"""Deterministic A/B assignment: the same shopper always lands in the same variant of an experiment."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

DEFAULT_EXPERIMENT = "ranker"
DEFAULT_VARIANTS: tuple[tuple[str, float], ...] = (("production", 1.0),)


def assign(
    user_id: str,
    experiment: str = DEFAULT_EXPERIMENT,
    variants: Sequence[tuple[str, float]] = DEFAULT_VARIANTS,
) -> str:
    """Hashes (experiment, user) to a point in [0, 1) and walks the variants' cumulative shares."""
    total = sum(share for _, share in variants)
    if not variants or total <= 0:
        raise ValueError("an experiment needs at least one variant with a positive share")
    digest = hashlib.sha256(f"{experiment}:{user_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * total
    cumulative = 0.0
    for name, share in variants:
        cumulative += share
        if point < cumulative:
            return name
    return variants[-1][0]
