"""The content source over a large placed set: through the placed items' own index, as the exact search
would find."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from merchandiser.catalog import Catalog, ItemModel, Signals
from merchandiser.retrieval import Ask, build_index, content, registry, retriever
from merchandiser.serving import load_model
from merchandiser.shopper import UserState
from merchandiser.store import CONTENT_INDEX, read_manifest
from tests.tiny_shop import N_ITEMS, N_NEW_ITEMS, train_tiny_model
from training import fit

N_INDEXED, N_ADDED = 4000, 3  # items known at training, then items the catalogue overlay added since


def shop(split: bool) -> ItemModel:
    """Half the items placed by their attributes; ``split``: the placed ones in an index of their own."""
    rng = np.random.default_rng(11)
    n = N_INDEXED + N_ADDED
    factors = rng.normal(size=(n, 16)).astype(np.float32)
    placed = rng.random(n) < 0.5
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
    signals = Signals(**{**Signals.empty(n).__dict__, "placed": placed})
    trained, placed_rows = np.flatnonzero(~placed[:N_INDEXED]), np.flatnonzero(placed[:N_INDEXED])
    index = build_index(factors, 3, trained if split else np.arange(N_INDEXED))
    content_index = build_index(factors, 3, placed_rows) if split else None
    manifest = {"model_version": "t", "overlay_items": N_ADDED}
    return ItemModel(manifest, catalog, factors, np.ones(n, np.float32), index, signals, content_index)


@pytest.mark.parametrize("category", [None, "a"])
def test_the_placed_items_own_index_finds_what_the_exact_search_finds(category: str | None) -> None:
    exact_model, split_model = shop(split=False), shop(split=True)
    vector = split_model.item_factors[N_INDEXED + 2] * 3.0  # the taste of one of the overlay's items (a)
    purchased = frozenset(split_model.placed_rows[:50].tolist())
    user = UserState(vector=vector, history={}, recent=[], purchased=purchased)
    exact = content.propose(exact_model, user, Ask.of(exact_model, 100, category))
    found = content.propose(split_model, user, Ask.of(split_model, 100, category))
    assert exact is not None and found is not None and len(found.rows) == 100
    allowed = split_model.catalog.categories == category if category else np.ones(N_INDEXED + N_ADDED, bool)
    # Then every proposal is a placed item the page may show, never a purchase, best first
    assert split_model.signals.placed[found.rows].all() and allowed[found.rows].all()
    assert not set(found.rows.tolist()) & purchased
    assert list(found.scores) == sorted(found.scores, reverse=True)
    # And the overlay's item (in no index) leads, and the index finds what the exact search finds
    assert found.rows[0] == N_INDEXED + 2 == exact.rows[0]
    assert len(set(found.rows.tolist()) & set(exact.rows.tolist())) >= 90
    # And the main index of the split model holds the trained items only
    assert not split_model.signals.placed[split_model.index.get_ids_list()].any()


def test_through_its_index_the_source_gives_twice_its_quota_and_the_merge_tells_it_the_quota() -> None:
    split_model, exact_model = shop(split=True), shop(split=False)
    user = UserState(vector=split_model.item_factors[7], history={}, recent=[], purchased=frozenset())
    # Given a quota of 80 of 1,000 candidates: 160 rows from the index, where the exact search gives 1,000
    wide = content.propose(split_model, user, Ask(k=1000, quota=80))
    exact = content.propose(exact_model, user, Ask(k=1000, quota=80))
    assert wide is not None and exact is not None
    assert len(wide.rows) == 160 and len(exact.rows) == 1000
    # the best of the index's rows are the exact search's (the index is approximate below its head)
    assert len(set(wide.rows[:50].tolist()) & set(exact.rows[:160].tolist())) >= 45
    # a small quota still gives INDEX_MIN_ROWS, an unknown one the whole k, never more than k
    assert len(content.propose(split_model, user, Ask(k=1000, quota=5)).rows) == content.INDEX_MIN_ROWS
    assert len(content.propose(split_model, user, Ask(k=300)).rows) == 300
    assert len(content.propose(split_model, user, Ask(k=30, quota=10)).rows) == 30
    # And the retriever tells each source its quota: the model's share of k, or the caller's
    told: list[Ask] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(content, "propose", lambda items, shopper, ask: told.append(ask))
        sources = tuple(
            replace(source, propose=content.propose) if source.name == content.NAME else source
            for source in registry.SOURCES
        )
        patch.setattr(retriever, "SOURCES", sources)
        retriever.proposals(split_model, user, 1000)
        retriever.proposals(split_model, user, 1000, shares={content.NAME: 0.3})
    assert [ask.quota for ask in told] == [50, 300]


def test_training_gives_a_large_placed_set_its_own_index_and_serving_loads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fit, "CONTENT_EXACT_ROWS", 1)  # the tiny shop's 3 placed items: too many
    model_dir = train_tiny_model(tmp_path)
    assert CONTENT_INDEX in read_manifest(model_dir)["files"]
    loaded = load_model(model_dir, mmap=True)
    items = loaded.model.items if loaded.model else None
    assert items is not None and not loaded.faults and items.content_index is not None
    # Then the placed items are in their own index, the others in the main one, each item in one of them
    placed = set(items.placed_rows.tolist())
    assert set(items.content_index.get_ids_list()) == placed == set(range(N_ITEMS, N_ITEMS + N_NEW_ITEMS))
    assert set(items.index.get_ids_list()) == set(range(len(items.catalog))) - placed
    # And the content source proposes them through it
    user = UserState(vector=items.item_factors[N_ITEMS], history={}, recent=[], purchased=frozenset())
    found = content.propose(items, user, Ask.of(items, 10))
    assert found is not None and set(found.rows.tolist()) == placed

    # When the content index is corrupt, the rest of the model serves; the placed items are searched exactly
    (model_dir / CONTENT_INDEX).write_bytes(b"not an index")
    degraded = load_model(model_dir, mmap=True)
    assert degraded.model is not None and degraded.model.items.content_index is None
    again = content.propose(degraded.model.items, user, Ask.of(degraded.model.items, 10))
    assert again is not None and again.rows.tolist() == found.rows.tolist()
