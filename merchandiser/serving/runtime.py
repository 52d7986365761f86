"""What a serving container builds once and reuses: the loaded model (with the catalogue overlay), the
DynamoDB resource, the experiments (read through their short cache) and the impression log.

Built on first use (not at import) so importing a handler never touches files or AWS.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import numpy as np
from botocore.config import Config

from merchandiser.catalog import ExplorationPolicy, exploration_of, with_exploration, with_overlay
from merchandiser.experiments import ExperimentRepository
from merchandiser.reranking import new_item_rows
from merchandiser.serving.impressions import ImpressionLog
from merchandiser.serving.model import LAST_RESORT_ITEMS, LoadedModel, Model, last_resort_model, load_model
from merchandiser.serving.model_source import fetch_model, live_version, load_into_memory
from merchandiser.serving.recommender import Recommender
from merchandiser.serving.report import EXPLORATION, MODEL
from merchandiser.settings import RetailerRules, ServingSettings, seconds_from_env
from merchandiser.store import BundleError, CatalogOverlay, FeatureStore, dynamodb_config, dynamodb_resource

logger = logging.getLogger(__name__)

LAST_RESORT_TTL_SECONDS = 300.0  # retry the table now and then, never on every request
MODELS_OVERLAID = 8
# Read once per container at init (before the SnapStart snapshot): generous, since a failure serves the
# last-resort list until the next retry.
MODEL_SOURCE_CONFIG = Config(
    connect_timeout=2.0, read_timeout=30.0, retries={"total_max_attempts": 3, "mode": "standard"}
)
MAX_EXPLORED_ITEMS = 1000  # posteriors read for at most the newest this many items of the pool
MAX_PROMOTED = 100  # RuleOptions.promoted_item_ids' own limit
# Impressions are put by a background thread: a slow stream delays records, never a page. A put that
# fails twice is dropped (and counted); an emulator sets KINESIS_TIMEOUT_S (the twin: moto behind one lock
# on a loaded machine) so that its slowness does not drop what a real stream would take.
KINESIS_TIMEOUT_VARIABLE = "KINESIS_TIMEOUT_S"
KINESIS_CONNECT_S, KINESIS_READ_S, KINESIS_MAX_S = 1.0, 2.0, 30.0


def kinesis_config(environ: Mapping[str, str] = os.environ) -> Config:
    """The impression log's client: 1 s to connect and 2 s to read, or ``KINESIS_TIMEOUT_S`` each."""
    read = seconds_from_env(KINESIS_TIMEOUT_VARIABLE, KINESIS_READ_S, environ, KINESIS_MAX_S)
    connect = read if environ.get(KINESIS_TIMEOUT_VARIABLE) else KINESIS_CONNECT_S
    return Config(
        connect_timeout=connect, read_timeout=read, retries={"total_max_attempts": 2, "mode": "standard"}
    )


# The staff routes' small reads (gate decision, KPIs) answer a person waiting: fail fast, retry once.
STAFF_S3_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 2})


@cache
def s3_client() -> Any:
    """For the staff routes' small reads; built on first use."""
    return boto3.client("s3", config=STAFF_S3_CONFIG)


def settled(loaded: LoadedModel) -> LoadedModel:
    """``loaded``, with everything the container has built so far (imports, clients, the model) moved out
    of the cyclic collector's generations (``gc.freeze``): they live as long as the container, and each
    full collection would otherwise rescan a quarter of a million objects in the middle of a page (up to
    4.5 ms of a 9 ms page, measured). Reference counting still frees what is dropped."""
    gc.collect()
    gc.freeze()
    return loaded


@cache
def loaded_model(model_dir: str) -> LoadedModel:
    return settled(load_model(Path(model_dir)))


def model(model_dir: str) -> Model:
    """The served model; raises ``BundleError`` when nothing of ``model_dir`` is usable."""
    loaded = loaded_model(model_dir)
    if loaded.model is None:
        raise BundleError(f"no usable model in {model_dir}")
    return loaded.model


_live: dict[tuple[str, str, str], tuple[float, LoadedModel]] = {}


