from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest

from merchandiser.reranking.rules import (
    DISCOVERY,
    NEW_ARRIVAL,
    PROMOTED,
    Rules,
    Scored,
    category_cap,
    discovery_slots,
    exploration_slots,
    promoted_slots,
    relevance,
    rerank,
    unit_rows,
)


def item(item_id: str, score: float, category: str = "a", in_stock: bool = True) -> Scored:
    return Scored(item_id=item_id, score=score, source="ann", category=category, in_stock=in_stock)


def test_purchased_and_out_of_stock_items_are_filtered():
    # Given a scored list with a purchased and an out-of-stock item
    items = [item("i1", 0.9), item("i2", 0.8, in_stock=False), item("i3", 0.7), item("i4", 0.6)]
    # When re-ranked with i1 excluded
    page = rerank(items, Rules(k=3, exclude=frozenset({"i1"})))
    # Then both are gone and the order is by score
    assert [p.item_id for p in page] == ["i3", "i4"]


def test_duplicates_keep_their_best_score_and_ties_break_by_id():
    items = [item("b", 0.5), item("a", 0.5), item("b", 0.9), item("c", 0.1)]
    page = rerank(items, Rules(k=10))
    assert [p.item_id for p in page] == ["b", "a", "c"]
    assert page[0].score == 0.9


def test_category_cap_spreads_the_page_and_backfills_when_short():
    # Given five items of category x ahead of two of category y
    items = [item(f"x{i}", 1.0 - i / 10, "x") for i in range(5)] + [
        item("y0", 0.2, "y"),
        item("y1", 0.1, "y"),
    ]
    # When at most two per category are allowed on a page of four
    page = rerank(items, Rules(k=4, max_per_category=2))
    # Then the y items rise into the page
    assert [p.item_id for p in page] == ["x0", "x1", "y0", "y1"]
    # And a page longer than the capped supply is backfilled with the best capped items
    assert [p.item_id for p in rerank(items, Rules(k=6, max_per_category=2))][4:] == ["x2", "x3"]


def test_category_page_shows_only_its_category():
    items = [item("x", 0.9, "x"), item("y", 0.8, "y")]
    assert [p.item_id for p in rerank(items, Rules(k=5, category="y"))] == ["y"]


def test_category_cap_is_a_share_with_a_floor_of_two():
    assert category_cap(10) == 3
    assert category_cap(3) == 2
    assert category_cap(100) == 30


def test_same_request_gives_the_same_page():
    items = [item(f"i{i}", (i * 7919) % 13 / 13, str(i % 3)) for i in range(50)]
    rules = Rules(k=10, max_per_category=category_cap(10))
    assert rerank(items, rules) == rerank(list(reversed(items)), rules)


# --- exclusion lists --------------------------------------------------------------------------------


def test_a_retailers_excluded_items_and_categories_never_show() -> None:
    items = [item("i1", 0.9, "x"), item("i2", 0.8, "y"), item("i3", 0.7, "z"), item("i4", 0.6, "x")]
    rules = Rules(k=5, exclude=frozenset({"i4"}), exclude_categories=frozenset({"y"}))
    assert ids(rerank(items, rules)) == ["i1", "i3"]


# --- MMR --------------------------------------------------------------------------------------------

# a and b point the same way, c is orthogonal to both, d sits between: relevance a > b > c > d
VECTORS = {"a": (1.0, 0.0), "b": (2.0, 0.0), "c": (0.0, 1.0), "d": (1.0, 1.0)}
MMR_ITEMS = [item("a", 1.0), item("b", 0.9), item("c", 0.5), item("d", 0.0)]


def vectors(item_ids: Sequence[str]) -> np.ndarray:
    return np.array([VECTORS[item_id] for item_id in item_ids])


def ids(page: Sequence[Scored]) -> list[str]:
    return [p.item_id for p in page]


@pytest.mark.parametrize(
    ("lam", "expected"),
    [
        # relevance wins: after a, b's 0.9 relevance outweighs its cosine 1 to a
        (0.8, ["a", "b", "c", "d"]),
        # balanced: c (relevance 0.5, cosine 0) beats b (0.9, cosine 1): 0.25 > -0.05
        (0.5, ["a", "c", "b", "d"]),
        # novelty only: after a, the least similar first; b (a's twin) comes last
        (0.0, ["a", "c", "d", "b"]),
    ],
)
def test_mmr_trades_relevance_for_novelty_by_lambda(lam: float, expected: list[str]) -> None:
    page = rerank(MMR_ITEMS, Rules(k=4, mmr_lambda=lam, vectors=vectors))
    assert ids(page) == expected


