"""The twin's Firehose: a second reader of the events stream that archives every raw record to S3.

It writes what the streaming stack's delivery stream writes (dynamic partitioning on ``record_type``,
``stacks.constants.ARCHIVE_PREFIX``): GZIP objects named ``*.jsonl.gz`` under
``impressions/year=YYYY/month=MM/day=DD/`` for impression records and ``events/year=.../`` for every
other JSON record (the record's arrival date, UTC), each record followed by a newline (the
AppendDelimiterToRecord processor). A record the jq query cannot read (not JSON, or JSON that is not an
object) is not delivered there: Firehose writes it, wrapped in an error document, under the error prefix
(``events-errors/processing-failed/year=YYYY/``), and so does the twin.

Objects are written every ``buffer_seconds`` (Firehose: 300 s; the twin: 1 s, so that a report reads
what was just served) and on ``flush()`` (the twin calls it before a training run and when it settles).
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from merchandiser.schemas import is_impression
from merchandiser.store import EVENTS_PREFIX, IMPRESSIONS_PREFIX
from stacks import constants as c

ARCHIVE_SUFFIX = ".jsonl.gz"
ERROR_OUTPUT_TYPE = "processing-failed"
DEFAULT_BUFFER_SECONDS = 1.0


def archive_key(prefix: str, arrival: datetime, name: str) -> str:
    day = arrival.astimezone(UTC)
    return (
        f"{prefix}year={day:%Y}/month={day:%m}/day={day:%d}/"
        f"{name}-1-{day:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}{ARCHIVE_SUFFIX}"
    )


def error_key(arrival: datetime, name: str) -> str:
    day = arrival.astimezone(UTC)
    return (
        f"{c.ARCHIVE_ERRORS}{ERROR_OUTPUT_TYPE}/year={day:%Y}/"
        f"{name}-1-{day:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}{ARCHIVE_SUFFIX}"
    )


def with_delimiter(data: bytes) -> bytes:
    return data if data.endswith(b"\n") else data + b"\n"


def table_of(data: bytes) -> str | None:
    """The prefix the jq query sends a record to (impressions/ or events/); None when it cannot read it."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return None
    if document is not None and not isinstance(document, dict):
        return None  # jq cannot index an array, a string or a number with .record_type
    return IMPRESSIONS_PREFIX if is_impression(document) else EVENTS_PREFIX


def error_document(record: dict[str, Any], arrival: datetime) -> bytes:
    """What Firehose writes for a record it could not partition (its error document's main fields)."""
    return json.dumps(
        {
            "attemptsMade": 1,
            "arrivalTimestamp": int(arrival.timestamp() * 1000),
            "errorCode": "DynamicPartitioning.MetadataExtractionFailed",
            "errorMessage": "Non JSON record provided",
            "attemptEndingTimestamp": int(arrival.timestamp() * 1000),
            "rawData": base64.b64encode(record["Data"]).decode(),
        }
    ).encode()


class ArchiveConsumer:
    def __init__(
        self,
        kinesis: Any,
        s3: Any,
        stream_name: str,
        bucket: str,
        name: str = "events-archive",
        buffer_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        """``buffer_seconds`` None: objects are written on ``flush()`` only."""
        self.kinesis, self.s3 = kinesis, s3
        self.bucket, self.name = bucket, name
        self.buffer_seconds = buffer_seconds
        self.clock = clock
        self.records_archived = 0
        self.records_failed = 0
        # (prefix, day) -> records; prefix "" holds the error documents
        self._buffer: dict[tuple[str, str], list[bytes]] = defaultdict(list)
        self._first_arrival: dict[tuple[str, str], datetime] = {}
        self._buffered_since: float | None = None
        self._lock = threading.Lock()
        shards = kinesis.describe_stream(StreamName=stream_name)["StreamDescription"]["Shards"]
        self._iterators = {
            shard["ShardId"]: kinesis.get_shard_iterator(
                StreamName=stream_name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for shard in shards
        }

    def poll_once(self, limit: int = 1000) -> int:
        read = 0
        with self._lock:
            for shard_id, iterator in list(self._iterators.items()):
                response = self.kinesis.get_records(ShardIterator=iterator, Limit=limit)
                self._iterators[shard_id] = response["NextShardIterator"]
                for record in response["Records"]:
                    self._add(record)
                    read += 1
        if self.buffer_seconds is not None and self._due():
            self._write()
        return read

    def flush(self) -> list[str]:
        """Reads what is left on the stream and writes one object per prefix and day; returns the keys."""
        while self.poll_once() > 0:
            pass
        return self._write()

    def _add(self, record: dict[str, Any]) -> None:
        arrival = record["ApproximateArrivalTimestamp"].astimezone(UTC)
        prefix = table_of(record["Data"])
        line = with_delimiter(record["Data"]) if prefix else with_delimiter(error_document(record, arrival))
        key = (prefix or "", f"{arrival:%Y-%m-%d}")
        self._first_arrival.setdefault(key, arrival)
        self._buffer[key].append(line)
        if self._buffered_since is None:
            self._buffered_since = self.clock()

    def _due(self) -> bool:
        with self._lock:
            since = self._buffered_since
        return since is not None and self.clock() - since >= (self.buffer_seconds or 0.0)

    def _write(self) -> list[str]:
        keys = []
        with self._lock:
            for (prefix, day), records in sorted(self._buffer.items()):
                arrival = self._first_arrival[(prefix, day)]
                key = archive_key(prefix, arrival, self.name) if prefix else error_key(arrival, self.name)
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=gzip.compress(b"".join(records)))
                if prefix:
                    self.records_archived += len(records)
                else:
                    self.records_failed += len(records)
                keys.append(key)
            self._buffer.clear()
            self._first_arrival.clear()
            self._buffered_since = None
        return keys
