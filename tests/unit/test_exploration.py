"""Exploration's pure parts: posterior verdicts, Thompson draws seeded per request, the exploration slots'
choice, the impression's exploration slots, and the popularity correction's weights and tail metric."""

from __future__ import annotations

import numpy as np
import pytest

from merchandiser.catalog import Exploration, ExplorationPolicy, exploration_of, with_exploration
from merchandiser.reranking import (
    NEW_ARRIVAL,
    new_item_rows,
    page_rules,
    rerank,
    thompson_draws,
    thompson_head,
)
from merchandiser.retrieval import Candidates
from merchandiser.settings import RetailerRules
from merchandiser.store import ExploredPage, Posterior, user_hash
from merchandiser.stream.exploration import explored_page
from tests.unit.test_source_contract import tiny_shop
from training.metrics import long_tail_items, long_tail_share
from training.popularity_bias import POPULARITY_COLUMN, positive_weights

POLICY = ExplorationPolicy(graduate_ctr=0.05, graduate_impressions=50, fade_impressions=500)
NOW = 1_000_000.0


def test_verdicts_follow_the_policy() -> None:
    catalog = tiny_shop().catalog
    # Given an item too little shown, a good one, a hopeless one, one shown to the limit, one unknown
    posteriors = {
        "i1": Posterior(10, 0),
        "i2": Posterior(60, 9),
        "i3": Posterior(300, 0),
        "i4": Posterior(500, 20),
        "nope": Posterior(999, 999),
    }
    exploration = exploration_of(catalog, posteriors, POLICY)
    # Then: i2 graduates; i3 (no hope) and i4 (budget spent) fade; i1 keeps exploring; unknown ids skipped
    assert exploration.graduated_rows.tolist() == [2]
    assert np.flatnonzero(exploration.faded).tolist() == [3, 4]
    assert exploration.impressions.sum() == 10 + 60 + 300 + 500


def test_clicks_never_outnumber_impressions() -> None:
    exploration = exploration_of(tiny_shop().catalog, {"i1": Posterior(3, 7)}, POLICY)
    assert exploration.clicks[1] == 3 and exploration.beta[1] == 1.0


def test_a_policy_that_fades_before_it_graduates_is_refused() -> None:
    with pytest.raises(ValueError):
        ExplorationPolicy(graduate_ctr=0.05, graduate_impressions=100, fade_impressions=10)


def test_thompson_draws_are_reproducible_from_the_seed_and_follow_the_posteriors() -> None:
    model = with_exploration(
        tiny_shop(),
        exploration_of(tiny_shop().catalog, {"i8": Posterior(40, 20), "i7": Posterior(40, 0)}, POLICY),
    )
    rows = np.array([7, 8, 9])
    # Given the same seed twice / Then the same draws; another seed, other draws
    np.testing.assert_array_equal(thompson_draws(model, rows, "rec-1"), thompson_draws(model, rows, "rec-1"))
    assert not np.array_equal(thompson_draws(model, rows, "rec-1"), thompson_draws(model, rows, "rec-2"))
    # And over many requests the clicked item (8) draws highest far more often than the unclicked one (7)
    wins = np.bincount(
        [int(np.argmax(thompson_draws(model, rows, f"rec-{n}"))) for n in range(300)], minlength=3
    )
    assert wins[1] > 100 > wins[0]


def test_the_thompson_head_follows_the_law_of_drawing_every_row() -> None:
    # Given a pool of four never-shown items and one with many clicks (Beta(41, 1): a draw near 0.98)
    model = with_exploration(
        tiny_shop(), exploration_of(tiny_shop().catalog, {"i8": Posterior(40, 40)}, POLICY)
    )
    rows = np.array([5, 6, 7, 8, 9])
    seeds = [f"rec-{n}" for n in range(3000)]
    # When the head of 2 is drawn directly, and when every row draws and the best 2 are kept
    heads = [thompson_head(model, rows, seed, 2) for seed in seeds]
    full = [rows[np.argsort(-thompson_draws(model, rows, seed))[:2]] for seed in seeds]
    # Then the clicked item leads as often (E[B^4] = 41/45 = 0.911 of pages), each unseen item is in the
    # head as often, and the head's draws are its rows' best, descending, within (0, 1)
    lead = np.mean([head[0][0] == 8 for head in heads])
    assert lead == pytest.approx(np.mean([best[0] == 8 for best in full]), abs=0.03)
    assert lead == pytest.approx(41 / 45, abs=0.03)
    for row in (5, 6, 7, 9):
        in_head = np.mean([row in head[0] for head in heads])
        assert in_head == pytest.approx(np.mean([row in best for best in full]), abs=0.03)
    assert all(len(set(head[0].tolist())) == 2 and 1 > head[1][0] >= head[1][1] > 0 for head in heads)
    # And the same seed gives the same head
    np.testing.assert_array_equal(thompson_head(model, rows, "rec-1", 2)[0], heads[1][0])


