"""Faults injected at the twin's moto process: DynamoDB throttling, Kinesis records refused, the switch."""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_twin.moto_process import MotoProcess, faults

NEVER_RETRY = Config(retries={"total_max_attempts": 1})


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoProcess]:
    server = MotoProcess.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def faults_off(moto: MotoProcess) -> Iterator[None]:
    yield
    moto.set_faults()


def client(moto: MotoProcess, service: str) -> Any:
    return boto3.client(service, endpoint_url=moto.endpoint, region_name="us-east-1", config=NEVER_RETRY)


def table(moto: MotoProcess, name: str) -> Any:
    dynamodb = client(moto, "dynamodb")
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


def stream_data(kinesis: Any, name: str) -> list[bytes]:
    shard = kinesis.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return [r["Data"] for r in kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]]


def test_throttled_dynamodb_calls_fail_as_dynamodb_says_and_write_nothing(moto: MotoProcess) -> None:
    # Given every DynamoDB item call throttled (table management is not)
    dynamodb = table(moto, "throttled")
    moto.set_faults(dynamodb_throttle_share=1.0, seed=3)
    # When a client without retries writes and reads an item
    codes = []
    for call in (
        lambda: dynamodb.put_item(TableName="throttled", Item={"k": {"S": "a"}}),
        lambda: dynamodb.get_item(TableName="throttled", Key={"k": {"S": "a"}}),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        codes.append(refused.value.response["Error"]["Code"])
    # Then both are refused with DynamoDB's throttling codes, counted, and nothing was written
    assert set(codes) <= {"ProvisionedThroughputExceededException", "ThrottlingException"}
    assert moto.set_faults()["counts"]["dynamodb_calls_throttled"] >= 2  # turning them off answers the counts
    assert "Item" not in dynamodb.get_item(TableName="throttled", Key={"k": {"S": "a"}})
    assert dynamodb.describe_table(TableName="throttled")["Table"]["TableName"] == "throttled"


def test_a_share_of_put_records_is_refused_record_by_record_and_the_rest_is_stored(moto: MotoProcess) -> None:
    # Given half of the Kinesis records refused
    kinesis = client(moto, "kinesis")
    kinesis.create_stream(StreamName="half", ShardCount=1)
    moto.set_faults(kinesis_put_failure_share=0.5, seed=11)
    sent = [f"record-{n}".encode() for n in range(40)]
    # When 40 records are put at once
    response = kinesis.put_records(
        StreamName="half", Records=[{"Data": d, "PartitionKey": "p"} for d in sent]
    )
    # Then each refused one says so in its own entry, the others have sequence numbers, and the stream
    # holds exactly the accepted ones, in order
    refused = [
        entry.get("ErrorCode") == "ProvisionedThroughputExceededException" for entry in response["Records"]
    ]
    assert 0 < response["FailedRecordCount"] == sum(refused) < len(sent)
    assert all("SequenceNumber" in e for e, no in zip(response["Records"], refused, strict=True) if not no)
    assert stream_data(kinesis, "half") == [d for d, no in zip(sent, refused, strict=True) if not no]
    assert faults(moto.endpoint)["counts"]["kinesis_records_refused"] == sum(refused)


def test_put_records_all_refused_reaches_no_stream(moto: MotoProcess) -> None:
    # Given every record refused
    kinesis = client(moto, "kinesis")
    kinesis.create_stream(StreamName="none", ShardCount=1)
    moto.set_faults(kinesis_put_failure_share=1.0)
    # When records are put one by one and in a batch
    with pytest.raises(ClientError) as refused:
        kinesis.put_record(StreamName="none", Data=b"x", PartitionKey="p")
    response = kinesis.put_records(StreamName="none", Records=[{"Data": b"y", "PartitionKey": "p"}] * 3)
    # Then the single put fails whole, the batch reports three failures, and the stream is empty
    assert refused.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert response["FailedRecordCount"] == 3
    assert stream_data(kinesis, "none") == []


def test_unknown_or_out_of_range_settings_are_refused_and_change_nothing(moto: MotoProcess) -> None:
    # Given a throttle share set
    moto.set_faults(dynamodb_throttle_share=0.2)
    # When settings with an unknown name or a share above 1 are sent
    for bad in ({"dynamo_share": 0.5}, {"kinesis_put_failure_share": 1.5}):
        with pytest.raises(urllib.error.HTTPError) as refused:
            faults(moto.endpoint, bad)
        # Then the switch answers 400 with a JSON error, and the previous settings stay
        assert refused.value.code == 400
        assert json.loads(refused.value.read())["error"] == "BAD_FAULTS"
    assert faults(moto.endpoint)["settings"]["dynamodb_throttle_share"] == 0.2
