"""DynamoDB transactions without a copy of the whole table per action (installed in moto's process).

moto 5.2 backs up a ``TransactWriteItems``' tables for its rollback before running it, but it deep-copies
the target table once per *action*: a transaction of 100 counts on the trending counters table copies that
table 100 times. With 1,000 items in the table one such transaction took 1.7 s on this machine, 4.1 s with
3,000, where DynamoDB answers in milliseconds; the twin's event processor writes one per batch.

``register`` wraps the backend's ``transact_write_items`` so that, for the length of one call, moto's
module sees a ``copy`` whose ``deepcopy`` copies each table once and hands the same backup to every
action on it. The backups are all taken before any action runs, so the one copy is the table's state
before the transaction, as moto's own code intends. Any other object (an item ``update_item`` copies)
is deep-copied as before. tests/unit/test_moto_fast_transactions.py checks the rollback still restores
the tables and that a table is copied once.
"""

from __future__ import annotations

import copy
from typing import Any

from moto.dynamodb import models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

_transact_write_items = DynamoDBBackend.transact_write_items


class TableCopiedOnce:
    """``copy`` as moto's DynamoDB module sees it during one transaction."""

    def __init__(self) -> None:
        self.tables: dict[int, Table] = {}

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        if not isinstance(value, Table):
            return copy.deepcopy(value, memo)
        if id(value) not in self.tables:
            self.tables[id(value)] = copy.deepcopy(value, memo)
        return self.tables[id(value)]


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    models.copy = TableCopiedOnce()  # type: ignore[assignment]
    try:
        _transact_write_items(self, transact_items)
    finally:
        models.copy = copy


def register() -> None:
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
