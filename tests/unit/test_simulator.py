"""The shopper simulator's behaviour on an in-process stub of the API: determinism, the position curve,
exact counts, the events' contract, a better policy winning, and what happens when calls fail."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from itertools import count
from typing import Any

import numpy as np
import pytest

from local_twin.simulation.browsing import SimulationConfig
from local_twin.simulation.results import SimulationResult
from local_twin.simulation.shoppers import EXAMINATION_CURVES, Behaviour, examination_curve, react
from local_twin.simulation.truth import ShopTruth, SyntheticTruth
from local_twin.simulator import simulate
from merchandiser.api import IncomingEvent
from merchandiser.schemas import ID_PATTERN
from tests.fake_shop_api import EXPERIMENT, FakeShopApi
from training.datasets.synthetic_shop import latent_truth

START = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
COUNTED = {"click": "clicks", "add_to_cart": "add_to_carts", "purchase": "purchases"}


class ConstantTruth(ShopTruth):
    """Every item equally relevant to everyone: click-through by position is then r * e(position)."""

    description = "constant"

    def __init__(self, relevance: float, n_users: int = 3000, n_items: int = 40):
        super().__init__(
            [f"u{n}" for n in range(n_users)], [f"i{n}" for n in range(n_items)], np.full(n_items, 5.0)
        )
        self.value = relevance

    def _relevance_rows(self, user: int, items: np.ndarray) -> np.ndarray:
        return np.full(len(items), self.value)


@pytest.fixture(scope="module")
def truth() -> SyntheticTruth:
    return SyntheticTruth(latent_truth(n_users=240, n_items=90, n_days=20, seed=4))


def run(
    truth: ShopTruth, api: FakeShopApi | None = None, **settings: Any
) -> tuple[SimulationResult, FakeShopApi]:
    api = api or FakeShopApi(truth)
    defaults: dict[str, Any] = {
        "shoppers": 120,
        "seed": 3,
        "start": START,
        "workers": 1,
        "retry_pause_seconds": 0,
    }
    config = SimulationConfig(**{**defaults, **settings})
    return simulate(api, truth, config), api


def test_the_same_seed_sends_the_same_events_and_another_seed_does_not(truth: SyntheticTruth) -> None:
    # Given two runs with seed 3 and one with seed 4, each against a fresh stub
    first, _ = run(truth)
    again, _ = run(truth)
    other, _ = run(truth, seed=4)
    # Then seed 3 replays event for event, page for page; seed 4 picks other shoppers and does other things
    assert first.events == again.events and len(first.events) > 100
    assert [page.to_json() for page in first.impressions] == [page.to_json() for page in again.impressions]
    assert first.counts() == again.counts()
    assert {e["user_id"] for e in other.events} != {e["user_id"] for e in first.events}
    assert {e["event_id"] for e in other.events}.isdisjoint(e["event_id"] for e in first.events)


@pytest.mark.parametrize(
    ("curve", "relevance"),
    [
        ("inverse_sqrt", 0.8),
        ("inverse", 1.0),
        (lambda position: np.maximum(0.9 - 0.04 * position, 0.05), 0.6),
    ],
    ids=["inverse_sqrt", "inverse", "custom-linear"],
)
def test_click_through_by_position_follows_the_examination_curve(curve: object, relevance: float) -> None:
    # Given items all equally relevant and shoppers who never leave the home pages
    behaviour = Behaviour(curve=curve, similar_probability=0.0)  # type: ignore[arg-type]
    result, _ = run(ConstantTruth(relevance), shoppers=2000, behaviour=behaviour, workers=4)
    # When click-through and examination are measured per position over ~5,000 pages
    shown, clicks, examined = Counter[int](), Counter[int](), Counter[int]()
    for page in result.impressions:
        for item in page.items:
            shown[item.position] += 1
            clicks[item.position] += item.clicked
            examined[item.position] += item.examined
    expected = examination_curve(curve)(np.arange(10.0))  # type: ignore[arg-type]
    # Then each is the curve (times the relevance for clicks) within four standard errors
    for position in range(10):
        n, e = shown[position], float(expected[position])
        assert n > 4000
        assert abs(examined[position] / n - e) < 4 * np.sqrt(e * (1 - e) / n) + 1e-9
        p = relevance * e
        assert abs(clicks[position] / n - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-9, position


def test_the_counts_are_exactly_what_the_api_served_and_received(truth: SyntheticTruth) -> None:
    # Given a run with two variants of one experiment, similar-items pages and four shoppers at once
    result, api = run(truth, shoppers=200, workers=4)
    # When the stub's own records are tallied per (experiment, variant) of the page each event quotes
    expected: dict[tuple[str | None, str], Counter[str]] = defaultdict(Counter)
    users: dict[tuple[str | None, str], set[str]] = defaultdict(set)
    revenue: dict[tuple[str | None, str], float] = defaultdict(float)
    group = {rid: (page["experiment"], page["variant"]) for rid, page in api.pages.items()}
    for rid in api.pages:
        expected[group[rid]]["impressions"] += 1
    for shown in result.impressions:
        users[(shown.experiment, shown.variant)].add(shown.user_id)
    for event in api.events:
        expected[group[event["recommendation_id"]]][COUNTED[event["event_type"]]] += 1
        revenue[group[event["recommendation_id"]]] += event.get("price", 0.0) * event.get("quantity", 0)
    # Then the simulator's counts equal them, group by group, and add up to its totals
    rows = {(row["experiment"], row["variant"]): row for row in result.counts()}
    assert set(rows) == {(EXPERIMENT, "personalized"), (EXPERIMENT, "holdout"), (None, "production")}
    for key, row in rows.items():
        for name in ("impressions", "clicks", "add_to_carts", "purchases"):
            assert row[name] == expected[key][name], (key, name)
        assert row["users"] == len(users[key]) > 0
        assert row["revenue"] == pytest.approx(revenue[key], abs=0.005)
    totals = result.totals()
    for name in ("impressions", "clicks", "add_to_carts", "purchases"):
        assert totals[name] == sum(row[name] for row in rows.values())
    assert totals["users"] == len({page.user_id for page in result.impressions}) == 200
    # And the logged truth says the same: one flag per event
    flags = Counter(
        name
        for page in result.impressions
        for item in page.items
        for name in ("clicked", "carted", "purchased")
        if getattr(item, name)
    )
    assert (flags["clicked"], flags["carted"], flags["purchased"]) == (
        totals["clicks"], totals["add_to_carts"], totals["purchases"]
    )  # fmt: skip
    assert totals["purchases"] > 0 and not result.failures


def test_every_event_quotes_its_page_and_position_and_keeps_the_contract(truth: SyntheticTruth) -> None:
    result, api = run(truth, shoppers=150)
    clicked: set[tuple[str, int]] = set()
    carted: set[tuple[str, int]] = set()
    last_time: dict[str, datetime] = {}
    for event in result.events:  # in each shopper's order
        parsed = IncomingEvent.model_validate(event)  # the API's own request model
        page = api.pages[event["recommendation_id"]]
        assert page["items"][event["position"]]["item_id"] == event["item_id"]
        assert page["user_id"] in (None, event["user_id"])
        assert re.match(ID_PATTERN, event["event_id"]) and event["event_id"].startswith(result.run_id)
        assert parsed.timestamp is not None and parsed.timestamp >= START
        assert parsed.timestamp >= last_time.get(event["user_id"], START)
        last_time[event["user_id"]] = parsed.timestamp
        key = (event["recommendation_id"], event["position"])
        if event["event_type"] == "click":
            clicked.add(key)
        elif event["event_type"] == "add_to_cart":
            assert key in clicked
            carted.add(key)
        else:
            assert key in carted and event["quantity"] >= 1
            assert event["price"] == round(float(truth.price([event["item_id"]])[0]), 2)
    assert len({e["event_id"] for e in result.events}) == len(result.events) == len(api.events)


def test_the_oracle_beats_the_popular_list_for_the_same_shoppers(truth: SyntheticTruth) -> None:
    # Given the same shoppers (same seed) shown oracle pages in one run and the popular list in another
    behaviour = Behaviour(similar_probability=0.0)
    oracle, _ = run(truth, shoppers=200, behaviour=behaviour)
    popular, _ = run(truth, shoppers=200, behaviour=behaviour, policy="popular")

    # Then they are the same shoppers and the oracle's click-through is higher for most of them
    def ctr_by_user(result: SimulationResult) -> dict[str, float]:
        pages, clicks = Counter[str](), Counter[str]()
        for page in result.impressions:
            pages[page.user_id] += 1
            clicks[page.user_id] += sum(item.clicked for item in page.items)
        return {user: clicks[user] / pages[user] for user in pages}

    better, worse = ctr_by_user(oracle), ctr_by_user(popular)
    assert set(better) == set(worse)
    difference = np.array([better[user] - worse[user] for user in better])
    assert difference.mean() / (difference.std(ddof=1) / np.sqrt(len(difference))) > 5


def test_a_refused_event_batch_is_retried_and_counted_once(truth: SyntheticTruth) -> None:
    # Given a stub that answers 503 to the first POST /events only
    answers = count()
    api = FakeShopApi(
        truth, failing=lambda method, _: 503 if method == "POST" and next(answers) == 0 else None
    )
    result, _ = run(truth, api=api, shoppers=30)
    clean, clean_api = run(truth, shoppers=30)
    # Then the batch went once more, and the run sent and counted what a run without the refusal did
    assert not result.failures and result.retried == ["POST /events"] and clean.retried == []
    assert api.calls["POST /events"] == clean_api.calls["POST /events"] + 1
    assert result.events == clean.events
    assert [event["event_id"] for event in api.events] == [event["event_id"] for event in result.events]
    assert result.counts() == clean.counts()


def test_events_the_twin_keeps_refusing_are_failures_and_not_counted(truth: SyntheticTruth) -> None:
    # Given a stub whose POST /events always answers 503
    api = FakeShopApi(truth, failing=lambda method, _: 503 if method == "POST" else None)
    result, _ = run(truth, api=api, shoppers=20)
    # Then each shopper stopped at its first page with clicks, nothing is counted as done, and it says why
    assert result.failures and all(
        "POST /events" in failure and "503" in failure for failure in result.failures
    )
    assert result.events == [] and result.totals()["clicks"] == 0
    assert not any(item.clicked for page in result.impressions for item in page.items)
    assert api.calls["POST /events"] == 3 * len(result.failures)  # three attempts each


def test_a_page_refused_with_a_4xx_is_not_retried_and_not_counted(truth: SyntheticTruth) -> None:
    api = FakeShopApi(truth, failing=lambda method, path: 404 if method == "GET" else None)
    result, _ = run(truth, api=api, shoppers=10)
    assert len(result.failures) == 10 and all("404" in failure for failure in result.failures)
    assert result.impressions == [] and result.totals()["impressions"] == 0
    assert sum(calls for call, calls in api.calls.items() if call.startswith("GET")) == 10


def test_shoppers_not_started_within_max_seconds_are_skipped(truth: SyntheticTruth) -> None:
    # Given a wall clock that jumps a minute per reading and a 90 s bound
    ticks = count()
    api = FakeShopApi(truth)
    config = SimulationConfig(shoppers=5, seed=3, start=START, workers=1, max_seconds=90.0)
    result = simulate(api, truth, config, clock=lambda: 60.0 * next(ticks))
    # Then the first shopper ran (read at 60 s), the rest were skipped and counted as such
    assert (result.shoppers_done, result.shoppers_skipped) == (1, 4)
    assert {page.shopper for page in result.impressions} == {0}


def test_more_shoppers_than_the_truth_knows_is_refused(truth: SyntheticTruth) -> None:
    with pytest.raises(ValueError, match="knows only 240 shoppers"):
        run(truth, shoppers=241)


@pytest.mark.parametrize(
    "settings",
    [{"policy": "random"}, {"shoppers": 0}, {"k": 0}, {"workers": 99}, {"max_seconds": 0}],
)
def test_bad_settings_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        replace(SimulationConfig(), **settings)


@pytest.mark.parametrize(
    "behaviour",
    [{"curve": "steep"}, {"curve": lambda p: 2.0 + 0 * p}, {"cart_probability": 1.5}, {"home_pages": (3, 1)}],
)
def test_bad_behaviours_are_refused(behaviour: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Behaviour(**behaviour)  # type: ignore[arg-type]


def test_a_reaction_clicks_only_what_was_examined_and_buys_only_what_was_carted() -> None:
    rng = np.random.default_rng(0)
    for curve in EXAMINATION_CURVES:
        reaction = react(np.linspace(0, 1, 50), Behaviour(curve=curve), rng)
        assert not (reaction.clicked & ~reaction.examined).any()
        assert not (reaction.carted & ~reaction.clicked).any()
        assert not (reaction.purchased & ~reaction.carted).any()
        assert ((reaction.quantity >= 1) == reaction.purchased).all()


class MalformedPages:
    """An API whose pages lack what the simulator needs."""

    def __init__(self, page: dict[str, Any]):
        self.page = page

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        return 200, self.page

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        raise AssertionError("nothing to send about a page that could not be read")


@pytest.mark.parametrize(
    "page",
    [{"items": []}, {"recommendation_id": "r1"}, {"recommendation_id": "r1", "items": [{"score": 1.0}]}],
    ids=["no-recommendation-id", "no-items", "item-without-id"],
)
def test_a_page_the_simulator_cannot_read_is_a_failure(truth: SyntheticTruth, page: dict[str, Any]) -> None:
    config = SimulationConfig(shoppers=3, seed=3, start=START, workers=1)
    result = simulate(MalformedPages(page), truth, config)
    assert len(result.failures) == 3 and all(failure.startswith("GET /users/") for failure in result.failures)
    assert result.impressions == [] and result.events == []