def live_model(settings: ServingSettings, clock: Any = time.monotonic) -> LoadedModel:
    """The model this container serves: the live version the SSM parameter names, fetched from S3 once
    (``model_source``); ``settings.model_dir`` when no parameter is configured (tests, benches).

    A version that loaded is kept for the container's life (a new model arrives with a new function
    version: the canary); a failed fetch serves the last-resort list and is retried after
    ``LAST_RESORT_TTL_SECONDS``, never on every request."""
    if not settings.model_parameter:
        return loaded_model(settings.model_dir)
    key = (settings.model_parameter, settings.artifacts_bucket, settings.model_cache_dir)
    now = clock()
    cached = _live.get(key)
    if cached is not None and (cached[1].model is not None or now - cached[0] < LAST_RESORT_TTL_SECONDS):
        return cached[1]
    try:
        version = live_version(boto3.client("ssm", config=MODEL_SOURCE_CONFIG), settings.model_parameter)
        s3 = boto3.client("s3", config=MODEL_SOURCE_CONFIG)
        cache_dir = Path(settings.model_cache_dir)
        if settings.model_in_memory:  # SnapStart: /tmp is at most 512 MB (model_source.load_into_memory)
            loaded = settled(load_into_memory(s3, settings.artifacts_bucket, version, cache_dir))
        else:
            directory = fetch_model(s3, settings.artifacts_bucket, version, cache_dir)
            loaded = settled(load_model(directory, mmap=True, verified=True))
    except Exception as error:  # unreadable parameter or files, a loader bug: the last-resort list, no 5xx
        logger.error("live model unavailable", extra={"fallback": MODEL, "error": repr(error)})
        loaded = LoadedModel(None, frozenset({MODEL}))
    _live[key] = (now, loaded)
    return loaded


_last_resort: tuple[float, Model] | None = None
# id of a loaded model -> (the catalogue version its overlay was read at, the model with it applied)
_overlaid: dict[int, tuple[int, Model]] = {}


@cache
def catalog_overlay(items_table: str, resource: Any) -> CatalogOverlay:
    """The overlay's reader on the items table, built once per resource: boto3 builds a ``Table``'s class
    anew on every ``Table()`` (about 1 ms, on every page)."""
    return CatalogOverlay(resource.Table(items_table))


def with_catalog_overlay(model: Model, items_table: str) -> Model:
    """``model`` with the catalogue overlay applied (``merchandiser.store.items``).

    Every request reads the catalogue version (one strongly consistent read of a tiny item) and the
    overlay only when the version moved, so an item changed by ``PUT /items`` (sold out, renamed, new)
    is served as changed from the moment the PUT answers, in every container. An unreadable version or
    overlay keeps what this container served before.
    """
    cached = _overlaid.get(id(model))
    overlay = catalog_overlay(items_table, dynamodb_resource())
    try:
        version = overlay.version()
        if cached is not None and cached[0] == version:
            return cached[1]
        entries = overlay.read(consistent=True)
    except Exception as error:  # new items wait; the page must not
        logger.warning("catalogue overlay unreadable", extra={"error": str(error)})
        return cached[1] if cached is not None else model
    items = with_overlay(model.items, entries)
    # promoted by staff: added to the retailer's promoted items on every page (with_promotions)
    promoted = tuple(sorted(item_id for item_id, entry in entries.items() if entry.promoted))
    served = model if items is model.items and not promoted else Model(items, model.ranker, promoted)
    if len(_overlaid) >= MODELS_OVERLAID:  # the last-resort model is rebuilt every few minutes
        _overlaid.clear()
    _overlaid[id(model)] = (version, served)
    return served


# (the model it was read for, when, the model with its exploration, whether that read succeeded)
_explored: tuple[Model, float, Model, bool] | None = None


def with_posteriors(
    model: Model, store: FeatureStore, settings: ServingSettings, clock: Any = time.monotonic
) -> tuple[Model, bool]:
    """``model`` with what exploration learnt of its new items (their posteriors in the sessions table),
    read at most once per ``explore_cache_seconds`` per container. Degrade, never fail: when the read
    fails, the last posteriors read serve (none at all: every new item draws from Beta(1, 1)) and the
    second value is False until a read succeeds."""
    global _explored
    now = clock()
    if (
        _explored is not None
        and _explored[0] is model
        and now - _explored[1] < settings.explore_cache_seconds
    ):
        return _explored[2], _explored[3]
    items = model.items
    pool = new_item_rows(items, time.time(), settings.merchandising.new_item_days)
    # the newest first when the pool is larger than one read should be
    pool = pool[np.argsort(-items.catalog.created_at[pool], kind="stable")[:MAX_EXPLORED_ITEMS]]
    policy = ExplorationPolicy(
        settings.explore_graduate_ctr,
        settings.explore_graduate_impressions,
        settings.explore_fade_impressions,
    )
    try:
        posteriors = store.posteriors(items.catalog.item_ids[pool].tolist()) if len(pool) else {}
    except Exception as error:  # the page is served all the same: with the last posteriors, or none
        logger.warning("exploration posteriors unreadable", extra={"error": str(error)})
        stale = _explored[2] if _explored is not None and _explored[0] is model else model
        _explored = (model, now, stale, False)
        return stale, False
    explored = Model(
        with_exploration(items, exploration_of(items.catalog, posteriors, policy)),
        model.ranker,
        model.promoted,
    )
    _explored = (model, now, explored, True)
    return explored, True


