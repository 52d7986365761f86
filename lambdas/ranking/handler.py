"""Ranking function: personalized order of a list the caller already has (search, category pages), in
the shopper's experiment variant, logged as one impression (``serving.serve_page``)."""

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from merchandiser.api import RankRequest, RecommendationPage, api_handler, documented, make_resolver
from merchandiser.schemas import ID_PATTERN
from merchandiser.serving import new_report, runtime, serve_page
from merchandiser.settings import ServingSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = make_resolver()


@app.post(
    "/users/<user_id>/rank",
    summary="Personalized order of a given list",
    description="Orders the caller's list (search results, a category page) for the shopper; a repeated id"
    " counts once. Ids the catalogue does not know stay on the list, after the ranked ones, with reason"
    " 'unknown item'.",
    tags=["ranking"],
    responses=documented(RecommendationPage, "the list, best first", 400, 404),
)
@tracer.capture_method
def rank(
    user_id: Annotated[str, Path(pattern=ID_PATTERN)], request: Annotated[RankRequest, Body()]
) -> dict[str, Any]:
    settings = ServingSettings.from_env()
    service = runtime.recommender(settings)
    return serve_page(
        settings,
        "rank",
        user_id,
        lambda report, treatment: service.rank(
            user_id, request.item_ids, k=request.k, report=report, treatment=treatment
        ),
        new_report(tracer),
        metrics,
        logger,
        tracer,
    )


handler = api_handler(app, logger, tracer, metrics)
