"""Events stream, its consumer (event_processor + dead-letter queue), the trending compactor that summarises
the processor's counts every minute, and the archive of the stream: events and impressions, each under its
own prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Duration, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from merchandiser.settings import EventProcessorSettings, TrendingCompactorSettings
from merchandiser.store import EVENTS_PREFIX, IMPRESSIONS_PREFIX
from stacks import checkov_skips as checkov
from stacks import constants as c
from stacks.functions import SharedLayers, merchandiser_function
from stacks.permissions import (
    COMPACTOR_ACTIONS,
    COUNTER_PROCESSOR_ACTIONS,
    SESSION_PROCESSOR_ACTIONS,
    allow_objects,
    allow_tables,
)


class EventArchive(Construct):
    """Firehose delivery stream: Kinesis stream -> S3, GZIP, partitioned by the record's type and its
    arrival date.

    Dynamic partitioning with inline (jq) parsing reads each record's ``record_type``: impression records
    go under ``impressions/``, every other record (the behaviour events) under ``events/``, each as
    ``year=/month=/day=`` of the arrival time, the layout the report's Glue tables and the training
    channel read. A record that is not JSON cannot be parsed, so Firehose writes it under the error
    prefix (``events-errors/``) instead of ``events/``: the training reader skipped such lines anyway.
    One stream rather than a second delivery stream with a filter: one reader of the Kinesis stream,
    one buffer, no Lambda transform to run and pay for.
    """

    def __init__(
        self, scope: Construct, construct_id: str, stream: kinesis.IStream, bucket: s3.IBucket
    ) -> None:
        super().__init__(scope, construct_id)
        role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("firehose.amazonaws.com"))
        stream.grant_read(role)
        allow_objects(
            role,
            bucket,
            [EVENTS_PREFIX, IMPRESSIONS_PREFIX, c.ARCHIVE_ERRORS],
            ["s3:AbortMultipartUpload", "s3:PutObject"],
            "Firehose writes one object per buffer under date-partitioned keys it names itself.",
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[bucket.bucket_arn],
            )
        )
        self.delivery_stream = firehose.CfnDeliveryStream(
            self,
            "DeliveryStream",
            delivery_stream_type="KinesisStreamAsSource",
            kinesis_stream_source_configuration=firehose.CfnDeliveryStream.KinesisStreamSourceConfigurationProperty(
                kinesis_stream_arn=stream.stream_arn, role_arn=role.role_arn
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=bucket.bucket_arn,
                role_arn=role.role_arn,
                prefix=c.ARCHIVE_PREFIX,
                error_output_prefix=c.ARCHIVE_ERROR_PREFIX,
                compression_format="GZIP",
                # The training channel reads *.jsonl.gz; Firehose would name the objects *.gz.
                file_extension=c.ARCHIVE_FILE_EXTENSION,
                dynamic_partitioning_configuration=firehose.CfnDeliveryStream.DynamicPartitioningConfigurationProperty(
                    enabled=True,
                    retry_options=firehose.CfnDeliveryStream.RetryOptionsProperty(duration_in_seconds=300),
                ),
                # Stream records are concatenated as they are: a newline after each makes JSON lines
                # whatever the producer sent (the training reader also splits "}{" for older objects).
                processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                    enabled=True,
                    processors=[
                        firehose.CfnDeliveryStream.ProcessorProperty(
                            type="MetadataExtraction",
                            parameters=[
                                firehose.CfnDeliveryStream.ProcessorParameterProperty(
                                    parameter_name="MetadataExtractionQuery",
                                    parameter_value=c.ARCHIVE_TABLE_QUERY,
                                ),
                                firehose.CfnDeliveryStream.ProcessorParameterProperty(
                                    parameter_name="JsonParsingEngine", parameter_value="JQ-1.6"
                                ),
                            ],
                        ),
                        firehose.CfnDeliveryStream.ProcessorProperty(
                            type="AppendDelimiterToRecord",
                            parameters=[
                                firehose.CfnDeliveryStream.ProcessorParameterProperty(
                                    parameter_name="Delimiter", parameter_value="\\n"
                                )
                            ],
                        )
                    ],
                ),
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=c.ARCHIVE_BUFFER_SECONDS, size_in_m_bs=c.ARCHIVE_BUFFER_MB
                ),
            ),
        )  # fmt: skip
        self.delivery_stream.node.add_dependency(role)
        Validations.of(self.delivery_stream).acknowledge(
            Acknowledgment(
                id="AwsSolutions-KDF1",
                reason="Firehose rejects server-side encryption settings when its source is a Kinesis "
                "stream; the source stream is encrypted and the S3 objects get SSE-S3 from the bucket.",
            )
        )


def events_stream(scope: Construct, stream_mode: str, peak_stream_records: float) -> kinesis.Stream:
    """The events stream: provisioned shards for the peak (constants.stream_shards), or on demand.

    Both consumers read a provisioned stream as they read an on-demand one: the event processor's mapping
    polls each shard about once a second and Firehose reads it as a standard consumer, two of a shard's
    five reads a second. A shard refuses writes past 1,000 records or 1 MB a second; the producers
    (``merchandiser.stream.producer``, ``merchandiser.serving.impressions``) retry the failed records of a
    ``PutRecords``."""
    if stream_mode not in c.STREAM_MODES:
        raise ValueError(
            f"-c {c.CONTEXT_STREAM_MODE}={stream_mode}: expected one of {', '.join(c.STREAM_MODES)}"
        )
    if not peak_stream_records > 0:
        raise ValueError(f"-c {c.CONTEXT_PEAK_STREAM_RECORDS}={peak_stream_records}: expected > 0")
    provisioned = stream_mode == c.STREAM_MODE_PROVISIONED
    return kinesis.Stream(
        scope,
        "EventsStream",
        stream_mode=kinesis.StreamMode.PROVISIONED if provisioned else kinesis.StreamMode.ON_DEMAND,
        shard_count=c.stream_shards(peak_stream_records) if provisioned else None,
        encryption=kinesis.StreamEncryption.MANAGED,
        retention_period=Duration.hours(c.STREAM_RETENTION_HOURS),
    )


class StreamingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        users_table: dynamodb.ITable,
        sessions_table: dynamodb.ITable,
        counters_table: dynamodb.ITable,
        artifacts_bucket: s3.IBucket,
        layers_dir: Path,
        stream_mode: str = c.DEFAULT_STREAM_MODE,
        peak_stream_records: float = c.DEFAULT_PEAK_STREAM_RECORDS_PER_SECOND,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.stream = events_stream(self, stream_mode, peak_stream_records)
        shards = self.stream.node.default_child.shard_count  # type: ignore[union-attr]
        parallelization = c.esm_parallelization_factor(peak_stream_records, shards) if shards else 1
        self.dead_letter_queue = sqs.Queue(
            self,
            "EventsDeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(c.DLQ_RETENTION_DAYS),
        )
        Validations.of(self.dead_letter_queue).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SQS3",
                reason="This queue is itself the dead-letter destination of the event processor; "
                "messages stay 14 days and an alarm fires on the first one.",
            )
        )
        checkov.skip_checks(self.dead_letter_queue, {"CKV_AWS_27": checkov.SSE_SQS})

        layers = SharedLayers(self, "Layers", layers_dir)
        self.event_processor = merchandiser_function(
            self,
            "event_processor",
            EventProcessorSettings,
            layers,
            users_table=users_table.table_name,
            sessions_table=sessions_table.table_name,
            counters_table=counters_table.table_name,
            dead_letter_queue_url=self.dead_letter_queue.queue_url,
        )
        # The processor itself parks records that can never succeed; the ESM parks failed batches.
        self.dead_letter_queue.grant_send_messages(self.event_processor)
        # Sessions, stream figures and posteriors live in the sessions table, trending counts in the counters
        # table (adds only); the processor never touches users.
        allow_tables(self.event_processor, [sessions_table], SESSION_PROCESSOR_ACTIONS)
        allow_tables(self.event_processor, [counters_table], COUNTER_PROCESSOR_ACTIONS)
        self.trending_compactor = merchandiser_function(
            self,
            "trending_compactor",
            TrendingCompactorSettings,
            layers,
            counters_table=counters_table.table_name,
        )
        allow_tables(self.trending_compactor, [counters_table], COMPACTOR_ACTIONS)
        events.Rule(
            self,
            "TrendingCompactorSchedule",
            schedule=events.Schedule.rate(Duration.minutes(c.COMPACTOR_INTERVAL_MINUTES)),
            targets=[targets.LambdaFunction(self.trending_compactor, retry_attempts=0)],
        )
        self.event_processor.add_event_source(
            event_sources.KinesisEventSource(
                self.stream,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=c.ESM_BATCH_SIZE,
                parallelization_factor=parallelization,
                max_batching_window=Duration.seconds(c.ESM_MAX_BATCHING_WINDOW_SECONDS),
                bisect_batch_on_error=True,
                retry_attempts=c.ESM_RETRY_ATTEMPTS,
                max_record_age=Duration.hours(c.ESM_MAX_RECORD_AGE_HOURS),
                report_batch_item_failures=True,
                on_failure=event_sources.SqsDlq(self.dead_letter_queue),
            )
        )
        self.archive = EventArchive(self, "EventArchive", self.stream, artifacts_bucket)

        CfnOutput(self, "EventsStreamName", value=self.stream.stream_name)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.dead_letter_queue.queue_url)
        CfnOutput(self, "EventProcessorFunctionName", value=self.event_processor.function_name)
        CfnOutput(self, "TrendingCompactorFunctionName", value=self.trending_compactor.function_name)
        CfnOutput(self, "ArchiveDeliveryStreamName", value=self.archive.delivery_stream.ref)
