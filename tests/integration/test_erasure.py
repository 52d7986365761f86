"""DELETE /users/{id}: the profile and session are gone, a tombstone is written, and the next training
leaves the shopper's archived events out and says how many it dropped."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from local_twin.functions import LambdaContext
from local_twin.http_front import Route, proxy_event
from local_twin.script_mode import download_prefix
from merchandiser.store import EVENTS_PREFIX, FeatureStore, SessionEvent, tombstone_key
from training.channels import ChannelError, read_channels

ROUTE = Route("DELETE", "/users/{user_id}", "catalog")


@pytest.fixture
def delete(aws, monkeypatch):  # type: ignore[no-untyped-def]
    for key, value in aws.env().items():
        monkeypatch.setenv(key, value)
    from lambdas.catalog import handler as module

    module.store.cache_clear()
    module.s3.cache_clear()

    def send(user_id: str) -> tuple[int, dict[str, Any]]:
        event = proxy_event("DELETE", ROUTE, f"/users/{user_id}", {"user_id": user_id}, "", {}, None)
        response = module.handler(event, LambdaContext("catalog"))
        return response["statusCode"], json.loads(response["body"])

    yield send
    module.store.cache_clear()
    module.s3.cache_clear()


def archived(user_id: str, n: int, day: str = "2026-11-21") -> list[dict[str, Any]]:
    return [
        {"schema_version": 1, "event_id": f"{user_id}-{n}-{k}", "user_id": user_id, "item_id": f"i{k}",
         "event_type": "view", "timestamp": f"{day}T10:{k:02d}:00Z"}
        for k in range(n)
    ]  # fmt: skip


def test_erasure_removes_state_and_the_next_training_drops_the_archived_events(aws, delete, tmp_path: Path):
    # Given a shopper with a profile, a session and archived events, and another shopper
    store = FeatureStore(aws.dynamodb, "users", "sessions")
    store.put_profiles([{"user_id": "gone", "history": {"i1": 1.0}}], model_version="m1")
    store.append_session(
        "gone", [SessionEvent("s1", "i1", "view", 1.0, 1.8e9)], ["i1"], expires_at=2_000_000_000
    )
    lines = [*archived("gone", 6), *archived("stays", 4)]
    key = f"{EVENTS_PREFIX}year=2026/month=11/day=21/events-archive-1.jsonl.gz"
    body = gzip.compress("".join(json.dumps(line) + "\n" for line in lines).encode())
    s3 = aws_s3()
    s3.put_object(Bucket="artifacts", Key=key, Body=body)
    # When the shopper asks to be erased
    status, answer = delete("gone")
    # Then the profile and session are gone and the tombstone is where the training channel reads
    assert status == 200 and answer["erased"] is True and answer["tombstone"] == tombstone_key("gone")
    assert "Item" not in aws.dynamodb.Table("users").get_item(Key={"user_id": "gone"})
    assert "Item" not in aws.dynamodb.Table("sessions").get_item(Key={"user_id": "gone"})
    assert store.shopper("gone").known is False
    # And when the next training downloads the interactions channel and reads it
    channel = tmp_path / "interactions"
    download_prefix(s3, f"s3://artifacts/{EVENTS_PREFIX}", channel)
    shop = read_channels(channel)
    # Then none of the erased shopper's events is trained on, and the report counts them
    assert set(shop.interactions["user_id"]) == {"stays"}
    assert shop.report["erased_rows_dropped"] == 6 and shop.report["erased_users"] == 1
    assert shop.report["rows_kept"] == 4


def test_events_after_the_erasure_are_new_consent_and_kept(aws, delete, tmp_path: Path):
    status, _ = delete("back")
    assert status == 200
    channel = tmp_path / "interactions"
    download_prefix(aws_s3(), f"s3://artifacts/{EVENTS_PREFIX}", channel)
    day = channel / "year=2099" / "month=01" / "day=01"
    day.mkdir(parents=True)
    (day / "a.jsonl").write_text("".join(json.dumps(e) + "\n" for e in archived("back", 3, "2099-01-01")))
    shop = read_channels(channel)
    assert len(shop.interactions) == 3 and shop.report["erased_rows_dropped"] == 0


def test_an_unreadable_tombstone_stops_the_training(tmp_path: Path):
    (tmp_path / "_tombstones").mkdir()
    (tmp_path / "_tombstones" / "x.json").write_text("{not json")
    (tmp_path / "a.jsonl").write_text(json.dumps(archived("x", 1)[0]) + "\n")
    with pytest.raises(ChannelError, match=r"tombstone x\.json"):
        read_channels(tmp_path)


def test_a_bad_user_id_is_refused_and_nothing_is_written(aws, delete):
    status, _ = delete("..%2Fetc")
    assert status == 422
    assert aws_s3().list_objects_v2(Bucket="artifacts").get("KeyCount") == 0


def aws_s3() -> Any:
    import boto3

    return boto3.client("s3")
