"""What the serving handlers emit: per-stage latency, candidates per source, fallbacks, items served
(CloudWatch EMF on stdout, as Powertools documents for testing) and log lines with the correlation id."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from botocore.stub import Stubber

from local_twin.functions import LambdaContext
from local_twin.http_front import Route, proxy_event
from merchandiser.api import CORE_LOGGER
from merchandiser.publishing import user_profiles
from merchandiser.serving import runtime
from merchandiser.store import FeatureStore

Invoke = Callable[..., tuple[dict[str, Any], list[dict[str, Any]]]]


@pytest.fixture
def invoke(
    aws, model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Invoke:  # type: ignore[no-untyped-def]
    for key, value in {**aws.env(), "MODEL_DIR": str(model_dir)}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)  # the twin's tests switch them off
    runtime.reset()
    FeatureStore(aws.dynamodb, "users", "sessions", "items").put_profiles(user_profiles(model_dir), "test")
    from lambdas.ranking import handler as ranking
    from lambdas.retrieval import handler as retrieval

    modules = {"retrieval": retrieval, "ranking": ranking}
    # Handler modules are imported once per test session: undo what earlier tests (the twin runs them
    # with metrics off and WARNING logs) left in their Metrics buffer and Logger level.
    levels = {name: module.logger.log_level for name, module in modules.items()}
    for module in modules.values():
        module.metrics.clear_metrics()
        module.logger.setLevel(logging.INFO)

    def send(function: str, method: str, resource: str, path: str, query: str = "", body: Any = None,
             params: dict[str, str] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:  # fmt: skip # noqa: E501
        raw = None if body is None else json.dumps(body).encode()
        event = proxy_event(method, Route(method, resource, function), path, params or {}, query,
                            {"Content-Type": "application/json"}, raw)  # fmt: skip
        capsys.readouterr()
        # the log handler keeps the stream it was created with: point it at this test's capture
        modules[function].logger.registered_handler.stream = sys.stdout  # type: ignore[attr-defined]
        # one API function per Lambda process: the core library logs through this function's handler
        copy_config_to_registered_loggers(source_logger=modules[function].logger, include={CORE_LOGGER})
        response = modules[function].handler(event, LambdaContext(function))
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        return response, lines

    yield send
    runtime.reset()
    for name, module in modules.items():
        module.logger.setLevel(levels[name])


def metrics_of(lines: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """metric name -> values, over every EMF blob printed."""
    found: dict[str, list[Any]] = {}
    for line in lines:
        for directive in line.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive["Metrics"]:
                value = line[metric["Name"]]
                found.setdefault(metric["Name"], []).extend(value if isinstance(value, list) else [value])
    return found


def recommendations(invoke: Invoke, user: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return invoke("retrieval", "GET", "/users/{user_id}/recommendations", f"/users/{user}/recommendations",
                  "k=10", params={"user_id": user})  # fmt: skip


def test_a_recommendation_emits_stage_latencies_candidates_and_items_served(
    invoke: Invoke, model_dir: Path
) -> None:
    user = next(p for p in user_profiles(model_dir) if p["purchased"])["user_id"]
    response, lines = recommendations(invoke, user)
    assert response["statusCode"] == 200
    metrics = metrics_of(lines)
    for stage in ("Store", "Retrieval", "Ranking", "Reranking"):
        assert len(metrics[f"{stage}Latency"]) == 1 and metrics[f"{stage}Latency"][0] >= 0
    candidates = {name: values[0] for name, values in metrics.items() if name.startswith("Candidates")}
    assert "CandidatesAnn" in candidates and sum(candidates.values()) > 10
    assert metrics["ItemsServed"] == [10]
    assert "Fallbacks" not in metrics and "DegradedResponses" not in metrics


def test_logs_metrics_and_the_served_items_carry_the_correlation_id(invoke: Invoke, model_dir: Path) -> None:
    user = next(iter(user_profiles(model_dir)))["user_id"]
    response, lines = recommendations(invoke, user)
    body = json.loads(response["body"])
    served = next(line for line in lines if line.get("message") == "served")
    correlation_id = served["correlation_id"]
    assert correlation_id  # the API Gateway request id of the proxy event
    assert served["served_items"] == [item["item_id"] for item in body["items"]]  # for coverage
    assert served["recommendation_id"] == body["recommendation_id"]
    assert set(served["stages_ms"]) == {"store", "retrieval", "ranking", "reranking"}
    blob = next(line for line in lines if "ItemsServed" in line)
    assert blob["correlation_id"] == correlation_id


def test_a_fallback_is_counted_with_its_kind_and_logged_with_the_correlation_id(
    invoke: Invoke, model_dir: Path
) -> None:
    runtime.reset()
    dynamodb = runtime.dynamodb_resource()
    user = next(iter(user_profiles(model_dir)))["user_id"]
    with Stubber(dynamodb.meta.client) as stubber:
        stubber.add_client_error(
            "batch_get_item", service_error_code="InternalServerError", http_status_code=500
        )
        response, lines = recommendations(invoke, user)
    assert json.loads(response["body"])["degraded_reasons"] == ["feature_store"]
    fallback_blobs = [line for line in lines if "Fallbacks" in line]
    assert len(fallback_blobs) == 1 and fallback_blobs[0]["kind"] == "feature_store"
    assert fallback_blobs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["kind", "service"]] or (
        "kind" in fallback_blobs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
    )
    assert metrics_of(lines)["DegradedResponses"] == [1]
    warning = next(line for line in lines if line.get("message") == "serving with a fallback")
    assert warning["fallback"] == "feature_store" and warning["correlation_id"]


def test_ranking_a_list_emits_its_stages(invoke: Invoke, model_dir: Path) -> None:
    profile = next(iter(user_profiles(model_dir)))
    items = list(profile["history"])[:5]
    response, lines = invoke("ranking", "POST", "/users/{user_id}/rank", f"/users/{profile['user_id']}/rank",
                             body={"item_ids": items}, params={"user_id": profile["user_id"]})  # fmt: skip
    assert response["statusCode"] == 200
    metrics = metrics_of(lines)
    assert {"StoreLatency", "RankingLatency", "RerankingLatency"} <= set(metrics)
    assert metrics["ItemsServed"] == [len(items)]
