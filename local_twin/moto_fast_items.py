"""DynamoDB items answered without moto's per-value response serializer (installed in moto's process).

moto 5.2 serializes every response by walking the botocore output shape; for each AttributeValue of
an item it tries each of the ten members (S, N, B, SS, NS, BS, M, L, NULL, BOOL) through a chain of
attribute-alias lookups. On this machine that is about 0.1 ms per value: reading the profile of a
shopper with 1,800 purchases took moto 400 ms, a median Online Retail profile 20 ms, where DynamoDB
answers either in a few milliseconds. That was most of the twin's page time.

The values moto's DynamoDB hands to its serializer are already in wire form (``{"S": "..."}``,
``{"M": {...}}``, ...); only binary values are raw bytes, which the serializer base64-encodes. So for a
value tree of strings, numbers, booleans, nulls, sets of strings or numbers, lists and maps, the
serializer's output is the value itself: ``serialize_attribute_value`` passes such a tree through
unchanged and leaves every other value (binaries, anything unexpected) to moto's own serializer.
moto still parses, validates, stores and queries every item; only the encoding of its answer is
shortened. Before that, moto turns its item objects into those dicts with ``dynamo_to_dict``, which
imports ``DynamoType`` on every call, once per value: ``dynamo_to_dict`` below is the same function
with the import made once (10 -> 4 ms for that profile). tests/unit/test_moto_fast_items.py checks
that both paths give the same JSON and the same dicts.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb import responses as dynamodb_responses
from moto.dynamodb.models.dynamo_type import DynamoType

SERVICES = frozenset({"dynamodb", "dynamodbstreams"})  # the JSON protocols whose items are AttributeValues
ATTRIBUTE_VALUE = "AttributeValue"
_STRINGS = frozenset({"S", "N"})
_STRING_SETS = frozenset({"SS", "NS"})
_FLAGS = frozenset({"BOOL", "NULL"})

_serialize_structure = BaseJSONSerializer._serialize_type_structure


def is_wire_form(value: Any) -> bool:
    """True when ``value`` is an AttributeValue tree that moto's serializer would return unchanged."""
    if type(value) is not dict or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    if kind in _STRINGS:
        return type(inner) is str
    if kind == "M":
        return type(inner) is dict and all(type(k) is str and is_wire_form(v) for k, v in inner.items())
    if kind == "L":
        return type(inner) is list and all(is_wire_form(v) for v in inner)
    if kind in _STRING_SETS:
        return type(inner) is list and all(type(v) is str for v in inner)
    if kind in _FLAGS:
        return type(inner) is bool
    return False  # B and BS are raw bytes here: the serializer base64-encodes them


def serialize_structure(
    serializer: BaseJSONSerializer, serialized: Any, value: Any, shape: Any, key: str
) -> None:
    """``BaseJSONSerializer._serialize_type_structure``, with wire-form AttributeValues passed through."""
    if (
        key
        and shape.name == ATTRIBUTE_VALUE
        and serializer.operation_model.service_model.service_name in SERVICES
        and not shape.serialization.get("name")
        and is_wire_form(value)
    ):
        serialized[key] = value
        return
    _serialize_structure(serializer, serialized, value, shape, key)


def dynamo_to_dict(obj: Any) -> Any:
    """``moto.dynamodb.models.utilities.dynamo_to_dict`` of moto 5.2.5, line for line, with its
    ``DynamoType`` import at module level instead of in every (recursive) call."""
    if isinstance(obj, datetime):
        return obj
    if isinstance(obj, DynamoType):
        if obj.type == "B":
            if isinstance(obj.value, bytes):
                return {"B": obj.value}
            return {"B": base64.b64decode(obj.value)}
        if obj.type == "BS":
            return {"BS": [v if isinstance(v, bytes) else base64.b64decode(v) for v in obj.value]}
        return {obj.type: dynamo_to_dict(obj.value)}
    if hasattr(obj, "to_json"):
        return dynamo_to_dict(obj.to_json())
    if isinstance(obj, dict):
        return {k: dynamo_to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [dynamo_to_dict(item) for item in obj]
    return obj


def register() -> None:
    BaseJSONSerializer._serialize_type_structure = serialize_structure  # type: ignore[method-assign,assignment]
    dynamodb_responses.dynamo_to_dict = dynamo_to_dict  # the name DynamoResult calls
