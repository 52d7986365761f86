"""Data access, one module per kind of record: shopper profiles, sessions, trending counters, stream figures
and catalogue records in DynamoDB; the artifacts bucket's layout; model files on disk.

``FeatureStore`` is every DynamoDB record handler over one set of tables, for callers that need several.
"""

from merchandiser.store.archive import (
    ATHENA_RESULTS_PREFIX,
    DECISION_FILE,
    EVENTS_PREFIX,
    IMPRESSIONS_PREFIX,
    ITEMS_PREFIX,
    KPIS_KEY,
    MODELS_PREFIX,
    OUTPUT_PREFIX,
    PRODUCTION_POINTER,
    TOMBSTONES_DIR,
    TOMBSTONES_PREFIX,
    USERS_PREFIX,
    decision_key,
    read_json,
    tombstone_key,
    write_tombstone,
)
from merchandiser.store.artifacts import (
    CATALOG,
    INDEX,
    ITEM_FACTORS,
    MANIFEST,
    POPULARITY,
    RANKER,
    SERVING_FILES,
    SIGNALS,
    USER_FEATURES,
    BundleError,
    read_manifest,
    sha256_of,
    write_manifest,
)
from merchandiser.store.counters import (
    BUCKET_TTL,
    COUNT_ATTRIBUTE_PREFIX,
    MAX_WINDOW_HOURS,
    TRENDING_KEY_PREFIX,
    Counters,
    bucket_key,
    counting_bucket,
    rank_trending,
)
from merchandiser.store.dynamo import BATCH_GET_LIMIT, DYNAMODB_CONFIG, dynamodb_resource, to_dynamo
from merchandiser.store.items import OVERLAY_KEY, CatalogOverlay, ItemRecords, OverlayFullError, OverlayItem
from merchandiser.store.sessions import (
    SEEN_EVENT_IDS_KEPT,
    SESSION_EVENTS_KEPT,
    SessionConflictError,
    SessionEvent,
    Sessions,
    SessionState,
)
from merchandiser.store.shoppers import ShopperRecord, Shoppers
from merchandiser.store.stream_stats import STREAM_KEY_PREFIX, StreamFigures, StreamStats


class FeatureStore(Shoppers, Sessions, Counters, StreamStats, ItemRecords):
    """Profiles, sessions, trending counters, stream figures and catalogue records over the same three
    tables."""


__all__ = [
    "ATHENA_RESULTS_PREFIX",
    "BATCH_GET_LIMIT",
    "BUCKET_TTL",
    "CATALOG",
    "COUNT_ATTRIBUTE_PREFIX",
    "DECISION_FILE",
    "DYNAMODB_CONFIG",
    "EVENTS_PREFIX",
    "IMPRESSIONS_PREFIX",
    "INDEX",
    "ITEMS_PREFIX",
    "ITEM_FACTORS",
    "KPIS_KEY",
    "MANIFEST",
    "MAX_WINDOW_HOURS",
    "MODELS_PREFIX",
    "OUTPUT_PREFIX",
    "OVERLAY_KEY",
    "POPULARITY",
    "PRODUCTION_POINTER",
    "RANKER",
    "SEEN_EVENT_IDS_KEPT",
    "SERVING_FILES",
    "SESSION_EVENTS_KEPT",
    "SIGNALS",
    "STREAM_KEY_PREFIX",
    "TOMBSTONES_DIR",
    "TOMBSTONES_PREFIX",
    "TRENDING_KEY_PREFIX",
    "USERS_PREFIX",
    "USER_FEATURES",
    "BundleError",
    "CatalogOverlay",
    "Counters",
    "FeatureStore",
    "ItemRecords",
    "OverlayFullError",
    "OverlayItem",
    "SessionConflictError",
    "SessionEvent",
    "SessionState",
    "Sessions",
    "ShopperRecord",
    "Shoppers",
    "StreamFigures",
    "StreamStats",
    "bucket_key",
    "counting_bucket",
    "decision_key",
    "dynamodb_resource",
    "rank_trending",
    "read_json",
    "read_manifest",
    "sha256_of",
    "to_dynamo",
    "tombstone_key",
    "write_manifest",
    "write_tombstone",
]
