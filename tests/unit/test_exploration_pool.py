"""The exploration pool's per-page work, kept from one page to the next (``NewItemPool``, ``memo``), gives
exactly what computing it afresh on every page gives: the same rows, the same Thompson heads and draws."""

from __future__ import annotations

import numpy as np
import pytest

from merchandiser.catalog import (
    SECONDS_PER_DAY,
    Catalog,
    ExplorationPolicy,
    ItemModel,
    exploration_of,
    with_exploration,
)
from merchandiser.reranking import new_item_rows, thompson_head
from merchandiser.reranking.exploration import request_rng
from merchandiser.reranking.page import explorable
from merchandiser.retrieval.ann import build_index
from merchandiser.settings import RetailerRules
from merchandiser.store import Posterior

ITEMS = 3_000
NOW = 50 * SECONDS_PER_DAY
POLICY = ExplorationPolicy(graduate_ctr=0.05, graduate_impressions=50, fade_impressions=500)


def shop(seed: int) -> ItemModel:
    """Items created over 60 days (some at an unknown time), a third never sold, some out of stock, and
    posteriors for some of the new ones (shown, graduated, faded)."""
    rng = np.random.default_rng(seed)
    created = rng.uniform(0, NOW, ITEMS)
    created[rng.random(ITEMS) < 0.05] = np.nan
    catalog = Catalog(
        item_ids=np.array([f"i{row}" for row in range(ITEMS)]),
        titles=np.array([f"Item {row}" for row in range(ITEMS)]),
        categories=rng.choice(np.array(["shoes", "hats", "bags"]), ITEMS),
        brands=np.array(["b"] * ITEMS),
        prices=np.full(ITEMS, 10.0),
        created_at=created,
        in_stock=rng.random(ITEMS) > 0.1,
    )
    factors = rng.normal(size=(ITEMS, 4)).astype(np.float32)
    popularity = np.where(rng.random(ITEMS) < 0.35, 0.0, rng.uniform(1, 9, ITEMS)).astype(np.float32)
    model = ItemModel({"model_version": "pool"}, catalog, factors, popularity, build_index(factors, seed=1))
    new = np.flatnonzero(popularity == 0)
    shown = rng.choice(new, len(new) // 4, replace=False)
    posteriors = {}
    for row in shown:
        impressions = int(rng.integers(1, 700))
        posteriors[f"i{row}"] = Posterior(impressions, int(rng.integers(0, impressions // 5 + 1)))
    return with_exploration(model, exploration_of(catalog, posteriors, POLICY))


def pool_afresh(model: ItemModel, now: float, days: float) -> np.ndarray:
    """What the pool is by definition, scanning the whole catalogue."""
    created = np.asarray(model.catalog.created_at, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        young = created >= now - days * SECONDS_PER_DAY
    return np.flatnonzero(young & (model.popularity == 0) & ~model.exploration.judged).astype(np.int64)


def explorable_afresh(model: ItemModel, rows: np.ndarray, options: RetailerRules, exclude, category):  # type: ignore[no-untyped-def]
    blocked = model.out_of_stock_mask
    keep = np.ones(len(rows), dtype=bool) if blocked is None else ~blocked[rows]
    categories = model.catalog.categories[rows]
    if category is not None:
        keep &= categories == category
    if options.exclude_categories:
        keep &= ~np.isin(categories, list(options.exclude_categories))
    excluded = model.rows(list(exclude | frozenset(options.exclude_item_ids)))
    keep &= ~np.isin(rows, excluded)
    return rows[keep]


def head_afresh(model: ItemModel, rows: np.ndarray, seed: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The Thompson head with every row's posterior looked up on this page."""
    alpha, beta = model.exploration.alpha[rows], model.exploration.beta[rows]
    rng = request_rng(seed)
    fresh = (alpha == 1.0) & (beta == 1.0)
    shown, shown_draws, unseen = rows[~fresh], rng.beta(alpha[~fresh], beta[~fresh]), rows[fresh]
    taken = min(n, len(unseen))
    spacings = np.log(rng.random(taken)) / np.arange(len(unseen), len(unseen) - taken, -1)
    unseen_rows = unseen[rng.choice(len(unseen), taken, replace=False)] if taken else unseen[:0]
    head_rows = np.concatenate([shown, unseen_rows])
    head_draws = np.concatenate([shown_draws, np.exp(np.cumsum(spacings))])
    best = np.argsort(-head_draws, kind="stable")[:n]
    return head_rows[best], head_draws[best]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_kept_pool_is_the_pool_at_every_moment(seed: int) -> None:
    model = shop(seed)
    rng = np.random.default_rng(seed)
    # Given pages at moments that mostly move forward, sometimes back, under two age limits
    moments = np.cumsum(rng.exponential(SECONDS_PER_DAY / 3, 60)) + 30 * SECONDS_PER_DAY
    moments[rng.random(60) < 0.2] -= 5 * SECONDS_PER_DAY
    for now in moments:
        for days in (7.0, 30.0):
            expected = pool_afresh(model, now, days)
            np.testing.assert_array_equal(new_item_rows(model, float(now), days), expected)
    # And after a posteriors refresh (a shallow copy with new exploration), the new posteriors' pool
    refreshed = with_exploration(model, exploration_of(model.catalog, {}, POLICY))
    np.testing.assert_array_equal(new_item_rows(refreshed, NOW, 30.0), pool_afresh(refreshed, NOW, 30.0))
    np.testing.assert_array_equal(new_item_rows(model, NOW, 30.0), pool_afresh(model, NOW, 30.0))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_filtered_pool_and_its_thompson_head_match_a_fresh_computation(seed: int) -> None:
    model = shop(seed)
    rng = np.random.default_rng(seed)
    pool = new_item_rows(model, NOW, 30.0)
    cases = [
        (RetailerRules(), frozenset[str](), None),
        (RetailerRules(exclude_categories=["bags"]), frozenset(), None),
        (RetailerRules(exclude_item_ids=[f"i{pool[3]}"]), frozenset({"nope"}), "hats"),
    ]
    for page in range(40):
        # a shopper's purchases and session: sometimes new items of the pool, sometimes others
        exclude = frozenset(f"i{row}" for row in rng.choice(ITEMS, 5)) | frozenset(
            f"i{row}" for row in rng.choice(pool, int(rng.integers(0, 3)))
        )
        for options, extra, category in cases:
            expected = explorable_afresh(model, pool, options, exclude | extra, category)
            rows = explorable(model, pool, options, exclude | extra, category)
            np.testing.assert_array_equal(rows, expected)
            head, draws = thompson_head(model, rows, f"rec-{page}", 4)
            expected_head, expected_draws = head_afresh(model, expected, f"rec-{page}", 4)
            np.testing.assert_array_equal(head, expected_head)
            np.testing.assert_array_equal(draws, expected_draws)


def test_a_page_without_filters_reuses_the_pool_and_the_cached_arrays_cannot_be_changed() -> None:
    model = shop(4)
    pool = new_item_rows(model, NOW, 30.0)
    # Given two pages within the same second / Then the same array, and the same filtered array
    assert new_item_rows(model, NOW + 1.0, 30.0) is pool
    assert explorable(model, pool, RetailerRules(), frozenset(), None) is explorable(
        model, pool, RetailerRules(), frozenset(), None
    )
    with pytest.raises(ValueError):
        pool[0] = 1
    with pytest.raises(ValueError, match="ascending"):
        explorable(model, pool[::-1].copy(), RetailerRules(), frozenset(), None)
