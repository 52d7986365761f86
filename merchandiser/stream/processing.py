"""Turning behaviour events into fresh session state and trending counters, each event exactly once.

Producers put JSON events (``schemas.Event``) on the stream, partition key = user id; serving puts one
impression record per served page on the same stream (``schemas.is_impression``): the processor counts
them, never dead-letters them, and takes from them only the exploration slots' impressions, which with
the clicks on those slots update the exploration posteriors (``stream.exploration``); the rest is the
archive's and the experiment report's, not behaviour. A batch goes through two stages:

1. per record (the record handler of a Powertools partial processor): decode and validate. A record no retry
   can fix (not JSON, unknown type, missing field, too large) goes to the dead-letter queue with its raw
   payload and a reason code, and counts as handled.
2. per batch (``EventProcessor.apply``): one strongly consistent BatchGetItem reads the sessions of the
   batch's shoppers; events whose id the session has already seen are dropped (Kinesis delivers at least
   once, and a retry resumes from the lowest failed record, re-sending later successes); each shopper's
   new events are merged into a bounded session and written with ONE conditional PutItem (optimistic
   version check, re-read and retried on conflict); then one transaction of atomic ADDs, one per distinct
   (hour, item), updates the trending counters and marks those hours for the compactor
   (``stream.compaction``), and one more write adds the batch to the stream figures (events per minute,
   freshness).

A shopper whose write still fails has all their records reported as batch item failures, so the event
source mapping retries them; their ids are not in the session, so the retry counts them once.
Per invocation: records in = processed + duplicates + dead-lettered + failed + impressions, except that
an impression or a click whose exploration write failed is counted where it belongs and among the failed
too (it is retried for that write alone: everything else it did is deduplicated on the retry).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BasePartialProcessor
from pydantic import ValidationError

from merchandiser.schemas import MAX_EVENT_BYTES, Event, is_impression
from merchandiser.store import (
    BATCH_GET_LIMIT,
    BUCKET_TTL,
    SEEN_EVENT_IDS_KEPT,
    SESSION_EVENTS_KEPT,
    ExploredPage,
    FeatureStore,
    SessionConflictError,
    SessionEvent,
    SessionState,
    counting_bucket,
)
from merchandiser.stream.exploration import ExplorationCounter, ExplorationOutcome, explored_page

logger = logging.getLogger(__name__)

WRITE_ATTEMPTS = 3  # a conflict means another writer got there first: re-read, merge again, retry


class InvalidEventError(ValueError):
    """A record that no retry can fix; ``code`` says why in one word, the message says where."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


_PYDANTIC_CODES = {"missing": "MISSING_FIELD", "extra_forbidden": "UNKNOWN_FIELD"}


def parse_event(raw: bytes) -> Event:
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEventError("OVERSIZED", f"payload of {len(raw)} bytes exceeds {MAX_EVENT_BYTES}")
    return validate_event(decode(raw))


