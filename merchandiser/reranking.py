"""Business rules applied after ranking: filters, de-duplication and a category cap.

Deterministic: ties in score are broken by item id, so the same request gives the same page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Scored:
    item_id: str
    score: float
    source: str
    category: str = "unknown"
    in_stock: bool = True


@dataclass(frozen=True)
class Rules:
    k: int
    exclude: frozenset[str] = frozenset()  # purchased, a retailer's exclusion list, seen items
    require_in_stock: bool = True
    category: str | None = None  # a category page shows only its category
    max_per_category: int | None = None  # diversity on mixed surfaces


def category_cap(k: int, share: float = 0.3) -> int:
    """At most ``share`` of a page from one category, but never fewer than two slots."""
    return max(2, int(k * share + 0.999))


def rerank(items: Sequence[Scored], rules: Rules) -> list[Scored]:
    ordered = sorted(items, key=lambda item: (-item.score, item.item_id))
    page: list[Scored] = []
    capped: list[Scored] = []  # held back by the category cap, used only if the page is short
    seen: set[str] = set()
    per_category: Counter[str] = Counter()
    for item in ordered:
        if item.item_id in seen or item.item_id in rules.exclude:
            continue
        if rules.require_in_stock and not item.in_stock:
            continue
        if rules.category is not None and item.category != rules.category:
            continue
        seen.add(item.item_id)
        if rules.max_per_category is not None and per_category[item.category] >= rules.max_per_category:
            capped.append(item)
            continue
        per_category[item.category] += 1
        page.append(item)
        if len(page) == rules.k:
            return page
    return page + capped[: rules.k - len(page)]
