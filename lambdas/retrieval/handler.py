"""Retrieval function: recommendations (retrieval → ranking → re-ranking), candidates, similar items,
bought together, popular and trending. Every page (not the candidates) is served with the shopper's
experiment variant and logged as one impression on the stream (``serving.serve_page``). And the staff's
read-only routes (IAM): the live model, a shopper's events, catalogue search, the stream's figures and the
online KPIs."""

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from merchandiser.api import (
    MAX_K,
    Health,
    ItemSearch,
    KpiDocument,
    ModelSummary,
    RecommendationPage,
    ShopperEvents,
    StreamFigures,
    api_handler,
    documented,
    error,
    make_resolver,
)
from merchandiser.experiments import read_kpis
from merchandiser.schemas import ID_PATTERN
from merchandiser.serving import (
    ENGAGEMENT_HOURS,
    MAX_SEARCH_RESULTS,
    ServingReport,
    Treatment,
    emit,
    gate_decision,
    model_summary,
    new_report,
    runtime,
    search_items,
    serve_page,
    shopper_events,
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


class StaffReadError(RuntimeError):
    """What a staff route cannot show: 503 when a read failed (retry), 404 when there is nothing yet."""

    def __init__(self, message: str, status: int = 503, code: str = "UNAVAILABLE") -> None:
        super().__init__(message)
        self.status, self.code = status, code


@app.exception_handler(StaffReadError)
def _unreadable(exc: StaffReadError) -> Response:
    return error(exc.status, exc.code, str(exc))


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


# --- staff: read-only, IAM-authorized (stacks/constants.py STAFF_ROUTES) ----------------------------------
@app.get(
    "/model",
    summary="The live model (staff)",
    description=(
        "The served model's version, when it was trained and on what, its offline metrics beside the anchors"
        " evaluated on the same split, the quality gate's decision and what the catalogue overlay adds."
    ),
    tags=["staff"],
    responses=documented(ModelSummary, "the live model"),
)
def live_model() -> dict[str, Any]:
    settings = ServingSettings.from_env()
    loaded = runtime.live_model(settings)
    if loaded.model is None:
        return model_summary(None, loaded.faults, None, None)
    served = runtime.recommender(settings).model
    decision, problem = gate_decision(runtime.s3_client(), settings.artifacts_bucket, served.version)
    return model_summary(served, loaded.faults, decision, problem)


@app.get(
    "/users/<user_id>/events",
    summary="A shopper's recent events (staff)",
    description="The session's events, newest first, with titles; the latest items of the trained profile.",
    tags=["staff"],
    responses=documented(ShopperEvents, "the shopper's events", 503),
)
def user_events(user_id: UserId) -> dict[str, Any]:
    service = runtime.recommender(ServingSettings.from_env())
    try:
        shopper = service.store.shopper(user_id)
    except Exception as exc:  # a staff read has no page to degrade to: say so
        logger.exception("shopper record unreadable")
        raise StaffReadError("the shopper's records could not be read; try again") from exc
    return shopper_events(service, shopper)


@app.get(
    "/items",
    summary="Search the served catalogue (staff)",
    description=(
        "Items whose id or title contains q (an exact id first, then the most popular), or with new=true the"
        " new items: explored new arrivals and items added since the training. Each with stock, price,"
        " promotion and its weighted events over the last 7 days."
    ),
    tags=["staff"],
    responses=documented(ItemSearch, "matching items"),
)
def search_catalogue(
    q: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    k: Annotated[int, Query(ge=1, le=MAX_SEARCH_RESULTS)] = 20,
    new: bool = False,
) -> dict[str, Any]:
    service = runtime.recommender(ServingSettings.from_env())
    now = time.time()
    try:
        engagement = service.store.trending(datetime.fromtimestamp(now, UTC), ENGAGEMENT_HOURS)
    except Exception:  # the counters only add a column: search without it
        logger.exception("trending counters unreadable")
        engagement = {}
    return search_items(service, q, k, new, now, engagement)


@app.get(
    "/events/stats",
    summary="Events per minute and freshness (staff)",
    description="Events the processor applied per minute over the last hour, when it last did, and how old"
    " the newest event was by then.",
    tags=["staff"],
    responses=documented(StreamFigures, "the stream's figures", 503),
)
def stream_stats() -> dict[str, Any]:
    service = runtime.recommender(ServingSettings.from_env())
    now = datetime.now(UTC)
    try:
        return service.store.stream_figures(now).as_dict(now)
    except Exception as exc:
        logger.exception("stream figures unreadable")
        raise StaffReadError("the stream's figures could not be read; try again") from exc


@app.get(
    "/kpis",
    summary="Online KPIs per day (staff)",
    description=(
        "CTR, conversion and catalogue coverage of the served pages per surface per day, and each experiment"
        " variant's figures per day, as the daily experiment job last computed them from the archive."
    ),
    tags=["staff"],
    responses=documented(KpiDocument, "the last KPI document", 404, 503),
)
def online_kpis() -> dict[str, Any]:
    settings = ServingSettings.from_env()
    try:
        document = (
            read_kpis(runtime.s3_client(), settings.artifacts_bucket) if settings.artifacts_bucket else None
        )
    except Exception as exc:
        logger.exception("KPI document unreadable")
        raise StaffReadError("the KPI document could not be read; try again") from exc
    if document is None:
        raise StaffReadError("no KPIs computed yet: the daily experiment job writes them", 404, "NOT_FOUND")
    return dict(document)


handler = api_handler(app, logger, tracer, metrics)
