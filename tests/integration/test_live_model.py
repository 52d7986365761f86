"""Serving loads the live model from S3, the version named by the SSM parameter (moto), through the real
retrieval handler; what cannot be fetched degrades, never a 5xx. The SnapStart hooks load before the
snapshot and rebuild connections after a restore."""

from __future__ import annotations

import gc
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
import snapshot_restore_py

from local_twin.functions import LambdaContext
from local_twin.http_front import Route, proxy_event
from merchandiser.publishing import user_profiles
from merchandiser.serving import INDEX, MODEL, runtime
from merchandiser.serving.model_source import load_into_memory
from merchandiser.settings import ServingSettings
from merchandiser.store import INDEX as INDEX_FILE
from merchandiser.store import FeatureStore, sha256_of

PARAMETER = "/Merchandiser-Serving/live-model-version"
Get = Callable[[str], tuple[int, dict[str, Any]]]


def upload(model_dir: Path, version: str, skip: tuple[str, ...] = (), corrupt: tuple[str, ...] = ()) -> None:
    """What publish writes: the model's files under models/<version>/, the manifest naming the version;
    ``corrupt``: files whose bytes then differ from their manifest hash (one byte flipped)."""
    s3 = boto3.client("s3")
    for path in sorted(model_dir.iterdir()):
        if path.is_file() and path.name not in skip:
            body = path.read_bytes()
            if path.name == "manifest.json":
                body = json.dumps({**json.loads(body), "model_version": version}).encode()
            if path.name in corrupt:
                middle = len(body) // 2
                body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]
            s3.put_object(Bucket="artifacts", Key=f"models/{version}/{path.name}", Body=body)


def go_live(version: str) -> None:
    boto3.client("ssm").put_parameter(Name=PARAMETER, Value=version, Type="String", Overwrite=True)


@pytest.fixture
def get(aws, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Get]:  # type: ignore[no-untyped-def]
    """GET a retrieval route through the real handler, configured as the stack configures it."""
    environment = {**aws.env(), "MODEL_PARAMETER": PARAMETER, "MODEL_CACHE_DIR": str(tmp_path / "cache")}
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MODEL_DIR", raising=False)
    FeatureStore(aws.dynamodb, "users", "sessions", "items").put_profiles(user_profiles(model_dir), "test")
    runtime.reset()
    from lambdas.retrieval import handler as retrieval

    def send(path: str) -> tuple[int, dict[str, Any]]:
        resource = "/health" if path == "/health" else "/users/{user_id}/recommendations"
        params = {} if path == "/health" else {"user_id": path.split("/")[2]}
        event = proxy_event("GET", Route("GET", resource, "retrieval"), path, params, "k=5", {}, None)
        response = retrieval.handler(event, LambdaContext("retrieval"))
        return response["statusCode"], json.loads(response["body"])

    yield send
    runtime.reset()


def test_serving_loads_the_version_the_parameter_names_from_s3(
    get: Get, model_dir: Path, tmp_path: Path
) -> None:
    # Given two models in S3 and the parameter naming the second
    upload(model_dir, "m1")
    upload(model_dir, "m2")
    go_live("m2")
    # When a container serves
    status, health = get("/health")
    status_page, page = get("/users/u001/recommendations")
    # Then it serves m2, intact, fetched once into its cache dir with its arrays memory-mapped
    assert status == 200 and health["model_version"] == "m2" and health["faults"] == []
    assert status_page == 200 and page["model_version"] == "m2" and page["degraded"] is False
    assert len(page["items"]) == 5
    assert (tmp_path / "cache" / "m2" / "manifest.json").is_file()
    loaded = runtime.live_model(ServingSettings.from_env())
    assert loaded.model is not None and isinstance(loaded.model.items.item_factors, np.memmap)


def test_a_new_container_follows_the_parameter(get: Get, model_dir: Path) -> None:
    upload(model_dir, "m1")
    upload(model_dir, "m2")
    go_live("m1")
    assert get("/health")[1]["model_version"] == "m1"
    # When publish moves the parameter, a container keeps its model (the canary's new version moves)...
    go_live("m2")
    assert get("/health")[1]["model_version"] == "m1"
    # ...and a new one (a new function version initialising) loads the new model
    runtime.reset()
    assert get("/health")[1]["model_version"] == "m2"


