"""Run-time experiments: definitions, sticky assignment, their store, interleaving and the report.

- ``definition``: the pydantic model of an experiment and its validation;
- ``assignment``: which variant a shopper sees (``assign``, ``variant_for``);
- ``repository``: the definitions in DynamoDB with a short cache;
- ``interleaving``: team-draft interleaving of two rankers on one page;
- ``report`` (with ``report.sql`` and ``statistics``): attribution and the analysis over the archive,
  DuckDB on the twin, Athena in AWS; ``report_table`` prints it. Imported on their own: DuckDB is not
  in the serving layer.
"""

from merchandiser.experiments.assignment import assign, assign_variant, variant_for
from merchandiser.experiments.definition import SURFACES, Experiment, Variant, parse_experiment
from merchandiser.experiments.errors import (
    ExperimentDefinitionError,
    SurfaceConflictError,
    UnknownExperimentError,
)

__all__ = [
    "SURFACES",
    "Experiment",
    "ExperimentDefinitionError",
    "SurfaceConflictError",
    "UnknownExperimentError",
    "Variant",
    "assign",
    "assign_variant",
    "parse_experiment",
    "variant_for",
]
