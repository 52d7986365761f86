"""DELETE /users/{id}: the profile and session are gone, a tombstone is written, and the next training
leaves the shopper's archived events out and says how many it dropped."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local_twin.functions import LambdaContext
from local_twin.http_front import Route, proxy_event
from merchandiser.store import (
    EVENTS_PREFIX,
    IMPRESSIONS_PREFIX,
    MODELS_PREFIX,
    OUTPUT_PREFIX,
    STREAM_KEY_PREFIX,
    USER_FEATURES,
    USERS_PREFIX,
    ArchiveEraser,
    FeatureStore,
    SessionEvent,
    tombstone_key,
    user_hash,
)
from merchandiser.stream import StreamRecord
from training.channels import ChannelError, read_channels
from training.s3_channels import download_prefix

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
    assert b"gone" not in s3.get_object(Bucket="artifacts", Key=answer["tombstone"])["Body"].read()
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


def gz_lines(records: list[dict[str, Any]], extra: bytes = b"") -> bytes:
    return gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode() + extra)


def read_lines(s3: Any, key: str) -> list[dict[str, Any]]:
    body = gzip.decompress(s3.get_object(Bucket="artifacts", Key=key)["Body"].read())
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def a_model_tarball(users: list[str], tombstones_until: str | None) -> bytes:
    features = gzip.compress(
        "".join(json.dumps({"user_id": u, "history": {"i1": 1.0}}) + "\n" for u in users).encode()
    )
    manifest = json.dumps(
        {"model_version": "m", "data": {"channels": {"tombstones_until": tombstones_until}}}
    )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("manifest.json", manifest.encode()), (USER_FEATURES, features)):
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def tarball_users(body: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        handle = tar.extractfile(USER_FEATURES)
        assert handle is not None
        return [json.loads(line)["user_id"] for line in gzip.decompress(handle.read()).splitlines()]


def test_the_archive_eraser_rewrites_every_object_that_holds_the_shopper(aws, delete):
    s3 = aws_s3()
    day = f"{EVENTS_PREFIX}year=2026/month=11/day=21/"
    impression = {
        "record_type": "impression",
        "recommendation_id": "r1",
        "user_id": "gone",
        "timestamp": "2026-11-21T10:00:00Z",
        "items": [{"item_id": "i1", "position": 0}],
    }
    # Given the shopper in the event archive (with a garbage line naming them), the impressions, a CSV
    # import, the users channel, a model tarball and a published model's shopper features
    garbage = b'{"user_id": "gone", broken\n'
    s3.put_object(
        Bucket="artifacts",
        Key=f"{day}a.jsonl.gz",
        Body=gz_lines([*archived("gone", 3), *archived("stays", 2)], garbage),
    )
    s3.put_object(Bucket="artifacts", Key=f"{day}other.jsonl.gz", Body=gz_lines(archived("stays", 2)))
    impressions_key = f"{IMPRESSIONS_PREFIX}year=2026/month=11/day=21/i.jsonl.gz"
    s3.put_object(
        Bucket="artifacts",
        Key=impressions_key,
        Body=gz_lines([impression, {**impression, "user_id": "stays"}]),
    )
    imported = b"user_id,item_id,event_type,timestamp\ngone,i1,view,2026-01-01\nstays,i2,view,2026-01-01\n"
    s3.put_object(Bucket="artifacts", Key=f"{EVENTS_PREFIX}interactions.csv", Body=imported)
    s3.put_object(
        Bucket="artifacts", Key=f"{USERS_PREFIX}users.csv", Body=b"user_id,country\ngone,FR\nstays,DE\n"
    )
    s3.put_object(Bucket="artifacts", Key=f"{OUTPUT_PREFIX}job-1/output/model.tar.gz",
                  Body=a_model_tarball(["gone", "stays"], None))  # fmt: skip
    s3.put_object(Bucket="artifacts", Key=f"{MODELS_PREFIX}m1/{USER_FEATURES}",
                  Body=gz_lines([{"user_id": "gone"}, {"user_id": "stays"}]))  # fmt: skip
    s3.put_object(Bucket="artifacts", Key=f"{EVENTS_PREFIX}legacy.parquet", Body=b"PAR1")
    # When the shopper is erased and the daily eraser runs
    assert delete("gone")[0] == 200
    report = ArchiveEraser(s3, "artifacts").run(now=datetime.now(UTC) + timedelta(hours=1))
    # Then every object that named them is rewritten without them, and only those
    assert {r["user_id"] for r in read_lines(s3, f"{day}a.jsonl.gz")} == {"stays"}
    assert b"gone" not in gzip.decompress(
        s3.get_object(Bucket="artifacts", Key=f"{day}a.jsonl.gz")["Body"].read()
    )
    impressions = read_lines(s3, impressions_key)
    assert [r["user_id"] for r in impressions] == ["stays"]
    csv_body = s3.get_object(Bucket="artifacts", Key=f"{EVENTS_PREFIX}interactions.csv")["Body"].read()
    assert csv_body == b"user_id,item_id,event_type,timestamp\nstays,i2,view,2026-01-01\n"
    assert (
        s3.get_object(Bucket="artifacts", Key=f"{USERS_PREFIX}users.csv")["Body"].read()
        == b"user_id,country\nstays,DE\n"
    )
    tarball = s3.get_object(Bucket="artifacts", Key=f"{OUTPUT_PREFIX}job-1/output/model.tar.gz")[
        "Body"
    ].read()
    assert tarball_users(tarball) == ["stays"]
    assert [r["user_id"] for r in read_lines(s3, f"{MODELS_PREFIX}m1/{USER_FEATURES}")] == ["stays"]
    assert report["objects_rewritten"] == 6 and report["records_removed"] == 3 + 1 + 1 + 1 + 1 + 1 + 1
    assert report["not_rewritten"] == [f"{EVENTS_PREFIX}legacy.parquet"]
    # And the next day's run reads nothing it has already cleaned
    assert ArchiveEraser(s3, "artifacts").run(now=datetime.now(UTC) + timedelta(days=1))["objects_read"] == 0


def test_later_events_and_models_trained_after_the_erasure_are_kept(aws, delete):
    s3 = aws_s3()
    assert delete("back")[0] == 200
    erased_at = json.loads(s3.get_object(Bucket="artifacts", Key=tombstone_key("back"))["Body"].read())[
        "erased_at"
    ]
    # Given events of the shopper after the erasure (new consent), a model trained with the tombstone,
    # and a late event from before the erasure that reached the archive after the eraser's first run
    ArchiveEraser(s3, "artifacts").run()
    day = f"{EVENTS_PREFIX}year=2099/month=01/day=01/"
    s3.put_object(
        Bucket="artifacts", Key=f"{day}later.jsonl.gz", Body=gz_lines(archived("back", 2, "2099-01-01"))
    )
    s3.put_object(Bucket="artifacts", Key=f"{EVENTS_PREFIX}year=2026/month=11/day=21/late.jsonl.gz",
                  Body=gz_lines(archived("back", 1)))  # fmt: skip
    s3.put_object(Bucket="artifacts", Key=f"{OUTPUT_PREFIX}job-2/output/model.tar.gz",
                  Body=a_model_tarball(["back"], erased_at))  # fmt: skip
    # When the eraser runs again
    report = ArchiveEraser(s3, "artifacts").run()
    # Then the late pre-erasure event goes, the later ones and the newer model's profile stay
    assert read_lines(s3, f"{EVENTS_PREFIX}year=2026/month=11/day=21/late.jsonl.gz") == []
    assert len(read_lines(s3, f"{day}later.jsonl.gz")) == 2
    tarball = s3.get_object(Bucket="artifacts", Key=f"{OUTPUT_PREFIX}job-2/output/model.tar.gz")[
        "Body"
    ].read()
    assert tarball_users(tarball) == ["back"]
    assert report["objects_rewritten"] == 1 and report["records_removed"] == 1


def test_events_of_an_erased_shopper_still_on_the_stream_never_make_a_new_session(aws, delete):
    from merchandiser.stream import EventProcessor

    store = FeatureStore(aws.dynamodb, "users", "sessions", counters_table="counters")
    # Given a shopper erased while two of their events were still on the stream, and one sent later
    assert delete("gone")[0] == 200
    later = datetime.now(UTC) + timedelta(minutes=5)
    processor = EventProcessor(store, dead_letters=None, session_ttl_seconds=3600)  # type: ignore[arg-type]
    events = [
        *archived("gone", 2),
        {**archived("gone", 1)[0], "event_id": "new", "timestamp": later.isoformat()},
    ]
    records = [StreamRecord(f"{n}", "gone", json.dumps(e).encode()) for n, e in enumerate(events)]
    # When the processor gets them
    outcome = processor.process(records)
    # Then the two from before the erasure are dropped and counted, the later one is new consent
    assert outcome.erased == 2 and outcome.processed == 1 and outcome.duplicates == 0
    assert [event.event_id for event in store.read_session("gone").events] == ["new"]
    # And the marker names the shopper only by the sha256 of the id; the counters by no one
    items = aws.dynamodb.Table("sessions").scan()["Items"]
    keys = [item["user_id"] for item in items if not item["user_id"].startswith(STREAM_KEY_PREFIX)]
    assert sorted(keys) == sorted(["gone", f"#erased#{user_hash('gone')}"])
    counters = aws.dynamodb.Table("counters").scan()["Items"]
    assert counters and not any("gone" in json.dumps(item, default=str) for item in counters)


def test_publish_leaves_out_profiles_of_shoppers_erased_after_the_training(aws, delete, model_dir, tmp_path):
    from merchandiser.publishing import publish, user_profiles

    s3 = aws_s3()
    store = FeatureStore(aws.dynamodb, "users", "sessions")
    # Given a model trained before shopper u001 was erased
    victim = next(profile["user_id"] for profile in user_profiles(model_dir))
    assert delete(victim)[0] == 200
    # When it is published
    result = publish(s3, store, "artifacts", model_dir)
    # Then every profile is loaded but the erased shopper's, and no shopper features reach the bucket
    assert result["promote"] is True and result["profiles_erased"] == 1
    assert "Item" not in aws.dynamodb.Table("users").get_item(Key={"user_id": victim})
    assert result["profiles_loaded"] == sum(1 for _ in user_profiles(model_dir)) - 1
    keys = [entry["Key"] for entry in s3.list_objects_v2(Bucket="artifacts", Prefix="models/")["Contents"]]
    assert not any(key.endswith(USER_FEATURES) for key in keys)
