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


def item(item_id: str, in_stock: bool = True, title: str | None = None, revision: int = 1) -> OverlayItem:
    return OverlayItem(item_id, title or f"Title {item_id}", "hats", "acme", 12.5, in_stock, revision)


def fields(entry: OverlayItem) -> dict[str, object]:
    return {"title": entry.title, "category": entry.category, "brand": entry.brand, "price": entry.price,
            "in_stock": entry.in_stock}  # fmt: skip


def test_upsert_and_read_round_trip(aws: Aws) -> None:
    overlay = CatalogOverlay(aws.dynamodb.Table(aws.items_table))
    # Given an empty overlay at version 0 / When two items are upserted, one twice
    assert overlay.read() == {} and overlay.version() == 0
    overlay.upsert(item("new-1"))
    overlay.upsert(item("i00", in_stock=True, revision=1))
    overlay.upsert(item("i00", in_stock=False, revision=2))
    # Then both are there, the later revision winning, and every write moved the version
    read = overlay.read()
    assert set(read) == {"new-1", "i00"} and read["new-1"] == item("new-1")
    assert read["i00"].in_stock is False and read["i00"].price == 12.5
    assert overlay.version() == 3
    # And the next model's catalogue absorbs the items it holds as they are
    held = {"i00": fields(item("i00", in_stock=False)), "i99": fields(item("i99"))}
    assert overlay.absorb(held) == 1 and set(overlay.read()) == {"new-1"}
    assert overlay.version() == 4
    # And clearing empties it
    overlay.clear()
    assert overlay.read() == {}


def test_an_older_revision_never_replaces_a_newer_one(aws: Aws) -> None:
    # Given two PUTs of one item whose overlay writes arrive out of order
    overlay = CatalogOverlay(aws.dynamodb.Table(aws.items_table))
    overlay.upsert(item("i00", in_stock=False, revision=5))
    overlay.upsert(item("i00", in_stock=True, revision=4))
    # Then the newer one stays, and the refused write did not move the version
    assert overlay.read()["i00"].in_stock is False and overlay.read()["i00"].revision == 5
    assert overlay.version() == 1


def test_absorb_keeps_entries_the_new_catalogue_does_not_hold_as_they_are(aws: Aws) -> None:
    # Given a model trained before the title of i01 changed (its catalogue has the old title)
    overlay = CatalogOverlay(aws.dynamodb.Table(aws.items_table))
    overlay.upsert(item("i01", title="New title"))
    overlay.upsert(OverlayItem("i02", in_stock=False, revision=1))  # a partial entry: stock alone
    held = {"i01": fields(item("i01", title="Old title")), "i02": {**fields(item("i02")), "in_stock": False}}
    # When it is published, Then only the entry it holds as it is leaves the overlay
    assert overlay.absorb(held) == 1
    assert set(overlay.read()) == {"i01"}


def test_a_full_overlay_refuses_new_items_but_updates_known_ones(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("merchandiser.store.items.MAX_ITEMS", 2)
    overlay = CatalogOverlay(aws.dynamodb.Table(aws.items_table))
    overlay.upsert(item("a"))
    overlay.upsert(item("b"))
    with pytest.raises(OverlayFullError):
        overlay.upsert(item("c"))
    overlay.upsert(item("a", in_stock=False, revision=2))
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
    hat = {"title": "Hat", "category": "hats", "brand": "acme", "price": 9.0, "in_stock": True}
    # Given a promoted known item and a plain update of another
    overlay.upsert(OverlayItem("i00", **hat, promoted=True, revision=1))  # type: ignore[arg-type]
    overlay.upsert(OverlayItem("i01", **hat, revision=1))  # type: ignore[arg-type]
    # When a model whose catalogue holds both as they are is published (a catalogue has no promotions)
    # Then only the plain update is absorbed
    assert overlay.absorb({"i00": hat, "i01": hat}) == 1 and overlay.read()["i00"].promoted is True
    # And once staff end the promotion, the next training absorbs it
    overlay.upsert(OverlayItem("i00", **hat, promoted=False, revision=2))  # type: ignore[arg-type]
    assert overlay.absorb({"i00": hat}) == 1 and overlay.read() == {}


def test_a_partial_entry_changes_only_its_fields_and_a_new_item_gets_defaults(model_dir: Path) -> None:
    model = Model.load(model_dir)
    # Given i04 sold out (stock alone) and a new item known only by its price
    overlay = {
        "i04": OverlayItem("i04", in_stock=False, revision=1),
        "bare-1": OverlayItem("bare-1", price=5.0),
    }
    served = with_overlay(model.items, overlay)
    catalog, row = served.catalog, served.catalog.row_of["i04"]
    # Then i04 keeps its title, category and price, and is out of stock
    assert not catalog.in_stock[row] and catalog.titles[row] == model.items.catalog.titles[row]
    assert catalog.prices[row] == model.items.catalog.prices[row] and row in served.out_of_stock
    # And the new item is placed with its id as title, category "unknown", in stock
    new = catalog.row_of["bare-1"]
    assert (catalog.titles[new], catalog.categories[new], bool(catalog.in_stock[new])) == (
        "bare-1",
        "unknown",
        True,
    )
