"""A tiny shop with a known structure, trained once per test session by the real training modules."""

from __future__ import annotations

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
)


def train_tiny_model(root: Path) -> Path:
    run(shop(), TINY_HP, root / "model", root / "output")
    return root / "model"
