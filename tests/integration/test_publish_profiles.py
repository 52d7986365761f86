"""Publish on moto writes only the shopper profiles whose content changed since the stored one.

Each stored profile carries the digest of its content (``merchandiser.store.profile_digest``); publish reads
the stored digests with a paginated Scan and writes the profiles whose digest is not among them. Erased
shoppers stay out whatever their digest.
"""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError

from merchandiser.publishing import publish, user_profiles
from merchandiser.serving import Model
from merchandiser.shopper.state import from_record
from merchandiser.store import (
    DIGEST,
    DIGEST_SCAN_SEGMENTS,
    HALF_LIFE_DAYS,
    HISTORIES_AT,
    HISTORY_AT,
    PRODUCTION_POINTER,
    USER_FEATURES,
    FeatureStore,
    StoredDigests,
    profile_digest,
    read_manifest,
    write_manifest,
    write_tombstone,
)
from tests.integration.test_publish import BUCKET, versioned

Profiles = list[dict[str, Any]]


@pytest.fixture
def store(aws) -> FeatureStore:  # type: ignore[no-untyped-def]
    return FeatureStore(aws.dynamodb, "users", "sessions")


def with_profiles(
    model_dir: Path, tmp_path: Path, version: str, against: str | None, change: Callable[[Profiles], None]
) -> Path:
    """A copy of the tiny model named ``version`` whose user features ``change`` edited (hashes rewritten)."""
    copy = versioned(model_dir, tmp_path, version, against=against)
    profiles = list(user_profiles(copy))
    change(profiles)
    with gzip.open(copy / USER_FEATURES, "wt") as lines:
        lines.writelines(json.dumps(profile) + "\n" for profile in profiles)
    manifest = read_manifest(copy)
    manifest.pop("files")
    write_manifest(copy, manifest)
    return copy


def unchanged(_: Profiles) -> None:
    return None


def stored(store: FeatureStore) -> dict[str, dict[str, Any]]:
    return {str(item["user_id"]): item for item in store.table("users").scan()["Items"]}


def scans_counted(dynamodb: Any) -> list[int]:
    """One entry per Scan call the resource's client makes."""
    calls: list[int] = []
    dynamodb.meta.client.meta.events.register("before-call.dynamodb.Scan", lambda **_: calls.append(1))
    return calls


def published_m1(
    store: FeatureStore, model_dir: Path, tmp_path: Path, scan_page_limit: int | None = None
) -> tuple[Any, Profiles, dict[str, Any]]:
    """The first publish (m1) of the tiny model: the S3 client, its profiles and what publish answered."""
    s3 = boto3.client("s3")
    result = publish(s3, store, BUCKET, versioned(model_dir, tmp_path, "m1"), scan_page_limit=scan_page_limit)
    return s3, list(user_profiles(model_dir)), result


def test_the_digest_is_of_the_content_only():
    profile = {"user_id": "u1", "history": {"i1": 1.5, "i2": 0.25}, "recent": ["i2", "i1"]}
    digest = profile_digest(profile)
    assert len(digest) == 32 and int(digest, 16) >= 0  # 16 bytes, hex
    reordered = {"recent": ["i2", "i1"], "history": {"i2": 0.25, "i1": 1.5}, "user_id": "u1"}
    assert profile_digest({**reordered, "model_version": "m9", DIGEST: "0" * 32}) == digest
    assert profile_digest({**profile, "recent": ["i1", "i2"]}) != digest
    assert profile_digest({**profile, "user_id": "u2"}) != digest  # a digest names one shopper's profile


