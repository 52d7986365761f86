"""Each function's configuration as a pydantic model.

The CDK constructs build a function's environment with ``to_env()`` from the same model the
handler reads it back with ``from_env()``, so the two cannot drift (an infrastructure test checks
every function in the synthesized template against its model).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Annotated, Any, Literal, Self, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_serializer,
    field_validator,
    model_validator,
)

from merchandiser.schemas import ID_PATTERN

Category = Annotated[str, StringConstraints(min_length=1, max_length=128)]
ItemId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


class RuleOptions(BaseModel):
    """The retailer-tunable rules: in a rerank request, and as the recommendations route's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # tuples, not lists: the settings holding these are hashed as cache keys
    exclude_item_ids: tuple[ItemId, ...] = Field(default=(), max_length=1000)
    exclude_categories: tuple[Category, ...] = Field(default=(), max_length=100)
    promoted_item_ids: tuple[ItemId, ...] = Field(
        default=(), max_length=100, description="promoted items, in priority order"
    )
    promoted_share: float = Field(
        default=0.2, ge=0.0, le=0.5, description="share of the page's slots promoted items may take"
    )
    mmr_lambda: float | None = Field(
        default=None, ge=0.0, le=1.0, description="MMR weight of relevance against similarity; 1 = none"
    )
    category_share: float = Field(
        default=0.3, gt=0.0, le=1.0, description="at most this share of a page from one category; 1 = no cap"
    )


def seconds_from_env(variable: str, default: float, environ: Mapping[str, str], maximum: float) -> float:
    """A timeout in seconds from ``variable`` when set (an emulator answers slower than the service it
    stands for: the twin sets its own), else ``default``; a clear error when it is not in (0, maximum]."""
    raw = environ.get(variable, "")
    try:
        seconds = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{variable} must be a number of seconds, got {raw!r}") from None
    if not 0.0 < seconds <= maximum:
        raise ValueError(f"{variable} must be in (0, {maximum:g}] seconds, got {raw!r}")
    return seconds


class FunctionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    service_name: str = Field(default="merchandiser", alias="POWERTOOLS_SERVICE_NAME")
    metrics_namespace: str = Field(default="Merchandiser", alias="POWERTOOLS_METRICS_NAMESPACE")
    log_level: str = Field(default="INFO", alias="POWERTOOLS_LOG_LEVEL")
    # OpenBLAS sizes its pool from the host's CPUs, not the sandbox's: oversubscribed, the float64
    # Gram matrix of 100k item factors took 3.5 s at load instead of 17 ms (local_twin/bench_serving).
    # Serving is single-threaded anyway (LightGBM and hnswlib run with one thread per request).
    blas_threads: int = Field(default=1, alias="OPENBLAS_NUM_THREADS", ge=1)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Self:
        """The settings of ``environ`` (default: the process's); every request reads them, and the same
        variables give the same (frozen) settings without validating them again."""
        env = os.environ if environ is None else environ
        values = tuple((alias, env[alias]) for alias in _aliases(cls) if alias in env)
        return cast(Self, _validated(cls, values))

    def to_env(self) -> dict[str, str]:
        return {key: str(value) for key, value in self.model_dump(by_alias=True).items()}


@cache
def _aliases(settings: type[FunctionSettings]) -> tuple[str, ...]:
    return tuple(sorted({field.alias for field in settings.model_fields.values() if field.alias}))


@lru_cache(maxsize=64)
def _validated(settings: type[FunctionSettings], values: tuple[tuple[str, str], ...]) -> FunctionSettings:
    return settings.model_validate(dict(values))  # an invalid set raises each time: errors are not cached


