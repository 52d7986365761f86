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
START = pd.Timestamp("2026-01-01", tz="UTC")


def category_of(item: int) -> str:
    return CATEGORIES[item % 3]


def shop(seed: int = 3) -> Channels:
    """Each user shops one category (user % 3) 90% of the time, over 60 days."""
    rng = np.random.default_rng(seed)
    records = []
    for user in range(N_USERS):
        taste = user % 3
        for _ in range(40):
            category = taste if rng.random() < 0.9 else int(rng.integers(3))
            # lower items of a category are more popular
            item = category + 3 * int(min(rng.geometric(0.15) - 1, N_ITEMS // 3 - 1))
            event = rng.choice(["view", "click", "purchase"], p=[0.6, 0.3, 0.1])
            when = START + pd.Timedelta(seconds=float(rng.uniform(0, 60 * 86_400)))
            records.append((f"u{user:03d}", f"i{item:02d}", event, when))
    interactions = pd.DataFrame(records, columns=["user_id", "item_id", "event_type", "timestamp"])
    interactions = interactions.sort_values("timestamp", kind="stable").reset_index(drop=True)
    items = pd.DataFrame(
        {
            "item_id": [f"i{item:02d}" for item in range(N_ITEMS)],
            "title": [f"Item {item}" for item in range(N_ITEMS)],
            "category": [category_of(item) for item in range(N_ITEMS)],
            "brand": ["acme"] * N_ITEMS,
            "price": [10.0 + item for item in range(N_ITEMS)],
            "created_at": [START - pd.Timedelta(days=item) for item in range(N_ITEMS)],
            "in_stock": [True] * N_ITEMS,
        }
    )
    report = {
        "rows_read": len(interactions),
        "rows_kept": len(interactions),
        "rejected": {},
        "users": N_USERS,
        "items": N_ITEMS,
        "first_timestamp": interactions["timestamp"].iloc[0].isoformat(),
        "last_timestamp": interactions["timestamp"].iloc[-1].isoformat(),
    }
    return Channels(interactions=interactions, items=items, users=None, report=report)


def train_tiny_model(root: Path) -> Path:
    hp = Hyperparameters(factors=8, iterations=10, test_fraction=0.2, candidates=30, early_stopping_rounds=10)
    run(shop(), hp, root / "model", root / "output")
    return root / "model"