def test_mmr_with_lambda_one_is_the_plain_order() -> None:
    rng = np.random.default_rng(7)
    items = [item(f"i{n:02d}", float(rng.integers(0, 5)), str(n % 4)) for n in range(40)]
    table = {f"i{n:02d}": rng.normal(size=3) for n in range(40)}

    def lookup(item_ids: Sequence[str]) -> np.ndarray:
        return np.array([table[item_id] for item_id in item_ids])

    for cap in (None, 3):
        plain = rerank(items, Rules(k=12, max_per_category=cap))
        assert rerank(items, Rules(k=12, max_per_category=cap, mmr_lambda=1.0, vectors=lookup)) == plain


def test_mmr_respects_the_category_cap() -> None:
    items = [replace(i, category="x") for i in MMR_ITEMS[:3]] + [MMR_ITEMS[3]]
    page = rerank(items, Rules(k=3, mmr_lambda=0.5, vectors=vectors, max_per_category=2))
    assert ids(page) == ["a", "c", "d"]


def test_mmr_without_vectors_or_with_a_bad_lambda_is_refused() -> None:
    with pytest.raises(ValueError, match="vectors"):
        Rules(k=3, mmr_lambda=0.5)
    with pytest.raises(ValueError, match="mmr_lambda"):
        Rules(k=3, mmr_lambda=1.5, vectors=vectors)


def test_mmr_refuses_a_vector_lookup_of_the_wrong_length() -> None:
    rules = Rules(k=3, mmr_lambda=0.5, vectors=lambda item_ids: np.zeros((1, 2)))
    with pytest.raises(ValueError, match="rows"):
        rerank(MMR_ITEMS, rules)


def test_relevance_is_min_max_scaled_and_unit_rows_are_cosines() -> None:
    assert relevance(np.array([3.0, 1.0, 2.0])).tolist() == [1.0, 0.0, 0.5]
    assert relevance(np.array([2.0, 2.0])).tolist() == [1.0, 1.0]
    assert unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist() == [[0.6, 0.8], [0.0, 0.0]]


# --- promotions -------------------------------------------------------------------------------------

ORGANIC = [item(f"o{n}", 1.0 - n / 100) for n in range(20)]


def promo(item_id: str, in_stock: bool = True, category: str = "a") -> Scored:
    return Scored(item_id=item_id, score=0.0, source="rule", category=category, in_stock=in_stock)


def test_promoted_slots_are_every_nth_slot_up_to_the_share() -> None:
    assert promoted_slots(10, 0.2) == [4, 9]  # the 5th and the 10th
    assert promoted_slots(10, 0.25) == [3, 7]  # a share is a ceiling: 2 slots, every 4th
    assert promoted_slots(9, 1 / 3) == [2, 5, 8]
    assert promoted_slots(10, 0.05) == []
    assert promoted_slots(3, 1.0) == [0, 1, 2]


def test_promoted_items_take_their_slots_in_priority_order_after_the_filters() -> None:
    # Given three promoted items, the first out of stock
    rules = Rules(k=10, promoted=(promo("p1", in_stock=False), promo("p2"), promo("p3")), promoted_share=0.2)
    page = rerank(ORGANIC, rules)
    # Then p2 and p3 hold the 5th and 10th slots, marked promoted, and the organic order is kept
    assert ids(page) == ["o0", "o1", "o2", "o3", "p2", "o4", "o5", "o6", "o7", "p3"]
    assert {p.source for p in page if p.item_id.startswith("p")} == {PROMOTED}


def test_a_promoted_candidate_shows_once_with_its_score_and_unused_slots_go_organic() -> None:
    rules = Rules(
        k=6,
        promoted=(promo("o5"), promo("p9", category="banned")),
        promoted_share=0.5,
        exclude_categories=frozenset({"banned"}),
    )
    page = rerank(ORGANIC, rules)
    assert ids(page) == ["o0", "o5", "o1", "o2", "o3", "o4"]
    assert page[1].source == PROMOTED and page[1].score == pytest.approx(0.95)


def test_a_short_page_closes_up_around_promoted_slots() -> None:
    page = rerank(ORGANIC[:2], Rules(k=10, promoted=(promo("p1"),), promoted_share=0.2))
    assert ids(page) == ["o0", "o1", "p1"]


def test_a_promoted_share_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="promoted_share"):
        Rules(k=3, promoted_share=1.5)


