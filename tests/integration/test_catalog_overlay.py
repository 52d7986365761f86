"""The catalogue overlay in DynamoDB (moto) and the served model with it applied."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from merchandiser import ranking, retrieval
from merchandiser.catalog import with_overlay
from merchandiser.serving import Model
from merchandiser.shopper import user_state
from merchandiser.store import CatalogOverlay, OverlayFullError, OverlayItem
from tests.integration.conftest import Aws


def item(item_id: str, in_stock: bool = True, title: str | None = None) -> OverlayItem:
    return OverlayItem(item_id, title or f"Title {item_id}", "hats", "acme", 12.5, in_stock)


def test_upsert_and_read_round_trip(aws: Aws) -> None:
    overlay = CatalogOverlay(aws.dynamodb.Table(aws.items_table))
    # Given an empty overlay / When two items are upserted, one twice
    assert overlay.read() == {}
    overlay.upsert(item("new-1"))
    overlay.upsert(item("i00", in_stock=True))
    overlay.upsert(item("i00", in_stock=False))
    # Then both are there, the later write winning
    read = overlay.read()
    assert set(read) == {"new-1", "i00"} and read["new-1"] == item("new-1")
    assert read["i00"].in_stock is False and read["i00"].price == 12.5
    # And the next model's catalogue absorbs the items it holds
    assert overlay.absorb(["i00", "i99"]) == 1 and set(overlay.read()) == {"new-1"}
    # And clearing empties it
    overlay.clear()
    assert overlay.read() == {}


def test_a_full_overlay_refuses_new_items_but_updates_known_ones(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("merchandiser.store.items.MAX_ITEMS", 2)
    overlay = CatalogOverlay(aws.dynamodb.Table(aws.items_table))
    overlay.upsert(item("a"))
    overlay.upsert(item("b"))
    with pytest.raises(OverlayFullError):
        overlay.upsert(item("c"))
    overlay.upsert(item("a", in_stock=False))
    assert set(overlay.read()) == {"a", "b"} and overlay.read()["a"].in_stock is False


def test_the_overlay_makes_a_new_item_retrievable_and_a_sold_out_item_unavailable(model_dir: Path) -> None:
    model = Model.load(model_dir)
    assert model.items.signals.content is not None
    # Given a new hat placed by its attributes, and known item i04 (a hat) now sold out
    new_hat = item("new-hat", title="Item 99 hats")
    overlay = {"new-hat": new_hat, "i04": item("i04", in_stock=False)}
    served = Model(with_overlay(model.items, overlay), model.ranker)
    # Then the new item has a row, flagged as placed, and i04 is out of stock; the original is untouched
    row = served.items.catalog.row_of["new-hat"]
    assert row == len(model.items.catalog) and served.items.signals.placed[row]
    expected = model.items.signals.content.vector_of(
        {"title": "Item 99 hats", "category": "hats", "brand": "acme", "price": 12.5}
    )
    np.testing.assert_allclose(served.items.item_factors[row], expected, rtol=1e-5)
    assert (
        not served.items.catalog.in_stock[served.items.catalog.row_of["i04"]]
        and model.items.catalog.in_stock[model.items.catalog.row_of["i04"]]
    )
    # And a hats shopper's candidates include it, from the content source
    state = user_state(served.items, {"i01": 8.0, "i04": 4.0, "i07": 2.0}, [], [])
    candidates = retrieval.candidates(served.items, state, k=40)
    assert row in candidates.rows.tolist()
    scores = ranking.score(served.ranker, served.items, state, candidates, now=0.0)
    assert np.isfinite(scores).all()
    # And an empty overlay serves the model as it is
    assert with_overlay(model.items, {}) is model.items


def test_a_promoted_entry_outlives_the_training_until_staff_end_it(aws: Aws) -> None:
    overlay = CatalogOverlay(aws.dynamodb.Table(aws.items_table))
    # Given a promoted known item and a plain update
    overlay.upsert(OverlayItem("i00", "Hat", "hats", "acme", 9.0, True, promoted=True))
    overlay.upsert(item("i01"))
    # When a new model holding both is published, Then only the plain update is absorbed
    assert overlay.absorb(["i00", "i01"]) == 1 and overlay.read()["i00"].promoted is True
    # And once staff end the promotion, the next training absorbs it
    overlay.upsert(OverlayItem("i00", "Hat", "hats", "acme", 9.0, True, promoted=False))
    assert overlay.absorb(["i00"]) == 1 and overlay.read() == {}
