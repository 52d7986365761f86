"""Reading the training channels (SageMaker channel directories) into checked, typed frames.

A channel is a directory of ``*.csv``, ``*.csv.gz``, ``*.parquet``, ``*.jsonl`` or ``*.jsonl.gz``
files, possibly in a tree of date partitions (``year=2026/month=11/day=22/*.jsonl.gz``, the event
archive). Every file is read and the frames are concatenated. Rows that break the contract are
removed and counted by reason, never dropped silently; a channel where most rows break it is
refused, because it is probably the wrong file.

The catalogue: the items channel's files (a retailer's CSV, ...) and ``items-table.jsonl.gz``, the items
table as the training trigger scanned it: the table is the catalogue's source of truth, so its fields win,
field by field (a record that holds only ``in_stock`` keeps the title of the other files), and its items
without interactions are in the catalogue (placed by their attributes).

Erased shoppers: ``_tombstones/<sha256 of user_id>.json`` files inside the interactions channel (written by
DELETE /users/{id}, see ``merchandiser.store.archive``) remove that shopper's events up to the erasure
time; the report says how many rows and shoppers that removed, and ``tombstones_until`` (the latest
erasure honoured: the publish step leaves out the profiles of shoppers erased after it).
"""

from __future__ import annotations

import gzip
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from merchandiser.schemas import EVENT_TYPES
from merchandiser.store import ITEMS_TABLE_SNAPSHOT, TOMBSTONES_DIR, user_hash
from training.catalogue import marked_as_table, merge_items_table

logger = logging.getLogger(__name__)

CHANNEL_NAMES: tuple[str, ...] = ("interactions", "items", "users")
DATA_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".parquet", ".jsonl", ".jsonl.gz")
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "interactions": ("user_id", "item_id", "event_type", "timestamp"),
    "items": ("item_id",),
    "users": ("user_id",),
}
MAX_REJECTED_FRACTION = 0.5
TIMESTAMP_DTYPE = "datetime64[ns, UTC]"

_OPTIONAL_IDS = ("session_id", "recommendation_id")
_NUMERIC = ("quantity", "price", "value")
_FALSE_WORDS = frozenset({"false", "0", "no", "n", "f", "0.0"})


class ChannelError(ValueError):
    """A channel cannot be used for training: missing, empty, or not in the contract."""


@dataclass(frozen=True)
class Channels:
    """The checked channels: interactions sorted by time, one row per item, users if given, and a report."""

    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None
    report: dict[str, Any]


def read_channels(interactions: Path, items: Path | None = None, users: Path | None = None) -> Channels:
    """Read, check and type the three training channels (``items`` and ``users`` are optional)."""
    raw, interaction_files = _read_channel(Path(interactions), "interactions")
    events, counts = _clean_interactions(raw)
    events, erased = drop_erased(events, read_tombstones(Path(interactions)))
    counts = {**counts, "rows_kept": len(events), **erased}
    item_frame, item_files = (None, []) if items is None else _read_channel(Path(items), "items")
    if item_frame is not None:
        item_frame["item_id"] = _as_id(item_frame["item_id"])
    item_frame, from_table = merge_items_table(item_frame)
    catalogue, items_added = _clean_items(item_frame, events["item_id"])
    user_frame, user_files = (None, []) if users is None else _read_channel(Path(users), "users")
    people = None if user_frame is None else _clean_users(user_frame)

    stamps = events["timestamp"]
    report: dict[str, Any] = {
        **counts,
        "users": int(events["user_id"].nunique()),
        "items": len(catalogue),
        "items_added_from_interactions": items_added,
        "items_from_table": from_table,
        "users_file_rows": 0 if people is None else len(people),
        "first_timestamp": stamps.iloc[0].isoformat() if len(stamps) else None,
        "last_timestamp": stamps.iloc[-1].isoformat() if len(stamps) else None,
        "files": {
            "interactions": [str(path) for path in interaction_files],
            "items": [str(path) for path in item_files],
            "users": [str(path) for path in user_files],
        },
    }
    logger.info(
        "read %d interactions (%d kept, rejected %s, %d duplicates) from %d files: %d users, %d items "
        "(%d added from interactions), %s .. %s",
        report["rows_read"],
        report["rows_kept"],
        report["rejected"] or "none",
        report["duplicates_dropped"],
        len(interaction_files),
        report["users"],
        report["items"],
        items_added,
        report["first_timestamp"],
        report["last_timestamp"],
    )
    return Channels(interactions=events, items=catalogue, users=people, report=report)