def test_a_publish_writes_only_the_profiles_that_changed_reading_the_digests_page_by_page(
    aws: Any, store: FeatureStore, model_dir: Path, tmp_path: Path
) -> None:
    # Given the first publish, which writes every profile stamped with its digest
    s3, profiles, first = published_m1(store, model_dir, tmp_path, scan_page_limit=2)
    n = len(profiles)
    assert n > 4
    assert (first["profiles_loaded"], first["profiles_unchanged"]) == (n, 0)
    rows = stored(store)
    assert {user: row[DIGEST] for user, row in rows.items()} == {
        str(p["user_id"]): profile_digest(p) for p in profiles
    }
    assert {row["model_version"] for row in rows.values()} == {"m1"}
    # When the next model has one profile changed, read back two items a Scan page
    changed = str(profiles[0]["user_id"])

    def one_more_purchase(edited: Profiles) -> None:
        edited[0]["purchased"] = [*edited[0]["purchased"], "an-item-bought-since"]

    scans = scans_counted(aws.dynamodb)
    second = publish(
        s3,
        store,
        BUCKET,
        with_profiles(model_dir, tmp_path, "m2", "m1", one_more_purchase),
        scan_page_limit=2,
    )
    # Then only it is written, every page of digests having been read; the others keep their stamps
    assert second["promote"] is True
    assert (second["profiles_loaded"], second["profiles_unchanged"]) == (1, n - 1)
    assert len(scans) >= -(-n // 2)  # n / 2 pages at least (DynamoDB may end with an empty one)
    rows = stored(store)
    assert "an-item-bought-since" in rows[changed]["purchased"] and rows[changed]["model_version"] == "m2"
    assert {row["model_version"] for user, row in rows.items() if user != changed} == {"m1"}
    # And a publish of the same profiles again writes none
    third = publish(s3, store, BUCKET, with_profiles(model_dir, tmp_path, "m3", "m2", one_more_purchase))
    assert (third["profiles_loaded"], third["profiles_unchanged"]) == (0, n)
    assert stored(store) == rows


def test_an_erased_shopper_is_never_written_back_and_a_missing_or_undigested_row_is(
    aws: Any, store: FeatureStore, model_dir: Path, tmp_path: Path
) -> None:
    s3, profiles, _ = published_m1(store, model_dir, tmp_path)
    n = len(profiles)
    victim, lost, old = (str(profile["user_id"]) for profile in profiles[:3])
    # Given a shopper erased since (profile deleted, tombstone written), a row lost without an erasure and
    # a row as publish wrote it before digests (no digest attribute)
    store.erase_user(victim, erased_at=datetime.now(UTC).timestamp())
    write_tombstone(s3, BUCKET, victim, datetime.now(UTC))
    users = store.table("users")
    users.delete_item(Key={"user_id": lost})
    users.update_item(
        Key={"user_id": old}, UpdateExpression="REMOVE #d", ExpressionAttributeNames={"#d": DIGEST}
    )
    # When a model trained before the erasure, with the same profiles, is published
    result = publish(s3, store, BUCKET, with_profiles(model_dir, tmp_path, "m2", "m1", unchanged))
    # Then the erased shopper stays out though the table holds no digest of theirs; the other two are written
    assert result["profiles_erased"] == 1
    assert (result["profiles_loaded"], result["profiles_unchanged"]) == (2, n - 3)
    rows = stored(store)
    assert victim not in rows and len(rows) == n - 1
    assert rows[lost]["model_version"] == rows[old]["model_version"] == "m2"
    assert rows[old][DIGEST] == profile_digest(profiles[2])


def test_the_digests_are_read_in_parallel_segments_page_by_page_each_once(
    aws: Any, store: FeatureStore
) -> None:
    # Given 60 stored profiles, and one row without a digest (written before digests were)
    profiles = [{"user_id": f"u{user:02d}", "history": {"i1": float(user)}} for user in range(60)]
    store.put_profiles(profiles, model_version="m1")
    store.table("users").put_item(Item={"user_id": "undigested", "history": {}})
    segments_asked: list[tuple[int, int, int]] = []

    def asked(params: dict[str, Any], **_: Any) -> None:
        segments_asked.append((params["Segment"], params["TotalSegments"], params["Limit"]))

    aws.dynamodb.meta.client.meta.events.register("provide-client-params.dynamodb.Scan", asked)
    # When they are read 3 items a page
    digests = store.profile_digests(page_limit=3)
    # Then every segment was scanned, several pages in all, and each digest is held once
    assert {segment for segment, _, _ in segments_asked} == set(range(DIGEST_SCAN_SEGMENTS))
    assert {(total, limit) for _, total, limit in segments_asked} == {(DIGEST_SCAN_SEGMENTS, 3)}
    assert len(segments_asked) >= 60 // 3
    assert len(digests) == 60 and isinstance(digests, StoredDigests)
    assert all(bytes.fromhex(profile_digest(profile)) in digests for profile in profiles)
    assert bytes.fromhex(profile_digest({"user_id": "u99", "history": {}})) not in digests
    assert list(digests.digests) == sorted(digests.digests)


def test_stored_digests_find_exactly_the_digests_they_hold() -> None:
    held = [bytes(16), bytes(15) + b"\x01", b"\x01" + bytes(15), bytes(range(16)), b"\xff" * 16]
    digests = StoredDigests.of([np.array(held[:2], dtype="S16"), np.array(held[2:], dtype="S16")])
    assert len(digests) == 5 and all(digest in digests for digest in held)
    # trailing NUL bytes are part of a digest: a shorter or other one is not held
    assert bytes(14) + b"\x01\x00" not in digests and b"\x01" + bytes(14) + b"\x02" not in digests
    assert b"\x01" not in digests and bytes(17) not in digests and "0" * 32 not in digests
    assert bytes(16) not in StoredDigests.of([])


@pytest.mark.parametrize("failing", [None, 3], ids=["every-segment", "one-segment"])
def test_a_failed_scan_of_the_digests_writes_no_profile_and_moves_no_pointer(
    aws: Any, store: FeatureStore, model_dir: Path, tmp_path: Path, failing: int | None
) -> None:
    def throttled(params: dict[str, Any], **_: Any) -> None:
        if failing is None or params["Segment"] == failing:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "Scan")

    aws.dynamodb.meta.client.meta.events.register("provide-client-params.dynamodb.Scan", throttled)
    s3 = boto3.client("s3")
    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        publish(s3, store, BUCKET, versioned(model_dir, tmp_path, "m1"))
    aws.dynamodb.meta.client.meta.events.unregister("provide-client-params.dynamodb.Scan", throttled)
    assert stored(store) == {}
    with pytest.raises(ClientError, match="NoSuchKey"):
        s3.get_object(Bucket=BUCKET, Key=PRODUCTION_POINTER)


