"""The browsing loop: shoppers open pages through the API, react (``shoppers.react``) and send events.

A session: the shopper arrives on the simulated clock, opens between ``home_pages`` home pages (the
policy's route: ``recommendations`` is ``GET /users/{id}/recommendations?surface=home``, ``popular`` is
``GET /items/popular``); after a page with clicks, sometimes the similar items of one clicked item
(``GET /items/{id}/similar?user_id=``); each page's clicks and add-to-carts go out in one ``POST /events``,
and the purchases in one more at checkout. Every event carries the page's ``recommendation_id``, the
item's ``position`` (0 first), a deterministic ``event_id`` and a timestamp on the simulated clock.

What the simulator counts is what the twin accepted: a flag on a logged item (clicked, carted,
purchased) is set only once its event got a 202. A page or event call that still fails after the
retries is recorded as a failure and ends that shopper's session. Every retry is recorded too: a page
asked for again after no answer may have been served (and logged by the twin) twice, and an event
batch sent again is deduplicated downstream by its event ids; exact comparisons need none of either.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import numpy as np

from local_twin.simulation.client import ShopApi, call_with_retries
from local_twin.simulation.shoppers import Behaviour, react
from local_twin.simulation.truth import ShopTruth

POLICIES = ("recommendations", "popular")
CART_DELAY_SECONDS = 15.0
CHECKOUT_SECONDS = (30.0, 180.0)


@dataclass(frozen=True)
class SimulationConfig:
    shoppers: int = 100
    seed: int = 7
    start: datetime | None = None  # the simulated clock's start; None: now
    policy: str = "recommendations"
    k: int = 10
    behaviour: Behaviour = field(default_factory=Behaviour)
    workers: int = 4
    max_seconds: float = 600.0  # wall clock: shoppers not started by then are skipped
    arrival_seconds: float = 2.0  # mean gap between two shoppers' arrivals on the simulated clock
    retry_pause_seconds: float = 0.05  # before a retry, doubled each time

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; known: {', '.join(POLICIES)}")
        if not 1 <= self.shoppers <= 1_000_000:
            raise ValueError("shoppers must be between 1 and 1,000,000")
        if not 1 <= self.k <= 100 or not 1 <= self.workers <= 32:
            raise ValueError("k must be in 1..100 and workers in 1..32")
        if self.max_seconds <= 0 or self.arrival_seconds < 0 or self.retry_pause_seconds < 0:
            raise ValueError(
                "max_seconds must be positive, arrival_seconds and retry_pause_seconds not negative"
            )

    def pause_before_retry(self, attempt: int) -> None:
        if self.retry_pause_seconds > 0:
            time.sleep(self.retry_pause_seconds * 2**attempt)


@dataclass
class ShownItem:
    item_id: str
    position: int
    source: str
    relevance: float
    examined: bool
    clicked: bool = False
    carted: bool = False
    purchased: bool = False
    quantity: int = 0
    price: float = 0.0


@dataclass
class Impression:
    """One served page and the truth of what the shopper did with it."""

    shopper: int
    user_id: str
    recommendation_id: str
    experiment: str | None
    variant: str
    surface: str
    policy: str
    model_version: str | None
    shown_at: str
    items: list[ShownItem]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ShopperOutcome:
    impressions: list[Impression] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # exactly what the twin accepted
    failures: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)  # calls sent again after a 5xx or no answer


def is_page(page: dict[str, Any]) -> bool:
    """A page the simulator can act on: a recommendation id and items that each have an item id."""
    items = page.get("items")
    return (
        isinstance(page.get("recommendation_id"), str)
        and isinstance(items, list)
        and all(isinstance(item, dict) and isinstance(item.get("item_id"), str) for item in items)
    )


def iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"


def run_id(config: SimulationConfig, start_epoch: float) -> str:
    """The event ids' prefix: the same seed, start and policy give the same ids (a replay dedups)."""
    return f"sim{config.seed}-{int(start_epoch)}-{config.policy[:3]}"


