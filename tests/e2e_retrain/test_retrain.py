"""``merchandiser retrain`` on a running twin: catalogue changes survive it, and an erased shopper leaves no
trace in any store or artifact once it has run (the bound README states).

A package of its own: its twin retrains and erases, so it must not share one with tests/e2e; and every
twin resets moto's in-process state, so the two twins never run at once (tests/e2e's twin is package
scoped and stopped before this package starts)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest

from local_twin import api_client, cli
from local_twin.twin import Twin
from merchandiser.store import CatalogOverlay
from tests.e2e.conftest import serving_twin

pytestmark = pytest.mark.slow

ARCHIVE_PREFIXES = ("events/year=", "impressions/year=")


@pytest.fixture(scope="module")
def retrain_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    """A twin of its own: these tests retrain it and erase a shopper from it."""
    twin = serving_twin(tmp_path_factory.mktemp("retrain-twin"))
    try:
        yield twin
    finally:
        twin.stop()


def call(twin: Twin, method: str, url: str, body: Any = None) -> tuple[int, dict[str, Any], float]:
    """One request with the storefront's key; catalogue and shopper changes signed, as admin routes need."""
    return api_client.call(method, url, body, api_key=twin.api_key, signed=method in ("PUT", "DELETE"))


def api(twin: Twin) -> str:
    return str(twin.state()["api_url"])


def retrain(twin: Twin, output_dir: Path) -> dict[str, Any]:
    """``merchandiser retrain --state STATE --output-dir DIR``, as a shell would run it."""
    state = twin.workdir / "twin.json"
    state.write_text(json.dumps(twin.state()))
    assert cli.main(["retrain", "--state", str(state), "--output-dir", str(output_dir)]) == 0
    return twin.publish_result


def surfaces(twin: Twin, items: pd.DataFrame, users: list[str]) -> dict[str, set[str]]:
    """The item ids every surface serves, over the shop's shoppers and items."""
    served: dict[str, set[str]] = {}

    def get(name: str, path: str) -> None:
        status, page, _ = call(twin, "GET", f"{api(twin)}{path}")
        assert status == 200, page
        served.setdefault(name, set()).update(item["item_id"] for item in page["items"])

    for user in users:
        get("recommendations", f"/users/{user}/recommendations?k=30")
        get("candidates", f"/users/{user}/candidates?k=300")
    for item_id in items["item_id"]:
        get("similar", f"/items/{item_id}/similar?k=20")
        get("bought-together", f"/items/{item_id}/bought-together?k=20")
    get("popular", "/items/popular?k=100")
    get("popular", "/items/popular?k=100&window=24")
    for category in items["category"].unique():
        get("popular", f"/items/popular?k=20&category={category}")
    return served


def rank(twin: Twin, item_ids: list[str]) -> list[dict[str, Any]]:
    status, page, _ = call(twin, "POST", f"{api(twin)}/users/u00001/rank", {"item_ids": item_ids})
    assert status == 200, page
    return list(page["items"])