def last_resort(items_table: str, clock: Any = time.monotonic) -> Model:
    """The last-resort model, from one bounded Scan of the items table; an empty model if that fails too."""
    global _last_resort
    now = clock()
    if _last_resort is not None and now - _last_resort[0] < LAST_RESORT_TTL_SECONDS:
        return _last_resort[1]
    try:
        page = dynamodb_resource().Table(items_table).scan(Limit=LAST_RESORT_ITEMS)
        items: list[dict[str, Any]] = page.get("Items", [])
    except Exception as error:
        logger.error("items table unavailable for the last-resort list", extra={"error": str(error)})
        items = []
    _last_resort = (now, last_resort_model(items))
    return _last_resort[1]


def recommender(settings: ServingSettings) -> Recommender:
    store = FeatureStore(
        dynamodb_resource(),
        settings.users_table,
        settings.sessions_table,
        settings.items_table,
        counters_table=settings.counters_table,
    )
    loaded = live_model(settings)
    if loaded.model is None:
        return Recommender(
            model=with_catalog_overlay(last_resort(settings.items_table), settings.items_table),
            store=store,
            faults=loaded.faults,
            merchandising=settings.merchandising,
        )
    served, posteriors_read = with_posteriors(
        with_catalog_overlay(loaded.model, settings.items_table), store, settings
    )
    return Recommender(
        model=served,
        store=store,
        faults=loaded.faults if posteriors_read else loaded.faults | {EXPLORATION},
        merchandising=with_promotions(settings.merchandising, served.promoted),
    )


def with_promotions(rules: RetailerRules, promoted: tuple[str, ...]) -> RetailerRules:
    """The retailer's rules with the items staff promoted after its own (at most ``MAX_PROMOTED``)."""
    if not promoted:
        return rules
    merged = tuple(dict.fromkeys((*rules.promoted_item_ids, *promoted)))[:MAX_PROMOTED]
    return rules.model_copy(update={"promoted_item_ids": merged})


def clock() -> float:
    """When a page is served (its impression's timestamp); tests may replace it."""
    return time.time()


@cache
def experiment_repository(table_name: str, cache_seconds: float, resource: Any) -> ExperimentRepository:
    """Keyed by the feature store's resource too: a new resource (``reset``) reads the table anew. A client
    of its own: the resource's ``meta.client`` hands back deserialized items."""
    return ExperimentRepository(table_name, boto3.client("dynamodb", config=dynamodb_config()), cache_seconds)


def forget_experiments() -> None:
    """The next page reads the experiments table again instead of waiting out the cache."""
    experiment_repository.cache_clear()


def experiments(settings: ServingSettings) -> ExperimentRepository:
    """The running experiments, read through the feature store's resource (its short timeouts)."""
    return experiment_repository(
        settings.experiments_table, settings.experiments_cache_seconds, dynamodb_resource()
    )


_impression_logs: dict[tuple[str, int], ImpressionLog] = {}


def impressions(settings: ServingSettings) -> ImpressionLog:
    """The container's impression log for the stream (one background thread each)."""
    key = (settings.events_stream, settings.impressions_buffer)
    if key not in _impression_logs:
        kinesis = boto3.client("kinesis", config=kinesis_config())
        _impression_logs[key] = ImpressionLog(kinesis, settings.events_stream, settings.impressions_buffer)
    return _impression_logs[key]


def wait_for_impressions(timeout: float) -> bool:
    """Waits at most ``timeout`` seconds for every impression log of this process to empty; True if so."""
    deadline = time.monotonic() + timeout
    return all(log.wait(max(0.0, deadline - time.monotonic())) for log in list(_impression_logs.values()))


def after_restore() -> None:
    """A SnapStart restore: the snapshot's model stays; connections and the impression log's background
    thread were frozen with it (and one snapshot resumes many containers), so they are built anew."""
    dynamodb_resource.cache_clear()
    experiment_repository.cache_clear()
    catalog_overlay.cache_clear()
    _impression_logs.clear()


def reset() -> None:
    """Forgets everything built so far (tests, and the twin after it swaps a model)."""
    global _last_resort, _explored
    loaded_model.cache_clear()
    _live.clear()
    dynamodb_resource.cache_clear()
    s3_client.cache_clear()
    experiment_repository.cache_clear()
    catalog_overlay.cache_clear()
    _impression_logs.clear()
    _last_resort = None
    _explored = None
    _overlaid.clear()
    gc.unfreeze()  # what ``settled`` froze (the old model among it) can be collected again
