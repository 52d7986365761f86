"""Scheduled every minute by EventBridge: summarises the trending counters' dirty hours for serving (one
summary item per hour). ``merchandiser.stream.compaction`` says how and why a count is never lost.

An hour that fails is marked dirty again and retried by the next run; a failure to read or clear the dirty
set raises, so the run is retried by Lambda (and by the next run anyway, the hours still being dirty)."""

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from merchandiser.settings import TrendingCompactorSettings
from merchandiser.store import Counters
from merchandiser.stream import TrendingCompactor

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@cache
def compactor(settings: TrendingCompactorSettings) -> TrendingCompactor:
    store = Counters(boto3.resource("dynamodb"), "", "", counters_table=settings.counters_table)
    return TrendingCompactor(store)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    outcome = compactor(TrendingCompactorSettings.from_env()).run()
    for name, value in (
        ("HoursCompacted", len(outcome.compacted)),
        ("HoursFailed", len(outcome.failed)),
        ("HoursTruncated", outcome.truncated),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    report = {
        "compacted": outcome.compacted,
        "failed": outcome.failed,
        "lost": outcome.lost,
        "items_read": outcome.items_read,
        "truncated": outcome.truncated,
    }
    if outcome.failed:
        logger.warning("trending hours not compacted", extra=report)
    else:
        logger.info("trending hours compacted", extra=report)
    return report
