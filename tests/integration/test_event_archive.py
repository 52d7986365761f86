"""The raw-event archive: the twin writes the delivery stream's layout, and the training job reads it
as its interactions channel with no glue (events of today train tomorrow)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import boto3

from local_twin.archive import ArchiveConsumer
from local_twin.script_mode import download_prefix
from merchandiser.store import EVENTS_PREFIX
from stacks import constants as c
from training.channels import read_channels


def test_archived_objects_follow_the_firehose_layout_and_train_directly(aws, tmp_path: Path):
    # Given events put on the stream: JSON without a newline (as most producers send), duplicates
    # (at-least-once delivery) and garbage (the archive keeps every raw record)
    s3 = boto3.client("s3")
    archive = ArchiveConsumer(aws.kinesis, s3, "events", "artifacts")
    events = [
        {"schema_version": 1, "event_id": f"e{n}", "user_id": f"u{n % 4}", "item_id": f"i{n % 7}",
         "event_type": "purchase" if n % 5 == 0 else "view", "timestamp": f"2026-11-22T10:{n:02d}:00Z",
         "context": {"surface": "home"}}
        for n in range(40)
    ]  # fmt: skip
    records = [json.dumps(e).encode() for e in events] + [json.dumps(events[0]).encode(), b"{garbage"]
    aws.kinesis.put_records(StreamName="events", Records=[{"Data": r, "PartitionKey": "k"} for r in records])
    # When the archive flushes
    keys = archive.flush()
    # Then there is one gzip JSON-lines object under the date partition the delivery stream would use
    [key] = keys
    prefix = c.ARCHIVE_PREFIX.replace("!{timestamp:yyyy}", r"\d{4}").replace("!{timestamp:MM}", r"\d{2}")
    assert re.fullmatch(
        prefix.replace("!{timestamp:dd}", r"\d{2}") + r"[\w.-]+" + re.escape(c.ARCHIVE_FILE_EXTENSION), key
    )
    lines = gzip.decompress(s3.get_object(Bucket="artifacts", Key=key)["Body"].read()).decode().splitlines()
    assert len(lines) == 42 and json.loads(lines[0]) == events[0]
    # And the training job's channel reader takes the downloaded prefix as it is
    channel = tmp_path / "interactions"
    download_prefix(s3, f"s3://artifacts/{EVENTS_PREFIX}", channel)
    shop = read_channels(channel)
    assert shop.report["rows_read"] == 41  # the garbage line is skipped, the duplicate is read ...
    assert shop.report["duplicates_dropped"] == 1 and shop.report["rows_kept"] == 40  # ... and dropped
    assert shop.interactions["event_type"].value_counts()["purchase"] == 8


def test_concatenated_records_without_a_delimiter_are_still_read(tmp_path: Path):
    # Objects written before the delimiter processor, or by another tool, may hold "}{"
    body = "".join(
        json.dumps({"event_id": f"e{n}", "user_id": "u", "item_id": f"i{n}", "event_type": "view",
                    "timestamp": "2026-11-22T10:00:00Z"})
        for n in range(3)
    )  # fmt: skip
    (tmp_path / "part.jsonl.gz").write_bytes(gzip.compress(body.encode()))
    assert read_channels(tmp_path).report["rows_kept"] == 3
