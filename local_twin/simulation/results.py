"""What a simulation did, counted exactly: per (experiment, variant), per surface, and in total.

The counts use the report's names: ``users`` (distinct shoppers shown at least one page of the group),
``impressions`` (pages served, one per ``recommendation_id``), ``clicks``, ``add_to_carts``,
``purchases`` (events the twin accepted, attributed to their page by ``recommendation_id``) and
``revenue`` (sum of price x quantity of those purchases, to the cent).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_twin.simulation.browsing import Impression, SimulationConfig

COUNTED_EVENTS = {"click": "clicks", "add_to_cart": "add_to_carts", "purchase": "purchases"}
COUNT_FIELDS = ("users", "impressions", "clicks", "add_to_carts", "purchases", "revenue")


@dataclass
class SimulationResult:
    config: SimulationConfig
    truth: str  # which ground truth the shoppers followed
    run_id: str  # every event id starts with it
    start: str  # the simulated clock's start
    impressions: list[Impression]
    events: list[dict[str, Any]]  # exactly the events the twin accepted, in shopper order
    failures: list[str]
    retried: list[str]  # calls sent again: a page asked for twice may have been served twice
    shoppers_done: int
    shoppers_skipped: int  # not started before max_seconds
    seconds: float

    def counts(self, by: Sequence[str] = ("experiment", "variant")) -> list[dict[str, Any]]:
        """One row per group (the ``by`` attributes of the page), with the counts of ``COUNT_FIELDS``."""
        group_of = {
            page.recommendation_id: tuple(getattr(page, name) for name in by) for page in self.impressions
        }
        users: dict[tuple[Any, ...], set[str]] = {}
        rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        for page in self.impressions:
            key = group_of[page.recommendation_id]
            row = rows.setdefault(key, {**dict(zip(by, key, strict=True)), **dict.fromkeys(COUNT_FIELDS, 0)})
            users.setdefault(key, set()).add(page.user_id)
            row["impressions"] += 1
        revenue: dict[tuple[Any, ...], float] = {}
        for event in self.events:
            key = group_of[event["recommendation_id"]]
            rows[key][COUNTED_EVENTS[event["event_type"]]] += 1
            if event["event_type"] == "purchase":
                revenue[key] = revenue.get(key, 0.0) + event["price"] * event["quantity"]
        for key, row in rows.items():
            row["users"] = len(users[key])
            row["revenue"] = round(revenue.get(key, 0.0), 2)
            row["ctr"] = row["clicks"] / row["impressions"]
        return [rows[key] for key in sorted(rows, key=lambda key: [(v is not None, str(v)) for v in key])]

    def totals(self) -> dict[str, Any]:
        (row,) = self.counts(by=()) or [{**dict.fromkeys(COUNT_FIELDS, 0), "ctr": 0.0}]
        return row

    def summary(self) -> dict[str, Any]:
        """The ``--json`` output."""
        behaviour = self.config.behaviour
        return {
            "run_id": self.run_id,
            "shoppers": self.config.shoppers,
            "shoppers_done": self.shoppers_done,
            "shoppers_skipped": self.shoppers_skipped,
            "seed": self.config.seed,
            "start": self.start,
            "policy": self.config.policy,
            "truth": self.truth,
            "examination": behaviour.curve_name,
            "seconds": round(self.seconds, 2),
            "failures": self.failures,
            "retried": self.retried,
            "counts": self.counts(),
            "by_surface": self.counts(by=("surface",)),
            "totals": self.totals(),
        }

    def write_log(self, path: Path) -> int:
        """One JSON line per impression: the page as shown and the truth of each position; returns lines."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as log:
            for page in self.impressions:
                log.write(json.dumps(page.to_json()) + "\n")
        return len(self.impressions)
