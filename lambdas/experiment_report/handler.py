"""Daily experiment report job (scheduled): every experiment's report and the online KPIs, by Athena over
the archive, written to the artifacts bucket; the KPIs also as CloudWatch metrics by surface and variant."""

from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from merchandiser.experiments import ExperimentRepository, athena_query, prepare_athena, run_daily
from merchandiser.settings import ExperimentReportSettings
from merchandiser.store import ATHENA_RESULTS_PREFIX

logger = Logger()
tracer = Tracer()
metrics = Metrics()

# KPI record field -> (metric name, unit); the alarm divides Ctr by CtrBaseline.
KPI_METRICS = {
    "ctr": ("Ctr", MetricUnit.NoUnit),
    "ctr_baseline": ("CtrBaseline", MetricUnit.NoUnit),
    "conversion": ("Conversion", MetricUnit.NoUnit),
    "coverage": ("Coverage", MetricUnit.NoUnit),
}


def emit_kpis(kpis: list[dict[str, Any]]) -> None:
    """One EMF blob per surface and variant (its dimensions apply to every metric in it)."""
    for record in kpis:
        blob = EphemeralMetrics(namespace=metrics.namespace, service=metrics.service)
        blob.add_dimension(name="surface", value=record["surface"])
        blob.add_dimension(name="variant", value=record["variant"])
        for field, (name, unit) in KPI_METRICS.items():
            if record.get(field) is not None:
                blob.add_metric(name=name, unit=unit, value=float(record[field]))
        blob.flush_metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = ExperimentReportSettings.from_env()
    athena = boto3.client("athena")
    output = f"s3://{settings.artifacts_bucket}/{ATHENA_RESULTS_PREFIX}"
    prepare_athena(athena, settings.glue_database, output, settings.athena_workgroup)
    outcome = run_daily(
        ExperimentRepository(settings.experiments_table, boto3.client("dynamodb")),
        athena_query(athena, settings.glue_database, output, settings.athena_workgroup),
        boto3.client("s3"),
        settings.artifacts_bucket,
        today=datetime.now(UTC).date(),
        engine="athena",
        stopped_days=settings.report_stopped_days,
    )
    emit_kpis(outcome.kpis)
    metrics.add_metric(name="ExperimentReports", unit=MetricUnit.Count, value=len(outcome.reports))
    logger.info(
        "daily reports written",
        extra={"experiments": sorted(outcome.reports), "kpi_day": outcome.kpi_day.isoformat()},
    )
    return {
        "reports": sorted(outcome.reports),
        "kpi_day": outcome.kpi_day.isoformat(),
        "kpis": outcome.kpis_key,
    }
