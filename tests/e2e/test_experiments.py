"""An experiment end to end on the twin: started with the CLI, run by serving, browsed by simulated shoppers,
archived (events and impressions), attributed and reported by the CLI: the report counts what the
simulator did, exactly, and the personalized page beats the popularity holdout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_twin.cli import main
from local_twin.experiment_cli import AdminApi
from local_twin.simulation.browsing import SimulationConfig
from local_twin.simulation.client import TwinHttpApi
from local_twin.simulation.results import COUNT_FIELDS, SimulationResult
from local_twin.simulation.truth import truth_for_data
from local_twin.simulator import simulate
from local_twin.twin import Twin

pytestmark = pytest.mark.slow

NAME = "e2e-home"
DEFINITION = {
    "name": NAME,
    "surfaces": ["home"],
    "variants": [
        {"name": "personalized", "share": 0.5},
        {"name": "holdout", "share": 0.5, "policy": "popularity"},
    ],
}
SHOPPERS, SEED = 300, 13


@pytest.fixture(scope="module")
def state_file(twin: Twin, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("experiment") / "twin.json"
    path.write_text(json.dumps({**twin.state(), "data_dir": str(twin.workdir / "shop")}))
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def started(
    twin: Twin, state_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    definition = tmp_path_factory.mktemp("definition") / "experiment.json"
    definition.write_text(json.dumps(DEFINITION))
    assert main(["experiment", "create", "--state", str(state_file), "--file", str(definition)]) == 0
    twin.refresh_experiments()  # the next page sees it (in AWS: within EXPERIMENTS_CACHE_SECONDS)
    try:
        yield DEFINITION
    finally:  # the twin is shared: the next modules' home pages are production again
        AdminApi(twin.state()).call("DELETE", f"/experiments/{NAME}")
        twin.refresh_experiments()


@pytest.fixture(scope="module")
def simulation(twin: Twin, started: dict[str, Any]) -> SimulationResult:
    state = twin.state()
    api = TwinHttpApi(state["api_url"], state.get("api_key"))
    config = SimulationConfig(shoppers=SHOPPERS, seed=SEED, max_seconds=900.0)
    result = simulate(api, truth_for_data(twin.workdir / "shop"), config)
    twin.settle()  # impressions on the stream, the stream drained, the archive flushed
    return result


def test_the_report_counts_exactly_what_the_simulated_shoppers_did_per_variant(
    simulation: SimulationResult, state_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 300 simulated shoppers on the twin while the experiment ran, without a failed or repeated call
    assert simulation.failures == simulation.retried == [] and simulation.shoppers_done == SHOPPERS
    expected = {row["variant"]: row for row in simulation.counts() if row["experiment"] == NAME}
    assert set(expected) == {"personalized", "holdout"}
    # When the CLI reads the experiment's report, computed over the twin's archive
    code, out, err = cli(capsys, "experiment", "report", "--state", str(state_file), "--name", NAME, "--json")
    assert code == 0, err
    report = json.loads(out)
    # Then every count of every variant is the simulator's own
    for variant, counts in expected.items():
        figures = report["variants"][variant]
        print(f"\n{variant}: " + ", ".join(f"{key} {figures[key]}" for key in COUNT_FIELDS))
        for key in COUNT_FIELDS:
            if key == "revenue":
                assert figures[key] == pytest.approx(counts[key], abs=0.005), (variant, key)
            else:
                assert figures[key] == counts[key], (variant, key)
    # And the personalized pages earn more clicks than the popularity holdout, significantly
    ctr = next(c for c in report["comparisons"] if c["metric"] == "ctr" and c["variant"] == "personalized")
    print(
        f"CTR lift {ctr['lift']:+.1%} [{ctr['ci_low']:+.1%}, {ctr['ci_high']:+.1%}], p {ctr['p_value']:.2g}"
    )
    assert ctr["baseline"] == "holdout" and ctr["lift"] > 0 and ctr["p_value"] < 0.05
    assert report["sample_ratio_mismatch"] is False


def test_the_holdout_served_the_popularity_list_under_the_same_page_rules(
    simulation: SimulationResult,
) -> None:
    pages = [page for page in simulation.impressions if page.experiment == NAME]
    sources = {
        variant: {item.source for page in pages if page.variant == variant for item in page.items}
        for variant in ("holdout", "personalized")
    }
    # the popularity list, plus what the page rules place themselves (new arrivals, promotions)
    assert sources["holdout"] <= {"popularity", "new arrival", "promoted"}
    assert sources["personalized"] - {"popularity", "trending", "new arrival", "promoted"}


def test_an_event_quoting_an_unknown_page_is_counted_as_unattributed(
    twin: Twin, simulation: SimulationResult, state_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def unknown_clicks() -> int:
        code, out, err = cli(
            capsys, "experiment", "report", "--state", str(state_file), "--name", NAME, "--json"
        )
        assert code == 0, err
        return int(json.loads(out)["unattributed"]["unknown_recommendation_id"]["clicks"])

    before = unknown_clicks()
    # Given a click that quotes a recommendation id no page ever had
    api = TwinHttpApi(twin.state()["api_url"], twin.state().get("api_key"))
    event = {
        "user_id": "u-nobody",
        "item_id": "i-none",
        "event_type": "click",
        "recommendation_id": "no-such-page",
    }
    status, answer = api.post("/events", {"events": [event]})
    assert status == 202, answer
    twin.settle()
    # Then the report counts it, once, as unattributed for that reason
    assert unknown_clicks() == before + 1


def test_bad_definitions_and_unknown_names_answer_422_and_404_with_a_message(
    started: dict[str, Any], state_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({**DEFINITION, "name": "bad-shares", "variants": [{"name": "a", "share": 0.7}]})
    )
    code, _, err = cli(capsys, "experiment", "create", "--state", str(state_file), "--file", str(bad))
    assert code == 1 and "422 INVALID_EXPERIMENT" in err and "sum to 0.7" in err
    clash = tmp_path / "clash.json"
    clash.write_text(json.dumps({**DEFINITION, "name": "second-on-home"}))
    code, _, err = cli(capsys, "experiment", "create", "--state", str(state_file), "--file", str(clash))
    assert code == 1 and "422 SURFACE_CONFLICT" in err and NAME in err
    code, _, err = cli(capsys, "experiment", "report", "--state", str(state_file), "--name", "no-such-test")
    assert code == 1 and "404 NOT_FOUND" in err and "no-such-test" in err
    code, out, _ = cli(capsys, "experiment", "list", "--state", str(state_file))
    assert code == 0 and NAME in out and "running" in out and "second-on-home" not in out
