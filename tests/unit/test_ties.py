"""No arbitrary order: equal scores are settled by recent popularity, then recency, at every stage (a
source's proposals, the merged candidates, the ranker's order, the page), never by row or item id."""

from __future__ import annotations

import numpy as np

from merchandiser.catalog import Catalog, ItemModel, Neighbours, Signals
from merchandiser.ranking import score
from merchandiser.reranking import Rules, Scored, page_rules, ranked_items, ranked_order, rerank
from merchandiser.retrieval import SOURCES, Ask, best_of, build_index, candidates, top_scores
from merchandiser.settings import RetailerRules
from merchandiser.shopper import UserState

N_ITEMS = 6
# recent popularity ties items 1 and 2 (3.0), and items 3 and 5 (0.0); the latest interaction settles both
RECENT = np.array([1.0, 3.0, 3.0, 0.0, 2.0, 0.0], dtype=np.float32)
LAST_SEEN = np.array([50.0, 100.0, 200.0, 10.0, 60.0, 20.0])
EXPECTED = [2, 1, 4, 0, 5, 3]  # recent popularity, then the latest interaction


def tied_shop() -> ItemModel:
    """Six items that every other score ties: same popularity, trending, price, age and category."""
    catalog = Catalog(
        item_ids=np.array([f"i{row}" for row in range(N_ITEMS)]),
        titles=np.array([f"Item {row}" for row in range(N_ITEMS)]),
        categories=np.array(["hats"] * N_ITEMS),
        brands=np.array(["b"] * N_ITEMS),
        prices=np.full(N_ITEMS, 10.0),
        created_at=np.zeros(N_ITEMS),
        in_stock=np.ones(N_ITEMS, bool),
    )
    factors = np.ones((N_ITEMS, 2), dtype=np.float32)
    signals = Signals(
        trending=np.full(N_ITEMS, 2.0, dtype=np.float32),
        also_viewed=Neighbours.empty(N_ITEMS),
        bought_together=Neighbours.empty(N_ITEMS),
        placed=np.zeros(N_ITEMS, bool),
        recent_popularity=RECENT,
        last_seen=LAST_SEEN,
    )
    manifest = {"model_version": "ties", "als": {"regularization": 0.05, "alpha": 1.0}}
    popularity = np.full(N_ITEMS, 5.0, dtype=np.float32)
    return ItemModel(manifest, catalog, factors, popularity, build_index(factors, seed=1), signals)


def newcomer() -> UserState:
    return UserState(vector=None, history={}, recent=[], purchased=frozenset())


def test_the_tie_order_is_recent_popularity_then_the_latest_interaction() -> None:
    # Given six items whose other signals all tie / When the model orders them for ties
    ranks = tied_shop().tie_rank
    # Then the more recently popular item comes first, the latest touched among equals
    assert np.argsort(ranks).tolist() == EXPECTED


def test_a_source_proposing_equal_scores_follows_the_tie_order_even_at_its_cut() -> None:
    items = tied_shop()
    trending = next(source for source in SOURCES if source.name == "trending")
    # Given every item trending equally / When the trending source proposes three of them
    proposal = trending.propose(items, newcomer(), Ask.of(items, 3))
    # Then they are the three first in the tie order, in that order (not the three lowest rows)
    assert proposal is not None and proposal.rows.tolist() == EXPECTED[:3]
    # And the dense path (a category page) and a bare score vector agree
    in_category = trending.propose(items, newcomer(), Ask.of(items, 3, category="hats"))
    assert in_category is not None and in_category.rows.tolist() == EXPECTED[:3]
    found = top_scores(np.ones(N_ITEMS), 4, tie=items.tie_rank)
    assert found.rows.tolist() == EXPECTED[:4]


def test_the_ranker_order_and_the_page_follow_the_tie_order() -> None:
    # Given a newcomer's candidates (trending, recent popularity, popularity), merged by the sources' shares
    items = tied_shop()
    state = newcomer()
    found = candidates(items, state, k=N_ITEMS)
    assert sorted(found.rows.tolist()) == list(range(N_ITEMS))
    # When they are scored without a ranker: no taste vector and equal popularity, so every score ties
    scores = score(None, items, state, found, now=1000.0)
    assert len(set(scores.tolist())) == 1
    # Then the ranker's order is the tie order, whatever order the merge produced
    assert found.rows[ranked_order(items, found, scores)].tolist() == EXPECTED
    # And so is the page the shopper sees (no category cap: one category)
    retailer = RetailerRules(category_share=1.0, discovery_share=0.0, explore_share=0.0)
    rules = page_rules(items, retailer, 5, found, scores, frozenset(), "seed", 1000.0)
    page = rerank(ranked_items(items, found, scores, 5), rules)
    assert [item.item_id for item in page] == [f"i{row}" for row in EXPECTED[:5]]


