"""Ranking function: personalized order of a list the caller already has (search, category pages)."""

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from merchandiser import runtime
from merchandiser.api import api_handler, make_resolver
from merchandiser.requests import RankRequest
from merchandiser.schemas import ID_PATTERN
from merchandiser.settings import ServingSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = make_resolver()


@app.post("/users/<user_id>/rank")
@tracer.capture_method
def rank(
    user_id: Annotated[str, Path(pattern=ID_PATTERN)], request: Annotated[RankRequest, Body()]
) -> dict[str, Any]:
    service = runtime.recommender(ServingSettings.from_env())
    return service.rank(user_id, request.item_ids, k=request.k)


handler = api_handler(app, logger, tracer, metrics)
