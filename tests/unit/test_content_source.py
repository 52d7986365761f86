"""The content source over a large placed set: through the HNSW index, as the exact search would find."""

from __future__ import annotations

import numpy as np
import pytest

from merchandiser.catalog import Catalog, ItemModel, Signals
from merchandiser.retrieval import Ask, build_index, content
from merchandiser.shopper import UserState

N_INDEXED, N_ADDED = 4000, 3  # items in the index, then items the catalogue overlay added since


def shop(placed_share: float) -> ItemModel:
    rng = np.random.default_rng(11)
    n = N_INDEXED + N_ADDED
    factors = rng.normal(size=(n, 16)).astype(np.float32)
    placed = rng.random(n) < placed_share
    placed[N_INDEXED:] = True  # the overlay's items are placed by their attributes
    catalog = Catalog(
        item_ids=np.array([f"i{row}" for row in range(n)]),
        titles=np.array([f"Item {row}" for row in range(n)]),
        categories=np.array(["a", "b"] * (n // 2) + ["a"] * (n % 2)),
        brands=np.array(["x"] * n),
        prices=np.full(n, 10.0),
        created_at=np.zeros(n),
        in_stock=np.ones(n, bool),
    )
    signals = Signals.empty(n)
    signals = Signals(**{**signals.__dict__, "placed": placed})
    index = build_index(factors[:N_INDEXED], seed=3)
    return ItemModel({"model_version": "t"}, catalog, factors, np.ones(n, np.float32), index, signals)


def exact(items: ItemModel, vector: np.ndarray, k: int, exclude: frozenset[int]) -> list[int]:
    rows = np.array([row for row in items.placed_rows.tolist() if row not in exclude])
    scores = items.item_factors[rows] @ vector
    return rows[np.argsort(-scores, kind="stable")[:k]].tolist()


@pytest.mark.parametrize("category", [None, "a"])
def test_a_large_placed_set_is_searched_through_the_index(
    monkeypatch: pytest.MonkeyPatch, category: str | None
) -> None:
    items = shop(placed_share=0.8)
    vector = (
        items.item_factors[N_INDEXED + 2] * 3.0
    )  # the taste of one of the overlay's new items (category a)
    purchased = frozenset(items.placed_rows[:50].tolist())
    user = UserState(vector=vector, history={}, recent=[], purchased=purchased)
    ask = Ask.of(items, 100, category)
    exact_rows = content.propose(items, user, ask)
    monkeypatch.setattr(content, "EXACT_ROWS", 1000)  # the 3,200 placed items of the index: too many
    found = content.propose(items, user, ask)
    assert exact_rows is not None and found is not None
    allowed = np.ones(len(items.catalog), bool) if ask.allowed is None else ask.allowed
    # Then every proposal is a placed item the page may show, never a purchase, best first
    assert items.signals.placed[found.rows].all() and allowed[found.rows].all()
    assert not set(found.rows.tolist()) & purchased
    assert list(found.scores) == sorted(found.scores, reverse=True)
    # And the overlay's item (not in the index) leads, and the index finds what the exact search finds
    assert found.rows[0] == N_INDEXED + 2 == exact_rows.rows[0]
    recall = len(set(found.rows.tolist()) & set(exact_rows.rows.tolist())) / len(exact_rows.rows)
    assert recall >= 0.9
    if category is None:
        assert exact_rows.rows.tolist() == exact(items, vector, 100, purchased)


def test_rare_placed_items_stay_searched_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    items = shop(placed_share=0.1)  # 10% of the index: asking it for k of them would cost 10 k neighbours
    vector = items.item_factors[7] * 2.0
    user = UserState(vector=vector, history={}, recent=[], purchased=frozenset())
    monkeypatch.setattr(content, "EXACT_ROWS", 10)
    found = content.propose(items, user, Ask.of(items, 30))
    assert found is not None and found.rows.tolist() == exact(items, vector, 30, frozenset())