def test_the_thompson_head_of_a_huge_pool_costs_its_size_not_the_pools() -> None:
    model = new_shop()
    model.exploration = Exploration.empty(300_000)  # posteriors of a 300,000-item catalogue, none shown
    pool = np.arange(300_000, dtype=np.int64)
    rows, draws = thompson_head(model, pool, "rec-1", 3)
    # the largest of 300,000 uniforms falls below 1 - 1e-4 with probability (1 - 1e-4) ** 300000 ~ e^-30
    assert len(set(rows.tolist())) == 3 and draws[0] > 1 - 1e-4 and list(draws) == sorted(draws, reverse=True)


def new_shop():  # type: ignore[no-untyped-def]
    """The tiny shop with items 7, 8 and 9 new (created just now, no popularity), nothing explored yet."""
    model = tiny_shop()
    model.catalog.created_at[[7, 8, 9]] = NOW
    model.popularity[[7, 8, 9]] = 0.0
    return with_exploration(model, Exploration.empty(len(model.catalog)))


def explored_ids(model, retailer: RetailerRules, seed: str) -> list[str]:  # type: ignore[no-untyped-def]
    from merchandiser.reranking import ranked_items

    rows = np.arange(7)
    scores = 7.0 - rows
    candidates = Candidates(rows=rows, scores={"ann": scores}, sources=["ann"] * 7)
    rules = page_rules(
        model, retailer, 10, candidates, scores, frozenset(), "user:day", NOW, explore_seed=seed
    )
    served = rerank(ranked_items(model, candidates, scores, 10), rules)
    return [item.item_id for item in served if item.source == NEW_ARRIVAL]


def test_the_exploration_slot_goes_to_the_item_shoppers_click() -> None:
    # Given new items 7 (shown 200 times, 4 clicks), 8 (40 times, 10 clicks) and 9 (40 times, 1 click)
    posteriors = {"i7": Posterior(200, 4), "i8": Posterior(40, 10), "i9": Posterior(40, 1)}
    model = with_exploration(new_shop(), exploration_of(new_shop().catalog, posteriors, POLICY))
    retailer = RetailerRules(explore_share=0.1, discovery_share=0.0)
    # When 100 pages are served with Thompson sampling
    shown = [explored_ids(model, retailer, f"rec-{n}") for n in range(100)]
    # Then the slot is one item a page, nearly always 8 (not graduated yet: 40 impressions of the 50 needed)
    counts = {item: sum(ids == [item] for ids in shown) for item in ("i7", "i8", "i9")}
    assert sum(counts.values()) == 100
    assert counts["i8"] > 90


def test_uniform_keeps_the_daily_seeded_order_and_thompson_the_page_seed() -> None:
    model = new_shop()
    uniform = RetailerRules(explore_policy="uniform", discovery_share=0.0)
    thompson = RetailerRules(discovery_share=0.0)
    # Given the same shopper and day / Then uniform shows the same item whatever the page's seed
    assert len({tuple(explored_ids(model, uniform, f"rec-{n}")) for n in range(20)}) == 1
    # And Thompson sampling varies with it, reproducibly
    assert len({tuple(explored_ids(model, thompson, f"rec-{n}")) for n in range(20)}) > 1
    assert explored_ids(model, thompson, "rec-3") == explored_ids(model, thompson, "rec-3")


def test_graduated_and_faded_items_leave_the_pool() -> None:
    posteriors = {"i7": Posterior(600, 1), "i8": Posterior(60, 12)}
    model = with_exploration(new_shop(), exploration_of(new_shop().catalog, posteriors, POLICY))
    assert new_item_rows(new_shop(), NOW, 30.0).tolist() == [7, 8, 9]
    assert new_item_rows(model, NOW, 30.0).tolist() == [9]


