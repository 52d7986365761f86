"""Re-ranking function: the retailer's business rules applied to a scored list."""

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from merchandiser import runtime
from merchandiser.api import api_handler, make_resolver
from merchandiser.requests import RerankRequest
from merchandiser.schemas import ID_PATTERN
from merchandiser.settings import ServingSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = make_resolver()


@app.post("/users/<user_id>/rerank")
@tracer.capture_method
def rerank(
    user_id: Annotated[str, Path(pattern=ID_PATTERN)], request: Annotated[RerankRequest, Body()]
) -> dict[str, Any]:
    service = runtime.recommender(ServingSettings.from_env())
    scored = [(item.item_id, item.score) for item in request.items]
    return service.apply_rules(user_id, scored, k=request.k)


handler = api_handler(app, logger, tracer, metrics)
