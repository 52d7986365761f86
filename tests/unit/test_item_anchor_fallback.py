"""The fallback to a personal anchor (item-kNN or RP3beta): the training job serves it when it beats the
pipeline's page on validation and not otherwise, with its weights in the model's signals; known answers for
the table it fits."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from merchandiser.catalog import Signals
from merchandiser.retrieval import FALLBACK, shopper_scores
from tests.tiny_shop import TINY_HP, pairs_shop
from training.anchors import anchor_table, served_window
from training.anchors.families import family
from training.anchors.neighbours import weights_table
from training.anchors.ranking import tie_ranks
from training.fit import build_catalog, epoch_seconds, fit_retrieval, user_segments
from training.job import run
from training.split import temporal_split
from training.tuning import ServingChoices, budget_of, stages, with_personal_anchor
from training.tuning.fallback import fallback
from training.tuning.search import Fit, Search

HP = replace(TINY_HP, tuning_trials=3, tuning_seconds=100_000.0, anchor_trials=2)
PERSONAL = {
    "item_knn": {"neighbours": 100, "shrink": 10.0, "matrix": "binary"},
    "rp3beta": {"alpha": 1.0, "beta": 0.5, "neighbours": 100, "matrix": "binary"},
}


def searched() -> tuple[Search, Fit, dict[str, Any]]:
    """The search on the pairs shop's validation window, its default fit, and the simple lists."""
    channels = pairs_shop()
    catalog = build_catalog(channels.items)
    split = temporal_split(channels.interactions, HP.test_fraction)
    start, end = epoch_seconds(split.validation_start), epoch_seconds(split.test_start)
    budget = budget_of(HP, len(split.train))
    assert budget is not None
    search = Search(split.train, split.validation, catalog, start, 2 * start - end, HP, channels.users,
                    user_segments(channels.users), budget, lambda: 0.0)  # fmt: skip
    return search, search.fit(HP), stages.simple_lists(search, math.inf)


def test_the_fallback_serves_the_personal_anchor_that_beats_the_page() -> None:
    search, fit, lists = searched()
    # Given a page that scored below every anchor on validation (0: it lost)
    record, choices, _ = fallback(search, lists, 0.0, ServingChoices(), HP, fit, [], PERSONAL)
    validation = record["validation"]
    # Then the best anchor is personal (the lists cannot see a partner coming) and the model serves it
    best = max(("pop_recent", "trending", "item_knn", "rp3beta"), key=lambda name: validation[name])
    assert best in PERSONAL and record["engaged"] is True, record
    assert record["anchor"] == best and record["kind"] == "personal" and record["signal"] == "item_anchor"
    assert record["params"] == PERSONAL[best] and record["matrix"] == "binary"
    assert "personal anchor" in record["reason"] and 0.0 < record["weight"] <= 1.0
    # And its source gets places, and the validation model holds its weights (on the training window)
    assert choices.source_shares["item_anchor"] >= 0.05
    assert sum(choices.source_shares.values()) == pytest.approx(1.0)
    window = served_window(search.train, search.catalog, search.now)
    expected = anchor_table(window, best, PERSONAL[best])
    np.testing.assert_array_equal(fit.late.signals.item_anchor.indices, expected.indices)


def test_the_fallback_stays_off_when_the_page_beats_every_anchor() -> None:
    search, fit, lists = searched()
    # Given a page that beat every anchor on validation
    record, choices, _ = fallback(search, lists, 1.0, ServingChoices(), HP, fit, [], PERSONAL)
    # Then nothing is served, and the record says which anchor came closest
    assert record["engaged"] is False and record["best_list"] in PERSONAL
    assert choices == ServingChoices() and len(fit.late.signals.item_anchor.indices) == 0
    # And without personal anchors only the simple lists are weighed, as before
    record, _, _ = fallback(search, lists, 1.0, ServingChoices(), HP, fit, [])
    assert set(record["validation"]) == {"pipeline", "pop_recent", "trending"}


def test_a_page_that_no_blend_beats_keeps_its_order_and_no_table(monkeypatch: pytest.MonkeyPatch) -> None:
    search, fit, lists = searched()
    # Given a page below the best personal anchor, and no way of serving that anchor that scores above 0
    assert fit.late.manifest["fallback_to_anchor"] == {"engaged": False}
    monkeypatch.setattr(search, "page_value", lambda *args, **kwargs: 0.0)
    record, choices, _ = fallback(search, lists, 0.1, ServingChoices(), HP, fit, [], PERSONAL)
    # Then nothing is served, the record says why, and the validation model is left without the table
    assert record["engaged"] is False and record["best_list"] in PERSONAL
    assert "no blend of it does better" in record["reason"] and choices == ServingChoices()
    assert len(fit.late.signals.item_anchor.indices) == 0
    assert fit.late.manifest["fallback_to_anchor"] == {"engaged": False}  # as the search's fit had it


def test_the_table_holds_each_items_weights_strongest_first() -> None:
    # Given W with item 0 giving 1 0.2 and 2 0.9, item 2 giving 0 0.5
    weights = csr_matrix(np.array([[0.0, 0.2, 0.9], [0.0, 0.0, 0.0], [0.5, 0.0, 0.0]]))
    # When laid out as the model's table
    table = weights_table(weights)
    # Then row 0 lists 2 then 1, row 1 nothing, row 2 item 0; the scores are the history's sum over W
    assert table.of(0)[0].tolist() == [2, 1] and table.of(0)[1].tolist() == pytest.approx([0.9, 0.2])
    assert len(table.of(1)[0]) == 0 and table.of(2)[0].tolist() == [0]
    assert table.scores(np.array([0, 2]), np.ones(2)).tolist() == pytest.approx([0.5, 0.2, 0.9])
    np.testing.assert_allclose(table.matrix().toarray(), weights.toarray(), rtol=1e-6)


