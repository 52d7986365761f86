"""The simulator's ground truth: the synthetic shop's own latent model, or a taste model fitted from data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from local_twin.simulation.truth import (
    FittedTruth,
    SyntheticTruth,
    UnknownShopperError,
    truth_for_data,
)
from training.channels import read_channels
from training.datasets.synthetic_shop import PARAMETERS_FILE, generate


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shop")
    generate(out, n_users=300, n_items=120, n_days=90, seed=13, start="2026-02-01")
    return out


def test_the_synthetic_truth_is_the_shop_that_was_written(shop: Path) -> None:
    # Given the shop's directory, when its truth is read back
    truth = truth_for_data(shop)
    # Then it is the generator's own latent model, for the same shoppers and items, at the same prices
    assert isinstance(truth, SyntheticTruth) and "seed 13" in truth.description
    items = pd.read_csv(shop / "items.csv")
    users = pd.read_csv(shop / "users.csv")
    assert truth.item_ids == items["item_id"].tolist() and truth.user_ids == users["user_id"].tolist()
    assert truth.latent.categories == items["category"].tolist()
    np.testing.assert_allclose(truth.price(truth.item_ids), items["price"].to_numpy())


def test_synthetic_relevance_is_the_click_rate_of_the_shops_own_shoppers(shop: Path) -> None:
    # Given every item a shopper of the written shop viewed, and whether that view led to a click
    truth = truth_for_data(shop)
    events = pd.read_csv(shop / "interactions.csv", dtype=str)
    views = events[events["event_type"] == "view"][["user_id", "item_id", "session_id"]]
    clicks = events[events["event_type"] == "click"][["session_id", "item_id"]].assign(clicked=1)
    viewed = views.merge(clicks, on=["session_id", "item_id"], how="left").fillna({"clicked": 0})
    # When the truth's relevance of each viewed (shopper, item) pair is averaged
    relevance = np.concatenate(
        [
            truth.relevance(user, group["item_id"].tolist())
            for user, group in viewed.groupby("user_id", sort=False)
        ]
    )
    observed = viewed.groupby("user_id", sort=False)["clicked"].apply(list).explode().astype(float).to_numpy()
    # Then it predicts the observed click rate (within 4 standard errors), and ranks clicked views higher
    assert len(relevance) == len(observed) > 3000
    assert relevance.min() >= 0.0 and relevance.max() <= 1.0
    error = np.sqrt(relevance.mean() * (1 - relevance.mean()) / len(observed))
    assert abs(observed.mean() - relevance.mean()) < 4 * error
    assert relevance[observed == 1].mean() > relevance[observed == 0].mean() + 0.03


def write_fitted_shop(out: Path) -> Path:
    """Two shoppers: one buys kitchen things (mostly the kettle), one books; the lamp nobody touches."""
    out.mkdir(parents=True, exist_ok=True)
    rows = (
        [("cook", "kettle", "purchase")] * 6
        + [("cook", "pan", "view")]
        + [("reader", "novel", "purchase")] * 4
    )
    rows += [("reader", "kettle", "view"), ("reader", "atlas", "view")]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type"])
    frame["timestamp"] = pd.date_range("2026-01-01", periods=len(frame), freq="h", tz="UTC").strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    frame.to_csv(out / "interactions.csv", index=False)
    items = pd.DataFrame(
        {
            "item_id": ["kettle", "pan", "novel", "atlas", "lamp"],
            "category": ["kitchen", "kitchen", "books", "books", "home"],
            "price": [30.0, 20.0, 10.0, None, 50.0],
        }
    )
    items.to_csv(out / "items.csv", index=False)
    return out


def test_a_fitted_truth_follows_each_shoppers_categories_then_popularity(tmp_path: Path) -> None:
    # Given a shop that is not the synthetic one
    truth = truth_for_data(write_fitted_shop(tmp_path / "shop"))
    assert isinstance(truth, FittedTruth) and "fitted" in truth.description
    cook = dict(zip(truth.item_ids, truth.relevance("cook", truth.item_ids), strict=True))
    reader = dict(zip(truth.item_ids, truth.relevance("reader", truth.item_ids), strict=True))
    # Then each shopper prefers their own category, and within it the more popular item
    assert cook["kettle"] > cook["pan"] > cook["novel"]
    assert reader["novel"] > reader["atlas"] > reader["pan"]
    assert all(0.0 < value < 1.0 for value in [*cook.values(), *reader.values()])
    # And an item outside the data is worth the shopper's mean, priced at the catalogue's median
    unknown = truth.relevance("cook", ["brand-new"])[0]
    assert unknown == pytest.approx(np.mean(list(cook.values())))
    assert truth.price(["atlas", "brand-new", "kettle"]).tolist() == [25.0, 25.0, 30.0]


def test_a_shopper_outside_the_truth_is_refused(shop: Path) -> None:
    with pytest.raises(UnknownShopperError):
        truth_for_data(shop).relevance("nobody", ["i00001"])


def test_the_parameters_file_is_not_read_as_a_channel(shop: Path) -> None:
    # Given the shop's parameters file beside its channel files
    assert (shop / PARAMETERS_FILE).is_file()
    # When the directory is read as all three channels, Then no channel reads it
    report = read_channels(shop, shop, shop).report
    read = [Path(name).name for files in report["files"].values() for name in files]
    assert sorted(read) == ["interactions.csv", "items.csv", "users.csv"]