def test_serving_scales_a_stored_history_to_its_models_end_and_uses_an_older_profile_as_stored(
    store: FeatureStore, model_dir: Path
) -> None:
    # Given the tiny model (its histories decayed to its histories_at) and one of its profiles, stored
    model = Model.load(model_dir)
    end = float(model.items.manifest[HISTORIES_AT])
    profile = next(iter(user_profiles(model_dir)))
    user = str(profile["user_id"])
    half_life = float(profile[HALF_LIFE_DAYS])
    # (stamped 10 days before the end: stored weights are the weights at that time, as training wrote them)
    profile = {**profile, HISTORY_AT: round(end - 10 * 86_400.0, 3)}
    old = {key: value for key, value in profile.items() if key not in (HISTORY_AT, HALF_LIFE_DAYS)}
    store.put_profiles([profile, {**old, "user_id": "old"}], model_version=model.version)
    # When serving reads them
    record = store.shopper(user)
    assert (record.history_at, record.half_life_days) == (profile[HISTORY_AT], half_life)
    state = from_record(model.items, record)
    older = from_record(model.items, store.shopper("old"))
    # Then the stamped history is decayed by 10 days; one without the stamps is used as it is stored
    row = model.items.catalog.row_of
    factor = 0.5 ** ((end - profile[HISTORY_AT]) / 86_400.0 / half_life)
    assert state.history == pytest.approx({row[item]: w * factor for item, w in profile["history"].items()})
    assert older.history == pytest.approx({row[item]: w for item, w in profile["history"].items()})
    # And a model whose manifest predates histories_at reads the stamped history as stored
    before = copy.copy(model.items)
    before.manifest = {key: value for key, value in model.items.manifest.items() if key != HISTORIES_AT}
    assert from_record(before, record).history == older.history
