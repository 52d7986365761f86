"""Temporal split: the model learns from the past and is judged on the future, as in production.

The time range ``[first, last]`` is cut twice: ``test`` is the last ``test_fraction`` of it,
``validation`` the slice of the same length just before (labels for the ranker and its early
stopping), ``train`` everything earlier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    validation_start: pd.Timestamp
    test_start: pd.Timestamp

    def summary(self) -> dict[str, Any]:
        before_test = pd.concat([self.train, self.validation])
        return {
            "train_rows": len(self.train),
            "validation_rows": len(self.validation),
            "test_rows": len(self.test),
            "validation_start": self.validation_start.isoformat(),
            "test_start": self.test_start.isoformat(),
            "test_users": int(self.test["user_id"].nunique()),
            "test_users_new": len(new_ids(before_test, self.test, "user_id")),
            "test_items_new": len(new_ids(before_test, self.test, "item_id")),
            "validation_users_new": len(new_ids(self.train, self.validation, "user_id")),
        }


def temporal_split(interactions: pd.DataFrame, test_fraction: float) -> Split:
    """``interactions`` sorted or not, with a UTC ``timestamp`` column."""
    if not 0.0 < test_fraction < 0.5:
        raise ValueError(f"test_fraction must be in (0, 0.5), got {test_fraction}")
    if interactions.empty:
        raise ValueError("cannot split an empty interactions frame")
    stamps = interactions["timestamp"]
    first, last = stamps.min(), stamps.max()
    window = (last - first) * test_fraction
    test_start = last - window
    validation_start = test_start - window
    return Split(
        train=interactions[stamps < validation_start],
        validation=interactions[(stamps >= validation_start) & (stamps < test_start)],
        test=interactions[stamps >= test_start],
        validation_start=validation_start,
        test_start=test_start,
    )


def new_ids(before: pd.DataFrame, after: pd.DataFrame, column: str) -> set[str]:
    """Ids seen in ``after`` but never in ``before`` (cold-start users or items at the cut)."""
    return set(after[column].unique()) - set(before[column].unique())
