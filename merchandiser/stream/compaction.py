"""The trending compactor: the hours the event processor counted in, summarised for serving.

Run every minute (``lambdas/trending_compactor``, an EventBridge rule). One run:

1. reads the dirty set (``Counters.dirty_hours``) and takes those hours out of it (``clear_dirty``) before
   reading any count, so a count written during the run either lands before that hour's Query or marks
   the hour dirty again for the next run: none is lost;
2. for each hour: Queries its write partitions (``Counters.hour_counts``), keeps the
   ``TRENDING_TOP_PER_HOUR`` largest counts and puts them as the hour's summary (one PutItem);
3. an hour whose Query or PutItem failed goes back into the dirty set, so the next run retries it.

A failure to read or clear the set raises (nothing was compacted and the hours are still dirty: the next
run, a minute later, retries them). Serving sees a count at most about a minute and a run after it is
written. The function runs one at a time (reserved concurrency 1): two overlapping runs could put an hour's
summaries out of order, the earlier Query's last, leaving it stale until the hour's next count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from merchandiser.store import BUCKET_TTL, TRENDING_TOP_PER_HOUR, Counters, top_counts

logger = logging.getLogger(__name__)


@dataclass
class CompactionOutcome:
    compacted: list[str] = field(default_factory=list)  # hours whose summary was written
    failed: list[str] = field(default_factory=list)  # hours left to the next run
    items_read: int = 0  # count items the Queries returned
    truncated: int = 0  # hours with more items than the summary keeps
    lost: list[str] = field(default_factory=list)  # failed hours that could not be marked dirty again


class TrendingCompactor:
    def __init__(
        self,
        store: Counters,
        top: int = TRENDING_TOP_PER_HOUR,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.top = top
        self.clock = clock

    def run(self) -> CompactionOutcome:
        outcome = CompactionOutcome()
        hours = sorted(self.store.dirty_hours())
        if not hours:
            return outcome
        self.store.clear_dirty(hours)
        expires_at = int((datetime.fromtimestamp(self.clock(), UTC) + BUCKET_TTL).timestamp())
        for hour in hours:
            try:
                counts = self.store.hour_counts(hour)
                self.store.put_summary(hour, top_counts(counts, self.top), expires_at)
            except Exception:
                logger.exception("trending hour %s not compacted; the next run retries it", hour)
                outcome.failed.append(hour)
                continue
            outcome.compacted.append(hour)
            outcome.items_read += len(counts)
            outcome.truncated += len(counts) > self.top
        if outcome.failed:
            try:
                self.store.mark_dirty(outcome.failed)
            except Exception:
                # their counts are kept: the hour's next count marks it again
                logger.exception("hours %s not marked dirty again", outcome.failed)
                outcome.lost = list(outcome.failed)
        return outcome