def data_files(directory: Path, channel: str) -> list[Path]:
    """The data files of a channel directory (recursive, sorted; hidden and ``_``-files skipped).

    When a directory holds files named after several channels (``interactions.csv``, ``items.csv``
    ...), only those named after ``channel`` belong to it, so one flat directory can serve all three.
    """
    if directory.is_file():
        return [directory]
    found = sorted(
        path
        for path in directory.rglob("*")
        if path.is_file()
        and path.name.endswith(DATA_SUFFIXES)
        and not any(part.startswith((".", "_")) for part in path.relative_to(directory).parts)
    )
    others = tuple(name for name in CHANNEL_NAMES if name != channel)
    if any(path.name.startswith(others) for path in found):
        return [path for path in found if path.name.startswith(channel)]
    return found


def read_tombstones(channel: Path) -> dict[str, pd.Timestamp]:
    """sha256 of an erased shopper's id -> erasure time, from ``<channel>/_tombstones/*.json`` (a tombstone
    written before they were hashed names the id itself)."""
    folder = channel / TOMBSTONES_DIR
    if not folder.is_dir():
        return {}
    erased: dict[str, pd.Timestamp] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text())
            hashed = record["user_sha256"] if "user_sha256" in record else user_hash(str(record["user_id"]))
            erased[str(hashed)] = pd.Timestamp(record["erased_at"]).tz_convert("UTC")
        except (ValueError, KeyError, TypeError) as error:
            # Training on a shopper who asked to be forgotten is worse than not training at all.
            raise ChannelError(f"tombstone {path.name} cannot be read: {error}") from error
    return erased


