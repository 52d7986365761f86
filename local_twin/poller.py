"""The twin's event source mapping: reads the Kinesis stream and invokes the event processor.

It follows the mapping's settings: batches of up to ``batch_size`` records in the Lambda Kinesis
event shape, ReportBatchItemFailures (a retry resumes at the lowest failed sequence number),
bounded retries, and on exhaustion an invocation record on the on-failure destination (SQS), as
Lambda sends it. Records are read from TRIM_HORIZON so nothing put before the twin started is missed.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class PollerStats:
    batches: int = 0
    records: int = 0
    retries: int = 0
    exhausted: int = 0
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
        batch_size: int = 100,
        max_retries: int = 3,
        idle_wait_seconds: float = 0.05,
    ):
        self.kinesis, self.sqs = kinesis, sqs
        self.stream_name = stream_name
        self.on_failure_queue_url = on_failure_queue_url
        self.invoke = invoke
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.idle_wait_seconds = idle_wait_seconds
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
                    self._deliver(shard_id, records)
                    read += len(records)
        return read

    def drain(self) -> int:
        """Polls until the stream has nothing new: deterministic catch-up for tests and the demo."""
        total = 0
        while (read := self.poll_once()) > 0:
            total += read
        return total

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

    def _deliver(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        pending = records
        for attempt in range(self.max_retries + 1):
            self.stats.batches += 1
            self.stats.records += len(pending)
            try:
                response = self.invoke({"Records": pending}) or {}
                failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            except Exception:
                logger.exception("event processor raised; the whole batch is retried")
                failed = {r["kinesis"]["sequenceNumber"] for r in pending}
            if not failed:
                return
            # Checkpoint semantics: everything before the lowest failed record is done.
            first = min(i for i, r in enumerate(pending) if r["kinesis"]["sequenceNumber"] in failed)
            pending = pending[first:]
            if attempt < self.max_retries:
                self.stats.retries += 1
        self.stats.exhausted += 1
        self.sqs.send_message(
            QueueUrl=self.on_failure_queue_url,
            MessageBody=json.dumps(
                {
                    "requestContext": {
                        "condition": "RetryAttemptsExhausted",
                        "approximateInvokeCount": self.max_retries + 1,
                    },
                    "KinesisBatchInfo": {
                        "shardId": shard_id,
                        "startSequenceNumber": pending[0]["kinesis"]["sequenceNumber"],
                        "endSequenceNumber": pending[-1]["kinesis"]["sequenceNumber"],
                        "batchSize": len(pending),
                        "streamArn": self.stream_arn,
                    },
                }
            ),
        )
