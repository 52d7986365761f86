"""POST /events: validates a batch of browser events (up to 500) and puts it on the stream."""

import time
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit

from merchandiser.api import EventsAccepted, EventsRequest, api_handler, documented, error, make_resolver
from merchandiser.settings import EventsApiSettings
from merchandiser.stream import StreamUnavailableError, put_events

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = make_resolver()


@cache
def kinesis():  # type: ignore[no-untyped-def]
    return boto3.client("kinesis")


@app.exception_handler(StreamUnavailableError)
def _stream_unavailable(exc: StreamUnavailableError) -> Response:
    return error(503, "STREAM_UNAVAILABLE", str(exc))


@app.post(
    "/events",
    summary="Behaviour events from browsers",
    description="Up to 500 events, validated and put on the stream; a missing event id or timestamp is set.",
    tags=["events"],
    responses=documented(EventsAccepted, "accepted and on the stream", 400, 503, status=202),
)
@tracer.capture_method
def post_events(request: Annotated[EventsRequest, Body()]) -> Response[dict[str, Any]]:
    now = datetime.now(UTC)
    events = [incoming.complete(now) for incoming in request.events]
    stream = EventsApiSettings.from_env().events_stream
    put_events(kinesis(), stream, events, backoff=lambda attempt: time.sleep(0.05 * 2**attempt))
    metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=len(events))
    return Response(
        status_code=202,
        content_type="application/json",
        body={"accepted": len(events), "event_ids": [event.event_id for event in events]},
    )


handler = api_handler(app, logger, tracer, metrics)
