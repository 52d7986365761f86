"""Data access, one module per kind of record: shopper profiles, sessions, trending counters and catalogue
records in DynamoDB; the artifacts bucket's layout; model files on disk.

``FeatureStore`` is every DynamoDB record handler over one set of tables, for callers that need several.
"""

from merchandiser.store.archive import (
    ATHENA_RESULTS_PREFIX,
    EVENTS_PREFIX,
    IMPRESSIONS_PREFIX,
    ITEMS_PREFIX,
    MODELS_PREFIX,
    OUTPUT_PREFIX,
    PRODUCTION_POINTER,
    TOMBSTONES_DIR,
    TOMBSTONES_PREFIX,
    USERS_PREFIX,
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
from merchandiser.store.explored_pages import (
    CLICK_WINDOW,
    EXPLORED_PAGE_KEY_PREFIX,
    ExploredPage,
    ExploredPages,
)
from merchandiser.store.items import OVERLAY_KEY, CatalogOverlay, ItemRecords, OverlayFullError, OverlayItem
from merchandiser.store.posteriors import POSTERIOR_KEY_PREFIX, Posterior, Posteriors, posterior_key
from merchandiser.store.sessions import (
    SEEN_EVENT_IDS_KEPT,
    SESSION_EVENTS_KEPT,
    SessionConflictError,
    SessionEvent,
    Sessions,
    SessionState,
)
from merchandiser.store.shoppers import ShopperRecord, Shoppers


class FeatureStore(Shoppers, Sessions, Counters, ItemRecords, Posteriors, ExploredPages):
    """Profiles, sessions, trending counters, catalogue records, exploration posteriors and explored pages
    over the same three tables."""


__all__ = [
    "ATHENA_RESULTS_PREFIX",
    "BATCH_GET_LIMIT",
    "BUCKET_TTL",
    "CATALOG",
    "CLICK_WINDOW",
    "COUNT_ATTRIBUTE_PREFIX",
    "DYNAMODB_CONFIG",
    "EVENTS_PREFIX",
    "EXPLORED_PAGE_KEY_PREFIX",
    "IMPRESSIONS_PREFIX",
    "INDEX",
    "ITEMS_PREFIX",
    "ITEM_FACTORS",
    "MANIFEST",
    "MAX_WINDOW_HOURS",
    "MODELS_PREFIX",
    "OUTPUT_PREFIX",
    "OVERLAY_KEY",
    "POPULARITY",
    "POSTERIOR_KEY_PREFIX",
    "PRODUCTION_POINTER",
    "RANKER",
    "SEEN_EVENT_IDS_KEPT",
    "SERVING_FILES",
    "SESSION_EVENTS_KEPT",
    "SIGNALS",
    "TOMBSTONES_DIR",
    "TOMBSTONES_PREFIX",
    "TRENDING_KEY_PREFIX",
    "USERS_PREFIX",
    "USER_FEATURES",
    "BundleError",
    "CatalogOverlay",
    "Counters",
    "ExploredPage",
    "ExploredPages",
    "FeatureStore",
    "ItemRecords",
    "OverlayFullError",
    "OverlayItem",
    "Posterior",
    "Posteriors",
    "SessionConflictError",
    "SessionEvent",
    "SessionState",
    "Sessions",
    "ShopperRecord",
    "Shoppers",
    "bucket_key",
    "counting_bucket",
    "dynamodb_resource",
    "posterior_key",
    "rank_trending",
    "read_manifest",
    "sha256_of",
    "to_dynamo",
    "tombstone_key",
    "write_manifest",
    "write_tombstone",
]
