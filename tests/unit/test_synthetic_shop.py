"""The synthetic shop: deterministic, causal in time, and in the channel contract."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from training.channels import read_channels
from training.datasets.synthetic_shop import generate

START, N_ITEMS = "2026-03-01", 120
FILES = ("interactions.csv", "items.csv", "users.csv")


def small_shop(out: Path, seed: int) -> None:
    generate(out, n_users=300, n_items=N_ITEMS, n_days=21, seed=seed, start=START)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shop")
    small_shop(out, seed=11)
    return out


def test_same_seed_writes_identical_files_and_another_seed_does_not(shop: Path, tmp_path: Path) -> None:
    # Given the shop written with seed 11, when it is written again with seeds 11 and 12
    small_shop(tmp_path / "again", seed=11)
    small_shop(tmp_path / "other", seed=12)

    # Then seed 11 gives the same bytes and seed 12 gives other interactions
    for name in FILES:
        assert (tmp_path / "again" / name).read_bytes() == (shop / name).read_bytes()
    assert (tmp_path / "other" / "interactions.csv").read_bytes() != (shop / "interactions.csv").read_bytes()


def test_the_shop_reads_as_channels_without_rejects(shop: Path) -> None:
    # Given the written shop, when its directory is read for all three channels
    channels = read_channels(shop, shop, shop)

    # Then nothing is rejected, every item is in the items file and the funnel narrows
    report = channels.report
    assert report["rejected"] == {} and report["rows_kept"] > 1000
    assert report["items_added_from_interactions"] == 0 and report["items"] == N_ITEMS
    assert channels.users is not None and set(channels.users.columns) == {
        "user_id",
        "country",
        "age_band",
        "device",
    }
    counts = channels.interactions["event_type"].value_counts()
    assert counts["view"] > counts["click"] > counts["add_to_cart"] > counts["purchase"] > 0
    bought = channels.interactions[channels.interactions["event_type"] == "purchase"]
    assert (bought["quantity"] >= 1).all() and (bought["price"] > 0).all()
    assert channels.interactions["session_id"].notna().all()


def test_a_purchase_follows_a_view_of_that_item_in_the_same_session(shop: Path) -> None:
    # Given the interactions, in file order
    events = pd.read_csv(shop / "interactions.csv", dtype=str, keep_default_na=False)
    events["at"] = pd.to_datetime(events["timestamp"], utc=True)

    # When each later funnel step is matched with the first view of its item in its session
    views = events[events["event_type"] == "view"].groupby(["session_id", "item_id"])["at"].min()
    later = events[events["event_type"].isin(["click", "add_to_cart", "purchase"])]
    first_view = later.join(views.rename("viewed_at"), on=["session_id", "item_id"])

    # Then every click, add to cart and purchase has an earlier view of the item in that session
    assert first_view["viewed_at"].notna().all()
    assert (first_view["viewed_at"] < first_view["at"]).all()


def test_no_item_is_seen_before_it_exists_and_new_items_keep_arriving(shop: Path) -> None:
    # Given the interactions and the catalogue
    events = pd.read_csv(shop / "interactions.csv", dtype=str)
    items = pd.read_csv(shop / "items.csv", dtype=str).set_index("item_id")
    created = pd.to_datetime(items["created_at"], utc=True)

    # When each event is compared with its item's creation time
    at = pd.to_datetime(events["timestamp"], utc=True)
    item_created = created.reindex(events["item_id"]).to_numpy()

    # Then none comes first, and items created during the window do get interactions
    assert (at.to_numpy() >= item_created).all()
    start = pd.Timestamp(START, tz="UTC")
    arrived = set(created[created > start].index)
    assert arrived and events["item_id"].isin(arrived).any()
