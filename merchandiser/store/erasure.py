"""The archive eraser: the daily job that rewrites the artifacts bucket without the erased shoppers.

``DELETE /users/{id}`` removes what serving holds at once (profile, session) and writes a tombstone
(``events/_tombstones/<sha256 of the id>.json``). This job, run daily by the training stack's schedule
(and on ``merchandiser retrain`` on the twin), then removes the shopper from every object of the bucket
that can hold them:

- ``events/`` and ``impressions/`` (the archive): every record of the shopper up to the erasure time
  (later ones are new consent, as training treats them), JSON lines (gzip or not) and CSV with a
  ``user_id`` column; a line that is not JSON but names the shopper's ``user_id`` goes too;
- ``catalog/users/`` (the users channel): the shopper's rows in files written before the erasure;
- ``models/*/user_features.jsonl.gz`` and the ``user_features.jsonl.gz`` inside
  ``training-output/*/output/model.tar.gz``: the shopper's line, unless that model was trained after
  the erasure (its manifest's ``tombstones_until``), when the line holds only later events.

Which objects it reads: all of them for a tombstone it has not applied yet; for tombstones already
applied, only the objects written since its last run (late events, new models). ``erasure/state.json``
keeps the erasure times it has applied and when it last ran. Files of other formats (Parquet) are
reported, not rewritten: a retailer who archives in Parquet runs the same filter in Athena or Spark.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import re
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from merchandiser.store.archive import (
    ERASURE_STATE,
    EVENTS_PREFIX,
    IMPRESSIONS_PREFIX,
    MODELS_PREFIX,
    OUTPUT_PREFIX,
    TOMBSTONES_PREFIX,
    USERS_PREFIX,
    user_hash,
)
from merchandiser.store.artifacts import MANIFEST, USER_FEATURES

logger = logging.getLogger(__name__)

ARCHIVES = (EVENTS_PREFIX, IMPRESSIONS_PREFIX)
MODEL_TARBALL = "model.tar.gz"
# S3 dates an object to the second, and clocks differ a little: objects written shortly before the last
# run started are read again (rewriting is idempotent), so none written during a run is missed
LATE_MARGIN = timedelta(minutes=5)
# a line the archive kept although it is not JSON may still name a shopper
RAW_USER_ID = re.compile(rb'"user_id"\s*:\s*"([^"\\]{1,128})"')


@dataclass
class ErasureReport:
    tombstones: int = 0
    new_tombstones: int = 0
    objects_read: int = 0
    objects_rewritten: int = 0
    records_removed: int = 0
    not_rewritten: list[str] = field(default_factory=list)  # formats this job cannot rewrite

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _time(value: Any) -> datetime | None:
    """An event's ``timestamp`` (ISO 8601, naive = UTC) as an aware datetime; None if unreadable."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ArchiveEraser:
    """``s3`` is a boto3 S3 client; ``bucket`` the artifacts bucket."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket
        self._hashes: dict[str, str] = {}

    def run(self, now: datetime | None = None) -> dict[str, Any]:
        started = (now or datetime.now(UTC)).astimezone(UTC)
        state = self._state()
        last_run = _time(state.get("last_run"))
        applied = {key: moment for key, value in state.get("applied", {}).items() if (moment := _time(value))}
        fresh = self._new_tombstones(set(applied))
        report = ErasureReport(tombstones=len(applied) + len(fresh), new_tombstones=len(fresh))
        for prefix in (*ARCHIVES, USERS_PREFIX, MODELS_PREFIX, OUTPUT_PREFIX):
            for key, modified in self._objects(prefix):
                late = last_run is None or modified >= last_run - LATE_MARGIN
                erased = {**fresh, **(applied if late else {})}
                if erased:
                    self._erase_from(key, modified, prefix, erased, report)
        state = {
            "last_run": started.isoformat(),
            "applied": {key: moment.isoformat() for key, moment in {**applied, **fresh}.items()},
        }
        self.s3.put_object(Bucket=self.bucket, Key=ERASURE_STATE, Body=json.dumps(state).encode())
        logger.info("archive eraser: %s", report.as_dict())
        return report.as_dict()

    # -- what to erase ----------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=ERASURE_STATE)["Body"].read()
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return {}
            raise
        state: dict[str, Any] = json.loads(body)
        return state

    def _new_tombstones(self, applied: set[str]) -> dict[str, datetime]:
        fresh: dict[str, datetime] = {}
        for key, _ in self._objects(TOMBSTONES_PREFIX):
            name = key.rsplit("/", 1)[-1]
            if not name.endswith(".json") or name.removesuffix(".json") in applied:
                continue
            record = json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
            hashed = record.get("user_sha256") or user_hash(str(record["user_id"]))
            moment = _time(record["erased_at"])
            if moment is None:
                raise ValueError(f"tombstone {key} has an unreadable erased_at")
            fresh[str(hashed)] = moment
        return fresh

    def _objects(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                if prefix != TOMBSTONES_PREFIX and entry["Key"].startswith(TOMBSTONES_PREFIX):
                    continue
                yield entry["Key"], entry["LastModified"].astimezone(UTC)

    def _erased(self, user_id: Any, moment: datetime | None, erased: Mapping[str, datetime]) -> bool:
        """A record of ``user_id`` at ``moment`` (None: unknown, so erased) falls under a tombstone."""
        if user_id is None:
            return False
        text = str(user_id)
        hashed = self._hashes.get(text)
        if hashed is None:
            hashed = self._hashes[text] = user_hash(text)
        erased_at = erased.get(hashed)
        return erased_at is not None and (moment is None or moment <= erased_at)

    # -- rewriting ----------------------------------------------------------------------------------------
    def _erase_from(
        self, key: str, modified: datetime, prefix: str, erased: Mapping[str, datetime], report: ErasureReport
    ) -> None:
        name = key.rsplit("/", 1)[-1]
        if prefix == MODELS_PREFIX and name != USER_FEATURES:
            return
        if prefix == OUTPUT_PREFIX and name != MODEL_TARBALL:
            return
        if prefix in (*ARCHIVES, USERS_PREFIX) and not name.endswith(
            (".jsonl", ".jsonl.gz", ".csv", ".csv.gz")
        ):
            report.not_rewritten.append(key)
            return
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        report.objects_read += 1
        if prefix == OUTPUT_PREFIX:
            rewritten, removed = self._scrub_tarball(body, erased)
        elif prefix == MODELS_PREFIX:
            manifest_key = key.removesuffix(USER_FEATURES) + MANIFEST
            rewritten, removed = self._scrub_features(body, self._trained_until(manifest_key), erased)
        else:
            # the users channel has no event time: a row in a file written before the erasure goes
            at_time = modified if prefix == USERS_PREFIX else None
            rewritten, removed = self._scrub_records(body, name, erased, at_time)
        if removed:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=rewritten)
            report.objects_rewritten += 1
            report.records_removed += removed

    def _scrub_records(
        self, body: bytes, name: str, erased: Mapping[str, datetime], at_time: datetime | None
    ) -> tuple[bytes, int]:
        packed = name.endswith(".gz")
        text = gzip.decompress(body) if packed else body
        if name.removesuffix(".gz").endswith(".csv"):
            kept, removed = self._csv_without(text, erased, at_time)
        else:
            kept, removed = self._lines_without(text, erased, at_time)
        return (gzip.compress(kept, mtime=0) if packed else kept), removed

    def _lines_without(
        self, text: bytes, erased: Mapping[str, datetime], at_time: datetime | None
    ) -> tuple[bytes, int]:
        kept: list[bytes] = []
        removed = 0
        for line in text.splitlines(keepends=True):
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                moment = at_time or _time(record.get("timestamp"))
                gone = self._erased(record.get("user_id"), moment, erased)
            else:
                named = RAW_USER_ID.search(line)
                gone = named is not None and self._erased(
                    named.group(1).decode(errors="replace"), None, erased
                )
            if gone:
                removed += 1
            else:
                kept.append(line)
        return b"".join(kept), removed

    def _csv_without(
        self, text: bytes, erased: Mapping[str, datetime], at_time: datetime | None
    ) -> tuple[bytes, int]:
        """The CSV without the shopper's rows; the other rows are written back as they were read."""
        rows = csv.reader(io.StringIO(text.decode()))
        header = next(rows, None)
        if header is None or "user_id" not in header:
            return text, 0
        user, stamp = header.index("user_id"), header.index("timestamp") if "timestamp" in header else None
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        removed = 0
        for row in rows:
            moment = at_time or (_time(row[stamp]) if stamp is not None and stamp < len(row) else None)
            if user < len(row) and self._erased(row[user], moment, erased):
                removed += 1
            else:
                writer.writerow(row)
        return out.getvalue().encode(), removed

    def _trained_until(self, manifest_key: str) -> datetime | None:
        """The latest erasure the model of that manifest was trained with (None: none, or no manifest)."""
        try:
            manifest = json.loads(self.s3.get_object(Bucket=self.bucket, Key=manifest_key)["Body"].read())
        except ClientError:
            return None
        return _tombstones_until(manifest)

    def _scrub_features(
        self, body: bytes, trained_until: datetime | None, erased: Mapping[str, datetime]
    ) -> tuple[bytes, int]:
        """``user_features.jsonl.gz`` without the shoppers erased after the model was trained."""
        unknown_to_model = {
            key: moment for key, moment in erased.items() if trained_until is None or moment > trained_until
        }
        kept, removed = self._lines_without(gzip.decompress(body), unknown_to_model, None)
        return gzip.compress(kept, mtime=0), removed

    def _scrub_tarball(self, body: bytes, erased: Mapping[str, datetime]) -> tuple[bytes, int]:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as source:
            members = [(member, source.extractfile(member)) for member in source.getmembers()]
            contents = {member.name: handle.read() if handle else b"" for member, handle in members}
        features = next((name for name in contents if name.rsplit("/", 1)[-1] == USER_FEATURES), None)
        if features is None:
            return body, 0
        manifest_name = next((name for name in contents if name.rsplit("/", 1)[-1] == MANIFEST), None)
        trained_until = _tombstones_until(json.loads(contents[manifest_name])) if manifest_name else None
        contents[features], removed = self._scrub_features(contents[features], trained_until, erased)
        if not removed:
            return body, 0
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w:gz") as target:
            for member, _ in members:
                data = contents[member.name]
                member.size = len(data)
                target.addfile(member, io.BytesIO(data) if member.isfile() else None)
        return out.getvalue(), removed


def _tombstones_until(manifest: Mapping[str, Any]) -> datetime | None:
    return _time(manifest.get("data", {}).get("channels", {}).get("tombstones_until"))
