"""What every DynamoDB record handler shares: the client's timeouts, value conversion, batched reads.

Item shapes live with their handlers: ``shoppers`` (users table), ``sessions`` (sessions table),
``counters`` (counters table), ``items`` (items table).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from merchandiser.settings import seconds_from_env

BATCH_GET_LIMIT = 100
# A page waits for DynamoDB at most about 2 x (connect + read) before it is served without user
# features: the default (60 s, 5 legacy retries) would outlive the function's 10 s timeout.
DYNAMODB_TIMEOUT_S = 0.3
# An emulator (the twin's moto, one process behind a lock) answers far slower than DynamoDB's single-digit
# milliseconds: it sets this variable so that its own slowness is not taken for an outage.
TIMEOUT_VARIABLE = "DYNAMODB_TIMEOUT_S"
MAX_TIMEOUT_S = 10.0


def dynamodb_config(environ: Mapping[str, str] = os.environ) -> Config:
    """The client's timeouts: ``DYNAMODB_TIMEOUT_S`` (connect and read each) when set, else 0.3 s."""
    timeout = seconds_from_env(TIMEOUT_VARIABLE, DYNAMODB_TIMEOUT_S, environ, MAX_TIMEOUT_S)
    return Config(
        connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 2, "mode": "standard"}
    )


DYNAMODB_CONFIG = dynamodb_config({})  # production's: what a page waits for at most


@cache
def dynamodb_resource():  # type: ignore[no-untyped-def]
    """One resource per container, built on first use (never at import)."""
    return boto3.resource("dynamodb", config=dynamodb_config())


class Tables:
    """The tables a record handler works on. ``dynamodb`` is a boto3 DynamoDB service resource."""

    def __init__(
        self,
        dynamodb: Any,
        users_table: str,
        sessions_table: str,
        items_table: str | None = None,
        counters_table: str | None = None,
    ):
        self._dynamodb = dynamodb
        self.users_table = users_table
        self.sessions_table = sessions_table
        self.items_table = items_table
        self.counters_table = counters_table

    def table(self, name: str) -> Any:
        return self._dynamodb.Table(name)

    def _batch_get(self, table: str, keys: list[str], consistent: bool) -> dict[str, dict[str, Any]]:
        """Items by ``user_id`` key, following UnprocessedKeys until DynamoDB has answered for every key."""
        found = self._batch_get_keys(table, [{"user_id": key} for key in keys], consistent)
        return {str(item["user_id"]): item for item in found}

    def _batch_get_keys(
        self, table: str, keys: list[dict[str, str]], consistent: bool
    ) -> list[dict[str, Any]]:
        """The items found for full keys (any key schema), one BatchGetItem per 100 keys, following
        UnprocessedKeys until DynamoDB has answered for every key."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                table: {"Keys": keys[start : start + BATCH_GET_LIMIT], "ConsistentRead": consistent}
            }
            while request:
                response = self._dynamodb.batch_get_item(RequestItems=request)
                found.extend(response.get("Responses", {}).get(table, []))
                request = response.get("UnprocessedKeys") or {}
        return found


def to_dynamo(value: Any) -> Any:
    """Floats become Decimals (boto3's resource layer refuses floats)."""
    if isinstance(value, float):
        return Decimal(str(round(value, 6)))
    if isinstance(value, Mapping):
        return {key: to_dynamo(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamo(item) for item in value]
    return value
