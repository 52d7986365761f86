"""What a model carries from its tuning into serving: source shares, page rules under the retailer's, the
simple-list fallback, event weights for the session; and the contract additions (favourite events, signals
of older models)."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from merchandiser.catalog import Neighbours, Signals, with_overlay
from merchandiser.publishing.gate import decide
from merchandiser.reranking import anchor_blend, anchor_scores, ranked_order, tuned_rules
from merchandiser.retrieval import SOURCE_SHARES, Candidates, candidates, model_shares, shopper_scores
from merchandiser.schemas import EVENT_TYPES, Event
from merchandiser.serving import Model
from merchandiser.settings import RetailerRules, ServingSettings
from merchandiser.shopper import UserState, from_record, session_weight
from merchandiser.store import OverlayItem, SessionEvent, ShopperRecord
from tests.unit.test_source_contract import shopper, tiny_shop


def test_the_models_page_rules_replace_the_defaults_but_never_what_the_retailer_set() -> None:
    items = tiny_shop()
    items.manifest["page_rules"] = {"category_share": 0.6, "discovery_share": 0.0}
    # Given a retailer who set the discovery share, to its default value, and nothing else
    retailer = RetailerRules.model_validate({"discovery_share": 0.1})
    # When serving lays the retailer's rules over the model's
    rules = tuned_rules(items, retailer)
    # Then the tuned category cap applies and the retailer's discovery share stays
    assert rules.category_share == 0.6 and rules.discovery_share == 0.1
    # And a retailer who set nothing gets the tuned values
    assert tuned_rules(items, RetailerRules()).discovery_share == 0.0


def test_unusable_tuned_page_rules_leave_the_retailers_rules_as_they_are() -> None:
    items = tiny_shop()
    items.manifest["page_rules"] = {"category_share": 7.0, "no_such_rule": 1}
    retailer = RetailerRules(explore_share=0.2)
    assert tuned_rules(items, retailer) == retailer
    items.manifest.pop("page_rules")
    assert tuned_rules(items, retailer) == retailer


def test_a_rule_the_retailer_sets_to_its_default_survives_the_environment() -> None:
    # Given serving settings whose rules set the category share to its default value
    settings = ServingSettings.model_validate(
        {
            "USERS_TABLE": "u",
            "ITEMS_TABLE": "i",
            "SESSIONS_TABLE": "s",
            "COUNTERS_TABLE": "c",
            "EXPERIMENTS_TABLE": "x",
            "EVENTS_STREAM": "e",
            "MERCHANDISING_RULES": RetailerRules(category_share=0.3),
        }
    )
    # When they travel as environment variables and are read back
    read = ServingSettings.from_env(settings.to_env())
    # Then the rule is still set by the retailer (so a tuned value cannot replace it)
    assert json.loads(settings.to_env()["MERCHANDISING_RULES"]) == {"category_share": 0.3}
    assert "category_share" in read.merchandising.model_fields_set


def test_candidates_merge_with_the_models_shares() -> None:
    items = tiny_shop()
    assert model_shares(items) == SOURCE_SHARES
    # Given a model whose tuning gave every place to trending
    items.manifest["source_shares"] = {name: 0.0 for name in SOURCE_SHARES if name != "trending"} | {
        "trending": 1.0
    }
    # When four candidates are merged
    found = candidates(items, shopper(), k=4)
    # Then trending's three items come first (its quota is all four places), in its order
    assert found.rows[:3].tolist() == [6, 3, 8]
    # And a source the manifest does not name keeps the registry's share
    items.manifest["source_shares"] = {"trending": 1.0}
    assert model_shares(items) == {**SOURCE_SHARES, "trending": 1.0}


def candidates_of(rows: list[int]) -> Candidates:
    return Candidates(rows=np.array(rows, dtype=np.int64), scores={}, sources=["ann"] * len(rows))


def test_the_fallback_list_orders_the_page_when_engaged() -> None:
    items = tiny_shop()
    # trending in the tiny shop: item 6 (6.0), 3 (5.0), 8 (1.0), then zeros
    found = candidates_of([1, 3, 6, 8])
    ranker = np.array([4.0, 3.0, 2.0, 1.0])
    # Given no fallback / Then the page keeps the ranker's scores
    np.testing.assert_array_equal(anchor_blend(items, found, ranker, shopper()), ranker)
    # Given an engaged fallback to trending alone / Then the page orders by trending
    items.manifest["fallback_to_anchor"] = {"engaged": True, "anchor": "trending", "weight": 1.0}
    blended = anchor_blend(items, found, ranker, shopper())
    assert found.rows[ranked_order(items, found, blended)].tolist() == [6, 3, 8, 1]
    # And half and half puts each list's best in front of items only one of them likes
    items.manifest["fallback_to_anchor"]["weight"] = 0.5
    half = found.rows[ranked_order(items, found, anchor_blend(items, found, ranker, shopper()))].tolist()
    assert set(half[:2]) <= {1, 3, 6} and half[-1] == 8
    # And a fallback that is not engaged, or names an unknown list, changes nothing
    items.manifest["fallback_to_anchor"] = {"engaged": False, "anchor": "trending", "weight": 1.0}
    np.testing.assert_array_equal(anchor_blend(items, found, ranker, shopper()), ranker)
    items.manifest["fallback_to_anchor"] = {"engaged": True, "anchor": "nope", "weight": 1.0}
    np.testing.assert_array_equal(anchor_blend(items, found, ranker, shopper()), ranker)


PERSONAL = {"engaged": True, "anchor": "item_knn", "kind": "personal", "matrix": "binary", "weight": 1.0}


def test_a_personal_anchor_puts_the_strong_neighbour_of_the_history_first() -> None:
    items = tiny_shop()
    # the tiny shop's item-kNN weights: item 0 gives 3 0.7 and 5 0.2; item 1 gives 2 0.4 and 5 0.1
    found = candidates_of([1, 2, 3, 5, 6])
    ranker = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    # Given a model serving item-kNN alone, and a shopper whose history is items 0 and 1
    items.manifest["fallback_to_anchor"] = dict(PERSONAL)
    # When the page is ordered
    order = found.rows[ranked_order(items, found, anchor_blend(items, found, ranker, shopper()))].tolist()
    # Then 0's strong neighbour 3 comes first, then 2 (0.4), then 5 (0.2 + 0.1), then what it gives nothing
    # in the ranker's order (1 before 6)
    assert order == [3, 2, 5, 1, 6]
    # And its source proposes them in that order, without what the shopper bought (item 0)
    proposal = candidates(items, shopper(), k=10)
    assert proposal.scores["item_anchor"][np.isin(proposal.rows, [3, 2, 5])].tolist() == pytest.approx(
        [0.4, 0.7, 0.3]
    )
    # And a log-weight anchor weighs item 0 (history weight 3) by log 4 and item 1 by log 2
    items.manifest["fallback_to_anchor"]["matrix"] = "log_weight"
    scores = shopper_scores(items, shopper())
    assert scores is not None
    assert scores[[3, 2, 5]].tolist() == pytest.approx(
        [0.7 * np.log(4), 0.4 * np.log(2), 0.2 * np.log(4) + 0.1 * np.log(2)], rel=1e-6
    )


def test_a_personal_anchor_knows_nothing_of_a_shopper_without_history() -> None:
    items = tiny_shop()
    items.manifest["fallback_to_anchor"] = dict(PERSONAL)
    found = candidates_of([1, 2, 3, 5, 6])
    ranker = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    nobody = UserState(vector=None, history={}, recent=[], purchased=frozenset())
    # Given a shopper with no history / Then the anchor proposes nothing and the page is the ranker's
    assert shopper_scores(items, nobody) is None
    assert "item_anchor" not in candidates(items, nobody, k=10).scores
    np.testing.assert_array_equal(anchor_blend(items, found, ranker, nobody), ranker)
    # And a shopper whose history gives nothing a weight (item 4 has none in the table) likewise
    lone = UserState(vector=None, history={4: 1.0}, recent=[4], purchased=frozenset())
    np.testing.assert_array_equal(anchor_blend(items, found, ranker, lone), ranker)
    # And with the fallback off, the table changes nothing on the page
    items.manifest["fallback_to_anchor"] = {**PERSONAL, "engaged": False}
    np.testing.assert_array_equal(anchor_blend(items, found, ranker, shopper()), ranker)


def test_a_model_without_a_table_proposes_nothing_from_a_personal_anchor() -> None:
    # Given a model whose table is empty (the fallback serves no personal anchor), even if engaged
    items = tiny_shop()
    items.signals = replace(items.signals, item_anchor=Neighbours.empty(len(items.catalog)))
    items.manifest["fallback_to_anchor"] = dict(PERSONAL)
    found = candidates_of([1, 2, 3])
    ranker = np.array([3.0, 2.0, 1.0])
    # Then its source proposes nothing and the page is the ranker's
    assert shopper_scores(items, shopper()) is None
    np.testing.assert_array_equal(anchor_blend(items, found, ranker, shopper()), ranker)
    # And an unknown anchor is an error, not a silent page
    with pytest.raises(ValueError, match="unknown anchor"):
        anchor_scores(items, "ease", shopper())


def test_the_personal_anchors_table_travels_with_the_signals_and_the_overlay(tmp_path: Path) -> None:
    # Given the tiny shop's signals with a personal anchor's table, saved and loaded
    signals = tiny_shop().signals
    signals.save(tmp_path / "signals.npz")
    loaded = Signals.load(tmp_path / "signals.npz")
    # Then the table is the same, row for row
    np.testing.assert_array_equal(
        loaded.item_anchor.matrix().toarray(), signals.item_anchor.matrix().toarray()
    )
    # And a model written before the table existed loads with an empty one
    with np.load(tmp_path / "signals.npz") as arrays:
        older = {name: arrays[name] for name in arrays.files if not name.startswith("item_anchor")}
    np.savez(tmp_path / "older.npz", **older)
    assert len(Signals.load(tmp_path / "older.npz").item_anchor.indices) == 0
    # And a table of another catalogue's size is refused
    with pytest.raises(ValueError, match="item anchor"):
        replace(signals, item_anchor=Neighbours.empty(3))


def test_an_overlay_item_keeps_the_personal_anchors_table(model_dir: Path) -> None:
    # Given a trained model serving a personal anchor (its co-views as the table) and a new item upserted
    items = copy.copy(Model.load(model_dir).items)
    items.signals = replace(items.signals, item_anchor=items.signals.also_viewed)
    new = OverlayItem(item_id="new-1", title="Item new", category="hats", brand="b", price=5.0, in_stock=True)
    # When the overlay is applied
    extended = with_overlay(items, {"new-1": new})
    # Then the others keep their weights and the new row gives none
    table = extended.signals.item_anchor
    assert table.n_items == len(items.catalog) + 1 and len(table.of(len(items.catalog))[0]) == 0
    np.testing.assert_array_equal(table.indices, items.signals.also_viewed.indices)


def test_session_events_take_the_models_event_weights() -> None:
    # Given a model whose tuning made views weigh 0.25 and clicks 3, and a session the stream weighted
    # with the defaults (view 1, click 2, a rating of 5 at 4)
    items = tiny_shop()
    items.manifest["event_weights"] = {"view": 0.25, "click": 3.0}
    session = [
        SessionEvent("e1", "i1", "view", 1.0, 100.0),
        SessionEvent("e2", "i2", "click", 2.0, 90.0),
        SessionEvent("e3", "i4", "rating", 4.0, 80.0),
    ]
    # When serving folds the shopper's session in
    state = from_record(items, ShopperRecord(user_id="u", session=tuple(session)))
    # Then views and clicks weigh what the model learnt them to, the untuned rating as stored
    assert state.history == {1: 0.25, 2: 3.0, 4: 4.0}
    assert session_weight("purchase", 8.0, {}) == 8.0


def test_a_favourite_is_an_event_and_an_unknown_type_is_not() -> None:
    base = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "timestamp": datetime.now(UTC)}
    assert (
        "favourite" in EVENT_TYPES and Event.model_validate({**base, "event_type": "favourite"}).weight == 3.0
    )
    with pytest.raises(ValueError):
        Event.model_validate({**base, "event_type": "wishlist"})


def test_signals_of_an_older_model_load_without_recent_popularity(tmp_path: Path) -> None:
    # Given the signals file of a model written before recent popularity and last-seen times existed
    signals = tiny_shop().signals
    signals.save(tmp_path / "signals.npz")
    with np.load(tmp_path / "signals.npz") as arrays:
        older = {
            name: arrays[name] for name in arrays.files if name not in ("recent_popularity", "last_seen")
        }
    np.savez(tmp_path / "older.npz", **older)
    # When loaded / Then they are zeros and unknown
    loaded = Signals.load(tmp_path / "older.npz")
    assert not loaded.recent_popularity.any() and np.isnan(loaded.last_seen).all()
    assert loaded.recent_popularity.shape == loaded.trending.shape


def test_the_gate_says_when_the_candidate_serves_a_personal_anchor() -> None:
    evaluation = {
        "models": {"pipeline": {"ndcg@10": 0.2}},
        "fallback_to_anchor": {**PERSONAL, "weight": 0.5, "reason": "below item_knn on validation"},
    }
    decision = decide(evaluation, None)
    assert decision["fallback_to_anchor"] is True
    assert any("serves the personal anchor item_knn (blend weight 0.5)" in r for r in decision["reasons"])


def test_the_gate_says_when_the_candidate_serves_a_simple_list() -> None:
    evaluation = {
        "models": {"pipeline": {"ndcg@10": 0.2}},
        "fallback_to_anchor": {
            "engaged": True,
            "anchor": "trending",
            "weight": 1.0,
            "reason": "the pipeline's page (0.1000) is below trending (0.1500) on validation",
        },
    }
    decision = decide(evaluation, None)
    assert decision["promote"] is True and decision["fallback_to_anchor"] is True
    assert any("serves the simple list trending" in reason for reason in decision["reasons"])
    # And a candidate refused on the same window beside production says it too
    evaluation["gate"] = {"model_version": "v1", "scored": True, "candidate": 0.2, "production": 0.3}
    refused = decide(evaluation, {"model_version": "v1"})
    assert refused["promote"] is False and refused["evidence"] == "same window"
    assert refused["fallback_to_anchor"] is True
    evaluation["fallback_to_anchor"] = {"engaged": False}
    assert "fallback_to_anchor" not in decide(evaluation, None)


def test_an_overlay_item_extends_the_new_signals(model_dir: Path) -> None:
    # Given a trained model and a new item upserted since
    items = Model.load(model_dir).items
    new = OverlayItem(item_id="new-1", title="Item new", category="hats", brand="b", price=5.0, in_stock=True)
    # When the overlay is applied / Then the new row has no recent popularity and no interaction time
    extended = with_overlay(items, {"new-1": new})
    assert len(extended.catalog) == len(items.catalog) + 1
    assert extended.signals.recent_popularity[-1] == 0 and np.isnan(extended.signals.last_seen[-1])
    assert len(extended.tie_rank) == len(extended.catalog)