class RetailerRules(RuleOptions):
    """Defaults of the recommendations route: nothing excluded or promoted, no MMR (the category cap
    spreads the page), and exploration on.

    The training job tunes ``category_share`` and ``discovery_share`` for the shop; the model's manifest
    carries the chosen values (``page_rules``) and serving uses them wherever the retailer set nothing
    (``merchandiser.reranking.tuned_rules``): a field the retailer sets always wins.

    Exploration is on by default because a new item has no interactions, so neither ALS nor popularity
    would ever show it and it could never earn any: one slot in ten breaks that loop for the retailer's
    new arrivals, and it changes nothing while the catalogue has no new item. Discovery (the last tenth
    of the page from the shopper's own long-tail candidates, see ``merchandiser.reranking``) is on for the
    same reason on the scale of the whole catalogue; the training report measures what it costs.
    """

    explore_share: float = Field(default=0.1, ge=0.0, le=0.5, description="share of slots for new items")
    new_item_days: float = Field(
        default=30.0, gt=0.0, description="an item without interactions is new for this many days"
    )
    explore_policy: Literal["thompson", "uniform"] = Field(
        default="thompson",
        description="how the exploration slots pick new items: Thompson sampling over their click "
        "posteriors, or uniformly",
    )
    discovery_share: float = Field(
        default=0.1, ge=0.0, le=0.5, description="share of slots, at the end of the page, for discovery"
    )
    discovery_popular_share: float = Field(
        default=0.2, ge=0.0, lt=1.0, description="the most popular share of the catalogue is not discovery"
    )
    show_session_items: bool = Field(
        default=False,
        description="the items of the shopper's current session may be on the page (a shop where shoppers "
        "buy what they just viewed); by default they belong on a 'recently viewed' rail",
    )


class PositionRandomization(BaseModel):
    """Serving's small randomization that makes position bias measurable (``reranking.randomize``): on
    ``share`` of a surface's pages one random adjacent pair among the first ``depth`` positions is swapped,
    the draw derived from the recommendation id; ``surfaces`` overrides the share per surface (0: never)."""

    model_config = ConfigDict(extra="forbid")

    share: float = Field(default=0.05, ge=0.0, le=1.0)
    depth: int = Field(default=20, ge=2, le=100)
    # a re-ranked list carries the caller's promotions and pins: not shuffled unless the retailer says so
    surfaces: dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=lambda: {"rerank": 0.0}
    )

    def share_for(self, surface: str) -> float:
        return self.surfaces.get(surface, self.share)


class ShopTablesSettings(FunctionSettings):
    """The shop's tables and model, as the serving and catalogue functions read them."""

    users_table: str = Field(alias="USERS_TABLE")
    items_table: str = Field(alias="ITEMS_TABLE")
    sessions_table: str = Field(alias="SESSIONS_TABLE")
    # A model dir on disk: what tests and benches serve. Deployed functions leave it empty and name
    # the SSM parameter holding the live model version instead (ServingSettings.model_parameter).
    model_dir: str = Field(default="", alias="MODEL_DIR")
    # The retailer's rules for the recommendations route, one JSON object (see RetailerRules).
    merchandising: RetailerRules = Field(default_factory=RetailerRules, alias="MERCHANDISING_RULES")

    @field_validator("merchandising", mode="before")
    @classmethod
    def _from_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_serializer("merchandising")
    def _to_json(self, value: RetailerRules) -> str:
        # an environment variable holds a string: JSON, which _from_json reads back. What the retailer set,
        # even to a default value, stays set: it must win over the model's tuned page rules.
        return value.model_dump_json(exclude_unset=True)


