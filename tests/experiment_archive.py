"""Builds archive files the way the twin's Firehose writes them, for the experiment report's tests:
``events/`` and ``impressions/`` under ``year=YYYY/month=MM/day=DD/`` (the record's day), GZIP JSON lines."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from merchandiser.experiments import parse_experiment

T0 = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def impression(
    recommendation_id: str,
    user_id: str | None,
    variant: str,
    served_at: datetime,
    items: Sequence[str],
    experiment: str = "exp",
    teams: Sequence[str] | None = None,
    surface: str = "home",
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "recommendation_id": recommendation_id,
        "user_id": user_id,
        "surface": surface,
        "experiment": experiment,
        "variant": variant,
        "model_version": "m-1",
        "timestamp": stamp(served_at),
        "items": [{"item_id": item, "position": i, "source": "ann"} for i, item in enumerate(items)],
    }
    if teams is not None:
        record["interleaving"] = list(teams)
    return record


def event(
    event_id: str,
    user_id: str,
    item_id: str,
    event_type: str,
    happened_at: datetime,
    recommendation_id: str | None = None,
    **details: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schema_version": 1,
        "event_id": event_id,
        "user_id": user_id,
        "item_id": item_id,
        "event_type": event_type,
        "timestamp": stamp(happened_at),
        **details,
    }
    if recommendation_id is not None:
        record["recommendation_id"] = recommendation_id
    return record


def write_records(
    root: Path, table: str, records: Iterable[dict[str, Any] | str], name: str = "part", garbage: bool = False
) -> list[Path]:
    """One file per day partition of the records' timestamps; ``garbage`` adds lines that are not events."""
    by_day: dict[str, list[str]] = defaultdict(list)
    for record in records:
        line = record if isinstance(record, str) else json.dumps(record)
        moment = datetime.fromisoformat(json.loads(line)["timestamp"].replace("Z", "+00:00"))
        by_day[f"year={moment:%Y}/month={moment:%m}/day={moment:%d}"].append(line)
    paths = []
    for day, lines in by_day.items():
        if garbage:
            lines = [*lines, "not json {", '{"hello": "world"}']
        path = root / table / day / f"{name}.jsonl.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
        paths.append(path)
    return paths


HOLDOUT_SPLIT = parse_experiment(
    {
        "name": "exp",
        "surfaces": ["home"],
        "variants": [
            {"name": "personalized", "share": 0.5},
            {"name": "holdout", "share": 0.5, "policy": "popularity"},
        ],
    }
)


def known_archive(root: Path) -> None:
    """Every case attribution must tell apart, once each (see the expected counts in the test)."""
    pages = [
        impression("r1", "u1", "holdout", T0, ["a", "b", "c"]),
        impression("r2", "u1", "holdout", T0 + HOUR, ["a", "d"]),
        impression("r3", "u2", "personalized", T0, ["e", "f"]),
        impression("r4", "u3", "personalized", T0, ["e", "g"]),
        impression("r5", "u4", "x", T0, ["a"], experiment="other"),
        impression("r6", "u5", "production", T0, ["a"], experiment=""),
    ]
    write_records(root, "impressions", pages)
    write_records(root, "impressions", [pages[2]], name="replayed")  # the same page delivered twice
    events = [
        event("e1", "u1", "a", "click", T0 + MINUTE, "r1"),
        event("e2", "u1", "a", "add_to_cart", T0 + 2 * MINUTE, "r1"),
        event("e3", "u1", "a", "purchase", T0 + 3 * DAY, "r1", price=10.0, quantity=2),  # within 7 days
        event("e4", "u2", "e", "click", T0 + 5 * MINUTE, "r3"),
        event("e5", "u2", "f", "click", T0 + 25 * HOUR, "r3"),  # a click after 24 h: outside
        event("e6", "u3", "g", "purchase", T0 + 8 * DAY, "r4", price=5.0),  # a purchase after 7 days
        event("e7", "u2", "x", "click", T0),  # no recommendation id
        event("e8", "u3", "x", "click", T0, "r-unknown"),  # a recommendation id no page has
        event("e9", "u3", "x", "purchase", T0, ""),  # an empty one is none
        event("e10", "u9", "e", "click", T0, "r4"),  # someone else's page (a shared link)
        event("e11", "u4", "a", "click", T0, "r5"),  # another experiment's page: not this report's
        event("e12", "u1", "a", "view", T0, "r1"),  # views are not outcomes
        event("e13", "u1", "d", "click", T0 + HOUR - 10 * MINUTE, "r2"),  # 10 min before its page
        event("e14", "u3", "e", "add_to_cart", T0 + 23 * HOUR, "r4"),
        event("e15", "u2", "e", "purchase", T0 + DAY, "r3", quantity=1),  # no price: revenue 0
        event("e16", "u1", "b", "click", T0 - 2 * MINUTE, "r1"),  # 2 min early: within the clock skew
    ]
    write_records(root, "events", events, garbage=True)
    write_records(root, "events", [events[0], events[2]], name="replayed")  # at-least-once delivery
