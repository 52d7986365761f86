"""Run-time experiments: definitions, sticky assignment, their store, interleaving and the report.

- ``definition``: the pydantic model of an experiment and its validation;
- ``assignment``: which variant a shopper sees (``assign``, ``variant_for``);
- ``repository``: the definitions in DynamoDB with a short cache;
- ``interleaving``: team-draft interleaving of two rankers on one page;
- ``report`` (with ``report.sql`` and ``statistics``): attribution and the analysis over the archive,
  DuckDB on the twin, Athena in AWS; ``report_table`` prints it; ``reports``: where a report comes from
  (the daily job's output in the bucket, or computed on the spot) and its period. DuckDB is imported
  only when a report runs (it is not in the serving layer);
- ``kpis`` (with ``kpis.sql``): pages, attributed events, CTR, conversion and coverage per day, surface,
  experiment and variant, on the same engines: the daily job's metrics, the per-day document ``GET /kpis``
  serves and each report's ``days``;
- ``daily``: the daily job that writes the reports and the KPIs.
"""

from merchandiser.experiments.assignment import (
    NO_EXPERIMENT,
    assign,
    assign_variant,
    assigned_variant,
    check_surfaces_free,
    covering,
    variant_for,
)
from merchandiser.experiments.athena import (
    GLUE_TYPES,
    JSON_SERDE,
    PARTITION_KEYS,
    SERDE_PARAMETERS,
    glue_columns,
    raw_table,
)
from merchandiser.experiments.daily import (
    KPIS_PREFIX,
    DailyOutcome,
    athena_query,
    prepare_athena,
    run_daily,
)
from merchandiser.experiments.definition import (
    PRODUCTION,
    SURFACES,
    Experiment,
    Ranker,
    Variant,
    parse_experiment,
)
from merchandiser.experiments.errors import (
    ExperimentDefinitionError,
    SurfaceConflictError,
    UnknownExperimentError,
)
from merchandiser.experiments.interleaving import InterleavedPage, credit, team_draft
from merchandiser.experiments.kpis import (
    ALL_VARIANTS,
    DOCUMENT_DAYS,
    KPI_LAG_DAYS,
    KPI_WINDOW,
    KpiRow,
    daily_kpis,
    document_period,
    experiment_days,
    kpi_document,
    kpi_rows,
    kpis_for,
    read_kpis,
    write_kpis,
)
from merchandiser.experiments.report import AttributionWindows, Period, athena_report, duckdb_query, report
from merchandiser.experiments.report_table import print_report, render_table
from merchandiser.experiments.reports import (
    REPORTS_PREFIX,
    ReportNotFoundError,
    archive_report,
    catalogue_size,
    latest_report,
    period_of,
    report_key,
    write_report,
)
from merchandiser.experiments.repository import (
    ExperimentRepository,
    ExperimentsTableSettings,
    StoredExperiment,
    create_table,
)

__all__ = [
    "ALL_VARIANTS",
    "DOCUMENT_DAYS",
    "GLUE_TYPES",
    "JSON_SERDE",
    "KPIS_PREFIX",
    "KPI_LAG_DAYS",
    "KPI_WINDOW",
    "NO_EXPERIMENT",
    "PARTITION_KEYS",
    "PRODUCTION",
    "REPORTS_PREFIX",
    "SERDE_PARAMETERS",
    "SURFACES",
    "AttributionWindows",
    "DailyOutcome",
    "Experiment",
    "ExperimentDefinitionError",
    "ExperimentRepository",
    "ExperimentsTableSettings",
    "InterleavedPage",
    "KpiRow",
    "Period",
    "Ranker",
    "ReportNotFoundError",
    "StoredExperiment",
    "SurfaceConflictError",
    "UnknownExperimentError",
    "Variant",
    "archive_report",
    "assign",
    "assign_variant",
    "assigned_variant",
    "athena_query",
    "athena_report",
    "catalogue_size",
    "check_surfaces_free",
    "covering",
    "create_table",
    "credit",
    "daily_kpis",
    "document_period",
    "duckdb_query",
    "experiment_days",
    "glue_columns",
    "kpi_document",
    "kpi_rows",
    "kpis_for",
    "latest_report",
    "parse_experiment",
    "period_of",
    "prepare_athena",
    "print_report",
    "raw_table",
    "read_kpis",
    "render_table",
    "report",
    "report_key",
    "run_daily",
    "team_draft",
    "variant_for",
    "write_kpis",
    "write_report",
]
