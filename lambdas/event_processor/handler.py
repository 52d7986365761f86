"""Event processor: Kinesis batches in, one session write per shopper and one count add per (hour, item) out.

A Powertools partial processor returns the partial batch response, so the event source mapping retries
only what failed for a retryable reason; records that can never succeed are dead-lettered with their
payload and reason by the core processor. Impression records (one per served page, on the same stream)
are counted and skipped: they are the archive's, not behaviour.
"""

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from merchandiser.settings import EventProcessorSettings
from merchandiser.store import FeatureStore
from merchandiser.stream import DeadLetters, EventBatchProcessor, EventProcessor, parse_kinesis_record

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@cache
def processor(settings: EventProcessorSettings) -> EventProcessor:
    store = FeatureStore(
        boto3.resource("dynamodb"),
        settings.users_table,
        settings.sessions_table,
        counters_table=settings.counters_table,
    )
    dead_letters = DeadLetters(boto3.client("sqs"), settings.dead_letter_queue_url)
    return EventProcessor(store, dead_letters, settings.session_ttl_seconds)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    batch = EventBatchProcessor(processor(EventProcessorSettings.from_env()))
    with batch(event.get("Records", []), parse_kinesis_record, context):
        batch.process()
    response = batch.response()
    outcome = batch.outcome
    for name, value in (
        ("EventsIn", len(event.get("Records", []))),
        ("EventsProcessed", outcome.processed),
        ("EventsDuplicate", outcome.duplicates),
        ("EventsDeadLettered", outcome.dead_lettered),
        ("EventsFailed", len(response.get("batchItemFailures", []))),
        ("SessionWrites", outcome.session_writes),
        ("CounterWrites", outcome.counter_writes),
        ("SessionConflicts", outcome.conflicts),
        ("EventsUncounted", outcome.uncounted),
        ("ImpressionsSkipped", outcome.impressions),
        ("ExploredPages", outcome.explored_pages),
        ("ExploredClicks", outcome.explored_clicks),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    logger.info(
        "batch processed",
        extra={
            "records": outcome.records_in,
            "processed": outcome.processed,
            "duplicates": outcome.duplicates,
            "dead_lettered": outcome.dead_lettered,
            "impressions": outcome.impressions,
            "failed": outcome.failed,
            "session_writes": outcome.session_writes,
            "counter_writes": outcome.counter_writes,
            "explored_pages": outcome.explored_pages,
            "explored_replays": outcome.explored_replays,
            "explored_clicks": outcome.explored_clicks,
            "exploration_writes": outcome.exploration_writes,
        },
    )
    return dict(response)
