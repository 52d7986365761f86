"""One place that maps failures to HTTP: every API function builds its resolver here.

Errors follow the contract ``{"error": CODE, "message": TEXT}``; the caller's faults are 4xx,
and anything unexpected is a logged 500 that never leaks internals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths

from merchandiser.errors import BadRequestError, UnknownItemError

logger = logging.getLogger(__name__)

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]

MAX_K = 100


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

    @app.exception_handler(UnknownItemError)
    def _unknown_item(exc: UnknownItemError) -> Response:
        return error(404, "NOT_FOUND", str(exc.args[0]) if exc.args else "not found")

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
    """The Lambda entry point of an API function: correlation ids, tracing and metrics around the resolver."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    return handler
