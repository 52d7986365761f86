"""The raw-event archive: the twin writes the delivery stream's layout, and the training job reads it
as its interactions channel with no glue (events of today train tomorrow)."""

from __future__ import annotations

import base64
import gzip
import json
import re
from pathlib import Path

import boto3

from local_twin.archive import ArchiveConsumer
from merchandiser.store import EVENTS_PREFIX
from stacks import constants as c
from training.channels import read_channels
from training.s3_channels import download_prefix


def test_archived_objects_follow_the_firehose_layout_and_train_directly(aws, tmp_path: Path):
    # Given events put on the stream: JSON without a newline (as most producers send), duplicates
    # (at-least-once delivery), an impression record of a served page and garbage
    s3 = boto3.client("s3")
    archive = ArchiveConsumer(aws.kinesis, s3, "events", "artifacts")
    events = [
        {"schema_version": 1, "event_id": f"e{n}", "user_id": f"u{n % 4}", "item_id": f"i{n % 7}",
         "event_type": "purchase" if n % 5 == 0 else "view", "timestamp": f"2026-11-22T10:{n:02d}:00Z",
         "context": {"surface": "home"}}
        for n in range(40)
    ]  # fmt: skip
    page = {
        "record_type": "impression",
        "recommendation_id": "r1",
        "user_id": "u1",
        "surface": "home",
        "experiment": "",
        "variant": "production",
        "model_version": "m",
        "timestamp": "2026-11-22T10:00:00Z",
        "items": [{"item_id": "i1", "position": 0, "source": "ann"}],
    }
    records = [json.dumps(e).encode() for e in events] + [json.dumps(events[0]).encode(), b"{garbage"]
    records.append(json.dumps(page).encode())
    aws.kinesis.put_records(StreamName="events", Records=[{"Data": r, "PartitionKey": "k"} for r in records])
    # When the archive flushes
    keys = archive.flush()
    # Then the events and the impression are each under the date partition the delivery stream's dynamic
    # partitioning would use, and the garbage under the error prefix, wrapped as Firehose wraps it
    [events_key] = [key for key in keys if key.startswith("events/")]
    [impressions_key] = [key for key in keys if key.startswith("impressions/")]
    [error_key] = [key for key in keys if key.startswith(c.ARCHIVE_ERRORS)]
    for table, key in (("events", events_key), ("impressions", impressions_key)):
        prefix = c.ARCHIVE_PREFIX.replace("!{partitionKeyFromQuery:table}", table)
        prefix = prefix.replace("!{timestamp:yyyy}", r"\d{4}").replace("!{timestamp:MM}", r"\d{2}")
        pattern = (
            prefix.replace("!{timestamp:dd}", r"\d{2}") + r"[\w.-]+" + re.escape(c.ARCHIVE_FILE_EXTENSION)
        )
        assert re.fullmatch(pattern, key), key

    def lines(key: str) -> list[str]:
        return (
            gzip.decompress(s3.get_object(Bucket="artifacts", Key=key)["Body"].read()).decode().splitlines()
        )

    assert len(lines(events_key)) == 41 and json.loads(lines(events_key)[0]) == events[0]
    assert [json.loads(line) for line in lines(impressions_key)] == [page]
    [failure] = [json.loads(line) for line in lines(error_key)]
    assert base64.b64decode(failure["rawData"]) == b"{garbage" and error_key.startswith(
        "events-errors/processing-failed/"
    )
    # And the training job's channel reader takes the downloaded events prefix as it is
    channel = tmp_path / "interactions"
    download_prefix(s3, f"s3://artifacts/{EVENTS_PREFIX}", channel)
    shop = read_channels(channel)
    assert shop.report["rows_read"] == 41  # the duplicate is read ...
    assert shop.report["duplicates_dropped"] == 1 and shop.report["rows_kept"] == 40  # ... and dropped
    assert shop.interactions["event_type"].value_counts()["purchase"] == 8


def test_the_archive_writes_objects_once_its_buffer_time_has_passed(aws):
    # Given an archive with a 300 s buffer on a clock the test moves
    s3, now = boto3.client("s3"), [0.0]
    archive = ArchiveConsumer(
        aws.kinesis, s3, "events", "artifacts", buffer_seconds=300, clock=lambda: now[0]
    )
    aws.kinesis.put_record(StreamName="events", Data=b'{"event_id": "e1"}', PartitionKey="k")
    # When it polls before and after the buffer time
    archive.poll_once()
    written_early = s3.list_objects_v2(Bucket="artifacts").get("KeyCount", 0)
    now[0] = 300.0
    archive.poll_once()
    # Then nothing is written early, one object at the buffer time
    assert written_early == 0 and s3.list_objects_v2(Bucket="artifacts")["KeyCount"] == 1


def test_concatenated_records_without_a_delimiter_are_still_read(tmp_path: Path):
    # Objects written before the delimiter processor, or by another tool, may hold "}{"
    body = "".join(
        json.dumps({"event_id": f"e{n}", "user_id": "u", "item_id": f"i{n}", "event_type": "view",
                    "timestamp": "2026-11-22T10:00:00Z"})
        for n in range(3)
    )  # fmt: skip
    (tmp_path / "part.jsonl.gz").write_bytes(gzip.compress(body.encode()))
    assert read_channels(tmp_path).report["rows_kept"] == 3