def test_titles_stock_and_new_items_set_by_put_survive_a_retrain(retrain_twin: Twin, tmp_path: Path) -> None:
    twin = retrain_twin
    shop = twin.workdir / "shop"
    items = pd.read_csv(shop / "items.csv", dtype=str)
    users = sorted(pd.read_csv(shop / "interactions.csv", dtype=str)["user_id"].unique())[:15]
    status, popular, _ = call(twin, "GET", f"{api(twin)}/items/popular?k=2")
    sold_out, renamed = (item["item_id"] for item in popular["items"])
    category = items.set_index("item_id").loc[renamed, "category"]
    # Given the best seller, served on every surface, and a shopper viewing it right now (live trending)
    view = {"user_id": "fresh-9", "item_id": sold_out, "event_type": "view"}
    assert call(twin, "POST", f"{api(twin)}/events", {"events": [view]})[0] == 202
    assert twin.poller is not None
    twin.poller.drain()
    before = surfaces(twin, items, users)
    assert all(sold_out in ids for ids in before.values()), {n: sold_out in ids for n, ids in before.items()}
    # When the retailer sets it out of stock, renames the second, and adds an item, by PUT /items
    changes = {
        sold_out: {"in_stock": False},
        renamed: {"title": "Renamed by the retailer"},
        "new-2027": {"title": "Brand new arrival", "category": category, "price": 42.0},
    }
    for item_id, body in changes.items():
        status, stored, _ = call(twin, "PUT", f"{api(twin)}/items/{item_id}", body)
        assert status == 200 and stored["retrievable"] is True, stored
    # Then at once: the title is served, the new item is retrievable, the sold-out one is served nowhere
    assert rank(twin, [renamed])[0]["title"] == "Renamed by the retailer"
    assert call(twin, "GET", f"{api(twin)}/items/new-2027/similar?k=5")[0] == 200
    now = surfaces(twin, items, users)
    assert not {name for name, ids in now.items() if sold_out in ids}
    # When the twin retrains (merchandiser retrain --state ... --output-dir ...)
    version = twin.state()["model_version"]
    published = retrain(twin, tmp_path)
    # Then the job wrote evaluation.json with the gate's same-window evidence, and the new model serves
    evaluation = json.loads((tmp_path / "evaluation.json").read_text())
    assert "ndcg@10" in evaluation["models"]["pipeline"] and evaluation["gate"]["model_version"] == version
    assert evaluation["data"]["channels"]["items_from_table"] == 3
    # and what the twin showed: the position propensities and the counterfactual CTR of its pages
    assert len(evaluation["position_propensities"]) >= 20 and evaluation["position_propensities"][0] == 1.0
    assert evaluation["counterfactual"]["estimator"] == "ips-pbm"
    assert evaluation["counterfactual"]["impressions"] > 0
    assert published["promote"] is True and twin.state()["model_version"] != version
    # And the new model's own catalogue holds the changes: the overlay has nothing left to add
    assert published["overlay_absorbed"] == 3 and CatalogOverlay(items_table(twin)).read() == {}
    # And still: the title served, the new item retrievable, the sold-out item served nowhere
    assert rank(twin, [renamed])[0]["title"] == "Renamed by the retailer"
    assert call(twin, "GET", f"{api(twin)}/items/new-2027/similar?k=5")[0] == 200
    after = surfaces(twin, items, users)
    assert not {name for name, ids in after.items() if sold_out in ids}
    last = rank(twin, [sold_out, renamed])[-1]
    assert (last["item_id"], last["reason"], last["in_stock"]) == (sold_out, "out of stock", False)


def items_table(twin: Twin) -> Any:
    resource = boto3.resource("dynamodb", endpoint_url=twin.endpoint_url, region_name="us-east-1")
    return resource.Table(twin.state()["items_table"])


def until(data: bytes, key: str, erased_at: datetime) -> bytes:
    """An archive object's records up to the erasure. The stranger's page asked for after it is a new visit
    (its impression carries the same id): the eraser keeps what comes after the erasure (README: Erasure)."""
    if not key.startswith(ARCHIVE_PREFIXES) or data[:2] != b"\x1f\x8b":
        return data
    records = [json.loads(line) for line in gzip.decompress(data).splitlines() if line.strip()]
    kept = [record for record in records if moment(record["timestamp"]) <= erased_at]
    return gzip.compress("\n".join(json.dumps(record) for record in kept).encode())


def moment(stamp: str) -> datetime:
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def traces(data: bytes, needle: bytes, name: str) -> list[str]:
    """Where ``needle`` occurs in a stored object or file, looking inside gzip, tar, zip and npz."""
    found = [name] if needle in data else []
    if data[:2] == b"\x1f\x8b":
        inner = gzip.decompress(data)
        if name.endswith(".tar.gz"):
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                for member in tar.getmembers():
                    handle = tar.extractfile(member)
                    if handle is not None:
                        found += traces(handle.read(), needle, f"{name}!{member.name}")
        else:
            found += traces(inner, needle, f"{name}!gunzip")
    elif data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for entry in archive.namelist():
                found += traces(archive.read(entry), needle, f"{name}!{entry}")
    return found