class ServingSettings(ShopTablesSettings):
    """Retrieval, ranking and re-ranking functions: the shop, the running experiments and the stream
    every served page goes to as one impression record."""

    # The trending summaries (merchandiser.store.counters), read by the trending surfaces and staff search.
    counters_table: str = Field(alias="COUNTERS_TABLE")
    experiments_table: str = Field(alias="EXPERIMENTS_TABLE")
    # How stale a container's view of the experiments may be: a start or stop reaches every page
    # within this many seconds (one small Scan per container per period).
    experiments_cache_seconds: float = Field(default=10.0, alias="EXPERIMENTS_CACHE_SECONDS", ge=0.0)
    events_stream: str = Field(alias="EVENTS_STREAM")
    # Impressions wait in a bounded in-process buffer for a background PutRecords; a full buffer
    # drops (and counts) the newest instead of holding the page.
    impressions_buffer: int = Field(default=5000, alias="IMPRESSIONS_BUFFER", ge=1)
    # At the end of an invocation the handler waits at most this long for the buffer to empty, since
    # Lambda freezes the container (and its background thread) once the response is returned.
    impressions_flush_seconds: float = Field(default=0.2, alias="IMPRESSIONS_FLUSH_SECONDS", ge=0.0, le=5.0)
    # One JSON object (PositionRandomization): on by default, so every surface's logs identify position bias.
    position_randomization: PositionRandomization = Field(
        default_factory=PositionRandomization, alias="POSITION_RANDOMIZATION"
    )

    @field_validator("position_randomization", mode="before")
    @classmethod
    def _randomization_from_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_serializer("position_randomization")
    def _randomization_to_json(self, value: PositionRandomization) -> str:
        return value.model_dump_json(exclude_defaults=True)

    # The live model (merchandiser.serving.model_source): the SSM parameter naming its version, outside
    # the template so that `cdk deploy` never reverts it; its files under models/<version>/ in the
    # artifacts bucket, downloaded once per container (at init, before the SnapStart snapshot) into the
    # cache dir. Empty parameter: serve MODEL_DIR.
    model_parameter: str = Field(default="", alias="MODEL_PARAMETER")
    artifacts_bucket: str = Field(default="", alias="ARTIFACTS_BUCKET")
    model_cache_dir: str = Field(default="/tmp/model", alias="MODEL_CACHE_DIR")
    # The model loaded whole into memory, its files deleted once read (the stack sets it with SnapStart,
    # whose snapshot may hold at most 512 MB of /tmp); else its arrays memory-mapped from the cache dir.
    model_in_memory: bool = Field(default=False, alias="MODEL_IN_MEMORY")
    # Exploration (merchandiser.catalog.exploration): a new item graduates into the candidates with at
    # least this many exploration impressions and a posterior click rate of at least this; it fades out
    # of the pool after EXPLORE_FADE_IMPRESSIONS without graduating (or earlier when it cannot).
    explore_graduate_ctr: float = Field(default=0.05, alias="EXPLORE_GRADUATE_CTR", gt=0.0, lt=1.0)
    explore_graduate_impressions: int = Field(default=50, alias="EXPLORE_GRADUATE_IMPRESSIONS", ge=1)
    explore_fade_impressions: int = Field(default=500, alias="EXPLORE_FADE_IMPRESSIONS", ge=1)
    # How stale a container's posteriors may be: one BatchGetItem per 100 pool items per period.
    explore_cache_seconds: float = Field(default=10.0, alias="EXPLORE_CACHE_SECONDS", ge=0.0)

    @model_validator(mode="after")
    def _fade_after_graduation(self) -> Self:
        if self.explore_fade_impressions < self.explore_graduate_impressions:
            raise ValueError("EXPLORE_FADE_IMPRESSIONS must be at least EXPLORE_GRADUATE_IMPRESSIONS")
        return self


class EventsApiSettings(FunctionSettings):
    """POST /events: validates browser events and puts them on the stream."""

    events_stream: str = Field(alias="EVENTS_STREAM")


class CatalogSettings(ShopTablesSettings):
    """PUT /items/{item_id} and DELETE /users/{user_id}: the same tables as serving, and the bucket
    where an erasure leaves its tombstone for the next training."""

    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET")


class ExperimentsSettings(FunctionSettings):
    """The experiments admin routes: definitions in their table, reports from the artifacts bucket."""

    experiments_table: str = Field(alias="EXPERIMENTS_TABLE")
    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET")
    # Where GET /experiments/{name}/report comes from: "daily", the latest report the daily job wrote
    # to the bucket (AWS: Athena ran it); "archive", computed on the request by DuckDB over the bucket's
    # archive (the local twin: DuckDB is not in the Lambda layers, and Athena is not in moto).
    report_source: Literal["daily", "archive"] = Field(default="daily", alias="EXPERIMENT_REPORT_SOURCE")


class ExperimentReportSettings(FunctionSettings):
    """The daily experiment report job: the report SQL on Athena over the archive's Glue tables; the
    reports and the online KPIs go to the bucket, the KPIs also to CloudWatch (EMF)."""

    experiments_table: str = Field(alias="EXPERIMENTS_TABLE")
    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET")
    glue_database: str = Field(alias="GLUE_DATABASE")
    athena_workgroup: str = Field(alias="ATHENA_WORKGROUP")
    # A stopped experiment is still reported for this many days (late purchases, the final figures).
    report_stopped_days: int = Field(default=7, alias="REPORT_STOPPED_DAYS", ge=0)