def test_reranking_settles_equal_scores_by_each_items_tie_not_its_id() -> None:
    # Given two items of equal score, the later id with the better tie rank
    items = [
        Scored("a", 0.5, "ann", tie=2),
        Scored("b", 0.5, "ann", tie=1),
        Scored("c", 0.9, "ann", tie=3),
    ]
    # When the page is built / Then b comes before a
    assert [item.item_id for item in rerank(items, Rules(k=3))] == ["c", "b", "a"]


def test_the_best_of_many_rows_is_the_head_of_their_full_order() -> None:
    # Given scores with many ties (a few distinct values), tie ranks, and excluded rows among the best
    rng = np.random.default_rng(11)
    for trial in range(200):
        n = int(rng.integers(1, 400))
        rows = rng.permutation(1000)[:n].astype(np.int64)
        scores = rng.integers(0, 6, n).astype(np.float64)
        tie = rng.permutation(1000)
        exclude = frozenset(rng.choice(rows, int(rng.integers(0, min(n, 20) + 1)), replace=False).tolist())
        k = int(rng.integers(1, 60))
        # When the best k are taken (only the head past a partition is sorted)
        found = best_of(rows, scores, k, exclude, tie=tie)
        # Then they are the first k of the full order: score down, tie rank up, excluded rows skipped
        kept = [position for position in range(n) if int(rows[position]) not in exclude]
        full = sorted(kept, key=lambda position: (-scores[position], tie[rows[position]]))[:k]
        assert found.rows.tolist() == rows[full].tolist(), trial
        assert found.scores.tolist() == scores[full].tolist(), trial


def test_the_sampled_kth_value_is_the_partitions_on_every_kind_of_array() -> None:
    from merchandiser.retrieval.proposal import SAMPLE_MIN, kth_smallest

    rng = np.random.default_rng(11)
    n = SAMPLE_MIN * 3
    arrays = {
        "normal": rng.normal(size=n),
        "few distinct": rng.integers(0, 5, n).astype(np.float64),
        "ascending": np.arange(n, dtype=np.float64),
        "descending": np.arange(n, 0, -1, dtype=np.float64),
        "constant": np.zeros(n),
        "signed zeros": rng.choice(np.array([-0.0, 0.0, 1.0]), n),
        "float32": rng.normal(size=n).astype(np.float32),
        # the smallest values all where the sample looks: too few under its bound, the whole array is used
        "sampled smallest": np.where(np.arange(n) % 8 == 0, rng.uniform(-2.0, -1.0, n), rng.uniform(1, 2, n)),
    }
    with_nan = rng.normal(size=n)
    with_nan[rng.random(n) < 0.5] = np.nan
    arrays["half NaN"] = with_nan
    arrays["mostly NaN"] = np.where(rng.random(n) < 0.99, np.nan, 1.0)
    for name, values in arrays.items():
        for k in (1, 7, 100, 1000, len(values) // 16, len(values)):
            expected = np.partition(values, k - 1)[k - 1]
            got = kth_smallest(values, k)
            assert (np.isnan(expected) and np.isnan(got)) or got == expected, (name, k)


def test_scored_items_need_a_score_and_a_source_per_row() -> None:
    import pytest

    from merchandiser.reranking.page import scored
    from tests.unit.test_source_contract import tiny_shop

    model = tiny_shop()
    items = scored(model, np.array([3, 1]), np.array([0.5, 0.25]), ["ann", "content"])
    assert [(i.item_id, i.score, i.source, i.category, i.tie) for i in items] == [
        ("i3", 0.5, "ann", "shoes", int(model.tie_rank[3])),
        ("i1", 0.25, "content", "shoes", int(model.tie_rank[1])),
    ]
    with pytest.raises(ValueError, match="2 rows, 2 scores and 1 sources"):
        scored(model, np.array([3, 1]), np.array([0.5, 0.25]), ["ann"])