def npz_traces(path: Path, needle: str) -> list[str]:
    found: list[str] = []
    with np.load(path, allow_pickle=False) as arrays:
        for key in arrays.files:
            try:
                array = arrays[key]
            except ValueError as error:  # an object array: serving could not load it either
                found.append(f"{path}:{key} ({error})")
                continue
            if array.dtype.kind == "U" and needle in array:
                found.append(f"{path}:{key}")
    return found


def test_after_the_bound_an_erased_shopper_is_in_no_store_and_no_artifact(
    retrain_twin: Twin, tmp_path: Path
) -> None:
    twin = retrain_twin
    shop = twin.workdir / "shop"
    interactions = pd.read_csv(shop / "interactions.csv", dtype=str)
    user = interactions["user_id"].value_counts().index[0]  # the most active shopper
    needle = user.encode()
    # Given the shopper's profile (from training), a live session and events on the stream and archive
    click = {"user_id": user, "item_id": interactions["item_id"].iloc[0], "event_type": "click"}
    assert call(twin, "POST", f"{api(twin)}/events", {"events": [click]})[0] == 202
    assert twin.poller is not None
    twin.poller.drain()
    dynamodb = twin.client("dynamodb")
    state = twin.state()
    tables = (state["users_table"], state["sessions_table"], state["items_table"])
    assert "Item" in dynamodb.get_item(TableName=state["users_table"], Key={"user_id": {"S": user}})
    status, page, _ = call(twin, "GET", f"{api(twin)}/users/{user}/recommendations?k=10")
    assert status == 200 and page["personalized"] is True
    # When the shopper asks to be erased
    status, erased, _ = call(twin, "DELETE", f"{api(twin)}/users/{user}")
    assert status == 200 and erased["erased"] is True
    # Then at once, serving holds nothing of them: no profile, no session, served as a stranger
    for table in tables:
        items = dynamodb.scan(TableName=table)["Items"]
        assert not [item for item in items if needle in json.dumps(item).encode()], table
    status, page, _ = call(twin, "GET", f"{api(twin)}/users/{user}/recommendations?k=10")
    assert status == 200 and page["personalized"] is False
    # When the daily jobs run (the archive eraser, then the next training)
    published = retrain(twin, tmp_path)
    assert published["promote"] is True
    # Then no table, no object of the bucket (inside every archive) and no model file holds the id
    for table in tables:
        items = dynamodb.scan(TableName=table)["Items"]
        assert not [item for item in items if needle in json.dumps(item).encode()], table
    s3, bucket = twin.client("s3"), state["artifacts_bucket"]
    found: list[str] = []
    keys = [entry["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for entry in page.get("Contents", [])]  # fmt: skip
    assert any(key.startswith("events/year=") for key in keys) and any(
        key.startswith("training-output/") for key in keys
    )
    erased_at = datetime.fromisoformat(erased["erased_at"])
    for key in keys:
        found += traces(
            until(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), key, erased_at), needle, key
        )
    assert twin.functions is not None
    # the live model is in S3 (read above); the twin's serving (no SnapStart) stages each fetch under its
    # cache dir
    model_cache = Path(twin.functions.environment("retrieval")["MODEL_CACHE_DIR"])
    assert model_cache.is_dir() and any(model_cache.rglob("*.npz"))
    for path in [
        *model_cache.rglob("*"),
        *(twin.workdir / "jobs").rglob("*"),
        *(twin.workdir / "published").rglob("*"),
    ]:
        if path.is_file():
            found += traces(path.read_bytes(), needle, str(path))
            if path.suffix == ".npz":
                found += npz_traces(path, user)
    assert found == [], "\n".join(found)
    # publish went through the window's profiles; a profile changes only with its shopper's events (its
    # history is stored decayed to their latest event), so those of shoppers without new events since the
    # last publish may all be left as stored: none need be written
    assert published["profiles_loaded"] + published["profiles_unchanged"] > 0
