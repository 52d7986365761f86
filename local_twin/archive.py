"""The twin's Firehose: a second reader of the events stream that archives every raw record to S3.

It writes what the streaming stack's delivery stream writes: GZIP objects named ``*.jsonl.gz`` under
``events/year=YYYY/month=MM/day=DD/`` (the record's arrival date, UTC), each record followed by a
newline (the AppendDelimiterToRecord processor), garbage included: the archive is the raw truth,
the training reader skips what is not an event. Objects are written on ``flush()`` (the twin calls
it before a training run) instead of every 300 s or 64 MB.
"""

from __future__ import annotations

import gzip
import threading
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from merchandiser.store import EVENTS_PREFIX

ARCHIVE_SUFFIX = ".jsonl.gz"


def archive_key(arrival: datetime, name: str) -> str:
    day = arrival.astimezone(UTC)
    return (
        f"{EVENTS_PREFIX}year={day:%Y}/month={day:%m}/day={day:%d}/"
        f"{name}-1-{day:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}{ARCHIVE_SUFFIX}"
    )


def with_delimiter(data: bytes) -> bytes:
    return data if data.endswith(b"\n") else data + b"\n"


class ArchiveConsumer:
    def __init__(self, kinesis: Any, s3: Any, stream_name: str, bucket: str, name: str = "events-archive"):
        self.kinesis, self.s3 = kinesis, s3
        self.bucket, self.name = bucket, name
        self.records_archived = 0
        self._buffer: dict[str, list[bytes]] = defaultdict(list)  # day partition -> records
        self._first_arrival: dict[str, datetime] = {}
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
                    arrival = record["ApproximateArrivalTimestamp"].astimezone(UTC)
                    day = f"{arrival:%Y-%m-%d}"
                    self._first_arrival.setdefault(day, arrival)
                    self._buffer[day].append(with_delimiter(record["Data"]))
                    read += 1
        return read

    def flush(self) -> list[str]:
        """Reads what is left on the stream and writes one object per day partition; returns the keys."""
        while self.poll_once() > 0:
            pass
        keys = []
        with self._lock:
            for day, records in sorted(self._buffer.items()):
                key = archive_key(self._first_arrival[day], self.name)
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=gzip.compress(b"".join(records)))
                self.records_archived += len(records)
                keys.append(key)
            self._buffer.clear()
            self._first_arrival.clear()
        return keys
