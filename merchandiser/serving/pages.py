"""One served page, end to end: the shopper's treatment, the page, its impression and its metrics.

Every page route of the serving functions goes through ``serve_page``: it resolves the experiment
variant of the shopper on the surface (``treatment.treatment_for``), builds the page with it, queues
the page's impression record for the stream (``impressions.ImpressionLog``, never waiting on Kinesis),
emits the request's metrics and log line (``metrics.emit``) and the page's (``metrics.emit_page``), then
gives the impression log a bounded time to empty before the function returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

from merchandiser.serving import runtime
from merchandiser.serving.impressions import impression_record
from merchandiser.serving.metrics import emit, emit_page
from merchandiser.serving.report import ServingReport
from merchandiser.serving.treatment import Treatment, treatment_for
from merchandiser.settings import ServingSettings

BuildPage = Callable[[ServingReport, Treatment], dict[str, Any]]


def serve_page(
    settings: ServingSettings,
    surface: str,
    user_id: str | None,
    build: BuildPage,
    report: ServingReport,
    metrics: Metrics,
    logger: Logger,
    tracer: Tracer,
) -> dict[str, Any]:
    """``report`` is the request's (``metrics.new_report``: the handler makes it, a bench may watch it)."""
    treatment = treatment_for(runtime.experiments(settings), surface, user_id, report)
    response = build(report, treatment)
    log = runtime.impressions(settings)
    log.put(impression_record(response, report.teams, runtime.clock()))
    emit(metrics, logger, tracer, report, response)
    log.wait(settings.impressions_flush_seconds)
    emit_page(metrics, response, log.take_dropped())
    return response
