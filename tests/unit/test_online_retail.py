"""Converting the UCI Online Retail log: what survives the filters, aggregation and categories."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from training.channels import read_channels
from training.datasets.online_retail import DEFAULT_SOURCE, category_of, convert

COLUMNS = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]
UK, HOLDER, BAG, OPENING = (
    "United Kingdom",
    "WHITE HANGING HEART T-LIGHT HOLDER",
    "JUMBO BAG RED RETROSPOT",
    "2010-12-01 08:26:00",
)
LINES = [
    ("536365", "85123A", HOLDER + " ", 6, OPENING, 2.55, "17850", UK),
    ("536365", "85123A", HOLDER, 2, OPENING, 2.55, "17850", UK),  # the same item again on the invoice
    ("536365", "22423", BAG, 1, OPENING, 3.00, "17850", UK),
    ("C536379", "22423", BAG, -1, "2010-12-01 09:41:00", 3.00, "17850", UK),  # cancellation
    ("536380", "POST", "POSTAGE", 1, "2010-12-01 09:45:00", 18.00, "12583", "France"),  # not a product
    ("536381", "22423", BAG, 10, "2010-12-01 10:00:00", 1.65, "", UK),  # guest
    ("536382", "22424", "SPACEBOY LUNCH BOX", -5, "2010-12-01 10:05:00", 1.95, "12583", "France"),
    ("536383", "22425", "FREE GIFT BAG", 1, "2010-12-01 10:06:00", 0.00, "12583", "France"),
    ("A563185", "B", "Adjust bad debt", 1, "2011-08-12 14:50:00", 11062.06, "", UK),
    ("536390", " 85123a", HOLDER, 12, "2010-12-02 11:00:00", 2.95, "12583", "France"),
]  # fmt: skip


@pytest.fixture
def tiny_log(tmp_path: Path) -> Path:
    source = tmp_path / "online_retail.csv.gz"
    pd.DataFrame(LINES, columns=COLUMNS).to_csv(source, index=False, compression="gzip")
    return source


def test_only_customer_purchases_of_products_survive_and_repeats_are_summed(
    tiny_log: Path, tmp_path: Path
) -> None:
    # Given a log with a repeated line, a cancellation, postage, a guest, a negative quantity,
    # a free item and a bad-debt adjustment
    # When it is converted
    summary = convert(tiny_log, tmp_path / "out")

    # Then three purchases remain, the repeated holder line summed into one of 8 units
    events = pd.read_csv(tmp_path / "out" / "interactions.csv", dtype=str)
    assert events[["user_id", "item_id", "session_id", "quantity", "timestamp"]].values.tolist() == [
        ["17850", "85123A", "536365", "8", "2010-12-01T08:26:00Z"],
        ["17850", "22423", "536365", "1", "2010-12-01T08:26:00Z"],
        ["12583", "85123A", "536390", "12", "2010-12-02T11:00:00Z"],
    ]
    assert set(events["event_type"]) == {"purchase"}
    assert summary["dropped"] == {
        "no_customer": 2,
        "cancellation_or_adjustment": 1,
        "non_positive_quantity": 1,
        "non_positive_price": 1,
        "non_product_code": 1,
    }
    assert (summary["rows"], summary["users"], summary["items"]) == (3, 2, 2)


def test_items_and_users_are_described_from_the_kept_lines(tiny_log: Path, tmp_path: Path) -> None:
    # Given the tiny log, when it is converted
    convert(tiny_log, tmp_path / "out")

    # Then items carry the stripped title, its product type, the median price and the first sale
    items = pd.read_csv(tmp_path / "out" / "items.csv", dtype=str, keep_default_na=False).set_index("item_id")
    holder = items.loc["85123A"]
    assert (holder["title"], holder["category"], holder["price"]) == (
        "WHITE HANGING HEART T-LIGHT HOLDER",
        "holder",
        "2.55",
    )
    assert holder["created_at"] == "2010-12-01T08:26:00Z" and holder["brand"] == ""
    assert items.loc["22423", "category"] == "bag"
    users = pd.read_csv(tmp_path / "out" / "users.csv", dtype=str)
    assert users.values.tolist() == [["12583", "France"], ["17850", "United Kingdom"]]


@pytest.mark.parametrize(
    ("description", "category"),
    [
        ("WHITE HANGING HEART T-LIGHT HOLDER", "holder"),
        ("JUMBO BAG RED RETROSPOT", "bag"),
        ("SET OF 3 CAKE TINS PANTRY DESIGN ", "tin"),
        ("PACK OF 72 RETROSPOT CAKE CASES", "case"),
        ("SET 7 BABUSHKA NESTING BOXES", "box"),
        ("PAPER DOILIES", "doily"),
        ("RED HANGING HEART", "heart"),
        ("12 PENCILS SMALL TUBE RED RETROSPOT", "tube"),
        ("", "other"),
    ],
)
def test_the_category_is_the_product_type_named_last(description: str, category: str) -> None:
    # Given a description, when its category is derived, then it is the product type it names
    assert category_of(description) == category


@pytest.mark.skipif(not DEFAULT_SOURCE.exists(), reason="the UCI Online Retail file is not at hand")
def test_the_real_log_converts_to_readable_channels(tmp_path: Path) -> None:
    # Given the real log, when it is converted
    summary = convert(DEFAULT_SOURCE, tmp_path)

    # Then it has about 4,3xx customers and 3,6xx products, and reads back without rejects
    assert 4000 <= summary["users"] <= 4400 and 3000 <= summary["items"] <= 4000
    assert 350_000 <= summary["rows"] <= 400_000
    assert summary["span"] == ["2010-12-01T08:26:00Z", "2011-12-09T12:50:00Z"]
    channels = read_channels(tmp_path, tmp_path, tmp_path)
    assert channels.report["rejected"] == {} and channels.report["rows_kept"] == summary["rows"]
    assert channels.report["items_added_from_interactions"] == 0
    assert (channels.items["category"] != "unknown").all()