def test_a_model_gets_the_served_anchors_table_on_its_own_window_and_none_otherwise() -> None:
    search, fit, _ = searched()
    model = fit.late
    engaged = {"engaged": True, "anchor": "rp3beta", "params": PERSONAL["rp3beta"]}
    # When the served anchor is fitted into a model of the training window
    with_personal_anchor(model, search.train, search.catalog, search.now, engaged)
    # Then it holds RP3beta's weights on that window
    window = served_window(search.train, search.catalog, search.now)
    expected = anchor_table(window, "rp3beta", PERSONAL["rp3beta"])
    np.testing.assert_array_equal(model.signals.item_anchor.indptr, expected.indptr)
    assert len(expected.indices) > 0
    # And a fallback that is off, or serves a simple list, leaves it no table
    for record in ({**engaged, "engaged": False}, {"engaged": True, "anchor": "trending"}):
        with_personal_anchor(model, search.train, search.catalog, search.now, record)
        assert len(model.signals.item_anchor.indices) == 0


def test_the_job_publishes_the_personal_anchor_it_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the pairs shop, on which the page's rules stage is made to report a page that lost (0)
    page_stage = stages.page_stage
    monkeypatch.setattr(
        stages, "page_stage", lambda search, pages, value: (page_stage(search, pages, value)[0], 0.0)
    )
    # When the job runs
    evaluation = run(pairs_shop(), HP, tmp_path / "model", tmp_path / "output")
    fallback_record = evaluation["fallback_to_anchor"]
    # Then it serves the best personal anchor, with the settings the anchors' search chose on validation
    assert fallback_record["engaged"] is True and fallback_record["kind"] == "personal", fallback_record
    anchor = fallback_record["anchor"]
    assert fallback_record["params"] == evaluation["anchors"][anchor]["params"]
    # And the published model holds its weights fitted on all the data, and gives its source places
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert manifest["fallback_to_anchor"]["anchor"] == anchor
    assert manifest["source_shares"]["item_anchor"] >= 0.05
    signals = Signals.load(tmp_path / "model" / "signals.npz")
    channels = pairs_shop()
    catalog = build_catalog(channels.items)
    end = epoch_seconds(channels.interactions["timestamp"].max()) + 1.0
    expected = anchor_table(
        served_window(channels.interactions, catalog, end), anchor, fallback_record["params"]
    )
    np.testing.assert_array_equal(signals.item_anchor.indices, expected.indices)
    # And the report says which anchor is served
    report = (tmp_path / "output" / "report.md").read_text()
    assert f"a personal anchor (scored from each shopper's history), {anchor}" in report


def test_the_served_table_keeps_the_strongest_weights_each_item_gives() -> None:
    channels = pairs_shop()
    catalog = build_catalog(channels.items)
    window = served_window(channels.interactions, catalog, math.inf)
    params = {**PERSONAL["item_knn"], "neighbours": 30}
    # Given item-kNN on the pairs shop, whose items give weights to many others
    full = anchor_table(window, "item_knn", params, per_item=10_000)
    assert max(np.diff(full.indptr)) > 3
    # When the table keeps three per item
    capped = anchor_table(window, "item_knn", params, per_item=3)
    # Then each item keeps its three strongest, in the same order
    for row in range(len(catalog)):
        assert capped.of(row)[1].tolist() == full.of(row)[1][:3].tolist()


@pytest.mark.parametrize("anchor", ["item_knn", "rp3beta"])
@pytest.mark.parametrize("matrix", ["binary", "log_weight"])
def test_serving_scores_a_shopper_as_the_personal_anchor_itself_does(anchor: str, matrix: str) -> None:
    # Given a model of the training window holding the anchor's table, with event weights and a decay of
    # its own (a shopper's history weighs events other than the anchor's matrix does)
    search, _, _ = searched()
    hp = replace(HP, view_weight=0.1, click_weight=4.5, half_life_days=2.0)
    model, histories = fit_retrieval(search.train, search.catalog, search.now, hp)
    params = {**PERSONAL[anchor], "matrix": matrix}
    with_personal_anchor(
        model, search.train, search.catalog, search.now, {"engaged": True, "anchor": anchor, "params": params}
    )
    model.manifest[FALLBACK] = {"matrix": matrix}
    window = served_window(search.train, search.catalog, search.now)
    recommender = family(anchor).fit(window, params, tie_ranks(None, window.last_seen(), window.created_at))
    assert recommender.scorer is not None
    # When serving scores each shopper of the window (the state training and serving both build)
    users = [str(user) for user in window.user_ids]
    own = recommender.scorer(np.array([window.row_of()[user] for user in users], dtype=np.int64))
    served = np.array([shopper_scores(model, histories[user].state(model)) for user in users])
    # Then every item's score is the anchor's own
    np.testing.assert_allclose(served, own, rtol=1e-5, atol=1e-9)
    # And a profile written without the raw weights (the history's decayed cells) would not be, for log cells
    older = [replace(histories[user], raw_weights={}).state(model) for user in users]
    decayed = np.array([shopper_scores(model, state) for state in older])
    assert np.allclose(decayed, own, rtol=1e-5, atol=1e-9) == (matrix == "binary")
