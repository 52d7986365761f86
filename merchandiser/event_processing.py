"""Turning behaviour events into fresh session state.

Producers put JSON events (``schemas.Event``) on the stream, partition key = user id. The processor
parses each record, sends the ones that can never succeed to the dead-letter queue with their raw
payload and the reason, and writes the rest as ONE session update per shopper per batch. A shopper
whose write fails has all of their records reported back as batch item failures, so Kinesis
retries them and nothing is lost.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from merchandiser.schemas import MAX_EVENT_BYTES, Event
from merchandiser.store import FeatureStore, SessionEvent

logger = logging.getLogger(__name__)


class InvalidEventError(ValueError):
    """A record that no retry can fix: not JSON, not an event, too large."""


def parse_event(raw: bytes) -> Event:
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEventError(f"payload of {len(raw)} bytes exceeds {MAX_EVENT_BYTES}")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEventError(f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidEventError("an event must be a JSON object")
    try:
        return Event.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise InvalidEventError(problems) from exc


@dataclass(frozen=True)
class StreamRecord:
    sequence_number: str
    partition_key: str
    data: bytes

    @classmethod
    def from_lambda(cls, record: dict[str, Any]) -> StreamRecord:
        kinesis = record["kinesis"]
        return cls(kinesis["sequenceNumber"], kinesis["partitionKey"], base64.b64decode(kinesis["data"]))


@dataclass
class BatchOutcome:
    processed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    failed_sequence_numbers: list[str] = field(default_factory=list)
    writes: int = 0


class DeadLetters:
    """Sends unprocessable records, with their payload and reason, to the dead-letter queue."""

    def __init__(self, sqs: Any, queue_url: str):
        self._sqs = sqs
        self._queue_url = queue_url

    def send(self, rejected: list[tuple[StreamRecord, str]]) -> None:
        for start in range(0, len(rejected), 10):  # SQS takes 10 messages per batch
            entries = [
                {
                    "Id": str(number),
                    "MessageBody": json.dumps(
                        {
                            "reason": reason,
                            "sequence_number": record.sequence_number,
                            "partition_key": record.partition_key,
                            "payload_base64": base64.b64encode(record.data).decode(),
                        }
                    ),
                }
                for number, (record, reason) in enumerate(rejected[start : start + 10])
            ]
            response = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            if response.get("Failed"):
                raise RuntimeError(f"dead-letter queue refused {len(response['Failed'])} messages")


class EventProcessor:
    def __init__(self, store: FeatureStore, dead_letters: DeadLetters, session_ttl_seconds: int):
        self.store = store
        self.dead_letters = dead_letters
        self.session_ttl_seconds = session_ttl_seconds

    def process(self, records: Iterable[StreamRecord]) -> BatchOutcome:
        outcome = BatchOutcome()
        rejected: list[tuple[StreamRecord, str]] = []
        by_user: dict[str, list[tuple[StreamRecord, Event]]] = defaultdict(list)
        seen_ids: set[str] = set()
        for record in records:
            try:
                event = parse_event(record.data)
            except InvalidEventError as exc:
                rejected.append((record, str(exc)))
                continue
            if event.event_id in seen_ids:  # at-least-once delivery: count each event once
                outcome.duplicates += 1
                continue
            seen_ids.add(event.event_id)
            by_user[event.user_id].append((record, event))
        if rejected:
            self.dead_letters.send(rejected)
            outcome.dead_lettered = len(rejected)
            logger.warning("dead-lettered %d records: %s", len(rejected), rejected[0][1])
        for user_id, entries in by_user.items():
            try:
                self._write(user_id, [event for _, event in entries])
                outcome.writes += 1
                outcome.processed += len(entries)
            except Exception:  # retryable (throttling, timeouts): Kinesis redelivers these records
                logger.exception("session write failed for a shopper; their records will be retried")
                outcome.failed_sequence_numbers.extend(record.sequence_number for record, _ in entries)
        return outcome

    def _write(self, user_id: str, events: list[Event]) -> None:
        session = [
            SessionEvent(
                event_id=event.event_id,
                item_id=event.item_id,
                event_type=event.event_type,
                weight=event.weight,
                ts=event.timestamp.timestamp(),
            )
            for event in sorted(events, key=lambda e: e.timestamp)
        ]
        purchased = [event.item_id for event in events if event.event_type == "purchase"]
        expires_at = int(time.time()) + self.session_ttl_seconds
        self.store.append_session(user_id, session, purchased, expires_at=expires_at)