def test_a_missing_model_file_degrades_only_its_part(get: Get, model_dir: Path) -> None:
    # Given a model whose index object is missing from S3
    upload(model_dir, "m1", skip=(INDEX_FILE,))
    go_live("m1")
    status, page = get("/users/u001/recommendations")
    # Then the page is served from popularity, degraded, with a 200
    assert status == 200 and page["model_version"] == "m1"
    assert page["degraded"] is True and INDEX in page["degraded_reasons"] and len(page["items"]) == 5


def test_a_file_that_does_not_match_its_hash_is_dropped_at_fetch(
    get: Get, model_dir: Path, tmp_path: Path
) -> None:
    # Given a model whose index arrived with a flipped byte
    upload(model_dir, "m1", corrupt=(INDEX_FILE,))
    go_live("m1")
    status, page = get("/users/u001/recommendations")
    # Then the fetch dropped it (the load does not hash the files again) and only its part degrades
    assert not (tmp_path / "cache" / "m1" / INDEX_FILE).exists()
    assert (tmp_path / "cache" / "m1" / "ranker.txt").is_file()
    assert status == 200 and page["degraded"] is True and page["degraded_reasons"] == [INDEX]


def test_the_loaded_model_is_frozen_out_of_the_collectors_generations(get: Get, model_dir: Path) -> None:
    # Given a container that loaded its model
    upload(model_dir, "m1")
    go_live("m1")
    assert get("/health")[0] == 200
    loaded = runtime.live_model(ServingSettings.from_env())
    # Then full collections in the middle of a page no longer rescan it
    assert gc.get_freeze_count() > 0
    tracked = {id(thing) for thing in gc.get_objects()}
    assert id(loaded) not in tracked and id(loaded.model) not in tracked
    # and a new container (reset) lets it be collected again
    runtime.reset()
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("case", ["parameter missing", "manifest missing", "parameter empty"])
def test_no_live_model_serves_the_last_resort_list(get: Get, model_dir: Path, aws, case: str) -> None:  # type: ignore[no-untyped-def]
    # Given in-stock items in the catalogue table, and no usable live model
    aws.dynamodb.Table("items").put_item(Item={"item_id": "fresh", "title": "Fresh", "in_stock": True})
    if case == "manifest missing":
        upload(model_dir, "m1", skip=("manifest.json",))
        go_live("m1")
    elif case == "parameter empty":
        go_live(" ")
    # When a page is asked for
    status, page = get("/users/u001/recommendations")
    status_health, health = get("/health")
    # Then the last-resort list answers, degraded, never a 5xx
    assert status == 200 and page["model_version"] == "last-resort" and page["degraded_reasons"] == [MODEL]
    assert [item["item_id"] for item in page["items"]] == ["fresh"]
    assert status_health == 200 and health["status"] == "degraded" and health["faults"] == [MODEL]


def test_a_failed_fetch_is_retried_after_the_last_resort_period(get: Get, model_dir: Path) -> None:
    # Given a container that found no parameter
    settings = ServingSettings.from_env()
    assert runtime.live_model(settings, clock=lambda: 0.0).faults == {MODEL}
    upload(model_dir, "m1")
    go_live("m1")
    # Then it keeps the last resort within the period, and loads the model after it
    assert runtime.live_model(settings, clock=lambda: 1.0).model is None
    later = runtime.live_model(settings, clock=lambda: runtime.LAST_RESORT_TTL_SECONDS + 1.0)
    assert later.model is not None and later.model.version == "m1"


