"""Experiments (admin, IAM-signed): start or change one (PUT), read one or all (GET), stop one (DELETE), and
its report (GET .../report): the latest daily report in AWS, computed on the request on the local twin."""

from functools import cache
from typing import Annotated, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from merchandiser.api import (
    ExperimentList,
    ExperimentReport,
    ExperimentStopped,
    api_handler,
    documented,
    make_resolver,
)
from merchandiser.experiments import (
    Experiment,
    ExperimentRepository,
    archive_report,
    latest_report,
    parse_experiment,
)
from merchandiser.settings import ExperimentsSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = make_resolver()

Name = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


@cache
def repository(table_name: str) -> ExperimentRepository:
    return ExperimentRepository(table_name, boto3.client("dynamodb"))


@cache
def s3():  # type: ignore[no-untyped-def]
    return boto3.client("s3")


def settings() -> ExperimentsSettings:
    return ExperimentsSettings.from_env()


def shown(experiment: Experiment) -> dict[str, Any]:
    return experiment.model_dump(mode="json", exclude_none=True)


@app.put(
    "/experiments/<name>",
    summary="Start or change an experiment",
    description=(
        "The body is the definition: surfaces, variants with shares summing to 1, each variant pinning a"
        " policy (holdout), source shares, page rules, a model version or an interleaving of two rankers."
        " Serving picks it up within its cache time (10 s). 422 INVALID_EXPERIMENT names what is wrong;"
        " 422 SURFACE_CONFLICT when another running experiment covers one of its surfaces."
    ),
    tags=["experiments"],
    responses=documented(Experiment, "the stored definition", 400),
)
def put_experiment(name: Name, definition: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    experiment = parse_experiment(definition, name)
    stored = repository(settings().experiments_table).put(experiment)
    logger.info("experiment stored", extra={"experiment": name, "status": experiment.status})
    return shown(stored.experiment)


@app.get(
    "/experiments",
    summary="Every experiment",
    tags=["experiments"],
    responses=documented(ExperimentList, "running and stopped experiments, by name"),
)
def list_experiments() -> dict[str, Any]:
    return {"experiments": [shown(e) for e in repository(settings().experiments_table).list()]}


@app.get(
    "/experiments/<name>",
    summary="One experiment's definition",
    tags=["experiments"],
    responses=documented(Experiment, "the stored definition", 404),
)
def get_experiment(name: Name) -> dict[str, Any]:
    return shown(repository(settings().experiments_table).get(name))


@app.delete(
    "/experiments/<name>",
    summary="Stop an experiment",
    description=(
        "Stops it: nobody is assigned any more (serving sees it within its cache time) and every page of"
        " its surfaces is production again. The definition stays, with when it ran, for its report; a PUT"
        " with status running starts it again with the same assignment."
    ),
    tags=["experiments"],
    responses=documented(ExperimentStopped, "stopped", 404),
)
def stop_experiment(name: Name) -> dict[str, Any]:
    stored = repository(settings().experiments_table).stop(name)
    logger.info("experiment stopped", extra={"experiment": name})
    return {
        "name": name,
        "status": stored.experiment.status,
        "started_at": stored.started_at.isoformat() if stored.started_at else None,
        "stopped_at": stored.stopped_at.isoformat() if stored.stopped_at else None,
    }


@app.get(
    "/experiments/<name>/report",
    summary="An experiment's report",
    description=(
        "Per variant: users, pages (impressions), attributed clicks, add-to-carts, purchases and revenue,"
        " CTR, conversion, revenue per page and coverage; each variant against the baseline with relative"
        " lift, 95% interval and p-value (delta method, the shopper as the unit); the sample-ratio test;"
        " unattributed events by reason. In AWS the latest report of the daily job (404 before its first"
        " run); on the local twin computed on the request over the archive."
    ),
    tags=["experiments"],
    responses=documented(ExperimentReport, "the report", 404),
)
def experiment_report(name: Name) -> dict[str, Any]:
    config = settings()
    stored = repository(config.experiments_table).stored(name)
    if config.report_source == "archive":
        return archive_report(stored, s3(), config.artifacts_bucket)
    return latest_report(s3(), config.artifacts_bucket, name)


handler = api_handler(app, logger, tracer, metrics)
