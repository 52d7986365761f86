"""Exploration posteriors on moto through the event processor's real handler: a page's exploration slots
count once however often the stream delivers its impression, a click on them counts once per page and
item, only from the page's shopper; a failing write is retried, never lost, and serving still serves."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_twin.bench_events import Instrumented
from merchandiser.store import FeatureStore, Posterior
from tests.integration.test_event_processor import NOW, batch_of, event, failed, record

PAGE = "rec-1"


def impression(recommendation_id: str = PAGE, user_id: str = "u1") -> dict[str, Any]:
    return {
        "record_type": "impression",
        "recommendation_id": recommendation_id,
        "user_id": user_id,
        "surface": "home",
        "experiment": "",
        "variant": "production",
        "model_version": "m1",
        "timestamp": "2026-11-22T10:00:00.000Z",
        "items": [
            {"item_id": "i1", "position": 0, "source": "ann"},
            {"item_id": "new1", "position": 1, "source": "new arrival"},
            {"item_id": "new2", "position": 2, "source": "new arrival"},
        ],
    }


def click(event_id: str, item_id: str, user_id: str = "u1", recommendation_id: str = PAGE) -> dict[str, Any]:
    return {
        **event(event_id, user_id, item_id, "click", "2026-11-22T10:01:00Z"),
        "recommendation_id": recommendation_id,
        "position": 1,
    }


def batch(records: list[dict[str, Any]], first: int = 0) -> dict[str, Any]:
    return {"Records": [record(r, first + n, str(r["user_id"])) for n, r in enumerate(records)]}


@pytest.fixture
def handler(aws, monkeypatch):  # type: ignore[no-untyped-def]
    for key, value in aws.env().items():
        monkeypatch.setenv(key, value)
    instrumented = Instrumented(clock=lambda: NOW)
    yield instrumented
    instrumented.module.processor.cache_clear()


def posteriors(aws) -> dict[str, Posterior]:  # type: ignore[no-untyped-def]
    return FeatureStore(aws.dynamodb, "users", "sessions").posteriors(["i1", "new1", "new2"])


def test_an_impression_counts_its_exploration_items_once_however_often_it_arrives(aws, handler):
    # Given a page with two items in exploration slots / When its impression arrives three times
    for first in (0, 10, 20):
        assert failed(handler(batch([impression()], first))) == []
    # Then each exploration item has one impression, the organic item none
    assert posteriors(aws) == {"new1": Posterior(1, 0), "new2": Posterior(1, 0)}
    assert handler.outcomes[0].explored_pages == 1
    assert [o.explored_replays for o in handler.outcomes[1:]] == [1, 1]


def test_a_click_on_an_exploration_slot_counts_once_per_page_and_item(aws, handler):
    # Given the page's impression and, in one batch, a click on new1, its replay, and a second click on it
    handler(batch([impression()]))
    handler(batch([click("c1", "new1"), click("c1", "new1"), click("c2", "new1")], 10))
    # When the same click is delivered again in a later batch
    handler(batch([click("c1", "new1")], 20))
    # Then new1 has one click of one impression, and the processor counted exactly one credit
    assert posteriors(aws)["new1"] == Posterior(1, 1)
    assert sum(o.explored_clicks for o in handler.outcomes) == 1


def test_impression_and_click_in_one_batch_are_both_counted(aws, handler):
    # Given a batch holding the page's impression, then a click on new2 / When it is processed
    response = handler(batch([impression(), click("c1", "new2")]))
    # Then both counted
    assert failed(response) == []
    assert posteriors(aws)["new2"] == Posterior(1, 1)


def test_clicks_that_are_not_on_an_exploration_slot_earn_nothing(aws, handler):
    handler(batch([impression()]))
    # Given clicks on the organic item, by another shopper, on an unknown page, and one without a page
    stray = [
        click("c1", "i1"),
        click("c2", "new1", user_id="u2"),
        click("c3", "new1", recommendation_id="rec-unknown"),
        event("c4", "u1", "new1", "click"),
    ]
    response = handler(batch(stray, 10))
    # Then every event is processed, and no posterior has a click
    assert failed(response) == []
    assert all(posterior.clicks == 0 for posterior in posteriors(aws).values())


def test_a_failing_posterior_write_retries_the_record_and_counts_it_once(aws, handler, monkeypatch):
    # Given DynamoDB refusing transactions for one batch
    client = handler.store._dynamodb.meta.client
    real = client.transact_write_items

    def throttled(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "TransactWriteItems"
        )

    monkeypatch.setattr(client, "transact_write_items", throttled)
    first = handler(batch([impression(), click("c1", "new1")]))
    # Then both records are reported for a retry, and nothing is counted
    assert failed(first) == [f"{0:056d}", f"{1:056d}"]
    monkeypatch.setattr(client, "transact_write_items", real)
    # When the event source mapping sends them again
    assert failed(handler(batch([impression(), click("c1", "new1")]))) == []
    # Then the page and its click count once
    assert posteriors(aws)["new1"] == Posterior(1, 1)


def test_an_unreadable_page_retries_the_click(aws, handler, monkeypatch):
    handler(batch([impression()]))
    # Given the explored pages cannot be read
    monkeypatch.setattr(
        FeatureStore, "explored_pages", lambda self, ids: (_ for _ in ()).throw(OSError("down"))
    )
    response = handler(batch([click("c1", "new1")], 10))
    # Then the click is reported for a retry (its session already holds it: the retry is a duplicate there)
    assert failed(response) == [f"{10:056d}"]


def test_plain_events_still_balance(aws, handler):
    # Given ordinary views alongside / Then nothing about exploration changes their processing
    response = handler(batch_of([event("v1"), event("v2", item_id="i2")]))
    assert (
        failed(response) == [] and handler.outcome.processed == 2 and handler.outcome.exploration_writes == 0
    )
