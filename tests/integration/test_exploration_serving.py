"""Serving with exploration on moto: an item added by PUT /items is a new arrival the exploration slots
draw, graduates into the candidates once shoppers click it, and a posterior read that fails serves the
page all the same, saying so."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from merchandiser.catalog import with_overlay
from merchandiser.reranking import NEW_ARRIVAL, new_item_rows
from merchandiser.retrieval import GRADUATED
from merchandiser.serving import EXPLORATION, Model, runtime
from merchandiser.settings import ServingSettings
from merchandiser.store import CatalogOverlay, FeatureStore, OverlayItem, posterior_key
from tests.integration.conftest import Aws

NEW = OverlayItem("new-hat", "Item 99 hats", "hats", "acme", 12.5, True)


def settings(aws: Aws, model_dir: Path) -> ServingSettings:
    return ServingSettings.from_env(
        {**aws.env(), "MODEL_DIR": str(model_dir), "EXPLORE_GRADUATE_IMPRESSIONS": "20"}
    )


@pytest.fixture
def served(aws: Aws, model_dir: Path):  # type: ignore[no-untyped-def]
    runtime.reset()
    CatalogOverlay(aws.dynamodb.Table(aws.items_table)).upsert(replace(NEW, added_at=time.time()))
    yield settings(aws, model_dir)
    runtime.reset()


def test_an_item_put_through_the_overlay_is_a_new_arrival(aws: Aws, model_dir: Path) -> None:
    # Given the item's overlay entry carrying when the catalogue first stored it
    overlay = CatalogOverlay(aws.dynamodb.Table(aws.items_table))
    overlay.upsert(replace(NEW, added_at=1_000.0))
    read = overlay.read()["new-hat"]
    assert read.added_at == 1_000.0
    # Then, overlaid, it is created then and in the exploration pool
    model = Model.load(model_dir)
    items = with_overlay(model.items, {"new-hat": read})
    row = items.catalog.row_of["new-hat"]
    assert items.catalog.created_at[row] == 1_000.0
    assert row in new_item_rows(items, 1_000.0 + 86_400, 30.0).tolist()


def test_the_exploration_slots_show_the_new_item_and_a_graduate_becomes_a_candidate(aws: Aws, served) -> None:  # type: ignore[no-untyped-def]
    # Given a page for an unknown shopper / Then a slot holds the new hat, drawn by Thompson sampling
    page = runtime.recommender(served).recommend("nobody", k=20)
    assert any(item["item_id"] == "new-hat" and item["source"] == NEW_ARRIVAL for item in page["items"])
    assert page["degraded_reasons"] == []
    # When its posterior says shoppers click it (30 clicks of 40 exploration impressions)
    aws.dynamodb.Table(aws.sessions_table).put_item(
        Item={"user_id": posterior_key("new-hat"), "item_id": "new-hat", "impressions": 40, "clicks": 30}
    )
    runtime.reset()
    service = runtime.recommender(served)
    # Then it left the exploration pool and the graduated source proposes it
    items = service.model.items
    row = items.catalog.row_of["new-hat"]
    assert items.exploration.graduated[row] and row not in new_item_rows(items, time.time(), 30.0).tolist()
    candidates = service.candidates("nobody", k=1000)
    assert any(item["item_id"] == "new-hat" and item["source"] == GRADUATED for item in candidates["items"])


def test_a_failing_posterior_read_serves_the_page_and_says_so(
    aws: Aws, served, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    # Given posteriors read once, then DynamoDB failing
    runtime.recommender(served)
    monkeypatch.setattr(FeatureStore, "posteriors", lambda self, ids: (_ for _ in ()).throw(OSError("down")))
    monkeypatch.setattr(runtime, "_explored", (runtime._explored[0], -1e9, *runtime._explored[2:]))  # expired
    # When a page is asked for
    page = runtime.recommender(served).recommend("nobody", k=20)
    # Then it is served, with its exploration slot, and degraded for exploration only
    assert len(page["items"]) == 20 and page["degraded_reasons"] == [EXPLORATION]
    assert any(item["source"] == NEW_ARRIVAL for item in page["items"])


def test_a_posterior_read_failing_from_the_start_draws_from_the_prior(
    aws: Aws, served, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(FeatureStore, "posteriors", lambda self, ids: (_ for _ in ()).throw(OSError("down")))
    service = runtime.recommender(served)
    page = service.recommend("nobody", k=20)
    assert page["degraded_reasons"] == [EXPLORATION]
    assert not np.any(service.model.items.exploration.impressions)