def drop_erased(
    events: pd.DataFrame, tombstones: dict[str, pd.Timestamp]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Removes every event of an erased shopper up to the erasure time (later events are new consent);
    ``tombstones`` is keyed by the sha256 of the user id (``read_tombstones``)."""
    until = max(tombstones.values()).isoformat() if tombstones else None
    if not tombstones or events.empty:
        return events, {"erased_rows_dropped": 0, "erased_users": len(tombstones), "tombstones_until": until}
    hashes = {user: user_hash(user) for user in events["user_id"].unique().tolist()}
    erased_at = events["user_id"].map(hashes).map(tombstones)
    drop = erased_at.notna() & (events["timestamp"] <= erased_at)
    kept = events[~drop].reset_index(drop=True)
    counts = {
        "erased_rows_dropped": int(drop.sum()),
        "erased_users": len(tombstones),
        "tombstones_until": until,
    }
    return kept, counts


def parse_timestamps(values: pd.Series) -> pd.Series:
    """ISO 8601 strings (naive means UTC) or epoch s/ms/us/ns numbers → UTC timestamps, NaT if unparsable."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return _in_bounds(values.dt.tz_convert("UTC"))
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return _in_bounds(values.dt.tz_localize("UTC"))
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return _from_epoch(values.astype(float))
    text = _as_text(values)
    parsed = _in_bounds(pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601"))
    failed = parsed.isna() & (text != "")
    if failed.any():
        parsed[failed] = _from_epoch(pd.to_numeric(text[failed], errors="coerce"))
    return parsed


def _read_channel(directory: Path, channel: str) -> tuple[pd.DataFrame, list[Path]]:
    if not directory.exists():
        raise ChannelError(f"{channel} channel {directory} does not exist")
    files = data_files(directory, channel)
    if not files:
        raise ChannelError(
            f"{channel} channel {directory} holds no data file ({', '.join('*' + s for s in DATA_SUFFIXES)})"
        )
    frames = []
    for path in files:
        frame = _read_file(path)
        if frame.empty and len(frame.columns) == 0:
            continue  # an empty file (e.g. the export of an empty items table) holds nothing to check
        missing = [column for column in REQUIRED_COLUMNS[channel] if column not in frame.columns]
        if missing:
            raise ChannelError(f"{path.name} is missing required columns: {', '.join(missing)}")
        frames.append(frame)
    if not frames:
        return pd.DataFrame(
            {column: pd.Series([], dtype="str") for column in REQUIRED_COLUMNS[channel]}
        ), files
    return (frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)), files


def _read_file(path: Path) -> pd.DataFrame:
    name = path.name
    if name == ITEMS_TABLE_SNAPSHOT:
        return marked_as_table(_read_json_records(path))
    try:
        if name.endswith(".parquet"):
            return pd.read_parquet(path)
        if name.endswith((".jsonl", ".jsonl.gz")):
            return _read_json_records(path)
        # Every CSV cell is read as text: ids such as "00123" must never become numbers.
        return pd.read_csv(path, dtype=str, keep_default_na=False, engine="pyarrow")
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (ValueError, OSError) as error:
        raise ChannelError(f"{name} cannot be read: {error}") from error


def _read_json_records(path: Path) -> pd.DataFrame:
    """JSON objects one per line, or back to back: Firehose concatenates stream records as they are, so a
    producer that put no newline after its event leaves ``}{`` in the archive."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        text = handle.read()
    decoder = json.JSONDecoder()
    records: list[dict[str, Any]] = []
    unreadable = 0
    position, end = 0, len(text)
    while position < end:
        while position < end and text[position].isspace():
            position += 1
        if position == end:
            break
        try:
            record, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            # The archive keeps every raw record, the ones the processor dead-lettered too: skip the line.
            unreadable += 1
            newline = text.find("\n", position)
            position = end if newline < 0 else newline + 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            unreadable += 1
    if unreadable:
        logger.warning("%s: skipped %d records that are not JSON objects", path.name, unreadable)
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def _clean_interactions(raw: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    rows_read = len(raw)
    if rows_read == 0:
        raise ChannelError("the interactions channel holds no rows")
    frame = raw  # built by _read_channel for this call only: typed in place
    frame["user_id"] = _as_id(frame["user_id"])
    frame["item_id"] = _as_id(frame["item_id"])
    frame["event_type"] = _as_text(frame["event_type"]).str.lower()
    frame["timestamp"] = parse_timestamps(frame["timestamp"])
    for column in _OPTIONAL_IDS:
        if column in frame.columns:
            ids = _as_id(frame[column])
            frame[column] = ids.where(ids != "")
    for column in _NUMERIC:
        if column in frame.columns:
            frame[column] = _as_float(frame[column])

    value = frame["value"] if "value" in frame.columns else pd.Series(np.nan, index=frame.index)
    checks = {  # first failing check names the reason of a row
        "empty_user_id": frame["user_id"] == "",
        "empty_item_id": frame["item_id"] == "",
        "unknown_event_type": ~frame["event_type"].isin(EVENT_TYPES),
        "bad_timestamp": frame["timestamp"].isna(),
        "rating_without_value": (frame["event_type"] == "rating") & value.isna(),
    }
    rejected: dict[str, int] = {}
    bad = pd.Series(False, index=frame.index)
    for reason, failing in checks.items():
        count = int((failing & ~bad).sum())
        if count:
            rejected[reason] = count
        bad |= failing
    n_rejected = int(bad.sum())
    if n_rejected > MAX_REJECTED_FRACTION * rows_read:
        raise ChannelError(
            f"{n_rejected} of {rows_read} interaction rows break the contract ({rejected}): "
            "is this the right file?"
        )
    if n_rejected:
        frame = frame[~bad]
    duplicates = 0
    if "event_id" in frame.columns:
        # The event archive is written at least once: a redelivered event must count once.
        ids = _as_id(frame["event_id"])
        repeated = ids.duplicated() & (ids != "")
        duplicates = int(repeated.sum())
        frame = frame[~repeated]
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    counts = {
        "rows_read": rows_read,
        "rows_kept": len(frame),
        "rejected": rejected,
        "duplicates_dropped": duplicates,
    }
    return frame, counts


def _clean_items(raw: pd.DataFrame | None, seen: pd.Series) -> tuple[pd.DataFrame, int]:
    frame = pd.DataFrame({"item_id": pd.Series([], dtype="str")}) if raw is None else raw.copy()
    frame["item_id"] = _as_id(frame["item_id"])
    frame = frame[frame["item_id"] != ""].drop_duplicates("item_id", keep="last")
    unseen = pd.Index(seen.unique()).difference(pd.Index(frame["item_id"]))
    if len(unseen):
        frame = pd.concat([frame, pd.DataFrame({"item_id": unseen.astype("str")})], ignore_index=True)
    n = len(frame)

    def column(name: str) -> pd.Series:
        return frame[name] if name in frame.columns else pd.Series([None] * n, index=frame.index)

    category = _as_text(column("category"))
    typed = {
        "item_id": frame["item_id"],
        "title": _as_text(column("title")),
        "category": category.where(category != "", "unknown"),
        "brand": _as_text(column("brand")),
        "price": _as_float(column("price")),
        "created_at": parse_timestamps(column("created_at")),
        "in_stock": _as_flag(column("in_stock")),
    }
    extras = frame[[name for name in frame.columns if name not in typed]]
    items = pd.concat([pd.DataFrame(typed), extras], axis=1).reset_index(drop=True)
    return items, len(unseen)


def _clean_users(raw: pd.DataFrame) -> pd.DataFrame:
    frame = raw.copy()
    frame["user_id"] = _as_id(frame["user_id"])
    for name in frame.columns.drop("user_id"):
        frame[name] = _as_text(frame[name])
    frame = frame[frame["user_id"] != ""].drop_duplicates("user_id", keep="last")
    return frame.reset_index(drop=True)


def _as_text(values: pd.Series) -> pd.Series:
    """Strings, stripped, with missing values as ""."""
    if pd.api.types.is_float_dtype(values.dtype):
        return values.map(_float_text, na_action="ignore").fillna("").astype("str")
    return values.astype("str").fillna("").str.strip()


def _as_float(values: pd.Series) -> pd.Series:
    """Numbers, NaN where empty or not a number."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.astype(float)
    text = _as_text(values)
    try:  # Arrow's cast is several times faster than pd.to_numeric on millions of cells
        arrow = pa.array(text.array)
        numbers = pc.cast(pc.if_else(pc.equal(arrow, ""), None, arrow), pa.float64())
        return pd.Series(numbers.to_numpy(), index=values.index, dtype=float)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pd.to_numeric(text.where(text != ""), errors="coerce").astype(float)


def _as_id(values: pd.Series) -> pd.Series:
    return _as_text(values)


def _float_text(value: float) -> str:
    # Parquet turns an integer id column with a gap into floats: 17850.0 is the id "17850".
    return str(int(value)) if float(value).is_integer() else str(value)


def _as_flag(values: pd.Series) -> pd.Series:
    """Booleans from bool, 0/1 or words (true/false, yes/no); missing or unreadable means True."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.fillna(True).astype(bool)
    text = _as_text(values).str.lower()
    return ~text.isin(_FALSE_WORDS)


def _from_epoch(numbers: pd.Series) -> pd.Series:
    magnitude = numbers.abs()
    # Epoch seconds stay below 1e11 until the year 5138, so the size of a number tells its unit.
    scale = np.select([magnitude < 1e11, magnitude < 1e14, magnitude < 1e17], [1e9, 1e6, 1e3], default=1.0)
    nanoseconds = numbers * scale
    valid = np.isfinite(nanoseconds) & (nanoseconds.abs() < 9.2e18)
    whole = nanoseconds.where(valid, 0).astype("int64")
    stamps = pd.to_datetime(whole, unit="ns", utc=True).astype(TIMESTAMP_DTYPE)
    return stamps.where(valid)


def _in_bounds(stamps: pd.Series) -> pd.Series:
    """The same instants at nanosecond resolution; NaT for what nanoseconds cannot hold."""
    low, high = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    inside = stamps.notna() & (stamps >= low) & (stamps <= high)
    return stamps.where(inside).astype(TIMESTAMP_DTYPE)
