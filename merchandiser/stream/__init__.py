"""Events in: browser events put on the Kinesis stream, and the processor that turns each batch into
fresh sessions and trending counters, every event exactly once; the compactor that summarises the counters
for serving."""

from merchandiser.stream.compaction import CompactionOutcome, TrendingCompactor
from merchandiser.stream.processing import (
    BatchOutcome,
    DeadLetters,
    EventBatchProcessor,
    EventProcessor,
    InvalidEventError,
    Parsed,
    StreamRecord,
    dead_letter_body,
    merge_session,
    parse_event,
    parse_kinesis_record,
    parse_record,
)
from merchandiser.stream.producer import PUT_RECORDS_LIMIT, StreamUnavailableError, put_events

__all__ = [
    "PUT_RECORDS_LIMIT",
    "BatchOutcome",
    "CompactionOutcome",
    "DeadLetters",
    "EventBatchProcessor",
    "EventProcessor",
    "InvalidEventError",
    "Parsed",
    "StreamRecord",
    "StreamUnavailableError",
    "TrendingCompactor",
    "dead_letter_body",
    "merge_session",
    "parse_event",
    "parse_kinesis_record",
    "parse_record",
    "put_events",
]
