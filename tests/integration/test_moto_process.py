"""moto's server in its own process: started ready, stopped without a trace, dead and said so, gone with
the process that started it."""

from __future__ import annotations

import http.client
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from local_twin.moto_process import MotoProcess, MotoProcessDied, calls

REPO = Path(__file__).resolve().parents[2]
JSON_1_0 = {"Content-Type": "application/x-amz-json-1.0"}
# moto checks no signature: an Authorization header naming the region and service is enough to route it
SIGNED_S3 = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0"
}


@pytest.fixture
def moto() -> Iterator[MotoProcess]:
    server = MotoProcess.start()
    try:
        yield server
    finally:
        server.stop()


def exited_within(pid: int, seconds: float) -> bool:
    """Waits for a process that is not our child to end, without polling (a pidfd turns readable)."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([handle], [], [], seconds)
        return bool(readable)
    finally:
        os.close(handle)


def refuses_connections(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2)
    except urllib.error.URLError as error:
        return isinstance(error.reason, ConnectionRefusedError)
    return False


def test_a_started_moto_answers_on_loopback_from_another_process(moto: MotoProcess) -> None:
    # Given a moto process, When a client creates a table through its endpoint
    assert moto.endpoint.startswith("http://127.0.0.1:")
    dynamodb = boto3.client("dynamodb", endpoint_url=moto.endpoint, region_name="us-east-1")
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # Then the table lives in that process, not in this one
    assert dynamodb.list_tables()["TableNames"] == ["t"]
    assert moto.pid != os.getpid() and moto.exit_code() is None
    moto.ensure_alive()


def test_stop_ends_and_reaps_the_process() -> None:
    # Given a running moto process
    server = MotoProcess.start()
    pid = server.pid
    # When it is stopped
    server.stop()
    # Then the process is gone (reaped, not a zombie) and its port refuses connections
    assert server.exit_code() is not None
    assert not Path(f"/proc/{pid}").exists()
    assert refuses_connections(server.endpoint)
    server.stop()  # a second stop is harmless


def test_a_killed_moto_is_reported_with_how_it_ended(moto: MotoProcess) -> None:
    # Given a moto process that something kills
    os.kill(moto.pid, signal.SIGKILL)
    moto.process.wait(timeout=30)
    # When the twin asks whether it is alive, Then the error says which process, where, and how it ended
    with pytest.raises(MotoProcessDied) as died:
        moto.ensure_alive()
    message = str(died.value)
    assert f"pid {moto.pid}" in message and moto.endpoint in message
    assert "killed by signal 9" in message


def test_moto_ends_with_the_process_that_started_it(tmp_path: Path) -> None:
    # Given a parent process that starts moto and then dies without stopping it
    script = (
        "import sys; from local_twin.moto_process import MotoProcess; "
        "server = MotoProcess.start(); print(server.pid, flush=True); sys.stdin.read()"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert parent.stdout is not None
    moto_pid = int(parent.stdout.readline())
    assert not exited_within(moto_pid, 0)
    # When the parent is killed
    parent.kill()
    parent.wait(timeout=30)
    # Then its moto process ends too
    assert exited_within(moto_pid, 30)


WRITERS = 6
PUTS_PER_WRITER = 40
RECORDS_PER_PUT = 10


def client(moto: MotoProcess, service: str) -> Any:
    """A client that never retries: a request moto failed on would otherwise be hidden by a retry."""
    never_retry = Config(retries={"total_max_attempts": 1}, max_pool_connections=WRITERS + 2)
    return boto3.client(service, endpoint_url=moto.endpoint, region_name="us-east-1", config=never_retry)


def hammer(writers: int, write: Callable[[int], None], read: Callable[[], None]) -> list[BaseException]:
    """Runs ``write(writer)`` on `writers` threads while one more thread keeps calling ``read()`` until the
    writers are done; returns what any of them raised."""
    errors: list[BaseException] = []
    done = threading.Event()

    def guarded(work: Callable[[], None]) -> None:
        try:
            work()
        except BaseException as error:  # reported by the test, not swallowed
            errors.append(error)

    def keep_reading() -> None:
        while not done.is_set():
            read()

    reader = threading.Thread(target=guarded, args=(keep_reading,))
    threads = [threading.Thread(target=guarded, args=(lambda n=n: write(n),)) for n in range(writers)]
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join()
    return errors


def test_concurrent_puts_on_one_stream_lose_no_record(moto: MotoProcess) -> None:
    # Given a one-shard stream (every record on the same shard) and a reader polling it meanwhile
    kinesis = client(moto, "kinesis")
    kinesis.create_stream(StreamName="s", ShardCount=1)
    shard_id = kinesis.list_shards(StreamName="s")["Shards"][0]["ShardId"]

    def iterator() -> str:
        return str(
            kinesis.get_shard_iterator(StreamName="s", ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")[
                "ShardIterator"
            ]
        )

    def write(writer: int) -> None:
        for put in range(PUTS_PER_WRITER):
            records = [
                {"Data": f"{writer}-{put}-{n}".encode(), "PartitionKey": f"p{writer}"}
                for n in range(RECORDS_PER_PUT)
            ]
            assert kinesis.put_records(StreamName="s", Records=records)["FailedRecordCount"] == 0

    # When several threads put records at once
    errors = hammer(WRITERS, write, lambda: kinesis.get_records(ShardIterator=iterator(), Limit=10_000))
    # Then every record is on the stream once, with a sequence number of its own
    assert errors == []
    read: list[dict[str, Any]] = []
    shard_iterator: str | None = iterator()
    while shard_iterator:
        page = kinesis.get_records(ShardIterator=shard_iterator, Limit=10_000)
        read += page["Records"]
        shard_iterator = page.get("NextShardIterator") if page["Records"] else None
    sent = {
        f"{w}-{p}-{n}" for w in range(WRITERS) for p in range(PUTS_PER_WRITER) for n in range(RECORDS_PER_PUT)
    }
    assert sorted(record["Data"].decode() for record in read) == sorted(sent)
    assert len({record["SequenceNumber"] for record in read}) == len(sent)


def test_concurrent_writes_on_one_table_lose_no_item(moto: MotoProcess) -> None:
    # Given a table and a reader scanning it meanwhile
    dynamodb = client(moto, "dynamodb")
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def write(writer: int) -> None:
        for put in range(PUTS_PER_WRITER):
            dynamodb.put_item(TableName="t", Item={"k": {"S": f"{writer}-{put}"}})
            dynamodb.update_item(
                TableName="t",
                Key={"k": {"S": "counter"}},
                UpdateExpression="ADD hits :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

    # When several threads put items and add to one counter at once
    errors = hammer(WRITERS, write, lambda: dynamodb.scan(TableName="t"))
    # Then every item is there and the counter counted every addition
    assert errors == []
    items = dynamodb.scan(TableName="t", ConsistentRead=True)["Items"]
    keys = {item["k"]["S"] for item in items} - {"counter"}
    assert keys == {f"{w}-{p}" for w in range(WRITERS) for p in range(PUTS_PER_WRITER)}
    counter = dynamodb.get_item(TableName="t", Key={"k": {"S": "counter"}})["Item"]
    assert int(counter["hits"]["N"]) == WRITERS * PUTS_PER_WRITER


def test_calls_of_every_protocol_share_one_kept_alive_connection(moto: MotoProcess) -> None:
    # Given one client connection to moto's port
    port = int(moto.endpoint.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.connect()
    local_port = connection.sock.getsockname()[1]
    answers = []
    # When it sends a JSON-protocol call, a REST call with a body, a HEAD and a GET one after another
    for method, path, body, headers in (
        ("POST", "/", b"{}", {"X-Amz-Target": "DynamoDB_20120810.ListTables", **JSON_1_0}),
        ("PUT", "/bucket-a", b"", SIGNED_S3),
        ("PUT", "/bucket-a/key", b"x" * 5000, SIGNED_S3),
        ("HEAD", "/bucket-a/key", None, SIGNED_S3),
        ("GET", "/bucket-a/key", None, SIGNED_S3),
    ):
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        answers.append((response.status, response.read(), response.getheader("Connection")))
    # Then every answer came on the same connection, none of them closing it, each with its own body
    assert connection.sock is not None and connection.sock.getsockname()[1] == local_port
    assert [status for status, _, _ in answers] == [200, 200, 200, 200, 200]
    assert [closing for _, _, closing in answers] == [None] * 5
    assert answers[3][1] == b"" and answers[4][1] == b"x" * 5000
    connection.close()


def test_a_body_cut_short_closes_its_connection_and_moto_keeps_serving(moto: MotoProcess) -> None:
    # Given a raw connection to moto
    port = int(moto.endpoint.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        # When a request announces 100 bytes of body, sends 5 and stops sending
        raw.sendall(b"POST / HTTP/1.1\r\nHost: moto\r\nContent-Length: 100\r\n\r\nshort")
        raw.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := raw.recv(4096):  # until moto closes the connection (a timeout fails the test)
            answer += chunk
    # Then moto closes the connection without answering it, and answers the next client
    assert answer == b""
    assert client(moto, "dynamodb").list_tables()["TableNames"] == []


def test_moto_counts_the_calls_it_answered_by_operation(moto: MotoProcess) -> None:
    # Given a fresh moto
    before = calls(moto.endpoint)
    dynamodb, s3 = client(moto, "dynamodb"), client(moto, "s3")
    # When a client lists tables twice and creates a bucket
    dynamodb.list_tables()
    dynamodb.list_tables()
    s3.create_bucket(Bucket="counted")
    # Then moto's count says so, by operation
    after = calls(moto.endpoint)
    assert after.get("DynamoDB_20120810.ListTables", 0) - before.get("DynamoDB_20120810.ListTables", 0) == 2
    assert after.get("PUT /counted", 0) - before.get("PUT /counted", 0) == 1
