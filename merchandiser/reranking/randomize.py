"""The page's randomization that makes position bias measurable: one random adjacent swap on a small share
of pages (the swap intervention of Joachims, Swaminathan and Schnabel, "Unbiased Learning-to-Rank with
Biased Feedback", WSDM 2017, section 5). An item the ranker put at k is shown at k + 1 on a random share of
pages, so the training job sees the same kind of item at two positions (``training.position_bias``).

The draw comes from the recommendation id (sha256), not from a clock or a process-wide generator: the same
page id always gets the same swap, so a page can be replayed and the logged swap checked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

_SCALE = float(2**64)


def adjacent_swap(recommendation_id: str, n_items: int, share: float, depth: int) -> int | None:
    """The position k whose item trades places with k + 1 on this page, or None (most pages)."""
    last = min(depth, n_items) - 1  # k + 1 must be on the page and within the first ``depth`` positions
    if share <= 0.0 or last < 1:
        return None
    digest = hashlib.sha256(recommendation_id.encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / _SCALE
    if draw >= share:
        return None
    return int.from_bytes(digest[8:16], "big") % last


def swapped[T](values: Sequence[T], at: int | None) -> list[T]:
    """``values`` with ``at`` and ``at + 1`` exchanged (a copy; unchanged when ``at`` is None)."""
    result = list(values)
    if at is not None:
        result[at], result[at + 1] = result[at + 1], result[at]
    return result
