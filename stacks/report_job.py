"""The daily experiment report job: Glue tables over the archive, an Athena workgroup, the scheduled function.

- Glue database with ``events_raw`` and ``impressions_raw`` (``merchandiser.experiments.athena``): JSON lines
  under ``events/`` and ``impressions/``, partitioned by ``year``/``month``/``day`` with partition
  projection (no crawler, no ``MSCK REPAIR``: a new day's prefix is queryable as soon as Firehose writes it);
  the job creates the views ``events`` and ``impressions`` over them that the report SQL reads;
- an Athena workgroup that enforces its result location (``athena-results/``, SSE-S3) and a per-query
  scan cutoff;
- the ``experiment_report`` function on a daily schedule: the reports and KPIs to ``reports/`` (with
  ``reports/kpis.json``, the per-day document the console reads), the KPIs
  as metrics (``Ctr``, ``CtrBaseline``, ``Conversion``, ``Coverage`` by surface and variant).
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_athena as athena
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from merchandiser.experiments import (
    JSON_SERDE,
    KPIS_PREFIX,
    PARTITION_KEYS,
    REPORTS_PREFIX,
    SERDE_PARAMETERS,
    glue_columns,
    raw_table,
)
from merchandiser.settings import ExperimentReportSettings
from merchandiser.store import (
    ATHENA_RESULTS_PREFIX,
    EVENTS_PREFIX,
    IMPRESSIONS_PREFIX,
    KPIS_KEY,
    PRODUCTION_POINTER,
)
from stacks import constants as c
from stacks.functions import SharedLayers, merchandiser_function
from stacks.permissions import allow_list, allow_objects, allow_tables

ARCHIVE_TABLES = {"events": EVENTS_PREFIX, "impressions": IMPRESSIONS_PREFIX}
# Partition projection: every day from the first year on, two-digit months and days as Firehose writes them.
PROJECTION = {
    "projection.enabled": "true",
    "projection.year.type": "integer",
    "projection.year.range": c.ARCHIVE_FIRST_YEAR_RANGE,
    "projection.month.type": "integer",
    "projection.month.range": "1,12",
    "projection.month.digits": "2",
    "projection.day.type": "integer",
    "projection.day.range": "1,31",
    "projection.day.digits": "2",
}
# The job's queries: start, poll, read back; Athena reads the tables through Glue.
ATHENA_ACTIONS = ("athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults")
GLUE_ACTIONS = (
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetPartitions",
    "glue:CreateTable",  # CREATE OR REPLACE VIEW, the first time
    "glue:UpdateTable",  # and every day after
)


class ExperimentReportJob(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        artifacts_bucket: s3.IBucket,
        experiments_table: dynamodb.ITable,
        layers: SharedLayers,
    ) -> None:
        super().__init__(scope, construct_id)
        database = glue.CfnDatabase(
            self,
            "ArchiveDatabase",
            catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=c.GLUE_DATABASE, description="The Merchandiser archive: events and impressions"
            ),
        )
        for table, prefix in ARCHIVE_TABLES.items():
            location = f"s3://{artifacts_bucket.bucket_name}/{prefix}"
            glue_table = glue.CfnTable(
                self,
                f"{table.title()}Table",
                catalog_id=Aws.ACCOUNT_ID,
                database_name=c.GLUE_DATABASE,
                table_input=glue.CfnTable.TableInputProperty(
                    name=raw_table(table),
                    description=f"{prefix}: JSON lines by arrival day (view {table} parses the timestamp)",
                    table_type="EXTERNAL_TABLE",
                    parameters={
                        "classification": "json",
                        "EXTERNAL": "TRUE",
                        **PROJECTION,
                        "storage.location.template": location + "year=${year}/month=${month}/day=${day}/",
                    },
                    partition_keys=[
                        glue.CfnTable.ColumnProperty(name=key, type="string") for key in PARTITION_KEYS
                    ],
                    storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                        columns=[
                            glue.CfnTable.ColumnProperty(name=name, type=kind)
                            for name, kind in glue_columns(table)
                        ],
                        location=location,
                        input_format="org.apache.hadoop.mapred.TextInputFormat",
                        output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                        compressed=True,
                        serde_info=glue.CfnTable.SerdeInfoProperty(
                            serialization_library=JSON_SERDE, parameters=SERDE_PARAMETERS
                        ),
                    ),
                ),
            )
            glue_table.node.add_dependency(database)

        self.workgroup = athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=c.ATHENA_WORKGROUP,
            description="The daily experiment reports and online KPIs",
            state="ENABLED",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=c.ATHENA_BYTES_SCANNED_CUTOFF,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{artifacts_bucket.bucket_name}/{ATHENA_RESULTS_PREFIX}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )

        self.function = merchandiser_function(
            self,
            "experiment_report",
            ExperimentReportSettings,
            layers,
            experiments_table=experiments_table.table_name,
            artifacts_bucket=artifacts_bucket.bucket_name,
            glue_database=c.GLUE_DATABASE,
            athena_workgroup=c.ATHENA_WORKGROUP,
        )
        self._grant(self.function, artifacts_bucket, experiments_table)
        events.Rule(
            self,
            "Schedule",
            schedule=events.Schedule.expression(c.REPORT_SCHEDULE),
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)],
        )

    def _grant(
        self, function: lambda_.Function, bucket: s3.IBucket, experiments_table: dynamodb.ITable
    ) -> None:
        def arn(service: str, resource: str) -> str:
            return f"arn:{Aws.PARTITION}:{service}:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"

        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=list(ATHENA_ACTIONS),
                resources=[arn("athena", f"workgroup/{c.ATHENA_WORKGROUP}")],
            )
        )
        tables = [raw_table(table) for table in ARCHIVE_TABLES] + list(ARCHIVE_TABLES)
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=list(GLUE_ACTIONS),
                resources=[
                    arn("glue", "catalog"),
                    arn("glue", f"database/{c.GLUE_DATABASE}"),
                    *(arn("glue", f"table/{c.GLUE_DATABASE}/{table}") for table in tables),
                ],
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:GetBucketLocation"], resources=[bucket.bucket_arn])
        )
        allow_objects(
            function,
            bucket,
            [EVENTS_PREFIX, IMPRESSIONS_PREFIX],
            ["s3:GetObject"],
            "Athena reads the archive's objects of the days a report covers, as the job's principal.",
        )
        allow_objects(
            function,
            bucket,
            [ATHENA_RESULTS_PREFIX],
            ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
            "Athena writes each query's result file under a key it names itself; the job reads it back.",
        )
        allow_objects(
            function,
            bucket,
            [REPORTS_PREFIX, KPIS_PREFIX],
            ["s3:PutObject"],
            "one report per experiment and day, and one KPI file per day.",
        )
        # the per-day KPI document GET /kpis reads: one key, no wildcard
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[bucket.arn_for_objects(KPIS_KEY)])
        )
        allow_objects(
            function, bucket, [PRODUCTION_POINTER], ["s3:GetObject"], "the catalogue size for coverage."
        )
        allow_list(function, bucket, [EVENTS_PREFIX, IMPRESSIONS_PREFIX, ATHENA_RESULTS_PREFIX])
        allow_tables(function, [experiments_table], ("dynamodb:Scan",))
