"""Business rules applied after ranking: filters, de-duplication, diversity, promotions and exploration.

The order of operations:

1. filters and de-duplication: excluded item ids (purchased, seen, a retailer's list), excluded
   categories, out of stock, other categories on a category page; a repeated item id keeps its best
   score;
2. promotions, exploration (new items, spread over the page) and discovery (the shopper's own
   long-tail candidates, at the end of the page) take their slots first, from items that pass the
   same filters;
3. the organic rest of the page is chosen greedily, by maximal marginal relevance (MMR) when
   ``mmr_lambda`` is set, else by score, holding back items of a category already at its cap;
4. the page is assembled slot by slot: promoted, exploration and discovery slots, organic items in order.

Deterministic: ties in score are broken by each item's ``tie`` (the model's ``tie_rank``: recent
popularity, then recency), by item id only between items without one, exploration draws from a seed the
caller derives from the request, and no step depends on the order the items arrived in.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

PROMOTED = "promoted"  # the reason of a promoted slot
NEW_ARRIVAL = "new arrival"  # the reason of an exploration slot
DISCOVERY = "discovery"  # the reason of a discovery slot

# Returns one row per item id (any scale: rerank normalizes them), e.g. the model's item factors.
ItemVectors = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True, slots=True)
class Scored:
    item_id: str
    score: float
    source: str
    category: str = "unknown"
    in_stock: bool = True
    tie: int = 0  # settles equal scores, lower first (``ItemModel.tie_rank``)


@dataclass(frozen=True)
class Rules:
    k: int
    exclude: frozenset[str] = frozenset()  # purchased, a retailer's exclusion list, seen items
    exclude_categories: frozenset[str] = frozenset()  # a retailer's excluded categories
    require_in_stock: bool = True
    category: str | None = None  # a category page shows only its category
    max_per_category: int | None = None  # diversity on mixed surfaces
    mmr_lambda: float | None = None  # 1 = pure relevance, 0 = pure novelty; None = no MMR
    vectors: ItemVectors | None = None  # needed by MMR
    promoted: tuple[Scored, ...] = ()  # the promoted set, in the retailer's priority order
    promoted_share: float = 0.0
    explore: tuple[Scored, ...] = ()  # new items without interaction signal
    explore_slots: int = 0
    explore_by_score: bool = (
        False  # the best-scored explore items first (Thompson draws), not the seed's order
    )
    discover: tuple[Scored, ...] = ()  # the shopper's long-tail candidates (see ``Recommender``)
    discover_slots: int = 0  # the last slots of the page
    seed: str = ""  # picks the exploration and discovery items: the same seed gives the same page

    def __post_init__(self) -> None:
        if self.k < 0:
            raise ValueError(f"k must not be negative, got {self.k}")
        if self.mmr_lambda is not None:
            if not 0.0 <= self.mmr_lambda <= 1.0:
                raise ValueError(f"mmr_lambda must be within [0, 1], got {self.mmr_lambda}")
            if self.vectors is None:
                raise ValueError("MMR needs item vectors to measure similarity")
        if not 0.0 <= self.promoted_share <= 1.0:
            raise ValueError(f"promoted_share must be within [0, 1], got {self.promoted_share}")
        if self.explore_slots < 0 or self.discover_slots < 0:
            raise ValueError("explore_slots and discover_slots must not be negative")


def category_cap(k: int, share: float = 0.3) -> int:
    """At most ``share`` of a page from one category, but never fewer than two slots."""
    return max(2, int(k * share + 0.999))


def promoted_slots(k: int, share: float) -> list[int]:
    """0-based promoted slots: every ``floor(1/share)``-th slot, ``floor(k * share)`` of them.

    Fixed positions rather than score-dependent ones: the storefront can label them, their click rates
    compare across pages, and the top slot stays organic unless promotions take every slot.
    """
    count = math.floor(k * share + 1e-9)  # the share is a ceiling: 0.25 of 10 slots is 2
    if count == 0:
        return []
    step = math.floor(1 / share + 1e-9)
    return [step * n - 1 for n in range(1, count + 1)]


def exploration_slots(k: int, count: int, taken: Sequence[int] = ()) -> list[int]:
    """0-based positions of ``count`` exploration slots spread evenly over the page, not on ``taken``.

    The middle of each of ``count`` equal stretches: a new item is seen (a slot at the bottom teaches
    nothing) without taking the top slot. A slot already taken moves to the next free one.
    """
    count = min(count, k - len(taken))
    occupied = set(taken)
    slots: list[int] = []
    for n in range(count):
        position = math.floor((n + 0.5) * k / count)
        while position in occupied:
            position = (position + 1) % k
        occupied.add(position)
        slots.append(position)
    return sorted(slots)


def discovery_slots(k: int, count: int, taken: Sequence[int] = ()) -> list[int]:
    """0-based positions of ``count`` discovery slots: the last free slots of the page.

    At the end, not spread: the head of the page stays the ranker's best guesses, and the shopper who
    scrolls that far is the one looking for something else.
    """
    free = [position for position in range(k - 1, -1, -1) if position not in set(taken)]
    return sorted(free[:count])


def exploration_order(items: Sequence[Scored], seed: str) -> list[Scored]:
    """The pool in a pseudo-random order fixed by ``seed``: each request's seed shows other new items.

    sha256, not ``hash()``: Python salts string hashes per process, and every Lambda container must
    agree.
    """

    def draw(item: Scored) -> tuple[str, str]:
        return hashlib.sha256(f"{seed}\x00{item.item_id}".encode()).hexdigest(), item.item_id

    return sorted(items, key=draw)


def passes(item: Scored, rules: Rules) -> bool:
    if item.item_id in rules.exclude or item.category in rules.exclude_categories:
        return False
    if rules.require_in_stock and not item.in_stock:
        return False
    return rules.category is None or item.category == rules.category


def best_first(items: Sequence[Scored], rules: Rules) -> list[Scored]:
    """The items that pass the filters, each id once with its best score, best first (ties by ``tie``)."""
    ordered = sorted(items, key=lambda item: (-item.score, item.tie, item.item_id))
    kept: dict[str, Scored] = {}
    for item in ordered:
        if item.item_id not in kept and passes(item, rules):
            kept[item.item_id] = item
    return list(kept.values())


def relevance(scores: np.ndarray) -> np.ndarray:
    """Scores min-max scaled to [0, 1], comparable with cosine similarity whatever the scorer's scale.

    A LightGBM ranker's scores are unbounded and an ALS dot product has the factors' scale; without
    scaling, one ``mmr_lambda`` would mean a different trade-off for every model. Equal scores are all 1.
    """
    low, high = float(scores.min()), float(scores.max())
    if high - low <= 0.0:
        return np.ones_like(scores)
    return (scores - low) / (high - low)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 so dot products are cosines; a zero row stays zero (similar to nothing)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def organic(pool: Sequence[Scored], n: int, rules: Rules) -> list[Scored]:
    """Greedy choice of ``n`` items from ``pool`` (best first): MMR if set, then the category cap.

    MMR picks the item maximizing ``λ·relevance - (1-λ)·max cosine to the items already chosen``.
    Items of a category at its cap are held back and fill the page only when it would stay short.
    """
    if n <= 0 or not pool:
        return []
    if rules.mmr_lambda is None and rules.max_per_category is None:
        return list(pool[:n])
    lam = 1.0 if rules.mmr_lambda is None else rules.mmr_lambda
    rel = relevance(np.array([item.score for item in pool], dtype=np.float64))
    vectors = None
    if rules.mmr_lambda is not None and rules.vectors is not None:
        vectors = unit_rows(rules.vectors([item.item_id for item in pool]))
        if vectors.shape[0] != len(pool):
            raise ValueError(f"item vectors returned {vectors.shape[0]} rows for {len(pool)} items")
    # -1 is the lowest cosine: before the first pick the penalty is the same for every item
    max_similarity = np.full(len(pool), -1.0)
    available = np.ones(len(pool), dtype=bool)
    per_category: Counter[str] = Counter()
    chosen: list[int] = []
    held_back: list[int] = []
    while len(chosen) < n and available.any():
        value = lam * rel - (1.0 - lam) * max_similarity if vectors is not None else rel
        # argmax returns the first maximum: among equal values the best-scored item (then by tie) wins
        pick = int(np.argmax(np.where(available, value, -np.inf)))
        available[pick] = False
        category = pool[pick].category
        if rules.max_per_category is not None and per_category[category] >= rules.max_per_category:
            held_back.append(pick)
            continue
        per_category[category] += 1
        chosen.append(pick)
        if vectors is not None:
            np.maximum(max_similarity, vectors @ vectors[pick], out=max_similarity)
    backfill = sorted(held_back)[: n - len(chosen)]  # the best held-back items, in score order
    return [pool[index] for index in chosen + backfill]


def rerank(items: Sequence[Scored], rules: Rules) -> list[Scored]:
    eligible = best_first(items, rules)
    by_id = {item.item_id: item for item in eligible}

    promoted: list[Scored] = []
    for item in rules.promoted:
        if item.item_id in by_id or passes(item, rules):
            scored = by_id.get(item.item_id, item)  # a promoted candidate keeps its score
            if all(p.item_id != item.item_id for p in promoted):
                promoted.append(replace(scored, source=PROMOTED))
    promo_slots = promoted_slots(rules.k, rules.promoted_share)[: len(promoted)]
    promoted = promoted[: len(promo_slots)]

    taken = {item.item_id for item in promoted}
    pool = [item for item in best_first(rules.explore, rules) if item.item_id not in taken]
    ordered = pool if rules.explore_by_score else exploration_order(pool, rules.seed)  # pool: best first
    explore_slots = exploration_slots(rules.k, min(rules.explore_slots, len(pool)), promo_slots)
    # only the items that get a slot are relabelled (a pool holds hundreds, a page a few)
    explored = [replace(item, source=NEW_ARRIVAL) for item in ordered[: len(explore_slots)]]

    taken |= {item.item_id for item in explored}
    pool = [item for item in best_first(rules.discover, rules) if item.item_id not in taken]
    discover_slots = discovery_slots(
        rules.k, min(rules.discover_slots, len(pool)), promo_slots + explore_slots
    )
    discovered = [
        replace(item, source=DISCOVERY) for item in exploration_order(pool, rules.seed)[: len(discover_slots)]
    ]

    taken |= {item.item_id for item in discovered}
    rest = [item for item in eligible if item.item_id not in taken]
    chosen = organic(rest, rules.k - len(promoted) - len(explored) - len(discovered), rules)
    placed = {
        **dict(zip(explore_slots, explored, strict=True)),
        **dict(zip(discover_slots, discovered, strict=True)),
    }
    return assemble(rules.k, chosen, promoted, promo_slots, list(placed.values()), list(placed))


def assemble(
    k: int,
    chosen: list[Scored],
    promoted: list[Scored],
    promo_slots: list[int],
    explored: list[Scored],
    explore_slots: list[int],
) -> list[Scored]:
    """Fills slots 0..k-1; when the organic items run out the page closes up instead of leaving holes."""
    promo_at = dict(zip(promo_slots, promoted, strict=True))
    explore_at = dict(zip(explore_slots, explored, strict=True))
    organic_items = iter(chosen)
    page: list[Scored] = []
    for slot in range(k):
        item = promo_at.get(slot) or explore_at.get(slot) or next(organic_items, None)
        if item is not None:
            page.append(item)
    return page
