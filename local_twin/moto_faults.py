"""Faults injected at the twin's moto process: what a load test turns on to see the code's fallbacks.

A WSGI layer in front of moto's app (in moto's own process, ``moto_process``), off until asked:

- ``dynamodb_throttle_share``: that share of DynamoDB data-plane calls (reads and writes of items, not
  CreateTable or DescribeTable) is answered as DynamoDB answers an over-used table: HTTP 400 with
  ``ProvisionedThroughputExceededException``, or ``ThrottlingException`` (one in four), before moto
  sees the call, so nothing is written;
- ``kinesis_put_failure_share``: in PutRecords, that share of the records is refused one by one
  (``ErrorCode: ProvisionedThroughputExceededException`` in its result entry, ``FailedRecordCount``
  counts them) while moto stores the others, as Kinesis does when a shard is over its write limit;
  a PutRecord is refused whole with that share (HTTP 400).

Switched over HTTP on moto's own port: ``POST /_twin/faults`` with a JSON object of the settings above
and ``seed`` (draws from one seeded generator, in the order the requests reach moto); ``GET
/_twin/faults`` answers the settings and how many calls and records were refused so far. Shares of 0
(the default) leave every request untouched.
"""

from __future__ import annotations

import io
import json
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

FAULTS_PATH = "/_twin/faults"
DYNAMODB_TARGET = "DynamoDB_20120810."
KINESIS_TARGET = "Kinesis_20131202."
# Item reads and writes: what serving and the event processor do under load.
DYNAMODB_DATA_PLANE = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)
THROUGHPUT_EXCEEDED = "ProvisionedThroughputExceededException"
THROTTLING = "ThrottlingException"
THROTTLING_SHARE_OF_THROTTLES = 0.25  # DynamoDB answers both; the SDK retries both

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class FaultSettings:
    dynamodb_throttle_share: float = 0.0
    kinesis_put_failure_share: float = 0.0
    seed: int = 0

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> FaultSettings:
        unknown = set(document) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        settings = cls(**document)
        for name in ("dynamodb_throttle_share", "kinesis_put_failure_share"):
            share = getattr(settings, name)
            if not isinstance(share, int | float) or not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be a number from 0 to 1, not {share!r}")
        return settings


@dataclass
class FaultCounts:
    dynamodb_calls_throttled: int = 0
    kinesis_records_refused: int = 0
    kinesis_calls_refused: int = 0


@dataclass
class FaultInjector:
    """moto's app with faults in front; the state is guarded by its own lock, whatever serves it."""

    app: WsgiApp
    settings: FaultSettings = field(default_factory=FaultSettings)
    counts: FaultCounts = field(default_factory=FaultCounts)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(self.settings.seed)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == FAULTS_PATH:
            return self._control(environ, start_response)
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if target.startswith(DYNAMODB_TARGET) and target[len(DYNAMODB_TARGET) :] in DYNAMODB_DATA_PLANE:
            code = self._throttle_code()
            if code is not None:
                return _aws_error(start_response, code, "The level of configured provisioned throughput "
                                  "for the table was exceeded (injected by the twin)", "1.0")  # fmt: skip
        elif target == f"{KINESIS_TARGET}PutRecord" and self._draw(self.settings.kinesis_put_failure_share):
            with self._lock:
                self.counts.kinesis_calls_refused += 1
            return _aws_error(
                start_response, THROUGHPUT_EXCEEDED, "Rate exceeded for shard (injected)", "1.1"
            )
        elif target == f"{KINESIS_TARGET}PutRecords" and self.settings.kinesis_put_failure_share > 0:
            return self._put_records(environ, start_response)
        return self.app(environ, start_response)

    # -- faults ------------------------------------------------------------------------------------
    def _draw(self, share: float) -> bool:
        if share <= 0.0:
            return False
        with self._lock:
            return self._random.random() < share

    def _throttle_code(self) -> str | None:
        share = self.settings.dynamodb_throttle_share
        if not self._draw(share):
            return None
        with self._lock:
            self.counts.dynamodb_calls_throttled += 1
            return (
                THROTTLING if self._random.random() < THROTTLING_SHARE_OF_THROTTLES else THROUGHPUT_EXCEEDED
            )

    def _put_records(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Refuses a share of the records one by one and lets moto store the rest."""
        body = _read_body(environ)
        try:
            request = json.loads(body)
            records = list(request["Records"])
        except (ValueError, KeyError, TypeError):  # not ours to judge: moto answers it as it would
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
            return self.app(environ, start_response)
        refused = [self._draw(self.settings.kinesis_put_failure_share) for _ in records]
        with self._lock:
            self.counts.kinesis_records_refused += sum(refused)
        kept = [record for record, no in zip(records, refused, strict=True) if not no]
        stored: list[dict[str, Any]] = []
        status, headers = "200 OK", [("Content-Type", "application/x-amz-json-1.1")]
        if kept:
            forwarded = json.dumps({**request, "Records": kept}).encode()
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(forwarded), str(len(forwarded))
            answer: dict[str, Any] = {}

            def keep_start(status_line: str, response_headers: list[tuple[str, str]], *_: Any) -> None:
                answer["status"], answer["headers"] = status_line, response_headers

            response = b"".join(self.app(environ, keep_start))
            if not str(answer.get("status", "")).startswith("200"):  # moto refused the call: say so as is
                start_response(answer["status"], answer["headers"])
                return [response]
            stored = json.loads(response)["Records"]
            status, headers = answer["status"], list(answer["headers"])
        results, stored_results = [], iter(stored)
        for no in refused:
            results.append(
                {"ErrorCode": THROUGHPUT_EXCEEDED, "ErrorMessage": "Rate exceeded for shard (injected)"}
                if no
                else next(stored_results)
            )
        payload = json.dumps({"FailedRecordCount": sum(refused), "Records": results}).encode()
        headers = [(name, value) for name, value in headers if name.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(payload)))])
        return [payload]

    # -- the switch --------------------------------------------------------------------------------
    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                settings = FaultSettings.from_json(json.loads(_read_body(environ) or b"{}"))
            except (ValueError, TypeError) as error:
                return _json(
                    start_response, "400 Bad Request", {"error": "BAD_FAULTS", "message": str(error)}
                )
            with self._lock:
                self.settings, self._random = settings, random.Random(settings.seed)
        return _json(
            start_response, "200 OK", {"settings": asdict(self.settings), "counts": asdict(self.counts)}
        )


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return bytes(environ["wsgi.input"].read(length)) if length else b""


def _json(start_response: Callable[..., Any], status: str, document: dict[str, Any]) -> list[bytes]:
    body = json.dumps(document).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _aws_error(start_response: Callable[..., Any], code: str, message: str, json_version: str) -> list[bytes]:
    """An AWS JSON-protocol error, as botocore parses it (``__type``) and retries it (throttling codes)."""
    body = json.dumps({"__type": code, "message": message}).encode()
    content_type = f"application/x-amz-json-{json_version}"
    start_response("400 Bad Request", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
