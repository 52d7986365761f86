"""Every served page becomes one impression record on the events stream, without the page waiting for it.

The record (what ``merchandiser/experiments/report.sql`` reads, archived under ``impressions/``):

```json
{"record_type": "impression", "recommendation_id": "...", "user_id": "u-1042" | null, "surface": "home",
 "experiment": "home-vs-popularity" | "", "variant": "personalized" | "production", "model_version": "...",
 "timestamp": "2026-12-01T10:00:00.123Z", "items": [{"item_id": "...", "position": 0, "source": "ann"}],
 "interleaving": ["A", "B", ...]}
```

``interleaving`` (the team of each item, in page order) is there only on an interleaved page. The
partition key is the user id (one shopper's records stay in order beside their events), else the
recommendation id.

``ImpressionLog`` keeps a bounded in-process buffer that a background thread empties with PutRecords
(500 records a call). ``put`` never blocks: a full buffer drops the record. A record Kinesis refuses
is tried once more, then dropped. Every dropped record is counted (``take_dropped``, which the handler
turns into the ``ImpressionsDropped`` metric). Lambda freezes a container once its response is
returned, background thread included, so the handler waits up to ``ServingSettings
.impressions_flush_seconds`` for the buffer to empty at the end of each invocation (``wait``); what is
left is sent when the container thaws for its next request.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from merchandiser.schemas import IMPRESSION_RECORD_TYPE, RECORD_TYPE_FIELD

logger = logging.getLogger(__name__)

PUT_RECORDS_LIMIT = 500  # records per PutRecords call
PUT_RECORDS_BYTES = 5 * 1024 * 1024  # payload per PutRecords call
PUT_ATTEMPTS = 2  # a record Kinesis refuses (throttled) is tried once more


def impression_record(
    response: dict[str, Any], teams: Sequence[str] | None, served_at: float
) -> dict[str, Any]:
    """The impression of one served page, from its response."""
    moment = datetime.fromtimestamp(served_at, UTC)
    record: dict[str, Any] = {
        RECORD_TYPE_FIELD: IMPRESSION_RECORD_TYPE,
        "recommendation_id": response["recommendation_id"],
        "user_id": response.get("user_id"),
        "surface": response["surface"],
        "experiment": response.get("experiment", ""),
        "variant": response["variant"],
        "model_version": response["model_version"],
        "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z",
        "items": [
            {"item_id": item["item_id"], "position": position, "source": item["source"]}
            for position, item in enumerate(response["items"])
        ],
    }
    if teams is not None:
        record["interleaving"] = list(teams)
    return record


class ImpressionLog:
    def __init__(
        self,
        kinesis: Any,
        stream_name: str,
        capacity: int = 5000,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.kinesis = kinesis  # a boto3 Kinesis client (thread-safe)
        self.stream_name = stream_name
        self.capacity = capacity
        self.sleep = sleep
        self.sent = 0
        self._dropped = 0
        self._pending: deque[tuple[bytes, str]] = deque()
        self._in_flight = 0
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def put(self, record: dict[str, Any]) -> bool:
        """Queues ``record`` for the stream; False (and counted) when the buffer is full."""
        data = json.dumps(record, separators=(",", ":")).encode()
        key = str(record.get("user_id") or record["recommendation_id"])
        with self._changed:
            if len(self._pending) >= self.capacity:
                self._dropped += 1
                return False
            self._pending.append((data, key))
            self._changed.notify_all()
        self._ensure_thread()
        return True

    def wait(self, timeout: float) -> bool:
        """Waits at most ``timeout`` seconds for every queued record to be put (or dropped); True if so."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._pending or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def take_dropped(self) -> int:
        """Records dropped since the last call (a full buffer, or refused by Kinesis)."""
        with self._changed:
            dropped, self._dropped = self._dropped, 0
        return dropped

    @property
    def pending(self) -> int:
        with self._changed:
            return len(self._pending) + self._in_flight

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="impressions", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._pending:
                    self._changed.wait()
                batch = self._take_batch()
                self._in_flight = len(batch)
            try:
                failed = self._put(batch)
            except Exception:  # never let the thread die: the records are lost, and counted
                logger.exception("impressions not put on the stream")
                failed = len(batch)
            with self._changed:
                self.sent += len(batch) - failed
                self._dropped += failed
                self._in_flight = 0
                self._changed.notify_all()

    def _take_batch(self) -> list[tuple[bytes, str]]:
        batch: list[tuple[bytes, str]] = []
        size = 0
        while self._pending and len(batch) < PUT_RECORDS_LIMIT:
            data, key = self._pending[0]
            if batch and size + len(data) + len(key) > PUT_RECORDS_BYTES:
                break
            batch.append(self._pending.popleft())
            size += len(data) + len(key)
        return batch

    def _put(self, batch: list[tuple[bytes, str]]) -> int:
        """Puts ``batch``, once more for what Kinesis refused; returns how many never made it."""
        pending = [{"Data": data, "PartitionKey": key} for data, key in batch]
        for attempt in range(PUT_ATTEMPTS):
            response = self.kinesis.put_records(StreamName=self.stream_name, Records=pending)
            if not response.get("FailedRecordCount"):
                return 0
            pending = [
                record
                for record, result in zip(pending, response["Records"], strict=True)
                if "ErrorCode" in result
            ]
            if attempt + 1 < PUT_ATTEMPTS:
                self.sleep(0.05)
        logger.warning("%d impressions refused by the stream", len(pending))
        return len(pending)
