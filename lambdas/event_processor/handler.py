"""Event processor: Kinesis batches in, one session update per shopper per batch out.

Returns a partial batch response so Kinesis retries only what failed for a retryable reason;
records that can never succeed are dead-lettered with their payload by the core processor.
"""

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from merchandiser.event_processing import DeadLetters, EventProcessor, StreamRecord
from merchandiser.settings import EventProcessorSettings
from merchandiser.store import FeatureStore

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@cache
def processor(settings: EventProcessorSettings) -> EventProcessor:
    store = FeatureStore(boto3.resource("dynamodb"), settings.users_table, settings.sessions_table)
    dead_letters = DeadLetters(boto3.client("sqs"), settings.dead_letter_queue_url)
    return EventProcessor(store, dead_letters, settings.session_ttl_seconds)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = [StreamRecord.from_lambda(record) for record in event.get("Records", [])]
    outcome = processor(EventProcessorSettings.from_env()).process(records)
    metrics.add_metric(name="EventsIn", unit=MetricUnit.Count, value=len(records))
    metrics.add_metric(name="EventsProcessed", unit=MetricUnit.Count, value=outcome.processed)
    metrics.add_metric(name="EventsDuplicate", unit=MetricUnit.Count, value=outcome.duplicates)
    metrics.add_metric(name="EventsDeadLettered", unit=MetricUnit.Count, value=outcome.dead_lettered)
    metrics.add_metric(name="EventsFailed", unit=MetricUnit.Count, value=len(outcome.failed_sequence_numbers))
    logger.info("batch processed", extra={"records": len(records), "writes": outcome.writes})
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in outcome.failed_sequence_numbers]}
