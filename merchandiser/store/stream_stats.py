"""What the stream is doing, for staff (sessions table): events processed per minute and how fresh they are.

One small item per hour of processing time, written by the event processor with one UpdateItem per batch
(best effort, like the trending counters) and read by ``GET /events/stats``:

{user_id: "#stream#YYYYMMDDHH", "m#MM": events processed in minute MM, processed_at: epoch s of the last
batch, newest_event_at: epoch s of the newest event in that batch, expires_at}

The key starts with "#", which no shopper id can (``schemas.ID_PATTERN``); the item stays under 1 KB
(60 minute counters), so the write costs one write unit whatever the traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from merchandiser.store.dynamo import Tables, to_dynamo

STREAM_KEY_PREFIX = "#stream#"
MINUTE_ATTRIBUTE_PREFIX = "m#"
STATS_TTL = timedelta(days=2)
MINUTES_SHOWN = 60


def stats_key(moment: datetime) -> str:
    return STREAM_KEY_PREFIX + moment.astimezone(UTC).strftime("%Y%m%d%H")


@dataclass(frozen=True)
class StreamFigures:
    """The last ``MINUTES_SHOWN`` minutes, oldest first, ending with the current (partial) minute."""

    minutes: list[tuple[datetime, int]]
    processed_at: float | None  # the last batch with events, epoch s
    newest_event_at: float | None  # the newest event of that batch, by its own timestamp

    @property
    def events_last_hour(self) -> int:
        return sum(count for _, count in self.minutes)

    def as_dict(self, now: datetime) -> dict[str, Any]:
        def iso(epoch: float | None) -> str | None:
            return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()

        processed, newest = self.processed_at, self.newest_event_at
        return {
            "minutes": [{"minute": minute.isoformat(), "events": count} for minute, count in self.minutes],
            "events_last_hour": self.events_last_hour,
            "events_per_minute": round(self.events_last_hour / len(self.minutes), 3) if self.minutes else 0.0,
            "processed_at": iso(processed),
            "newest_event_at": iso(newest),
            # how long ago the processor last applied an event, and how old that event was by then
            "seconds_since_processed": None if processed is None else round(now.timestamp() - processed, 3),
            "lag_seconds": None if processed is None or newest is None else round(processed - newest, 3),
        }


class StreamStats(Tables):
    def record_batch(self, now: datetime, events: int, newest_event_at: float) -> None:
        """Adds a batch's processed events to this minute and notes when, and how fresh they were."""
        self._dynamodb.Table(self.sessions_table).update_item(
            Key={"user_id": stats_key(now)},
            UpdateExpression="SET processed_at = :now, newest_event_at = :newest, expires_at = :ttl "
            "ADD #minute :events",
            ExpressionAttributeNames={"#minute": f"{MINUTE_ATTRIBUTE_PREFIX}{now.astimezone(UTC):%M}"},
            ExpressionAttributeValues={
                ":now": to_dynamo(now.timestamp()),
                ":newest": to_dynamo(newest_event_at),
                ":ttl": int((now + STATS_TTL).timestamp()),
                ":events": events,
            },
        )

    def stream_figures(self, now: datetime) -> StreamFigures:
        """Per-minute counts of the last hour (this hour's item and the one before: one BatchGetItem)."""
        current = now.astimezone(UTC).replace(second=0, microsecond=0)
        minutes = [current - timedelta(minutes=age) for age in range(MINUTES_SHOWN - 1, -1, -1)]
        keys = sorted({stats_key(minute) for minute in minutes}, reverse=True)  # newest hour first
        found = self._batch_get(self.sessions_table, keys, consistent=False)
        counts = [
            (minute, int(found.get(stats_key(minute), {}).get(f"{MINUTE_ATTRIBUTE_PREFIX}{minute:%M}", 0)))
            for minute in minutes
        ]
        latest = next((found[key] for key in keys if key in found), None)
        if latest is None:
            # a quiet hour: the last batch may be older, but the figures say "nothing this hour"
            return StreamFigures(counts, None, None)
        return StreamFigures(counts, float(latest["processed_at"]), float(latest["newest_event_at"]))
