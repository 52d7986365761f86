"""Re-ranking function: the retailer's business rules applied to a scored list; the page is logged as
one impression (surface ``rerank``, never in an experiment: no experiment covers that surface)."""

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from merchandiser.api import RecommendationPage, RerankRequest, api_handler, documented, make_resolver
from merchandiser.schemas import ID_PATTERN
from merchandiser.serving import (
    FEATURE_STORE,
    RERANKING,
    ServingReport,
    Treatment,
    new_report,
    runtime,
    serve_page,
)
from merchandiser.settings import ServingSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = make_resolver()


@app.post(
    "/users/<user_id>/rerank",
    summary="Business rules on a scored list",
    description=(
        "Filters (purchased, out of stock, excluded ids and categories), promotions at every"
        " floor(1/promoted_share)-th slot, new items at evenly spread exploration slots chosen by the"
        " seed, then MMR (mmr_lambda) or else a 30% category cap. The same request gives the same page."
    ),
    tags=["ranking"],
    responses=documented(RecommendationPage, "the re-ranked page", 400, 404),
)
@tracer.capture_method
def rerank(
    user_id: Annotated[str, Path(pattern=ID_PATTERN)], request: Annotated[RerankRequest, Body()]
) -> dict[str, Any]:
    settings = ServingSettings.from_env()
    service = runtime.recommender(settings)
    scored = [(item.item_id, item.score) for item in request.items]

    def build(report: ServingReport, treatment: Treatment) -> dict[str, Any]:
        with report.stage(RERANKING):
            rules = request.rules
            response = service.apply_rules(
                user_id,
                scored,
                k=request.k,
                options=rules,
                explore=rules.explore_item_ids,
                explore_slots=rules.explore_slots,
                seed=rules.seed,
            )
        if response["degraded"]:
            # apply_rules reads only the feature store: its fallback is the only one it can take
            report.fallback(FEATURE_STORE, "feature store unavailable during re-ranking")
        return response

    return serve_page(settings, "rerank", user_id, build, new_report(tracer), metrics, logger, tracer)


handler = api_handler(app, logger, tracer, metrics)
