"""Fault injection: every fallback serves a page, says it is degraded and why (issue item 4).

Broken bundles are copies of the tiny model with one file removed, garbled or truncated; DynamoDB
faults are a stubbed error and a read timeout raised inside botocore's send path against moto.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber

from merchandiser.catalog import Catalog
from merchandiser.publishing import user_profiles
from merchandiser.serving import (
    FEATURE_STORE,
    INDEX,
    MODEL,
    RANKER,
    Model,
    Recommender,
    ServingReport,
    runtime,
)
from merchandiser.store import (
    CATALOG,
    DYNAMODB_CONFIG,
    ITEM_FACTORS,
    MANIFEST,
    POPULARITY,
    BundleError,
    FeatureStore,
)
from merchandiser.store import INDEX as INDEX_FILE
from merchandiser.store import RANKER as RANKER_FILE

Damage = Callable[[Path], None]


def remove(name: str) -> Damage:
    return lambda model_dir: (model_dir / name).unlink()


def garble(name: str) -> Damage:
    def damage(model_dir: Path) -> None:
        size = (model_dir / name).stat().st_size
        (model_dir / name).write_bytes(bytes(np.random.default_rng(7).integers(0, 256, size, dtype=np.uint8)))

    return damage


def truncate(name: str) -> Damage:
    def damage(model_dir: Path) -> None:
        data = (model_dir / name).read_bytes()
        (model_dir / name).write_bytes(data[: len(data) // 2])

    return damage


@pytest.fixture
def broken(model_dir: Path, tmp_path: Path) -> Callable[[Damage], Path]:
    def make(damage: Damage) -> Path:
        copy = tmp_path / "model"
        shutil.copytree(model_dir, copy)
        damage(copy)
        return copy

    return make


@pytest.fixture
def store(aws, model_dir: Path) -> FeatureStore:  # type: ignore[no-untyped-def]
    store = FeatureStore(aws.dynamodb, "users", "sessions", "items")
    store.put_profiles(user_profiles(model_dir), model_version="test")
    return store


@pytest.fixture
def shopper(model_dir: Path) -> dict[str, Any]:
    """A known shopper with purchases: a personalized page when nothing is broken."""
    return next(p for p in user_profiles(model_dir) if p["purchased"])


def serve(recommender: Recommender, user_id: str, k: int = 10) -> tuple[dict[str, Any], ServingReport]:
    report = ServingReport()
    return recommender.recommend(user_id, k=k, report=report), report


def test_an_intact_bundle_loads_without_faults(model_dir: Path, store: FeatureStore, shopper: dict) -> None:
    loaded = runtime.load_model(model_dir)
    assert loaded.model is not None and loaded.faults == frozenset()
    page, report = serve(Recommender(loaded.model, store, faults=loaded.faults), shopper["user_id"])
    assert page["degraded"] is False and page["degraded_reasons"] == [] and report.fallbacks == []
    assert page["personalized"] is True and len(page["items"]) == 10


@pytest.mark.parametrize(
    ("damage", "fault"),
    [
        (remove(RANKER_FILE), RANKER),
        (garble(RANKER_FILE), RANKER),
        (remove(INDEX_FILE), INDEX),
        (truncate(INDEX_FILE), INDEX),
        (garble(INDEX_FILE), INDEX),
        (truncate(ITEM_FACTORS), INDEX),
    ],
    ids=[
        "ranker-missing",
        "ranker-corrupt",
        "index-missing",
        "index-truncated",
        "index-corrupt",
        "factors-cut",
    ],
)
def test_a_broken_part_is_left_out_and_the_page_is_degraded(
    broken: Callable[[Damage], Path], damage: Damage, fault: str, store: FeatureStore, shopper: dict
) -> None:
    loaded = runtime.load_model(broken(damage))
    assert loaded.model is not None and loaded.faults == {fault}
    page, report = serve(Recommender(loaded.model, store, faults=loaded.faults), shopper["user_id"])
    assert page["degraded"] is True and page["degraded_reasons"] == [fault] == report.fallbacks
    assert len(page["items"]) == 10
    assert not {item["item_id"] for item in page["items"]} & set(shopper["purchased"])


def test_without_an_index_candidates_are_the_popular_items(
    broken: Callable[[Damage], Path], store: FeatureStore, shopper: dict
) -> None:
    loaded = runtime.load_model(broken(truncate(INDEX_FILE)))
    assert loaded.model is not None
    page, report = serve(Recommender(loaded.model, store, faults=loaded.faults), shopper["user_id"])
    assert page["personalized"] is False
    assert set(report.candidates) == {"popularity"}
    similar = Recommender(loaded.model, store, faults=loaded.faults).similar(page["items"][0]["item_id"], k=5)
    assert similar["degraded_reasons"] == [INDEX] and len(similar["items"]) == 5
    assert page["items"][0]["item_id"] not in {item["item_id"] for item in similar["items"]}


def test_popular_items_do_not_report_a_ranker_they_never_use(
    broken: Callable[[Damage], Path], store: FeatureStore
) -> None:
    loaded = runtime.load_model(broken(remove(RANKER_FILE)))
    assert loaded.model is not None
    page = Recommender(loaded.model, store, faults=loaded.faults).popular(k=5)
    assert page["degraded"] is False and len(page["items"]) == 5


@pytest.mark.parametrize(
    "damage",
    [remove(MANIFEST), garble(CATALOG), truncate(POPULARITY)],
    ids=["manifest-missing", "catalog-corrupt", "popularity-truncated"],
)
def test_an_unusable_bundle_serves_the_last_resort_list_from_the_items_table(
    aws, broken: Callable[[Damage], Path], damage: Damage, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    model_dir = broken(damage)
    assert runtime.load_model(model_dir).faults == {MODEL}
    table = aws.dynamodb.Table("items")
    for number, in_stock in enumerate([True, True, False, True]):
        table.put_item(Item={"item_id": f"new{number}", "title": f"New {number}", "category": "hats",
                             "in_stock": in_stock, "updated_at": 1000 + number})  # fmt: skip
    for key, value in {**aws.env(), "MODEL_DIR": str(model_dir)}.items():
        monkeypatch.setenv(key, value)
    runtime.reset()
    from merchandiser.settings import ServingSettings

    recommender = runtime.recommender(ServingSettings.from_env())
    page, report = serve(recommender, "u000", k=5)
    runtime.reset()
    assert page["degraded_reasons"] == [MODEL] == report.fallbacks
    assert page["model_version"] == "last-resort"
    assert [item["item_id"] for item in page["items"]] == ["new3", "new1", "new0"]  # newest, in stock


def test_the_last_resort_without_an_items_table_is_an_empty_degraded_page(
    aws, broken: Callable[[Damage], Path], monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    for key, value in {**aws.env(), "ITEMS_TABLE": "no-such-table"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MODEL_DIR", str(broken(remove(MANIFEST))))
    runtime.reset()
    from merchandiser.settings import ServingSettings

    page, _ = serve(runtime.recommender(ServingSettings.from_env()), "u000")
    runtime.reset()
    assert page["degraded"] is True and page["items"] == [] and page["degraded_reasons"] == [MODEL]


def test_a_ranker_failing_at_predict_time_keeps_the_retrieval_order(
    model_dir: Path, store: FeatureStore, shopper: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = Model.load(model_dir)
    assert model.ranker is not None

    def refuse(*args: Any, **kwargs: Any) -> np.ndarray:
        raise lgb.basic.LightGBMError("The number of features in data is not the same as in training")

    monkeypatch.setattr(model.ranker, "predict", refuse)
    page, _report = serve(Recommender(model, store), shopper["user_id"])
    assert page["degraded_reasons"] == [RANKER] and len(page["items"]) == 10
    # the score is minus the candidate's retrieval position (the category cap may still reorder)
    assert all(item["score"] <= 0 and float(item["score"]).is_integer() for item in page["items"])


def test_an_index_failing_at_query_time_serves_popularity(
    model_dir: Path, store: FeatureStore, shopper: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = Model.load(model_dir)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            "Cannot return the results in a contigious 2D array. Probably ef or M is too small"
        )

    monkeypatch.setattr("merchandiser.retrieval.candidates", refuse)
    page, report = serve(Recommender(model, store), shopper["user_id"])
    assert page["degraded_reasons"] == [INDEX] and len(page["items"]) == 10
    assert set(report.candidates) == {"popularity"}


def test_a_dynamodb_error_serves_the_shopper_as_unknown(
    model_dir: Path, store: FeatureStore, shopper: dict
) -> None:
    dynamodb = store._dynamodb
    with Stubber(dynamodb.meta.client) as stubber:
        stubber.add_client_error(
            "batch_get_item",
            service_error_code="ProvisionedThroughputExceededException",
            http_status_code=400,
        )
        page, report = serve(Recommender(Model.load(model_dir), store), shopper["user_id"])
    assert page["degraded_reasons"] == [FEATURE_STORE] == report.fallbacks
    assert page["personalized"] is False and len(page["items"]) == 10


def test_a_dynamodb_timeout_is_retried_once_then_served_without_user_features(
    aws, model_dir: Path, shopper: dict
) -> None:  # type: ignore[no-untyped-def]
    runtime.reset()
    dynamodb = runtime.dynamodb_resource()  # the serving client: short timeouts, two attempts
    store = FeatureStore(dynamodb, "users", "sessions", "items")
    store.put_profiles(user_profiles(model_dir), model_version="test")
    attempts: list[str] = []

    def time_out(request: Any, **kwargs: Any) -> None:
        attempts.append(request.url)
        raise ReadTimeoutError(endpoint_url=request.url)

    dynamodb.meta.client.meta.events.register("before-send.dynamodb.BatchGetItem", time_out)
    page, _report = serve(Recommender(Model.load(model_dir), store), shopper["user_id"])
    runtime.reset()
    assert len(attempts) == DYNAMODB_CONFIG.retries["total_max_attempts"]
    assert page["degraded_reasons"] == [FEATURE_STORE] and len(page["items"]) == 10


def test_health_reports_the_faults_and_runtime_model_refuses_an_unusable_bundle(
    aws, broken: Callable[[Damage], Path], monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from lambdas.retrieval import handler as retrieval

    model_dir = broken(remove(RANKER_FILE))
    monkeypatch.setenv("MODEL_DIR", str(model_dir))
    for key, value in aws.env().items():
        monkeypatch.setenv(key, value)
    runtime.reset()
    items = len(Catalog.load(model_dir / CATALOG))
    expected = {"status": "degraded", "model_version": None, "items": items, "faults": [RANKER]}
    assert retrieval.health() | {"model_version": None} == expected
    (model_dir / MANIFEST).unlink()
    runtime.reset()
    assert retrieval.health()["faults"] == [MODEL]
    with pytest.raises(BundleError, match="no usable model"):
        runtime.model(str(model_dir))
    runtime.reset()
