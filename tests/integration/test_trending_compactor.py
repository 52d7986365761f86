"""The trending compactor on moto: a count written during a run is never lost, a failed hour is retried by
the next run, a failure to read or clear the dirty set compacts nothing and leaves every hour dirty; and the
scheduled Lambda handler runs it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from merchandiser.store import BUCKET_TTL, FeatureStore, bucket_key
from merchandiser.stream import TrendingCompactor

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
TTL = int((NOW + BUCKET_TTL).timestamp())
HOUR, EARLIER = bucket_key(NOW), bucket_key(NOW - timedelta(hours=1))


@pytest.fixture
def store(aws) -> FeatureStore:  # type: ignore[no-untyped-def]
    return FeatureStore(aws.dynamodb, "users", "sessions", counters_table="counters")


def count(store: FeatureStore, hour: str, item_id: str, n: float) -> None:
    """The event processor's write for one (hour, item): the ADD and the hour marked dirty, in one
    transaction."""
    store.add_counts({(hour, item_id): n}, TTL, token=f"{hour}:{item_id}:{n}")


def test_a_count_written_after_the_hours_were_cleared_marks_its_hour_again(store, monkeypatch):
    # Given a dirty hour
    count(store, HOUR, "a", 1.0)
    clear = store.clear_dirty

    def clear_then_a_batch_lands(hours: Any) -> None:
        clear(hours)
        count(store, HOUR, "a", 5.0)  # after the DELETE, before the hour's Query: the Query sees it too
        count(store, EARLIER, "b", 2.0)  # an hour this run does not compact

    monkeypatch.setattr(store, "clear_dirty", clear_then_a_batch_lands)
    # When the compactor runs while batches land
    first = TrendingCompactor(store, clock=NOW.timestamp).run()
    monkeypatch.undo()
    # Then its summary holds every count its Query saw, and the hours written meanwhile are dirty again
    assert first.compacted == [HOUR] and store.trending(NOW, 2) == {"a": 6.0}
    assert store.dirty_hours() == {HOUR, EARLIER}
    # And the next run compacts them: no count is lost
    assert TrendingCompactor(store, clock=NOW.timestamp).run().compacted == [EARLIER, HOUR]
    assert store.trending(NOW, 2) == {"a": 6.0, "b": 2.0} and store.dirty_hours() == set()


def test_an_hour_whose_summary_fails_stays_dirty_and_the_next_run_compacts_it(store, monkeypatch, caplog):
    # Given two dirty hours, and a table that refuses the current hour's summary once
    count(store, HOUR, "a", 1.0)
    count(store, EARLIER, "b", 2.0)
    put = store.put_summary

    def throttled(hour: str, *args: Any) -> None:
        if hour == HOUR:
            raise RuntimeError("ProvisionedThroughputExceededException")
        put(hour, *args)

    monkeypatch.setattr(store, "put_summary", throttled)
    # When the compactor runs
    outcome = TrendingCompactor(store, clock=NOW.timestamp).run()
    monkeypatch.undo()
    # Then the other hour is compacted, the failed one is logged and marked dirty again
    assert outcome.compacted == [EARLIER] and outcome.failed == [HOUR] and outcome.lost == []
    assert f"trending hour {HOUR} not compacted" in caplog.text
    assert store.dirty_hours() == {HOUR} and store.trending(NOW, 2) == {"b": 2.0}
    # And the next run compacts it
    assert TrendingCompactor(store, clock=NOW.timestamp).run().compacted == [HOUR]
    assert store.trending(NOW, 2) == {"a": 1.0, "b": 2.0}


def test_a_failed_hour_that_cannot_be_marked_again_is_reported_lost_until_its_next_count(store, monkeypatch):
    count(store, HOUR, "a", 1.0)

    def refused(*args: Any) -> None:
        raise RuntimeError("ThrottlingException")

    monkeypatch.setattr(store, "hour_counts", refused)
    monkeypatch.setattr(store, "mark_dirty", refused)
    outcome = TrendingCompactor(store, clock=NOW.timestamp).run()
    assert outcome.failed == outcome.lost == [HOUR]
    monkeypatch.undo()
    # its counts are kept: the hour's next count marks it, and that run summarises all of them
    count(store, HOUR, "a", 1.0)
    TrendingCompactor(store, clock=NOW.timestamp).run()
    assert store.trending(NOW, 1) == {"a": 2.0}


@pytest.mark.parametrize("step", ["dirty_hours", "clear_dirty"])
def test_a_dirty_set_it_cannot_read_or_clear_raises_and_leaves_every_hour_dirty(store, monkeypatch, step):
    count(store, HOUR, "a", 1.0)

    def refused(*args: Any) -> None:
        raise RuntimeError("ThrottlingException")

    monkeypatch.setattr(store, step, refused)
    with pytest.raises(RuntimeError, match="Throttling"):
        TrendingCompactor(store, clock=NOW.timestamp).run()
    monkeypatch.undo()
    assert store.dirty_hours() == {HOUR} and store.trending(NOW, 1) == {}


def test_the_scheduled_handler_compacts_and_reports(aws, store, monkeypatch):
    # Given the function's environment and a dirty hour
    for key, value in aws.env().items():
        monkeypatch.setenv(key, value)
    count(store, HOUR, "a", 3.0)
    from lambdas.trending_compactor import handler as module
    from local_twin.functions import LambdaContext

    module.compactor.cache_clear()
    # When EventBridge's minute tick invokes it
    report = module.handler(
        {"source": "aws.events", "detail-type": "Scheduled Event"},
        LambdaContext(function_name="merchandiser-trending-compactor"),
    )
    module.compactor.cache_clear()
    # Then the hour is summarised and the run says so
    assert report == {"compacted": [HOUR], "failed": [], "lost": [], "items_read": 1, "truncated": 0}
    assert store.trending(NOW, 1) == {"a": 3.0}
