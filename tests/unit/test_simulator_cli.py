"""``merchandiser simulate`` over real HTTP against a stub of the API, and its refusals."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from local_twin.cli import main
from local_twin.simulation.client import CONNECTION_FAILED, TwinHttpApi
from local_twin.simulation.truth import truth_for_data
from tests.fake_shop_api import FakeShopApi, serving_over_http
from training.datasets.synthetic_shop import generate

API_KEY = "storefront-key-1"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shop")
    generate(out, n_users=80, n_items=60, n_days=10, seed=5)
    return out


def write_state(path: Path, **fields: object) -> Path:
    path.write_text(json.dumps({"endpoint_url": "http://127.0.0.1:1", "events_stream": "s", **fields}))
    return path


def test_simulate_prints_the_counts_and_logs_every_impression(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stub of the API on 127.0.0.1 that wants the storefront's key, and a state file naming it
    api = FakeShopApi(truth_for_data(shop))
    with serving_over_http(api, expect_key=API_KEY) as api_url:
        state = write_state(tmp_path / "twin.json", api_url=api_url, api_key=API_KEY, data_dir=str(shop))
        # When 40 shoppers are simulated with --json and --log
        code = main(["simulate", "--state", str(state), "--shoppers", "40", "--seed", "9", "--json",
                     "--log", str(tmp_path / "log.jsonl"), "--start", "2026-06-01T10:00:00Z"])  # fmt: skip
    # Then the counts are what the stub served and received, and the log has one line per page
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    totals = summary["totals"]
    assert totals["impressions"] == len(api.pages) and totals["users"] == 40
    assert totals["clicks"] == sum(e["event_type"] == "click" for e in api.events) > 0
    assert summary["start"] == "2026-06-01T10:00:00.000Z" and summary["failures"] == []
    assert summary["examination"] == "inverse_sqrt" and "seed 5" in summary["truth"]
    assert sum(row["impressions"] for row in summary["counts"]) == totals["impressions"]
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(lines) == totals["impressions"]
    assert {line["recommendation_id"] for line in lines} == set(api.pages)
    assert all(
        {"position", "examined", "clicked", "relevance"} <= set(item)
        for line in lines
        for item in line["items"]
    )


def test_simulate_prints_a_table_by_default(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeShopApi(truth_for_data(shop))
    with serving_over_http(api) as api_url:
        state = write_state(tmp_path / "twin.json", api_url=api_url, data_dir=str(shop))
        code = main(["simulate", "--state", str(state), "--shoppers", "10", "--policy", "popular"])
    out = capsys.readouterr().out
    assert code == 0
    assert "10 shoppers (popular pages" in out and "experiment" in out.splitlines()[1]
    assert any(line.startswith("-") and "production" in line for line in out.splitlines())


def test_a_wrong_api_key_makes_every_page_a_failure_and_the_exit_code_1(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeShopApi(truth_for_data(shop))
    with serving_over_http(api, expect_key=API_KEY) as api_url:
        state = write_state(tmp_path / "twin.json", api_url=api_url, api_key="wrong", data_dir=str(shop))
        code = main(["simulate", "--state", str(state), "--shoppers", "3"])
    assert code == 1
    assert "403" in capsys.readouterr().err and api.pages == {}


def test_a_twin_that_is_gone_is_a_failure_not_a_crash(shop: Path) -> None:
    # Given a loopback port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api = TwinHttpApi(f"http://127.0.0.1:{port}/v1", timeout=2.0)
    # When a page is asked for, Then the answer says the connection failed
    status, answer = api.get("/items/popular?k=3")
    assert status == CONNECTION_FAILED and answer["error"] == "CONNECTION_FAILED"


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (None, "cannot read the twin's state"),
        ({"endpoint_url": "x"}, "has no api_url"),
        ({"api_url": "http://10.1.2.3:8080/v1", "data_dir": "."}, "only talks to a twin on this machine"),
        ({"api_url": "https://127.0.0.1/v1", "data_dir": "."}, "must be an http:// URL"),
        ({"api_url": "http://127.0.0.1:9/v1"}, "pass --data DIR"),
    ],
    ids=["no-file", "no-api-url", "not-loopback", "not-http", "no-data"],
)
def test_simulate_refuses_with_a_message(tmp_path: Path, state: dict[str, str] | None, message: str) -> None:
    path = tmp_path / "twin.json"
    if state is not None:
        path.write_text(json.dumps(state))
    with pytest.raises(SystemExit) as refused:
        main(["simulate", "--state", str(path)])
    assert message in str(refused.value.code)


def test_more_shoppers_than_the_shop_has_is_refused_with_a_message(shop: Path, tmp_path: Path) -> None:
    state = write_state(tmp_path / "twin.json", api_url="http://127.0.0.1:9/v1", data_dir=str(shop))
    with pytest.raises(SystemExit) as refused:
        main(["simulate", "--state", str(state), "--shoppers", "81"])
    assert "knows only 80 shoppers" in str(refused.value.code)


def test_a_start_that_is_not_a_time_is_refused(shop: Path, tmp_path: Path) -> None:
    state = write_state(tmp_path / "twin.json", api_url="http://127.0.0.1:9/v1", data_dir=str(shop))
    with pytest.raises(SystemExit) as refused:
        main(["simulate", "--state", str(state), "--start", "yesterday"])
    assert "not an ISO time" in str(refused.value.code)