# --- exploration ------------------------------------------------------------------------------------

NEW = tuple(promo(f"n{n}") for n in range(6))


def test_exploration_slots_are_spread_and_avoid_taken_slots() -> None:
    assert exploration_slots(10, 2) == [2, 7]
    assert exploration_slots(10, 1) == [5]
    assert exploration_slots(10, 1, taken=[5]) == [6]
    assert exploration_slots(2, 3, taken=[1]) == [0]  # never more slots than are free


def test_new_items_take_the_exploration_slots_chosen_by_the_seed() -> None:
    rules = Rules(k=10, explore=NEW, explore_slots=2, seed="u1:2026-11-22")
    page = rerank(ORGANIC, rules)
    explored = [p for p in page if p.source == NEW_ARRIVAL]
    assert [page.index(p) for p in explored] == [2, 7]
    assert len(page) == 10 and {p.item_id for p in explored} <= {n.item_id for n in NEW}
    # The same seed gives the same page whatever order the pool came in
    assert rerank(ORGANIC, replace(rules, explore=tuple(reversed(NEW)))) == page


def test_other_seeds_show_other_new_items() -> None:
    picks = {
        tuple(ids(rerank(ORGANIC, Rules(k=10, explore=NEW, explore_slots=1, seed=f"u{n}")))[5:6])
        for n in range(12)
    }
    assert len(picks) > 1


def test_exploration_skips_filtered_and_promoted_new_items() -> None:
    pool = (promo("n0", in_stock=False), promo("n1"), promo("n2"))
    rules = Rules(
        k=10,
        explore=pool,
        explore_slots=3,
        exclude=frozenset({"n2"}),
        promoted=(promo("n1"),),
        promoted_share=0.1,
        seed="s",
    )
    page = rerank(ORGANIC, rules)
    assert [p.source for p in page].count(NEW_ARRIVAL) == 0
    assert ids(page)[9] == "n1" and page[9].source == PROMOTED


def test_negative_exploration_slots_or_page_size_are_refused() -> None:
    with pytest.raises(ValueError, match="explore_slots"):
        Rules(k=3, explore_slots=-1)
    with pytest.raises(ValueError, match="k must"):
        Rules(k=-1)


LONG_TAIL = tuple(item(f"t{n}", 0.01 * n, category="t") for n in range(8))


def test_discovery_takes_the_last_free_slots() -> None:
    assert discovery_slots(10, 3) == [7, 8, 9]
    assert discovery_slots(10, 2, taken=[9, 5]) == [7, 8]
    assert discovery_slots(3, 5, taken=[0]) == [1, 2]


def test_discovery_fills_the_end_of_the_page_in_seeded_order_and_keeps_the_head() -> None:
    rules = Rules(k=10, discover=LONG_TAIL, discover_slots=3, seed="u1:2026-11-22")
    page = rerank(ORGANIC, rules)
    # The first 7 slots are the organic order, untouched; the last 3 are long-tail items
    assert ids(page)[:7] == ids(rerank(ORGANIC, Rules(k=7)))
    assert [p.source for p in page[7:]] == [DISCOVERY] * 3
    assert {p.item_id for p in page[7:]} <= {t.item_id for t in LONG_TAIL}
    # The same seed gives the same page whatever the pool's order; other seeds show other items
    assert rerank(ORGANIC, replace(rules, discover=tuple(reversed(LONG_TAIL)))) == page
    others = {tuple(ids(rerank(ORGANIC, replace(rules, seed=f"u{n}")))[7:]) for n in range(12)}
    assert len(others) > 1


def test_discovery_skips_filtered_items_and_shares_the_page_with_promotions_and_new_items() -> None:
    pool = (item("t0", 0.1, in_stock=False), item("t1", 0.1), item("o0", 0.1))
    rules = Rules(
        k=10,
        discover=pool,
        discover_slots=3,
        explore=NEW,
        explore_slots=1,
        promoted=(promo("p1"),),
        promoted_share=0.1,
        seed="s",
    )
    page = rerank(ORGANIC, rules)
    sources = [p.source for p in page]
    # one promoted (slot 9, the last), one new item (slot 5), and discovery in the last free slots
    assert sources[9] == PROMOTED and sources[5] == NEW_ARRIVAL
    discovered = [p.item_id for p in page if p.source == DISCOVERY]
    assert "t0" not in discovered and set(discovered) <= {"t1", "o0"}
    assert len(page) == 10 and len(set(ids(page))) == 10
