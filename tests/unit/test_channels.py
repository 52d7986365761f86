"""Reading the training channels: formats, typing, rejected rows and refused channels."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from training.channels import ChannelError, parse_timestamps, read_channels

HEADER = "user_id,item_id,event_type,timestamp,session_id,quantity,price,campaign\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_csv_channel_is_typed_sorted_and_keeps_ids_as_text(tmp_path: Path) -> None:
    # Given two CSV files, out of time order, with zero-padded ids and an extra column
    write(
        tmp_path / "events" / "b.csv", HEADER + "00123,0042,purchase,2026-01-02T10:00:00Z,s1,2,9.5,spring\n"
    )
    with gzip.open(tmp_path / "events" / "a.csv.gz", "wt") as stream:
        stream.write(HEADER + "00123,0042,view,2026-01-01T09:00:00Z,s1,,,spring\n")
    write(tmp_path / "items" / "items.csv", "item_id,title,category,price,in_stock\n0042,Mug,,3.5,false\n")
    write(tmp_path / "users" / "users.csv", "user_id,country,age\n00123,GB,34\n")

    # When the channels are read
    channels = read_channels(tmp_path / "events", tmp_path / "items", tmp_path / "users")

    # Then ids keep their zeros, columns have the contract's types and rows are in time order
    events = channels.interactions
    assert events["user_id"].tolist() == ["00123", "00123"]
    assert events["item_id"].tolist() == ["0042", "0042"]
    assert events["event_type"].tolist() == ["view", "purchase"]
    assert str(events["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert events["quantity"].isna().tolist() == [True, False] and events["quantity"].iloc[1] == 2.0
    assert events["campaign"].tolist() == ["spring", "spring"]
    item = channels.items.iloc[0]
    assert (item["item_id"], item["title"], item["category"], item["price"]) == (
        "0042",
        "Mug",
        "unknown",
        3.5,
    )
    assert not item["in_stock"] and item["brand"] == "" and pd.isna(item["created_at"])
    assert channels.users is not None
    assert channels.users.to_dict("records") == [{"user_id": "00123", "country": "GB", "age": "34"}]
    report = channels.report
    assert (report["rows_read"], report["rows_kept"], report["rejected"]) == (2, 2, {})
    assert report["first_timestamp"] == "2026-01-01T09:00:00+00:00"
    assert len(report["files"]["interactions"]) == 2


def table_snapshot(path: Path, records: list[dict[str, object]]) -> None:
    """The items table as the training trigger exports it (merchandiser.publishing.export_catalogue)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress("".join(json.dumps(record) + "\n" for record in records).encode()))


def test_the_items_table_wins_field_by_field_over_the_rest_of_the_items_channel(tmp_path: Path) -> None:
    # Given a retailer's items file, and the items table: stock alone for a, a new price and title for b,
    # and an item c added by PUT /items that nobody has interacted with yet
    write(
        tmp_path / "events" / "e.csv",
        HEADER + "u1,a,view,2026-01-01T09:00:00Z,,,,\nu1,b,view,2026-01-02T09:00:00Z,,,,\n",
    )
    write(
        tmp_path / "items" / "items.csv",
        "item_id,title,category,price,created_at,in_stock\na,Alpha,hats,10,2025-01-01,true\nb,Beta,bags,20,2025-01-01,true\n",
    )
    stored = {
        "revision": 1,
        "updated_at": "2026-11-30T00:00:00+00:00",
        "first_stored_at": "2026-11-30T00:00:00+00:00",
    }
    table_snapshot(
        tmp_path / "items" / "items-table.jsonl.gz",
        [
            {"item_id": "a", "in_stock": False, "promoted": True, **stored},
            {"item_id": "b", "title": "Beta 2", "price": 25.5, **stored},
            {"item_id": "c", "title": "New hat", "category": "hats", **stored},
        ],
    )
    # When the channels are read
    channels = read_channels(tmp_path / "events", tmp_path / "items")
    # Then each table field replaces the file's, the others are kept, and the new item is in the catalogue
    items = channels.items.set_index("item_id")
    assert (items.loc["a", "title"], bool(items.loc["a", "in_stock"]), items.loc["a", "price"]) == (
        "Alpha",
        False,
        10.0,
    )
    assert (items.loc["b", "title"], items.loc["b", "price"], bool(items.loc["b", "in_stock"])) == (
        "Beta 2",
        25.5,
        True,
    )
    assert (items.loc["c", "title"], items.loc["c", "category"], items.loc["c", "brand"]) == (
        "New hat",
        "hats",
        "",
    )
    # And an item first stored by PUT is dated by it; one the file dates keeps its date
    assert items.loc["c", "created_at"] == pd.Timestamp("2026-11-30", tz="UTC")
    assert items.loc["a", "created_at"] == pd.Timestamp("2025-01-01", tz="UTC")
    assert "revision" not in items.columns and channels.report["items_from_table"] == 3
    # And staff's promotion is serving's (the overlay's), not an attribute the models learn from
    assert "promoted" not in items.columns