def test_the_impression_names_its_exploration_slots() -> None:
    document = {
        "recommendation_id": "rec-1",
        "user_id": "u1",
        "timestamp": "2026-11-22T10:00:00.000Z",
        "items": [{"item_id": "a", "source": "ann"}, {"item_id": "b", "source": NEW_ARRIVAL}],
    }
    page = explored_page(document)
    assert page is not None and page.item_ids == frozenset({"b"}) and page.shopper == user_hash("u1")
    assert explored_page({**document, "items": document["items"][:1]}) is None
    assert explored_page({**document, "timestamp": "yesterday"}) is None
    assert explored_page({**document, "recommendation_id": None}) is None


def test_a_click_credits_only_within_the_window_by_the_pages_shopper() -> None:
    page = ExploredPage("rec-1", user_hash("u1"), frozenset({"b"}), shown_at=NOW, clicked=frozenset({"c"}))
    assert page.credits("b", "u1", NOW + 60)
    assert not page.credits("b", "u2", NOW + 60)
    assert not page.credits("a", "u1", NOW + 60)
    assert not page.credits("b", "u1", NOW + 2 * 86_400)
    assert not ExploredPage("rec-1", user_hash("u1"), frozenset({"c"}), NOW, frozenset({"c"})).credits(
        "c", "u1", NOW
    )


def test_the_popularity_correction_weighs_long_tail_positives_up() -> None:
    features = np.zeros((4, POPULARITY_COLUMN + 1), dtype=np.float32)
    features[:, POPULARITY_COLUMN] = np.log1p([1000.0, 1.0, 1000.0, 1.0])
    labels = np.array([1.0, 1.0, 0.0, 0.0])
    # Given no correction / Then LightGBM's default weights
    assert positive_weights(features, labels, 0.0) is None
    weights = positive_weights(features, labels, 0.5)
    # Then the rare item's positive outweighs the best seller's, the positives keep their mean, negatives 1
    assert weights is not None and weights[1] > weights[0]
    assert weights[:2].mean() == pytest.approx(1.0) and weights[2:].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError):
        positive_weights(features, labels, -1.0)


def test_long_tail_share_counts_the_slots_outside_the_head() -> None:
    popularity = np.array([50.0, 40.0, 3.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    tail = long_tail_items(popularity, head_share=0.2)  # the head: items 0 and 1
    assert tail.tolist() == [False, False] + [True] * 8
    assert long_tail_share([[0, 2, 3], [1, 5]], tail, k=2) == pytest.approx(2 / 4)


def test_the_als_correction_weighs_pairs_of_widely_bought_items_down() -> None:
    from training.popularity_bias import als_pair_weights

    # Given item 0 touched by three shoppers and item 1 by one
    rows = np.array([0, 0, 0, 1])
    assert als_pair_weights(rows, 2, 0.0) is None
    factors = als_pair_weights(rows, 2, 1.0)
    # Then item 1's pair weighs more than each of item 0's, and the mean weight is kept
    assert factors is not None and factors[3] > factors[0] and factors.mean() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        als_pair_weights(rows, 2, -0.5)


def test_the_pool_is_filtered_as_the_page_rules_filter_items() -> None:
    from merchandiser.reranking.page import explorable
    from merchandiser.reranking.rules import Rules, passes

    model = new_shop()  # rows 7, 8, 9 new: hats (rows 5-9)
    model.catalog.in_stock[8] = False
    pool = np.array([1, 7, 8, 9], dtype=np.int64)
    cases = [
        (RetailerRules(), frozenset(), None),
        (RetailerRules(exclude_item_ids=["i9"]), frozenset({"i1"}), None),
        (RetailerRules(exclude_categories=["shoes"]), frozenset(), None),
        (RetailerRules(), frozenset(), "hats"),
    ]
    for options, exclude, category in cases:
        rules = Rules(
            k=3,
            exclude=exclude | frozenset(options.exclude_item_ids),
            exclude_categories=frozenset(options.exclude_categories),
            category=category,
        )
        expected = [row for row in pool.tolist() if passes(scored_row(model, row), rules)]
        assert explorable(model, pool, options, exclude, category).tolist() == expected
    assert explorable(model, pool, RetailerRules(), frozenset(), None).tolist() == [1, 7, 9]


def scored_row(model, row: int):  # type: ignore[no-untyped-def]
    from merchandiser.reranking.page import scored

    return scored(model, np.array([row]), np.zeros(1), ["rule"])[0]
