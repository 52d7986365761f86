"""The twin's fast path for DynamoDB items in moto answers exactly what moto's own serializer answers."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.serialize import BaseJSONSerializer, XFormedAttributePicker, get_serializer_class
from moto.core.utils import get_service_model
from moto.dynamodb.models import utilities
from moto.dynamodb.models.dynamo_type import DynamoType, Item

from local_twin import moto_fast_items

EVERY_KIND = {
    "user_id": {"S": "u-1"},
    "empty": {"S": ""},
    "count": {"N": "42"},
    "weight": {"N": "0.004373"},
    "flag": {"BOOL": False},
    "nothing": {"NULL": True},
    "tags": {"SS": ["a", "b"]},
    "sizes": {"NS": ["1", "2.5"]},
    "recent": {"L": [{"S": "23166"}, {"N": "3"}, {"L": []}, {"M": {}}]},
    "history": {"M": {"23166": {"N": "0.5"}, "nested": {"M": {"deep": {"L": [{"BOOL": True}]}}}}},
}
WITH_BINARIES = {**EVERY_KIND, "blob": {"B": b"\x00\xff"}, "blobs": {"BS": [b"\x01", b"\x02"]}}
# as moto stores them: binaries base64-encoded, as they arrive on the wire
EVERY_KIND_STORED = {
    **EVERY_KIND,
    "blob": {"B": base64.b64encode(b"\x00\xff").decode()},
    "blobs": {"BS": [base64.b64encode(b"\x01").decode()]},
}


def serialize(operation: str, result: dict[str, Any]) -> Any:
    service = get_service_model("dynamodb")
    serializer = get_serializer_class("dynamodb", service.protocol)(
        operation_model=service.operation_model(operation),
        pretty_print=False,
        value_picker=XFormedAttributePicker(),
    )
    return json.loads(serializer.serialize(result)["body"])


@pytest.fixture
def fast_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(BaseJSONSerializer, "_serialize_type_structure", moto_fast_items.serialize_structure)
    yield


@pytest.mark.parametrize(
    ("operation", "result"),
    [
        ("GetItem", {"Item": EVERY_KIND}),
        ("GetItem", {"Item": WITH_BINARIES}),
        ("BatchGetItem", {"Responses": {"users": [EVERY_KIND, WITH_BINARIES]}, "UnprocessedKeys": {}}),
        ("Query", {"Items": [EVERY_KIND], "Count": 1, "ScannedCount": 1}),
        ("Scan", {"Items": [WITH_BINARIES, EVERY_KIND], "Count": 2, "ScannedCount": 2}),
    ],
)
def test_the_fast_path_serializes_like_moto(operation: str, result: dict[str, Any]) -> None:
    # Given what moto's own serializer makes of a result holding every kind of value
    expected = serialize(operation, result)
    # When the fast path is installed
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseJSONSerializer, "_serialize_type_structure", moto_fast_items.serialize_structure)
        actual = serialize(operation, result)
    # Then the JSON is the same (binaries base64-encoded by moto's path, the rest passed through)
    assert actual == expected
    assert json.dumps(actual, sort_keys=True) == json.dumps(expected, sort_keys=True)


@pytest.mark.parametrize(
    "value",
    [
        {"B": b"\x00"},
        {"BS": [b"\x00"]},
        {"L": [{"S": "a"}, {"B": b"\x00"}]},
        {"M": {"x": {"BS": [b"\x00"]}}},
        {"N": 3},
        {"S": "a", "N": "1"},
        {"BOOL": "true"},
        "plain",
        {},
    ],
)
def test_anything_but_wire_form_goes_to_moto(value: Any) -> None:
    assert moto_fast_items.is_wire_form(value) is False


def test_items_of_every_kind_read_back_the_same_through_moto(fast_path: None) -> None:
    # Given a table in moto holding an item of every kind, read with the fast path installed
    item = {
        "user_id": "u-1",
        "count": 42,
        "weight": Decimal("0.25"),
        "flag": True,
        "nothing": None,
        "tags": {"a", "b"},
        "recent": ["23166", 3, [], {}],
        "history": {"23166": Decimal("0.5"), "nested": {"deep": [True]}},
        "blob": b"\x00\xff",
    }
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        table = dynamodb.create_table(
            TableName="users",
            KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        table.put_item(Item=item)
        # When it is read by GetItem, BatchGetItem and Scan
        got = table.get_item(Key={"user_id": "u-1"})["Item"]
        batch = dynamodb.batch_get_item(RequestItems={"users": {"Keys": [{"user_id": "u-1"}]}})
        scanned = table.scan()["Items"]
    # Then each answer is the item as written (binaries included)
    expected = {**item, "count": Decimal(42), "recent": ["23166", Decimal(3), [], {}]}
    assert got["blob"].value == b"\x00\xff"
    for answer in (got, batch["Responses"]["users"][0], scanned[0]):
        assert {**answer, "blob": answer["blob"].value} == expected


def test_wire_form_values_never_reach_motos_per_value_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a profile of 1,800 purchases and a count of the structures moto's own path walks
    profile = {"user_id": {"S": "u-1"}, "purchased": {"L": [{"S": str(n)} for n in range(1800)]}}
    walked: list[str] = []
    original = moto_fast_items._serialize_structure

    def counting(serializer: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        walked.append(shape.name)
        original(serializer, serialized, value, shape, key)

    monkeypatch.setattr(moto_fast_items, "_serialize_structure", counting)
    monkeypatch.setattr(BaseJSONSerializer, "_serialize_type_structure", counting)
    serialize("GetItem", {"Item": profile})
    without = len(walked)
    # When the fast path is installed
    walked.clear()
    monkeypatch.setattr(BaseJSONSerializer, "_serialize_type_structure", moto_fast_items.serialize_structure)
    answer = serialize("GetItem", {"Item": profile})
    # Then only the response structure itself is walked, and the item comes back whole
    assert without > 1800
    assert walked == ["GetItemOutput"]
    assert answer["Item"] == profile


def test_dynamo_to_dict_is_motos_own() -> None:
    # Given moto's item objects holding every kind of value, binaries and a timestamp beside them
    item = Item(
        hash_key=DynamoType({"S": "u-1"}), range_key=None, attrs={**EVERY_KIND_STORED, "at": {"S": "x"}}
    )
    result = {
        "Responses": {"users": [item.describe_attrs(None)["Item"]]},
        "Item": item,
        "Table": {"CreationDateTime": datetime(2026, 11, 30, tzinfo=UTC)},
    }
    # When both versions convert them, Then the dicts are the same
    assert moto_fast_items.dynamo_to_dict(result) == utilities.dynamo_to_dict(result)
