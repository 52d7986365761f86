"""The twin's event source mapping: reads the Kinesis stream and invokes the event processor.

It follows the streaming stack's mapping (``stacks.constants``) rule by rule:
- batches of up to ``batch_size`` records in the Lambda Kinesis event shape, read from TRIM_HORIZON
  so nothing put before the twin started is missed;
- ReportBatchItemFailures: the retry resumes at the lowest failed sequence number (the checkpoint);
- BisectBatchOnFunctionError: when the function raises, the batch is split in two and each half is
  retried on its own (a split does not use up a retry, as in Lambda);
- ``max_retries`` retries, then an invocation record on the on-failure destination (SQS) with
  condition RetryAttemptsExhausted; records older than ``max_record_age_seconds`` are not invoked but
  sent there with condition RecordAgeExceeded.

Polling: AWS polls each shard about once per second with a standard iterator; the twin's default
``idle_wait_seconds`` is 0.2 s, i.e. 5 GetRecords per second per shard, the Kinesis read limit.
The events bench measures freshness at both rates.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local_twin.archive import ArchiveConsumer
from stacks import constants as c

logger = logging.getLogger(__name__)

DEFAULT_IDLE_WAIT_SECONDS = 0.2


@dataclass
class PollerStats:
    batches: int = 0
    records: int = 0
    retries: int = 0
    bisections: int = 0
    exhausted: int = 0
    records_exhausted: int = 0
    records_too_old: int = 0
    iterators: dict[str, str] = field(default_factory=dict)


def lambda_record(record: dict[str, Any], shard_id: str, stream_arn: str) -> dict[str, Any]:
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": record["SequenceNumber"],
            "data": base64.b64encode(record["Data"]).decode(),
            "approximateArrivalTimestamp": record["ApproximateArrivalTimestamp"].timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{record['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/merchandiser-event-processor",
        "awsRegion": "us-east-1",
        "eventSourceARN": stream_arn,
    }


class KinesisPoller:
    def __init__(
        self,
        kinesis: Any,
        sqs: Any,
        stream_name: str,
        on_failure_queue_url: str,
        invoke: Callable[[dict[str, Any]], dict[str, Any]],
        batch_size: int = c.ESM_BATCH_SIZE,
        max_retries: int = c.ESM_RETRY_ATTEMPTS,
        max_record_age_seconds: float = c.ESM_MAX_RECORD_AGE_HOURS * 3600,
        idle_wait_seconds: float = DEFAULT_IDLE_WAIT_SECONDS,
        archive: ArchiveConsumer | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.kinesis, self.sqs = kinesis, sqs
        self.stream_name = stream_name
        self.on_failure_queue_url = on_failure_queue_url
        self.invoke = invoke
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.max_record_age_seconds = max_record_age_seconds
        self.idle_wait_seconds = idle_wait_seconds
        self.archive = archive
        self.clock = clock
        self.stats = PollerStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        description = kinesis.describe_stream(StreamName=stream_name)["StreamDescription"]
        self.stream_arn = description["StreamARN"]
        for shard in description["Shards"]:
            self.stats.iterators[shard["ShardId"]] = kinesis.get_shard_iterator(
                StreamName=stream_name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        self._lock = threading.Lock()

    def poll_once(self) -> int:
        """One read per shard and the invocations it needs; returns how many records were read."""
        read = 0
        with self._lock:
            for shard_id, iterator in list(self.stats.iterators.items()):
                response = self.kinesis.get_records(ShardIterator=iterator, Limit=self.batch_size)
                self.stats.iterators[shard_id] = response["NextShardIterator"]
                records = [lambda_record(r, shard_id, self.stream_arn) for r in response["Records"]]
                if records:
                    self._deliver_fresh(shard_id, records)
                    read += len(records)
        if self.archive is not None:
            self.archive.poll_once()
        return read

    def drain(self) -> int:
        """Polls until the stream has nothing new: deterministic catch-up for tests and the demo."""
        total = 0
        while (read := self.poll_once()) > 0:
            total += read
        return total

    def flush_archive(self) -> list[str]:
        return [] if self.archive is None else self.archive.flush()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="twin-kinesis-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.poll_once() == 0:
                    self._stop.wait(self.idle_wait_seconds)
            except Exception:
                logger.exception("poller iteration failed; retrying")
                self._stop.wait(1.0)

    def _deliver_fresh(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        now = self.clock()
        too_old = [
            r
            for r in records
            if now - r["kinesis"]["approximateArrivalTimestamp"] > self.max_record_age_seconds
        ]
        if too_old:
            self.stats.records_too_old += len(too_old)
            self._send_to_destination(shard_id, too_old, "RecordAgeExceeded", 0)
            records = [r for r in records if r not in too_old]
        if records:
            self._deliver(shard_id, records)

    def _deliver(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        pending = records
        attempts = 0
        while True:
            attempts += 1
            self.stats.batches += 1
            self.stats.records += len(pending)
            try:
                response = self.invoke({"Records": pending}) or {}
            except Exception:
                logger.exception("event processor raised on a batch of %d records", len(pending))
                if len(pending) > 1:
                    # BisectBatchOnFunctionError: each half is retried on its own, without using a retry.
                    self.stats.bisections += 1
                    middle = len(pending) // 2
                    self._deliver(shard_id, pending[:middle])
                    self._deliver(shard_id, pending[middle:])
                    return
                failed = {pending[0]["kinesis"]["sequenceNumber"]}
            else:
                failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            if not failed:
                return
            # Checkpoint semantics: everything before the lowest failed record is done.
            first = min(
                (i for i, r in enumerate(pending) if r["kinesis"]["sequenceNumber"] in failed), default=0
            )
            pending = pending[first:]
            if attempts > self.max_retries:
                break
            self.stats.retries += 1
        self.stats.exhausted += 1
        self.stats.records_exhausted += len(pending)
        self._send_to_destination(shard_id, pending, "RetryAttemptsExhausted", attempts)

    def _send_to_destination(
        self, shard_id: str, records: list[dict[str, Any]], condition: str, invocations: int
    ) -> None:
        """What Lambda sends to an on-failure destination for a stream: where the records are, not them."""
        first, last = records[0]["kinesis"], records[-1]["kinesis"]
        self.sqs.send_message(
            QueueUrl=self.on_failure_queue_url,
            MessageBody=json.dumps(
                {
                    "requestContext": {"condition": condition, "approximateInvokeCount": invocations},
                    "timestamp": datetime.now(UTC).isoformat(),
                    "KinesisBatchInfo": {
                        "shardId": shard_id,
                        "startSequenceNumber": first["sequenceNumber"],
                        "endSequenceNumber": last["sequenceNumber"],
                        "approximateArrivalOfFirstRecord": first["approximateArrivalTimestamp"],
                        "approximateArrivalOfLastRecord": last["approximateArrivalTimestamp"],
                        "batchSize": len(records),
                        "streamArn": self.stream_arn,
                    },
                }
            ),
        )
