"""Segment popularity from one pass over the events equals each segment's own events' popularity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from training.channels import read_channels
from training.datasets.synthetic_shop import generate
from training.events import epoch_seconds
from training.fit import (
    Hyperparameters,
    build_catalog,
    item_popularity,
    kept_segments,
    segment_popularity,
    user_segments,
)


def test_each_segment_scores_as_its_own_events_do(tmp_path: Path) -> None:
    generate(tmp_path, 300, 60, 10, 5)
    channels = read_channels(tmp_path / "interactions.csv", tmp_path / "items.csv", tmp_path / "users.csv")
    catalog = build_catalog(channels.items)
    interactions = channels.interactions
    # an event on an item the catalogue lacks is skipped by both ways
    stray = interactions.iloc[:1].assign(item_id="not-in-the-catalogue")
    interactions = pd.concat([stray, interactions], ignore_index=True)
    segments = user_segments(channels.users)
    hp = Hyperparameters(min_segment_users=5)
    now = float(epoch_seconds(interactions["timestamp"]).max()) + 60.0
    found = segment_popularity(interactions, catalog, segments, now, hp)
    kept = kept_segments(set(interactions["user_id"].unique()), segments, hp)
    assert len(found) == len(kept) >= 2
    for key, users in kept.items():
        own = interactions[interactions["user_id"].isin(users)]
        np.testing.assert_array_equal(found[key], item_popularity(own, catalog, now, hp.half_life_days))
