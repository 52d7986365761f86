"""moto-backed AWS resources shaped like the data and streaming stacks (keys, TTL, queue, stream)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from merchandiser.experiments import create_table
from merchandiser.store import create_counters_table


@dataclass(frozen=True)
class Aws:
    dynamodb: Any
    sqs: Any
    kinesis: Any
    queue_url: str
    stream: str = "events"
    users_table: str = "users"
    sessions_table: str = "sessions"
    items_table: str = "items"
    counters_table: str = "counters"
    artifacts_bucket: str = "artifacts"
    experiments_table: str = "experiments"

    def env(self) -> dict[str, str]:
        return {
            "ARTIFACTS_BUCKET": self.artifacts_bucket,
            "USERS_TABLE": self.users_table,
            "SESSIONS_TABLE": self.sessions_table,
            "ITEMS_TABLE": self.items_table,
            "COUNTERS_TABLE": self.counters_table,
            "DEAD_LETTER_QUEUE_URL": self.queue_url,
            "EVENTS_STREAM": self.stream,
            "EXPERIMENTS_TABLE": self.experiments_table,
        }

    def dead_letters(self) -> list[dict[str, Any]]:
        import json

        messages = []
        while batch := self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
            "Messages"
        ):
            for message in batch:
                messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return messages


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        dynamodb = boto3.resource("dynamodb")
        for name, key in (("users", "user_id"), ("sessions", "user_id"), ("items", "item_id")):
            dynamodb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        create_table(boto3.client("dynamodb"), "experiments")
        create_counters_table(boto3.client("dynamodb"), "counters")
        boto3.client("dynamodb").update_time_to_live(
            TableName="sessions", TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
        )
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="events-dlq")["QueueUrl"]
        kinesis = boto3.client("kinesis")
        kinesis.create_stream(StreamName="events", ShardCount=1)
        boto3.client("s3").create_bucket(Bucket="artifacts")
        yield Aws(dynamodb=dynamodb, sqs=sqs, kinesis=kinesis, queue_url=queue_url)
