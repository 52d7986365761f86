"""Retrieval function: recommendations (retrieval → ranking → re-ranking), candidates, similar, popular."""

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit

from merchandiser import runtime
from merchandiser.api import MAX_K, api_handler, make_resolver
from merchandiser.schemas import ID_PATTERN
from merchandiser.settings import ServingSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = make_resolver()

UserId = Annotated[str, Path(pattern=ID_PATTERN)]
ItemId = Annotated[str, Path(pattern=ID_PATTERN)]
K = Annotated[int, Query(ge=1, le=MAX_K)]
Category = Annotated[str | None, Query(max_length=128)]


def served(response: dict[str, Any]) -> dict[str, Any]:
    metrics.add_metric(name="ItemsServed", unit=MetricUnit.Count, value=len(response["items"]))
    if response["degraded"]:
        metrics.add_metric(name="DegradedResponses", unit=MetricUnit.Count, value=1)
    return response


@app.get("/health")
def health() -> dict[str, Any]:
    model = runtime.model(ServingSettings.from_env().model_dir)
    return {"status": "ok", "model_version": model.version, "items": len(model.catalog)}


@app.get("/users/<user_id>/recommendations")
@tracer.capture_method
def recommendations(
    user_id: UserId,
    k: K = 20,
    surface: Annotated[str, Query(pattern=r"^(home|category)$")] = "home",
    category: Category = None,
) -> dict[str, Any]:
    service = runtime.recommender(ServingSettings.from_env())
    return served(service.recommend(user_id, k=k, surface=surface, category=category))


@app.get("/users/<user_id>/candidates")
def candidates(user_id: UserId, k: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    return served(runtime.recommender(ServingSettings.from_env()).candidates(user_id, k=k))


@app.get("/items/<item_id>/similar")
def similar(item_id: ItemId, k: K = 20) -> dict[str, Any]:
    return served(runtime.recommender(ServingSettings.from_env()).similar(item_id, k=k))


@app.get("/items/popular")
def popular(k: K = 20, category: Category = None) -> dict[str, Any]:
    return served(runtime.recommender(ServingSettings.from_env()).popular(k=k, category=category))


handler = api_handler(app, logger, tracer, metrics)
