"""Retrieval function: recommendations (retrieval → ranking → re-ranking), candidates, similar items,
bought together, popular and trending. Every page (not the candidates) is served with the shopper's
experiment variant and logged as one impression on the stream (``serving.serve_page``)."""

from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from merchandiser.api import MAX_K, Health, RecommendationPage, api_handler, documented, make_resolver
from merchandiser.schemas import ID_PATTERN
from merchandiser.serving import (
    ServingReport,
    Treatment,
    emit,
    new_report,
    runtime,
    serve_page,
    snapstart,  # noqa: F401  (registers the SnapStart hooks)
)
from merchandiser.settings import ServingSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = make_resolver()

UserId = Annotated[str, Path(pattern=ID_PATTERN)]
ItemId = Annotated[str, Path(pattern=ID_PATTERN)]
K = Annotated[int, Query(ge=1, le=MAX_K)]
Category = Annotated[str | None, Query(max_length=128)]
Context = Annotated[str | None, Query(max_length=64, pattern=r"^[\w .'-]+$")]
# On the item surfaces, the shopper only places the page in an experiment (the user is its unit).
Shopper = Annotated[str | None, Query(pattern=ID_PATTERN)]


def served(serve: Callable[[ServingReport], dict[str, Any]]) -> dict[str, Any]:
    """Runs one request with its report, then turns the report into metrics, annotations and a log line."""
    report = new_report(tracer)
    return emit(metrics, logger, tracer, report, serve(report))


def page(
    surface: str, user_id: str | None, build: Callable[[ServingReport, Treatment], dict[str, Any]]
) -> dict[str, Any]:
    """A page: the shopper's variant, the page, its impression on the stream, its metrics."""
    report = new_report(tracer)
    return serve_page(ServingSettings.from_env(), surface, user_id, build, report, metrics, logger, tracer)


@app.get(
    "/health",
    summary="Health of the serving function",
    description="Which model version is loaded and which fallbacks (faults) its load forced.",
    tags=["operations"],
    responses=documented(Health, "the loaded model"),
)
def health() -> dict[str, Any]:
    loaded = runtime.live_model(ServingSettings.from_env())
    if loaded.model is None:
        return {"status": "degraded", "model_version": None, "items": 0, "faults": sorted(loaded.faults)}
    return {
        "status": "degraded" if loaded.faults else "ok",
        "model_version": loaded.model.version,
        "items": len(loaded.model.items.catalog),
        "faults": sorted(loaded.faults),
    }


@app.get(
    "/users/<user_id>/recommendations",
    summary="Recommended for you (home, category page)",
    description=(
        "Retrieval, ranking and the retailer's rules in one call. Purchases and the current session's"
        " items are left out; an unknown shopper gets what is trending and popular in their segment"
        " (country, device: from the profile or this request's context). Promotions, new arrivals,"
        " discovery slots and MMR follow the function's MERCHANDISING_RULES."
    ),
    tags=["recommendations"],
    responses=documented(RecommendationPage, "a page of recommendations"),
)
@tracer.capture_method
def recommendations(
    user_id: UserId,
    k: K = 20,
    surface: Annotated[str, Query(pattern=r"^(home|category)$")] = "home",
    category: Category = None,
    country: Context = None,
    device: Context = None,
) -> dict[str, Any]:
    service = runtime.recommender(ServingSettings.from_env())
    context = {name: value for name, value in (("country", country), ("device", device)) if value}
    return page(
        surface,
        user_id,
        lambda report, treatment: service.recommend(
            user_id,
            k=k,
            surface=surface,
            category=category,
            report=report,
            context=context,
            treatment=treatment,
        ),
    )


@app.get(
    "/users/<user_id>/candidates",
    summary="Retrieval candidates, before ranking",
    tags=["recommendations"],
    responses=documented(RecommendationPage, "candidates with the score of the source that proposed them"),
)
def candidates(user_id: UserId, k: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    service = runtime.recommender(ServingSettings.from_env())
    return served(lambda report: service.candidates(user_id, k=k, report=report))


@app.get(
    "/items/<item_id>/similar",
    summary="Similar items, blended with a shopper's taste when user_id is given",
    tags=["recommendations"],
    responses=documented(RecommendationPage, "items similar to item_id, itself left out", 404),
)
def similar(item_id: ItemId, k: K = 20, user_id: Shopper = None) -> dict[str, Any]:
    service = runtime.recommender(ServingSettings.from_env())
    return page(
        "similar",
        user_id,
        lambda report, treatment: service.similar(
            item_id, k=k, report=report, user_id=user_id, treatment=treatment
        ),
    )


@app.get(
    "/items/<item_id>/bought-together",
    summary="Frequently bought together",
    description="user_id, when given, only places the page in the shopper's experiment variant.",
    tags=["recommendations"],
    responses=documented(RecommendationPage, "items bought in the same baskets as item_id", 404),
)
def bought_together(item_id: ItemId, k: K = 10, user_id: Shopper = None) -> dict[str, Any]:
    service = runtime.recommender(ServingSettings.from_env())
    return page(
        "bought-together",
        user_id,
        lambda report, treatment: service.bought_together(
            item_id, k=k, report=report, user_id=user_id, treatment=treatment
        ),
    )


@app.get(
    "/items/popular",
    summary="Best sellers, or trending with window=",
    description=(
        "Without window: recency-decayed best sellers. With window (hours, 1-168): trending now, from"
        " the event processor's hourly counters, else the model's trending signal. user_id, when given,"
        " only places the page in the shopper's experiment variant."
    ),
    tags=["recommendations"],
    responses=documented(RecommendationPage, "the most popular items, overall or in a category"),
)
def popular(
    k: K = 20,
    category: Category = None,
    window: Annotated[int | None, Query(ge=1, le=168)] = None,
    user_id: Shopper = None,
) -> dict[str, Any]:
    service = runtime.recommender(ServingSettings.from_env())
    return page(
        "popular",
        user_id,
        lambda report, treatment: service.popular(
            k=k, category=category, report=report, window=window, user_id=user_id, treatment=treatment
        ),
    )


handler = api_handler(app, logger, tracer, metrics)
