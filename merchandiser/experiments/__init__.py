"""Run-time experiments: definitions, sticky assignment, their store, interleaving and the report.

- ``definition``: the pydantic model of an experiment and its validation;
- ``assignment``: which variant a shopper sees (``assign``, ``variant_for``);
- ``repository``: the definitions in DynamoDB with a short cache;
- ``interleaving``: team-draft interleaving of two rankers on one page;
- ``report`` (with ``report.sql`` and ``statistics``): attribution and the analysis over the archive,
  DuckDB on the twin, Athena in AWS; ``report_table`` prints it. DuckDB is imported only when a report
  runs (it is not in the serving layer);
- ``kpis`` (with ``kpis.sql``): CTR, conversion and coverage per day per surface, and each variant's
  figures per day, on the same engines; the daily job stores them, ``GET /kpis`` reads them.
"""

from merchandiser.experiments.assignment import (
    assign,
    assign_variant,
    assigned_variant,
    check_surfaces_free,
    covering,
    variant_for,
)
from merchandiser.experiments.definition import SURFACES, Experiment, Variant, parse_experiment
from merchandiser.experiments.errors import (
    ExperimentDefinitionError,
    SurfaceConflictError,
    UnknownExperimentError,
)
from merchandiser.experiments.interleaving import InterleavedPage, credit, team_draft
from merchandiser.experiments.kpis import (
    athena_kpis,
    experiment_days,
    kpis,
    last_days,
    read_kpis,
    write_kpis,
)
from merchandiser.experiments.report import AttributionWindows, Period, athena_report, report
from merchandiser.experiments.report_table import print_report, render_table
from merchandiser.experiments.repository import ExperimentRepository, ExperimentsTableSettings, create_table

__all__ = [
    "SURFACES",
    "AttributionWindows",
    "Experiment",
    "ExperimentDefinitionError",
    "ExperimentRepository",
    "ExperimentsTableSettings",
    "InterleavedPage",
    "Period",
    "SurfaceConflictError",
    "UnknownExperimentError",
    "Variant",
    "assign",
    "assign_variant",
    "assigned_variant",
    "athena_kpis",
    "athena_report",
    "check_surfaces_free",
    "covering",
    "create_table",
    "credit",
    "experiment_days",
    "kpis",
    "last_days",
    "parse_experiment",
    "print_report",
    "read_kpis",
    "render_table",
    "report",
    "team_draft",
    "variant_for",
    "write_kpis",
]