def decode(raw: bytes) -> dict[str, Any]:
    """A stream record's JSON object."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEventError("MALFORMED_JSON", f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidEventError("NOT_AN_OBJECT", "an event must be a JSON object")
    return document


def validate_event(document: dict[str, Any]) -> Event:
    try:
        return Event.model_validate(document)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        code = _PYDANTIC_CODES.get(first["type"], "INVALID_FIELD")
        if first["loc"] == ("event_type",) and first["type"] == "literal_error":
            code = "UNKNOWN_EVENT_TYPE"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in errors[:5]
        )
        raise InvalidEventError(code, problems) from exc


@dataclass(frozen=True)
class StreamRecord:
    sequence_number: str
    partition_key: str
    data: bytes

    @classmethod
    def from_lambda(cls, record: dict[str, Any]) -> StreamRecord:
        kinesis = record["kinesis"]
        return cls(kinesis["sequenceNumber"], kinesis["partitionKey"], base64.b64decode(kinesis["data"]))


@dataclass(frozen=True)
class Parsed:
    """The per-record stage's answer: the event, an impression (skipped), or why the record can never
    become an event."""

    record: StreamRecord
    event: Event | None = None
    rejection: InvalidEventError | None = None
    impression: bool = False
    page: ExploredPage | None = None  # an impression's exploration slots, when it had any


def parse_record(record: StreamRecord) -> Parsed:
    try:
        if len(record.data) > MAX_EVENT_BYTES:
            # an impression of a long page may be larger than any event; anything else is oversized
            large = _large_impression(record.data)
            if large is not None:
                return Parsed(record, impression=True, page=explored_page(large))
            return Parsed(record, event=parse_event(record.data))
        document = decode(record.data)
        if is_impression(document):
            return Parsed(record, impression=True, page=explored_page(document))
        return Parsed(record, event=validate_event(document))
    except InvalidEventError as exc:
        return Parsed(record, rejection=exc)


def _large_impression(raw: bytes) -> dict[str, Any] | None:
    try:
        document = decode(raw)
    except InvalidEventError:
        return None
    return document if is_impression(document) else None


@dataclass
class BatchOutcome:
    records_in: int = 0
    processed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    failed_sequence_numbers: list[str] = field(default_factory=list)
    session_reads: int = 0  # BatchGetItem / GetItem calls
    session_writes: int = 0  # PutItem calls (one per shopper with new events, plus conflict retries)
    counter_writes: int = (
        0  # TransactWriteItems calls on the counters table (99 counts and the dirty set each)
    )
    erased: int = 0  # events of erased shoppers, from before their erasure: dropped, never stored
    conflicts: int = 0
    uncounted: int = 0  # events processed whose trending counter write failed (counters are best effort)
    stats_writes: int = 0  # UpdateItem calls on the stream figures (one per batch with new events)
    impressions: int = 0  # impression records on the stream, skipped (not behaviour events)
    explored_pages: int = 0  # impressions whose exploration slots were counted in the posteriors
    explored_replays: int = 0  # impressions of pages counted before (a replay)
    explored_clicks: int = 0  # clicks credited to an exploration item's posterior
    exploration_writes: int = 0  # transactions on the posteriors (one per page counted, click credited)

    def fail(self, sequence_numbers: Iterable[str]) -> None:
        """Reports records for a retry, each once."""
        known = set(self.failed_sequence_numbers)
        for number in sequence_numbers:
            if number not in known:
                known.add(number)
                self.failed_sequence_numbers.append(number)

    def add_exploration(self, exploration: ExplorationOutcome) -> None:
        self.explored_pages += exploration.pages
        self.explored_replays += exploration.replayed_pages
        self.explored_clicks += exploration.clicks
        self.exploration_writes += exploration.writes
        self.session_reads += exploration.page_reads
        self.fail(exploration.failed)

    @property
    def failed(self) -> int:
        return len(self.failed_sequence_numbers)


class DeadLetters:
    """Sends unprocessable records, with their payload and reason, to the dead-letter queue."""

    def __init__(self, sqs: Any, queue_url: str):
        self._sqs = sqs
        self._queue_url = queue_url

    def send(self, rejected: Sequence[tuple[StreamRecord, InvalidEventError]]) -> list[StreamRecord]:
        """Returns the records the queue refused (they must be retried, not dropped)."""
        refused: list[StreamRecord] = []
        for start in range(0, len(rejected), 10):  # SQS takes 10 messages per batch
            chunk = rejected[start : start + 10]
            entries = [
                {"Id": str(number), "MessageBody": json.dumps(dead_letter_body(record, error))}
                for number, (record, error) in enumerate(chunk)
            ]
            response = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            refused.extend(chunk[int(failure["Id"])][0] for failure in response.get("Failed", []))
        return refused


def dead_letter_body(record: StreamRecord, error: InvalidEventError) -> dict[str, Any]:
    return {
        "reason_code": error.code,
        "reason": str(error),
        "sequence_number": record.sequence_number,
        "partition_key": record.partition_key,
        "payload_base64": base64.b64encode(record.data).decode(),
    }


def merge_session(state: SessionState, events: Iterable[Event]) -> SessionState:
    """The session after ``events`` (already known to be new): ordered by event time whatever the arrival
    order, bounded to the last ``SESSION_EVENTS_KEPT`` events and ``SEEN_EVENT_IDS_KEPT`` ids."""
    incoming = list(events)
    added = [
        SessionEvent(
            event.event_id, event.item_id, event.event_type, event.weight, event.timestamp.timestamp()
        )
        for event in incoming
    ]
    merged = sorted([*state.events, *added], key=lambda event: event.ts)[-SESSION_EVENTS_KEPT:]
    seen = [*state.seen, *(event.event_id for event in incoming)][-SEEN_EVENT_IDS_KEPT:]
    bought = {event.item_id for event in incoming if event.event_type == "purchase"}
    return SessionState(state.user_id, tuple(merged), tuple(seen), state.purchased | bought, state.version)


class EventProcessor:
    def __init__(
        self,
        store: FeatureStore,
        dead_letters: DeadLetters,
        session_ttl_seconds: int,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.store = store
        self.dead_letters = dead_letters
        self.session_ttl_seconds = session_ttl_seconds
        self.clock = clock
        self.sleep = sleep  # between a conflicted trending transaction's attempts
        self.exploration = ExplorationCounter(store)

    def process(self, records: Iterable[StreamRecord]) -> BatchOutcome:
        """Both stages in one call (the twin's tools and the bench use it; the handler uses Powertools)."""
        return self.apply([parse_record(record) for record in records])

    def apply(self, parsed: Sequence[Parsed]) -> BatchOutcome:
        outcome = BatchOutcome(records_in=len(parsed), impressions=sum(p.impression for p in parsed))
        rejected = [(p.record, p.rejection) for p in parsed if p.rejection is not None]
        if rejected:
            try:
                refused = self.dead_letters.send(rejected)
            except Exception:  # the queue is unreachable: retry these records rather than lose them
                logger.exception("dead-letter queue unavailable; %d records will be retried", len(rejected))
                refused = [record for record, _ in rejected]
            outcome.failed_sequence_numbers.extend(record.sequence_number for record in refused)
            outcome.dead_lettered = len(rejected) - len(refused)
            logger.warning("dead-lettered %d records, first: %s", len(rejected), rejected[0][1])

        now = self.clock()
        # pages first: a click later in the batch finds its page counted
        pages = [(p.record.sequence_number, p.page) for p in parsed if p.page is not None]
        if pages:
            counted = self.exploration.count_pages(pages, now)
            outcome.add_exploration(counted)
            uncounted = frozenset(
                page.recommendation_id for number, page in pages if number in set(counted.failed)
            )
            known = {
                page.recommendation_id: page for _, page in pages if page.recommendation_id not in uncounted
            }
        else:
            uncounted, known = frozenset(), {}

        by_user: dict[str, list[tuple[StreamRecord, Event]]] = defaultdict(list)
        batch_ids: set[str] = set()
        for item in parsed:
            if item.event is None:
                continue
            if item.event.event_id in batch_ids:
                outcome.duplicates += 1
                continue
            batch_ids.add(item.event.event_id)
            by_user[item.event.user_id].append((item.record, item.event))
        if by_user:
            self._apply_sessions(by_user, now, outcome)
        clicks = [
            (item.record.sequence_number, item.event)
            for item in parsed
            if item.event is not None and item.event.event_type == "click" and item.event.recommendation_id
        ]
        if clicks:
            outcome.add_exploration(self.exploration.credit_clicks(clicks, known, now, uncounted))
        return outcome

    def _apply_sessions(
        self, by_user: dict[str, list[tuple[StreamRecord, Event]]], now: float, outcome: BatchOutcome
    ) -> None:
        """The sessions and trending counters of the batch's events (already deduplicated in the batch)."""
        try:
            sessions = self.store.read_sessions(by_user)
            # each shopper's session and erasure marker
            outcome.session_reads += -(-2 * len(by_user) // BATCH_GET_LIMIT)
        except Exception:  # retryable: throttling, timeouts. Nothing was written, so all of it is retried
            logger.exception("session read failed; the batch's events will be retried")
            outcome.fail(r.sequence_number for e in by_user.values() for r, _ in e)
            return

        applied: list[Event] = []
        for user_id, entries in by_user.items():
            try:
                erased_before = outcome.erased
                new = self._write_user(sessions[user_id], [event for _, event in entries], now, outcome)
                outcome.duplicates += len(entries) - len(new) - (outcome.erased - erased_before)
                outcome.processed += len(new)
                applied.extend(new)
            except Exception:
                logger.exception("session write failed for a shopper; their records will be retried")
                outcome.fail(record.sequence_number for record, _ in entries)
        self._count_trending(applied, now, outcome)
        self._record_stream(applied, now, outcome)

    def _write_user(
        self, state: SessionState, events: list[Event], now: float, outcome: BatchOutcome
    ) -> list[Event]:
        """Writes the shopper's new events; returns them (an event already in ``seen`` is a duplicate)."""
        expires_at = int(now) + self.session_ttl_seconds
        for attempt in range(WRITE_ATTEMPTS):
            if state.erased_at is not None:
                # the shopper was erased: what they did before is never stored again (later is new consent)
                kept = [event for event in events if event.timestamp.timestamp() > state.erased_at]
                outcome.erased += len(events) - len(kept)
                events = kept
            seen = set(state.seen)
            new = [event for event in events if event.event_id not in seen]
            if not new:
                return []
            try:
                outcome.session_writes += 1
                self.store.write_session(merge_session(state, new), state.version, expires_at)
                return new
            except SessionConflictError:
                outcome.conflicts += 1
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
                state = self.store.read_session(state.user_id)
                outcome.session_reads += 1
        raise AssertionError("unreachable")  # pragma: no cover

    def _count_trending(self, events: list[Event], now: float, outcome: BatchOutcome) -> None:
        """One ADD per distinct (hour, item) of the batch, with the hours marked for the compactor, in one
        transaction per 99 counts (``Counters.add_counts``). Best effort, on purpose: the events are already
        in their sessions, so a retry would see them as duplicates; failing the batch here could not recount
        them. A transaction that fails (after its conflict retries) leaves its events uncounted."""
        moment = datetime.fromtimestamp(now, UTC)
        counts: dict[tuple[str, str], float] = defaultdict(float)
        events_of: dict[tuple[str, str], int] = defaultdict(int)
        for event in events:
            hour = counting_bucket(event.timestamp, moment)
            if hour is not None:
                counts[hour, event.item_id] += event.weight
                events_of[hour, event.item_id] += 1
        if not counts:
            return
        expires_at = int((moment + BUCKET_TTL).timestamp())
        token = ",".join(sorted(event.event_id for event in events))
        try:
            outcome.counter_writes += self.store.add_counts(counts, expires_at, token, sleep=self.sleep)
        except Exception:
            logger.exception("trending counts of %d events not written", sum(events_of.values()))
            outcome.uncounted += sum(events_of.values())

    def _record_stream(self, events: list[Event], now: float, outcome: BatchOutcome) -> None:
        """The staff console's events per minute and freshness: one small UpdateItem per batch, best effort
        for the same reason as the trending counters."""
        if not events:
            return
        newest = max(event.timestamp for event in events).timestamp()
        try:
            self.store.record_batch(datetime.fromtimestamp(now, UTC), len(events), newest)
            outcome.stats_writes += 1
        except Exception:
            logger.exception("stream figures not updated")


class EventBatchProcessor(BasePartialProcessor):
    """A Powertools partial processor (its documented extension point) with a batch stage after the
    per-record one.

    The record handler (``parse_kinesis_record``) only parses. The batch stage runs when the processor's
    context closes (``_clean``): every parsed record goes to ``EventProcessor.apply`` at once, then each
    record is reported through ``success_handler`` or ``failure_handler``: the records of shoppers whose
    write failed are failures, which ``response()`` returns as ``batchItemFailures``, so the event source
    mapping retries them. Dead-lettered and duplicate records are handled, hence successes.
    """

    def __init__(self, core: EventProcessor):
        super().__init__()
        self.core = core
        self.outcome = BatchOutcome()
        self._parsed: list[tuple[dict[str, Any], Parsed]] = []

    def _prepare(self) -> None:
        self.success_messages.clear()
        self.fail_messages.clear()
        self.exceptions.clear()
        self._parsed = []
        self.outcome = BatchOutcome()

    def _process_record(self, record: dict[str, Any]) -> tuple[str, Parsed, dict[str, Any]]:
        parsed = self.handler(record)  # parsing never raises: a bad record is a rejection to dead-letter
        self._parsed.append((record, parsed))
        return ("parsed", parsed, record)

    async def _async_process_record(self, record: dict[str, Any]) -> tuple[str, Parsed, dict[str, Any]]:
        raise NotImplementedError("the batch stage is synchronous")

    def _clean(self) -> None:
        self.outcome = self.core.apply([parsed for _, parsed in self._parsed])
        failed = set(self.outcome.failed_sequence_numbers)
        for record, parsed in self._parsed:
            if parsed.record.sequence_number in failed:
                error = RuntimeError(
                    f"record {parsed.record.sequence_number} not stored; the mapping retries it"
                )
                self.failure_handler(record, (RuntimeError, error, None))
            else:
                self.success_handler(record, parsed)

    def response(self) -> dict[str, list[dict[str, str]]]:
        """The partial batch response: the sequence numbers the event source mapping must retry."""
        failed = set(self.outcome.failed_sequence_numbers)
        return {
            "batchItemFailures": [
                {"itemIdentifier": parsed.record.sequence_number}
                for _, parsed in self._parsed
                if parsed.record.sequence_number in failed
            ]
        }


def parse_kinesis_record(record: dict[str, Any]) -> Parsed:
    """The record handler: a Kinesis record of the Lambda event, decoded and validated."""
    return parse_record(StreamRecord.from_lambda(record))