def test_an_empty_items_table_changes_nothing(tmp_path: Path) -> None:
    write(tmp_path / "events" / "e.csv", HEADER + "u1,a,view,2026-01-01T09:00:00Z,,,,\n")
    write(tmp_path / "items" / "items.csv", "item_id,title\na,Alpha\n")
    table_snapshot(tmp_path / "items" / "items-table.jsonl.gz", [])
    channels = read_channels(tmp_path / "events", tmp_path / "items")
    assert channels.items["title"].tolist() == ["Alpha"] and channels.report["items_from_table"] == 0


def test_parquet_channel_reads_like_csv(tmp_path: Path) -> None:
    # Given a parquet file whose numeric user ids became floats (a gap made pandas upcast)
    frame = pd.DataFrame(
        {
            "user_id": [17850.0, 12583.0],
            "item_id": ["85123A", "22423"],
            "event_type": ["purchase", "view"],
            "timestamp": pd.to_datetime(["2026-01-01 10:00", "2026-01-01 09:00"]),  # naive: UTC
            "value": [None, None],
        }
    )
    (tmp_path / "events").mkdir()
    frame.to_parquet(tmp_path / "events" / "part-0.parquet")

    # When it is read
    channels = read_channels(tmp_path / "events")

    # Then the ids are the integers' text and the naive times are taken as UTC
    assert channels.interactions["user_id"].tolist() == ["12583", "17850"]
    assert channels.interactions["timestamp"].iloc[0] == pd.Timestamp("2026-01-01 09:00", tz="UTC")


def test_partitioned_json_lines_archive_is_read_and_redeliveries_counted_once(tmp_path: Path) -> None:
    # Given the event archive: date partitions of gzipped JSON lines, one event delivered twice
    def event(event_id: str, user: str, kind: str, when: str) -> dict[str, object]:
        return {"schema_version": 1, "event_id": event_id, "user_id": user, "item_id": "007",
                "event_type": kind, "timestamp": when, "context": {"surface": "home"}}  # fmt: skip

    day_one = tmp_path / "events" / "year=2026" / "month=11" / "day=21" / "events-1.jsonl.gz"
    day_two = tmp_path / "events" / "year=2026" / "month=11" / "day=22" / "events-2.jsonl.gz"
    day_one.parent.mkdir(parents=True)
    day_two.parent.mkdir(parents=True)
    first = [
        event("e1", "0001", "view", "2026-11-21T23:59:00+00:00"),
        event("e2", "0001", "click", "2026-11-21T23:59:30Z"),
    ]
    second = [
        event("e2", "0001", "click", "2026-11-21T23:59:30Z"),
        event("e3", "0002", "view", "2026-11-22T08:00:00Z"),
    ]
    for path, events in ((day_one, first), (day_two, second)):
        with gzip.open(path, "wt") as stream:
            stream.write("".join(json.dumps(item) + "\n" for item in events))

    # When the archive directory is read as the interactions channel
    channels = read_channels(tmp_path / "events")

    # Then every partition is read, the redelivered event counts once and extra fields are kept
    events = channels.interactions
    assert events["event_id"].tolist() == ["e1", "e2", "e3"]
    assert events["user_id"].tolist() == ["0001", "0001", "0002"]
    assert events["context"].iloc[0] == {"surface": "home"}
    assert channels.report["duplicates_dropped"] == 1
    assert channels.report["rows_read"] == 4 and channels.report["rows_kept"] == 3


def test_rows_breaking_the_contract_are_removed_and_counted_by_reason(tmp_path: Path) -> None:
    # Given one good row of each kind and one row per kind of fault
    rows = [
        "u1,i1,view,2026-01-01T10:00:00Z,,,,",
        "u1,i1,rating,2026-01-01T10:01:00Z,,,,",  # a rating without a value
        "u2,i2,View,1767261600,,,,",  # epoch seconds, event type in another case
        "u3,i3,purchase,1767261600000,,,,",  # epoch milliseconds
        "u4,i4,purchase,2026-01-01 11:00:00+01:00,,,,",
        "u5,i5,purchase,2026-01-01,,,,",
        "u6,i6,purchase,2026-01-01T12:00:00Z,,,,",
        "u7,i7,view,yesterday,,,,",  # bad timestamp
        "u8,i8,like,2026-01-01T10:00:00Z,,,,",  # unknown event type
        " ,i9,view,2026-01-01T10:00:00Z,,,,",  # empty user id
        "u9,,view,2026-01-01T10:00:00Z,,,,",  # empty item id
    ]
    write(tmp_path / "events" / "interactions.csv", HEADER + "\n".join(rows) + "\n")

    # When the channel is read
    channels = read_channels(tmp_path / "events")

    # Then the faulty rows are gone and each is counted under its reason
    assert channels.report["rejected"] == {
        "empty_user_id": 1,
        "empty_item_id": 1,
        "unknown_event_type": 1,
        "bad_timestamp": 1,
        "rating_without_value": 1,
    }
    assert sorted(channels.interactions["user_id"]) == ["u1", "u2", "u3", "u4", "u5", "u6"]
    assert channels.report["rows_read"] == 11 and channels.report["rows_kept"] == 6


