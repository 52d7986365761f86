"""Putting validated events on the Kinesis stream, partition key = user id (per-shopper order)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from merchandiser.schemas import Event

PUT_RECORDS_LIMIT = 500
# Kinesis refuses records one by one when a shard is over its write limit (a share of a batch): each
# attempt retries only those, after the caller's backoff (the events API: 50 ms doubling, 1.55 s in all
# before the 6th), so a throttled shard delays events rather than failing the shopper's request.
ATTEMPTS = 6


class StreamUnavailableError(RuntimeError):
    """Kinesis kept refusing some records after every attempt."""


def put_events(
    kinesis: Any, stream_name: str, events: Sequence[Event], backoff: Callable[[int], None] = lambda _: None
) -> int:
    """Puts every event, retrying only the records Kinesis refused (throttling); returns how many."""
    for start in range(0, len(events), PUT_RECORDS_LIMIT):
        pending = [
            {"Data": json.dumps(event.to_record()).encode(), "PartitionKey": event.user_id}
            for event in events[start : start + PUT_RECORDS_LIMIT]
        ]
        for attempt in range(ATTEMPTS):
            try:
                response = kinesis.put_records(StreamName=stream_name, Records=pending)
            except (BotoCoreError, ClientError) as exc:
                raise StreamUnavailableError(
                    f"the event stream is unavailable ({exc}); send the events again"
                ) from exc
            if not response.get("FailedRecordCount"):
                pending = []
                break
            pending = [
                record
                for record, result in zip(pending, response["Records"], strict=True)
                if "ErrorCode" in result
            ]
            backoff(attempt)
        if pending:
            raise StreamUnavailableError(f"{len(pending)} events were refused by the stream; send them again")
    return len(events)
