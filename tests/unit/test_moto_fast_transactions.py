"""The twin's moto copies a transaction's table once, and still rolls a cancelled transaction back."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

from local_twin import moto_fast_transactions


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", moto_fast_transactions.transact_write_items)
    with mock_aws():
        dynamodb = boto3.resource("dynamodb")
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield dynamodb.Table("t")


def add(key: str, condition: str | None = None) -> dict[str, Any]:
    update: dict[str, Any] = {
        "TableName": "t",
        "Key": {"k": key},
        "UpdateExpression": "ADD n :one",
        "ExpressionAttributeValues": {":one": 1},
    }
    if condition:
        update["ConditionExpression"] = condition
    return {"Update": update}


def test_a_transaction_copies_its_table_once_and_applies_every_action(table, monkeypatch):
    copies: list[Any] = []
    deepcopy = copy.deepcopy

    def counted(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table):
            copies.append(value)
        return deepcopy(value, memo)

    monkeypatch.setattr(moto_fast_transactions.copy, "deepcopy", counted)
    table.meta.client.transact_write_items(TransactItems=[add(f"i{n}") for n in range(50)])
    assert len(copies) == 1  # moto's own loop copies it once per action: 50 times
    assert sorted(item["k"] for item in table.scan()["Items"]) == sorted(f"i{n}" for n in range(50))


def test_a_cancelled_transaction_leaves_the_table_as_it_was(table):
    table.put_item(Item={"k": "a", "n": 5})
    actions = [add("a"), add("b"), add("c", condition="attribute_exists(k)")]  # c does not exist: cancelled
    with pytest.raises(ClientError, match="TransactionCanceledException"):
        table.meta.client.transact_write_items(TransactItems=actions)
    assert table.scan()["Items"] == [{"k": "a", "n": 5}]
    # and the module's copy is moto's own again once the call is over
    from moto.dynamodb import models

    assert models.copy is copy