def test_the_snapstart_hooks_load_before_the_snapshot_and_reconnect_after_restore(
    get: Get, model_dir: Path
) -> None:
    upload(model_dir, "m1")
    go_live("m1")
    hooks = {func.__name__: func for func, _, _ in snapshot_restore_py.get_before_snapshot()}
    restores = {func.__name__: func for func, _, _ in snapshot_restore_py.get_after_restore()}
    # When Lambda runs the before-snapshot hook (the retrieval handler registered it on import)
    hooks["before_snapshot"]()
    # Then the model is loaded before any request
    settings = ServingSettings.from_env()
    assert runtime._live[(PARAMETER, "artifacts", settings.model_cache_dir)][1].model is not None
    # When a restored container runs the after-restore hook
    resource = runtime.dynamodb_resource()
    restores["after_restore"]()
    # Then the model stays, the connections are new
    assert runtime.live_model(settings).model is not None
    assert runtime.dynamodb_resource() is not resource
    assert get("/users/u001/recommendations")[1]["model_version"] == "m1"


class RecordingS3:
    """The S3 client, noting which files the cache dir holds after each download."""

    def __init__(self, cache_dir: Path) -> None:
        self.s3 = boto3.client("s3")
        self.cache_dir = cache_dir
        self.on_disk: list[set[str]] = []

    def download_file(self, bucket: str, key: str, path: str) -> None:
        self.s3.download_file(bucket, key, path)
        self.on_disk.append({p.name for p in self.cache_dir.rglob("*") if p.is_file()})


def test_a_model_loaded_into_memory_serves_the_same_pages_and_leaves_no_file(
    get: Get, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload(model_dir, "m1")
    go_live("m1")
    mapped = get("/users/u001/recommendations")[1]
    # Given a container configured as the stack configures one under SnapStart
    runtime.reset()
    monkeypatch.setenv("MODEL_IN_MEMORY", "true")
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "memory"))
    status, page = get("/users/u001/recommendations")
    # Then the same page, from arrays in memory, and nothing left in /tmp for the snapshot
    assert status == 200 and page["degraded"] is False
    assert page["items"] == mapped["items"]
    loaded = runtime.live_model(ServingSettings.from_env())
    assert loaded.model is not None and not isinstance(loaded.model.items.item_factors, np.memmap)
    assert [p for p in (tmp_path / "memory").rglob("*") if p.is_file()] == []


def test_loading_into_memory_holds_one_index_file_at_a_time(aws, model_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    upload(model_dir, "m1")
    s3 = RecordingS3(tmp_path / "cache")
    loaded = load_into_memory(s3, "artifacts", "m1", tmp_path / "cache")
    assert loaded.model is not None and loaded.faults == frozenset()
    # Then the index was downloaded, read and deleted before any other model file arrived
    with_index = [files for files in s3.on_disk if INDEX_FILE in files]
    assert with_index == [{"manifest.json", INDEX_FILE}]
    assert INDEX_FILE not in s3.on_disk[-1] and "item_factors.npy" in s3.on_disk[-1]
    assert not any((tmp_path / "cache").iterdir())


def test_an_index_of_another_dimension_than_the_items_degrades_in_memory(
    aws,
    model_dir: Path,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    # Given a manifest naming a wrong vector size (hnswlib would read the index with it, silently)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    wrong = tmp_path / "wrong"
    shutil.copytree(model_dir, wrong)
    manifest["als"]["factors"] = int(manifest["als"]["factors"]) - 1
    (wrong / "manifest.json").write_text(json.dumps(manifest))
    upload(wrong, "m1")
    loaded = load_into_memory(boto3.client("s3"), "artifacts", "m1", tmp_path / "cache")
    # Then the index is refused: popularity candidates, the rest served
    assert loaded.model is not None and loaded.faults == frozenset({INDEX})
    assert loaded.model.ranker is not None


def test_a_corrupt_index_file_degrades_in_memory_and_is_deleted(aws, model_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Given an index whose bytes hnswlib cannot read, listed with their own hash
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / INDEX_FILE).write_bytes(b"not an index" * 100)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["files"][INDEX_FILE] = sha256_of(broken / INDEX_FILE)
    (broken / "manifest.json").write_text(json.dumps(manifest))
    upload(broken, "m1")
    loaded = load_into_memory(boto3.client("s3"), "artifacts", "m1", tmp_path / "cache")
    assert loaded.model is not None and loaded.faults == frozenset({INDEX})
    assert not any((tmp_path / "cache").iterdir())