class ShopperSession:
    def __init__(
        self,
        index: int,
        user_id: str,
        arrival_epoch: float,
        api: ShopApi,
        truth: ShopTruth,
        config: SimulationConfig,
        prefix: str,
    ):
        self.index, self.user_id = index, user_id
        self.api, self.truth, self.config = api, truth, config
        self.behaviour = config.behaviour
        self.rng = np.random.default_rng([config.seed, index])
        self.clock = arrival_epoch
        self.prefix = f"{prefix}-{index:05d}"
        self.sequence = 0
        self.outcome = ShopperOutcome()
        self.checkout_basket: list[tuple[Impression, ShownItem, int]] = []

    def run(self) -> ShopperOutcome:
        low, high = self.behaviour.home_pages
        user, k = quote(self.user_id, safe=""), self.config.k
        home = (
            f"/users/{user}/recommendations?k={k}&surface=home"
            if self.config.policy == "recommendations"
            else f"/items/popular?k={k}"
        )
        for _ in range(int(self.rng.integers(low, high + 1))):
            impression = self.browse(home)
            if impression is None:
                return self.outcome
            clicked = [item for item in impression.items if item.clicked]
            opens_similar, which = self.rng.random(2)
            if clicked and opens_similar < self.behaviour.similar_probability:
                item = quote(clicked[int(which * len(clicked))].item_id, safe="")
                if self.browse(f"/items/{item}/similar?k={k}&user_id={user}") is None:
                    return self.outcome
        self.checkout()
        return self.outcome

    def browse(self, path: str) -> Impression | None:
        status, page = call_with_retries(lambda: self.api.get(path), pause=self._before_retry(f"GET {path}"))
        if status != 200 or not is_page(page):
            self.outcome.failures.append(f"GET {path}: {status} {page.get('message') or page}"[:500])
            return None
        items = page["items"][: self.config.k]
        item_ids = [str(item["item_id"]) for item in items]
        relevance = self.truth.relevance(self.user_id, item_ids)
        reaction = react(relevance, self.behaviour, self.rng)
        click_delays = 2.0 + self.rng.exponential(8.0, size=len(items))
        impression = Impression(
            shopper=self.index,
            user_id=self.user_id,
            recommendation_id=page["recommendation_id"],
            experiment=page.get("experiment"),
            variant=str(page.get("variant", "production")),
            surface=str(page.get("surface", "")),
            policy=self.config.policy,
            model_version=page.get("model_version"),
            shown_at=iso(self.clock),
            items=[
                ShownItem(item_id, position, str(item.get("source", "")), float(r), bool(seen))
                for position, (item_id, item, r, seen) in enumerate(
                    zip(item_ids, items, relevance, reaction.examined, strict=True)
                )
            ],
        )
        self.outcome.impressions.append(impression)
        # The shopper opens each clicked item in turn (and carts it there) before coming back to the page.
        events, carted, moment = [], [], self.clock
        for position in np.flatnonzero(reaction.clicked):
            moment += float(click_delays[position])
            events.append(self._event("click", impression, int(position), moment))
            if reaction.carted[position]:
                moment += CART_DELAY_SECONDS
                events.append(self._event("add_to_cart", impression, int(position), moment))
                carted.append(int(position))
        self.clock = moment + float(self.rng.exponential(self.behaviour.dwell_seconds))
        if events and not self._send(events):
            return None
        for event in events:
            shown = impression.items[event["position"]]
            shown.clicked, shown.carted = True, shown.carted or event["event_type"] == "add_to_cart"
        self.checkout_basket += [
            (impression, impression.items[p], int(reaction.quantity[p]))
            for p in carted
            if reaction.purchased[p]
        ]
        return impression

    def checkout(self) -> None:
        if not self.checkout_basket:
            return
        self.clock += float(self.rng.uniform(*CHECKOUT_SECONDS))
        prices = self.truth.price([shown.item_id for _, shown, _ in self.checkout_basket])
        events = [
            {
                **self._event("purchase", impression, shown.position, self.clock),
                "quantity": quantity,
                "price": round(float(price), 2),
            }
            for (impression, shown, quantity), price in zip(self.checkout_basket, prices, strict=True)
        ]
        if self._send(events):
            for (_, shown, quantity), event in zip(self.checkout_basket, events, strict=True):
                shown.purchased, shown.quantity, shown.price = True, quantity, event["price"]

    def _event(self, kind: str, impression: Impression, position: int, moment: float) -> dict[str, Any]:
        self.sequence += 1
        return {
            "event_id": f"{self.prefix}-{self.sequence:03d}",
            "user_id": self.user_id,
            "item_id": impression.items[position].item_id,
            "event_type": kind,
            "session_id": self.prefix,
            "recommendation_id": impression.recommendation_id,
            "position": position,
            "timestamp": iso(moment),
        }

    def _before_retry(self, call: str) -> Callable[[int], None]:
        def pause(attempt: int) -> None:
            self.outcome.retried.append(call)
            self.config.pause_before_retry(attempt)

        return pause

    def _send(self, events: list[dict[str, Any]]) -> bool:
        status, answer = call_with_retries(
            lambda: self.api.post("/events", {"events": events}), pause=self._before_retry("POST /events")
        )
        if status != 202 or answer.get("accepted") != len(events):
            self.outcome.failures.append(f"POST /events ({len(events)}): {status} {answer.get('message')}")
            return False
        self.outcome.events += events
        return True


def arrivals(config: SimulationConfig, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """Which shoppers come (distinct users of the truth) and when, from the run's own seeded stream."""
    if config.shoppers > n_users:
        raise ValueError(f"{config.shoppers} shoppers asked for, but the truth knows only {n_users} shoppers")
    rng = np.random.default_rng(config.seed)
    users = rng.choice(n_users, size=config.shoppers, replace=False)
    offsets = np.cumsum(rng.exponential(config.arrival_seconds, size=config.shoppers))
    return users, offsets


def now_epoch() -> float:
    return float(int(time.time()))
