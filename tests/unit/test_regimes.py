"""The benchmark's regimes: each reads as channels and has the statistical shape its docstring states."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from training.channels import Channels, read_channels
from training.datasets.regimes import REGIMES, generate

SCALE = 0.2  # a fifth of the default shoppers: the shapes hold at any scale
DAY_SECONDS = 86_400


@pytest.fixture(scope="module")
def shops(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Channels]:
    result = {}
    for regime in REGIMES:
        out = tmp_path_factory.mktemp(regime)
        generate(regime, out, scale=SCALE, seed=3)
        result[regime] = read_channels(out, out, out)
    return result


def shares(events: pd.DataFrame) -> dict[str, float]:
    return {
        str(kind): float(share) for kind, share in events["event_type"].value_counts(normalize=True).items()
    }


def density(channels: Channels) -> float:
    pairs = channels.interactions[["user_id", "item_id"]].drop_duplicates()
    return len(pairs) / (channels.interactions["user_id"].nunique() * len(channels.items))


@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_every_regime_reads_as_channels_without_rejects(shops: dict[str, Channels], regime: str) -> None:
    report = shops[regime].report
    assert report["rejected"] == {} and report["rows_kept"] > 5000
    assert report["items_added_from_interactions"] == 0  # every item is in the items file
    assert shops[regime].users is not None and report["users_file_rows"] >= report["users"]


def test_dense_repeat_is_mostly_repeat_purchases_in_a_dense_matrix(shops: dict[str, Channels]) -> None:
    events = shops["dense_repeat"].interactions
    bought = events[events["event_type"] == "purchase"]
    assert shares(events)["purchase"] >= 0.7
    assert len(bought) / bought["user_id"].nunique() >= 50  # purchases per shopper
    assert bought.duplicated(["user_id", "item_id"]).mean() >= 0.6  # bought before by the same shopper
    assert density(shops["dense_repeat"]) >= 0.05


def test_sparse_views_are_short_view_heavy_histories_over_a_large_catalogue(
    shops: dict[str, Channels],
) -> None:
    events = shops["sparse_views"].interactions
    per_shopper = events.groupby("user_id")["timestamp"].agg(["min", "max", "size"])
    span_days = (per_shopper["max"] - per_shopper["min"]).dt.total_seconds() / DAY_SECONDS
    kinds = shares(events)
    assert len(shops["sparse_views"].items) >= 10_000
    assert 70 <= per_shopper["size"].mean() <= 130  # about a hundred events each
    assert span_days.median() <= 4.0 and span_days.max() <= 5.0  # over a few days
    assert kinds["view"] >= 0.8 and 0.01 <= kinds["purchase"] <= 0.02
    assert density(shops["sparse_views"]) <= 0.005


def test_new_releases_take_over_the_best_sellers(shops: dict[str, Channels]) -> None:
    events, items = shops["new_releases"].interactions, shops["new_releases"].items
    stamps = events["timestamp"]
    first, last = stamps.min(), stamps.max()
    created = items.set_index("item_id")["created_at"]
    test = events[stamps >= last - (last - first) * 0.1]  # the evaluation's test window
    early = events[stamps < first + (last - first) / 2]
    age_days = (test["timestamp"] - test["item_id"].map(created)).dt.total_seconds() / DAY_SECONDS
    top_early = set(early["item_id"].value_counts().index[:20])
    top_test = set(test["item_id"].value_counts().index[:20])
    assert (created >= first).mean() >= 0.4  # the catalogue keeps growing
    assert (age_days <= 14).mean() >= 0.5  # what sells at the end was released lately
    assert len(top_early & top_test) <= 4  # the best sellers of the first half are gone


def test_the_same_seed_writes_the_same_files(tmp_path: Path) -> None:
    for attempt in ("a", "b"):
        generate("new_releases", tmp_path / attempt, scale=0.05, seed=11)
    for name in ("interactions.csv", "items.csv", "users.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_unknown_regimes_and_bad_scales_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown regime"):
        generate("flash_sale", tmp_path)
    with pytest.raises(ValueError, match="scale must be positive"):
        generate("dense_repeat", tmp_path, scale=0.0)