class EventProcessorSettings(FunctionSettings):
    """Kinesis consumer that keeps sessions and user features fresh."""

    users_table: str = Field(alias="USERS_TABLE")
    sessions_table: str = Field(alias="SESSIONS_TABLE")
    counters_table: str = Field(alias="COUNTERS_TABLE")  # each (hour, item)'s trending count
    # Records that can never succeed (malformed, unknown type) go here with their payload and reason.
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL")
    session_ttl_seconds: int = Field(default=7 * 24 * 3600, alias="SESSION_TTL_SECONDS", gt=0)


class TrainingTriggerSettings(FunctionSettings):
    """Scheduled: scans the items table into the ``items`` channel, then starts the training job on the
    archived events, the catalogue and the production model (for the same-window gate): a SageMaker job,
    or past ``spark_min_events`` the request of an EMR Serverless job run for the state machine."""

    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET")
    items_table: str = Field(alias="ITEMS_TABLE")
    training_role_arn: str = Field(alias="TRAINING_ROLE_ARN")
    # S3 URI of the packaged training code (training/ + merchandiser/), run in script mode.
    training_source_uri: str = Field(alias="TRAINING_SOURCE_URI")
    training_image_uri: str = Field(alias="TRAINING_IMAGE_URI")
    training_instance_type: str = Field(default="ml.m5.xlarge", alias="TRAINING_INSTANCE_TYPE")
    # Past about spark_min_events archived events the job runs on Spark, as an EMR Serverless job run the
    # schedule's state machine starts (merchandiser.publishing.engine); without an application, always here.
    spark_min_events: int = Field(default=10_000_000, ge=1, alias="SPARK_MIN_EVENTS")
    emr_application_id: str = Field(default="", alias="EMR_APPLICATION_ID")
    emr_role_arn: str = Field(default="", alias="EMR_ROLE_ARN")
    emr_entry_point_uri: str = Field(default="", alias="EMR_ENTRY_POINT_URI")
    emr_source_uri: str = Field(default="", alias="EMR_SOURCE_URI")
    emr_python_env_uri: str = Field(default="", alias="EMR_PYTHON_ENV_URI")


class ErasureSettings(FunctionSettings):
    """Scheduled daily: the archive eraser (``merchandiser.store.erasure``) over the artifacts bucket."""

    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET")


class TrendingCompactorSettings(FunctionSettings):
    """Scheduled every minute: summarises the trending counters' dirty hours (``stream.compaction``)."""

    counters_table: str = Field(alias="COUNTERS_TABLE")


class PublishSettings(FunctionSettings):
    """On a finished training job: quality gate, then publish artifacts and user features."""

    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET")
    users_table: str = Field(alias="USERS_TABLE")
    # The catalogue overlay entries a promoted model holds leave it (merchandiser.store.items).
    items_table: str = Field(alias="ITEMS_TABLE")
    # The SSM parameter holding the live model version (what serving loads); empty: S3 pointer only.
    model_parameter: str = Field(default="", alias="MODEL_PARAMETER")
    # The canary (merchandiser.publishing.canary): each serving function gets a new version, and its
    # CodeDeploy deployment group shifts the `live` alias to it (10% first, rolled back on the alarms).
    # Empty: no canary (the local twin, which has no CodeDeploy, reloads its functions instead).
    serving_functions: str = Field(default="", alias="SERVING_FUNCTIONS")  # comma-separated names
    deployment_application: str = Field(default="", alias="DEPLOYMENT_APPLICATION")
    deployment_groups: str = Field(default="", alias="DEPLOYMENT_GROUPS")  # comma-separated, as functions
    serving_alias: str = Field(default="live", alias="SERVING_ALIAS")
    # From this many logged pages under the candidate's counterfactual CTR, that estimate decides the gate.
    counterfactual_min_impressions: int = Field(default=1000, alias="COUNTERFACTUAL_MIN_IMPRESSIONS", ge=1)
