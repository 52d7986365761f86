"""The HTTP face every API function shares: the Powertools resolver with one error mapping, and the
request and response models the OpenAPI document is generated from."""

from merchandiser.api.requests import (
    MAX_EVENTS_PER_REQUEST,
    MAX_LIST,
    EventsRequest,
    IncomingEvent,
    ItemUpsert,
    RankRequest,
    RerankRequest,
    RerankRules,
    ScoredItem,
)
from merchandiser.api.resolver import (
    CORE_LOGGER,
    MAX_K,
    ErrorBody,
    api_handler,
    describe,
    documented,
    error,
    make_resolver,
)
from merchandiser.api.responses import (
    EventsAccepted,
    ExperimentList,
    ExperimentReport,
    ExperimentStopped,
    Health,
    ItemStored,
    RecommendationPage,
    RecommendedItem,
    UserErased,
)

__all__ = [
    "CORE_LOGGER",
    "MAX_EVENTS_PER_REQUEST",
    "MAX_K",
    "MAX_LIST",
    "ErrorBody",
    "EventsAccepted",
    "EventsRequest",
    "ExperimentList",
    "ExperimentReport",
    "ExperimentStopped",
    "Health",
    "IncomingEvent",
    "ItemStored",
    "ItemUpsert",
    "RankRequest",
    "RecommendationPage",
    "RecommendedItem",
    "RerankRequest",
    "RerankRules",
    "ScoredItem",
    "UserErased",
    "api_handler",
    "describe",
    "documented",
    "error",
    "make_resolver",
]