def test_items_missing_from_the_items_file_are_added_with_defaults(tmp_path: Path) -> None:
    # Given interactions on two items and an items file that knows only one of them
    write(
        tmp_path / "events" / "e.csv", HEADER + "u1,known,view,2026-01-01,,,,\nu1,new,view,2026-01-02,,,,\n"
    )
    write(
        tmp_path / "items" / "i.csv",
        "item_id,title,category,brand,price,created_at\nknown,Cup,kitchen,Acme,4,2025-01-01\n",
    )

    # When the channels are read
    items = read_channels(tmp_path / "events", tmp_path / "items").items.set_index("item_id")

    # Then the unknown item is there with the contract's defaults
    assert items.loc["new", "title"] == "" and items.loc["new", "category"] == "unknown"
    assert items.loc["new", "brand"] == "" and pd.isna(items.loc["new", "price"])
    assert pd.isna(items.loc["new", "created_at"]) and items.loc["new", "in_stock"]
    assert items.loc["known", "created_at"] == pd.Timestamp("2025-01-01", tz="UTC")


def test_one_flat_directory_can_hold_all_three_channels(tmp_path: Path) -> None:
    # Given interactions.csv, items.csv and users.csv side by side
    write(tmp_path / "interactions.csv", HEADER + "u1,i1,view,2026-01-01,,,,\n")
    write(tmp_path / "items.csv", "item_id,title\ni1,Cup\n")
    write(tmp_path / "users.csv", "user_id,country\nu1,DE\n")

    # When the same directory is given for every channel
    channels = read_channels(tmp_path, tmp_path, tmp_path)

    # Then each channel reads only its own file
    assert channels.report["rejected"] == {} and channels.items["title"].tolist() == ["Cup"]
    assert channels.users is not None and channels.users["country"].tolist() == ["DE"]


def test_missing_required_columns_are_named(tmp_path: Path) -> None:
    # Given an interactions file without event type and timestamp
    write(tmp_path / "events" / "interactions.csv", "user_id,item_id\nu1,i1\n")

    # When it is read, then the error names the file and both columns
    with pytest.raises(
        ChannelError, match=re.escape("interactions.csv is missing required columns: event_type, timestamp")
    ):
        read_channels(tmp_path / "events")


def test_a_channel_where_most_rows_break_the_contract_is_refused(tmp_path: Path) -> None:
    # Given two rows with bad timestamps out of three
    rows = "u1,i1,view,2026-01-01,,,,\nu1,i1,view,01/02/2026,,,,\nu1,i1,view,soon,,,,\n"
    write(tmp_path / "events" / "interactions.csv", HEADER + rows)

    # When it is read, then it is refused as probably the wrong file
    with pytest.raises(ChannelError, match="2 of 3 interaction rows"):
        read_channels(tmp_path / "events")


def test_a_channel_without_data_files_is_refused(tmp_path: Path) -> None:
    # Given a channel directory holding only a marker file
    write(tmp_path / "events" / "_SUCCESS", "")

    # When it is read, then the error says there is no data file
    with pytest.raises(ChannelError, match="holds no data file"):
        read_channels(tmp_path / "events")


def test_timestamps_from_iso_text_and_epoch_numbers() -> None:
    # Given the same instant written five ways, and one unreadable value
    text = pd.Series(["2026-01-01T10:00:00Z", "2026-01-01 10:00:00", "2026-01-01T11:00:00+01:00",
                      "1767261600", "1767261600000", "not a time"])  # fmt: skip

    # When they are parsed
    parsed = parse_timestamps(text)

    # Then all but the last are that instant in UTC, and numbers work as numbers too
    expected = pd.Timestamp("2026-01-01T10:00:00Z")
    assert parsed.iloc[:5].eq(expected).all() and pd.isna(parsed.iloc[5])
    assert parse_timestamps(pd.Series([1767261600, 1767261600000])).eq(expected).all()
