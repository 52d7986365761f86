"""One place that maps failures to HTTP: every API function builds its resolver here.

Errors follow the contract ``{"error": CODE, "message": TEXT}``; the caller's faults are 4xx,
and anything unexpected is a logged 500 that never leaks internals.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from pydantic import BaseModel, Field

from merchandiser.errors import BadRequestError, UnknownItemError
from merchandiser.experiments import ExperimentDefinitionError, SurfaceConflictError, UnknownExperimentError

logger = logging.getLogger(__name__)

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]

MAX_K = 100
CORE_LOGGER = "merchandiser"


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str = Field(
        description="a stable code: MALFORMED_JSON, VALIDATION_ERROR, BAD_REQUEST, NOT_FOUND, INTERNAL, ...",
        examples=["VALIDATION_ERROR"],
    )
    message: str = Field(description="what was wrong, for a person", examples=["k: Input should be <= 100"])


ERRORS: dict[int, str] = {
    400: "MALFORMED_JSON: the body is not JSON; BAD_REQUEST: a request that cannot be served",
    404: "NOT_FOUND: an unknown item id or experiment, or no such route",
    422: "VALIDATION_ERROR: a parameter or body field is missing, of the wrong type or out of range;"
    " INVALID_EXPERIMENT, SURFACE_CONFLICT: an experiment definition that cannot run",
    500: "INTERNAL: an unexpected failure, logged; the message never carries internals",
    503: "a dependency (e.g. the event stream) is unavailable: retry later",
}


def documented(
    model: type[BaseModel], description: str, *errors: int, status: int = 200
) -> dict[int, OpenAPIResponse]:
    """A route's OpenAPI responses: ``model`` on success, the error envelope on 422, 500 and ``errors``.

    Given explicitly because Powertools documents its own 422 body on every route of a validating
    resolver, which this API never sends.
    """
    responses: dict[int, OpenAPIResponse] = {
        status: {"description": description, "content": {content_types.APPLICATION_JSON: {"model": model}}}
    }
    for code in sorted({422, 500, *errors}):
        responses[code] = {
            "description": ERRORS[code],
            "content": {content_types.APPLICATION_JSON: {"model": ErrorBody}},
        }
    return responses


def error(status: int, code: str, message: str) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body={"error": code, "message": message},
    )


def describe(errors: Any) -> str:
    parts = []
    for problem in errors:
        where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body") or "request"
        if problem.get("type") == "json_invalid":
            return "the request body is not valid JSON"
        parts.append(f"{where}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts[:5]) or "invalid request"


def make_resolver() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        status = 400 if any(e.get("type") == "json_invalid" for e in exc.errors()) else 422
        return error(
            status, "VALIDATION_ERROR" if status == 422 else "MALFORMED_JSON", describe(exc.errors())
        )

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported_content_type(exc: RequestUnsupportedContentType) -> Response:
        # not a RequestValidationError: without this, a text/plain body would be a 500
        return error(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json")

    @app.exception_handler(ValueError)
    def _value_error(exc: ValueError) -> Response:
        # Powertools raises a bare ValueError for multipart/form-data without a boundary
        if app.current_event.headers.get("content-type", "").lower().startswith("multipart/"):
            return error(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json")
        return _unexpected(exc)

    @app.exception_handler(UnknownItemError)
    def _unknown_item(exc: UnknownItemError) -> Response:
        return error(404, "NOT_FOUND", str(exc.args[0]) if exc.args else "not found")

    @app.exception_handler(UnknownExperimentError)
    def _unknown_experiment(exc: UnknownExperimentError) -> Response:
        return error(404, "NOT_FOUND", str(exc.args[0]) if exc.args else "not found")

    @app.exception_handler(ExperimentDefinitionError)
    def _invalid_experiment(exc: ExperimentDefinitionError) -> Response:
        code = "SURFACE_CONFLICT" if isinstance(exc, SurfaceConflictError) else "INVALID_EXPERIMENT"
        return error(422, code, str(exc))

    @app.exception_handler(BadRequestError)
    def _bad_request(exc: BadRequestError) -> Response:
        return error(400, "BAD_REQUEST", str(exc))

    @app.not_found
    def _no_route(exc: Exception) -> Response:
        return error(
            404, "NOT_FOUND", f"no route for {app.current_event.http_method} {app.current_event.path}"
        )

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return error(500, "INTERNAL", "the request could not be served; it has been logged")

    return app


def api_handler(
    app: APIGatewayRestResolver, logger: Logger, tracer: Tracer, metrics: Metrics
) -> LambdaHandler:
    """The Lambda entry point of an API function: correlation ids, tracing and metrics around the resolver.

    The API Gateway request id is the correlation id of the function's log lines (including the core
    library's, which go through the same JSON handler), of its trace (annotation ``correlation_id``)
    and of its metrics blob (metadata ``correlation_id``), so one id finds all three.
    """
    # The core library logs with the standard library; without this its records (fallbacks above
    # all) would reach CloudWatch as plain text without the correlation id.
    logging.getLogger(CORE_LOGGER)  # registers the parent logger so that it can be configured
    copy_config_to_registered_loggers(source_logger=logger, include={CORE_LOGGER})

    def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
        correlation_id = logger.get_correlation_id()
        if correlation_id:
            tracer.put_annotation(key="correlation_id", value=correlation_id)
            metrics.add_metadata(key="correlation_id", value=correlation_id)
        return app.resolve(event, context)

    counted = metrics.log_metrics(resolve, capture_cold_start_metric=True)
    # Powertools prints the cold-start blob even with POWERTOOLS_METRICS_DISABLED (the local twin);
    # read per call, never at import
    uncounted = metrics.log_metrics(resolve)

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @tracer.capture_lambda_handler
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        disabled = os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true"
        return (uncounted if disabled else counted)(event, context)

    return handler
