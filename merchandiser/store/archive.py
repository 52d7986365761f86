"""The artifacts bucket's layout, and the erasure tombstones training honours.

Bucket layout (one artifacts bucket):
- ``events/year=YYYY/month=MM/day=DD/*.jsonl.gz``  raw events archived from the stream by Firehose, one
  JSON event per line (channel ``interactions``)
- ``impressions/year=YYYY/month=MM/day=DD/*.jsonl.gz``  one impression record per served page, archived
  from the same stream (``merchandiser.serving.impressions``); the experiment report reads both
- ``reports/experiments/<name>/``, ``reports/kpis/``  the daily experiment reports and online KPIs
  (``merchandiser.experiments.reports``, ``.daily``); ``athena-results/`` their queries' result files;
  ``reports/kpis.json`` the KPIs per day of the last two weeks from the same job (``GET /kpis``)
- ``events/_tombstones/<sha256 of user_id>.json``  one per erased shopper (DELETE /users/{id}); inside the
  interactions prefix so the job gets them with the channel, and ``_`` keeps them out of its data files.
  A tombstone outlives the erasure (events of the shopper still in flight are dropped by it), so it
  names the shopper by the sha256 of the id, never the id itself
- ``erasure/state.json``  what the archive eraser has done (``merchandiser.store.erasure``)
- ``catalog/items/``, ``catalog/users/``   catalogue and shopper attributes (channels ``items``, ``users``);
  ``catalog/items/items-table.jsonl.gz`` is the items table as the training trigger scanned it (the
  catalogue's source of truth: its fields win over the other files of the channel)
- ``training-output/<job>/output/model.tar.gz``  what the job writes (SM_MODEL_DIR, packed by SageMaker)
- ``models/<version>/``, ``models/production.json``  published models and the production pointer;
  ``models/<version>/decision.json`` the quality gate's decision on each trained model
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

EVENTS_PREFIX = "events/"
IMPRESSIONS_PREFIX = "impressions/"
ERASURE_STATE = "erasure/state.json"
ATHENA_RESULTS_PREFIX = "athena-results/"
TOMBSTONES_DIR = "_tombstones"
TOMBSTONES_PREFIX = f"{EVENTS_PREFIX}{TOMBSTONES_DIR}/"
ITEMS_PREFIX = "catalog/items/"
ITEMS_TABLE_SNAPSHOT = "items-table.jsonl.gz"
ITEMS_TABLE_SNAPSHOT_KEY = f"{ITEMS_PREFIX}{ITEMS_TABLE_SNAPSHOT}"
USERS_PREFIX = "catalog/users/"
OUTPUT_PREFIX = "training-output/"
MODELS_PREFIX = "models/"
PRODUCTION_POINTER = "models/production.json"
DECISION_FILE = "decision.json"
KPIS_KEY = "reports/kpis.json"


def decision_key(model_version: str) -> str:
    return f"{MODELS_PREFIX}{model_version}/{DECISION_FILE}"


def read_json(s3: Any, bucket: str, key: str) -> Any:
    """The JSON object at ``key``, or None when there is none (any other S3 error is raised)."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return json.loads(body)


def user_hash(user_id: str) -> str:
    """How an erasure record names a shopper: the sha256 of the id (hex)."""
    return hashlib.sha256(user_id.encode()).hexdigest()


def tombstone_key(user_id: str) -> str:
    return f"{TOMBSTONES_PREFIX}{user_hash(user_id)}.json"


def write_tombstone(s3: Any, bucket: str, user_id: str, erased_at: datetime) -> str:
    """Records that a shopper's archived events up to ``erased_at`` must never be trained on again."""
    key = tombstone_key(user_id)
    body = {"user_sha256": user_hash(user_id), "erased_at": erased_at.astimezone(UTC).isoformat()}
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode(), ContentType="application/json")
    return key
