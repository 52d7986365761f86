"""A tiny shop with a known structure, trained once per test session by the real training modules."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from training.channels import Channels
from training.fit import Hyperparameters
from training.job import run

CATEGORIES = ("shoes", "hats", "bags")
N_USERS, N_ITEMS = 150, 45
N_NEW_ITEMS = 3  # in the catalogue, never interacted with: placed by their attributes
START = pd.Timestamp("2026-01-01", tz="UTC")


def category_of(item: int) -> str:
    return CATEGORIES[item % 3]


def shop(seed: int = 3) -> Channels:
    """Each user shops one category (user % 3) 90% of the time, over 60 days; a session is a user's day.
    Users live in "north" (even) or "south" (odd); the south favours the last items of a category."""
    rng = np.random.default_rng(seed)
    records = []
    for user in range(N_USERS):
        taste = user % 3
        for _ in range(40):
            category = taste if rng.random() < 0.9 else int(rng.integers(3))
            # lower items of a category are more popular, in the south the higher ones
            rank = int(min(rng.geometric(0.15) - 1, N_ITEMS // 3 - 1))
            item = category + 3 * (rank if user % 2 == 0 else N_ITEMS // 3 - 1 - rank)
            event = rng.choice(["view", "click", "purchase"], p=[0.6, 0.3, 0.1])
            when = START + pd.Timedelta(seconds=float(rng.uniform(0, 60 * 86_400)))
            session = f"u{user:03d}-{when:%m%d}"
            records.append((f"u{user:03d}", f"i{item:02d}", event, when, session))
    interactions = pd.DataFrame(
        records, columns=["user_id", "item_id", "event_type", "timestamp", "session_id"]
    )
    interactions = interactions.sort_values("timestamp", kind="stable").reset_index(drop=True)
    every = range(N_ITEMS + N_NEW_ITEMS)
    items = pd.DataFrame(
        {
            "item_id": [f"i{item:02d}" for item in every],
            "title": [f"Item {item} {category_of(item)}" for item in every],
            "category": [category_of(item) for item in every],
            "brand": ["acme"] * len(every),
            "price": [10.0 + item for item in every],
            "created_at": [START - pd.Timedelta(days=item) for item in every],
            "in_stock": [True] * len(every),
        }
    )
    users = pd.DataFrame(
        {
            "user_id": [f"u{user:03d}" for user in range(N_USERS)],
            "country": ["north" if user % 2 == 0 else "south" for user in range(N_USERS)],
        }
    )
    report = {
        "rows_read": len(interactions),
        "rows_kept": len(interactions),
        "rejected": {},
        "users": N_USERS,
        "items": N_ITEMS + N_NEW_ITEMS,
        "first_timestamp": interactions["timestamp"].iloc[0].isoformat(),
        "last_timestamp": interactions["timestamp"].iloc[-1].isoformat(),
    }
    return Channels(interactions=interactions, items=items, users=users, report=report)


# Small and fast: the tiny shop's models train in seconds
TINY_HP = Hyperparameters(
    factors=8,
    iterations=10,
    test_fraction=0.2,
    candidates=30,
    ranker_candidates=30,
    early_stopping_rounds=10,
    tuning_trials=0,  # the defaults, known to the tests; tests/unit/test_tuning.py tunes this shop
)


def pairs_shop(seed: int = 11) -> Channels:
    """Every item has a partner (the other row of its pair); a shopper who touches an item touches its
    partner two to six days later; items are picked uniformly (no popular item, no lasting taste): the item
    anchors see what comes next, the simple lists do not."""
    rng = np.random.default_rng(seed)
    records = []
    for user in range(N_USERS):
        for _ in range(4):
            day = float(rng.uniform(0, 58))
            first = int(rng.integers(N_ITEMS - 1))
            partner = first ^ 1 if (first ^ 1) < N_ITEMS else first - 1
            for item, when_day in ((first, day), (partner, day + float(rng.uniform(2, 6)))):
                when = START + pd.Timedelta(days=when_day)
                event = rng.choice(["view", "click", "purchase"], p=[0.6, 0.3, 0.1])
                records.append((f"u{user:03d}", f"i{item:02d}", event, when, f"u{user:03d}-{when:%m%d}"))
    columns = ["user_id", "item_id", "event_type", "timestamp", "session_id"]
    interactions = pd.DataFrame(records, columns=columns).sort_values("timestamp", kind="stable")
    return replace(shop(), interactions=interactions.reset_index(drop=True))


def train_tiny_model(root: Path, hp: Hyperparameters = TINY_HP) -> Path:
    run(shop(), hp, root / "model", root / "output")
    return root / "model"
