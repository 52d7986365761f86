"""The report over archive files written here with exactly known counts (DuckDB running report.sql)."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from merchandiser.experiments import parse_experiment
from merchandiser.experiments.report import (
    AttributionWindows,
    Period,
    render_sql,
    report,
    report_sql,
    sql_literal,
)
from merchandiser.experiments.report_table import print_report, render_table
from tests.experiment_archive import (
    DAY,
    HOLDOUT_SPLIT,
    HOUR,
    MINUTE,
    T0,
    event,
    impression,
    known_archive,
    write_records,
)


def test_the_report_counts_what_shoppers_did_exactly_once(tmp_path: Path):
    # Given an archive with replays, unknown and missing recommendation ids and events out of window
    known_archive(tmp_path)
    # When the report is computed
    result = report("exp", tmp_path, definition=HOLDOUT_SPLIT, catalogue_size=10)
    # Then every count is exact: pages once, events once, attributed only within their windows
    holdout, personalized = result["variants"]["holdout"], result["variants"]["personalized"]
    assert {k: holdout[k] for k in ("users", "impressions", "clicks", "add_to_carts", "purchases")} == {
        "users": 1,
        "impressions": 2,
        "clicks": 2,
        "add_to_carts": 1,
        "purchases": 1,
    }
    assert holdout["revenue"] == pytest.approx(20.0)
    assert holdout["ctr"] == pytest.approx(1.0) and holdout["conversion"] == pytest.approx(0.5)
    assert holdout["revenue_per_impression"] == pytest.approx(10.0)
    assert holdout["coverage"] == pytest.approx(4 / 10)  # a b c d of 10
    assert {k: personalized[k] for k in ("users", "impressions", "clicks", "add_to_carts", "purchases")} == {
        "users": 2,
        "impressions": 2,
        "clicks": 1,
        "add_to_carts": 1,
        "purchases": 1,
    }
    assert personalized["revenue"] == 0.0 and personalized["coverage"] == pytest.approx(3 / 10)
    # and nothing is dropped: every other outcome is counted under its reason
    assert result["unattributed"] == {
        "no_recommendation_id": {"clicks": 1, "add_to_carts": 0, "purchases": 1},
        "unknown_recommendation_id": {"clicks": 1, "add_to_carts": 0, "purchases": 0},
        "outside_window": {"clicks": 2, "add_to_carts": 0, "purchases": 1},
        "other_user": {"clicks": 1, "add_to_carts": 0, "purchases": 0},
    }
    assert result["experiment"] == "exp" and set(result) == {
        "experiment",
        "variants",
        "comparisons",
        "sample_ratio_p_value",
        "sample_ratio_mismatch",
        "unattributed",
    }
    assert [(c["metric"], c["variant"], c["baseline"]) for c in result["comparisons"]] == [
        ("ctr", "personalized", "holdout"),
        ("conversion", "personalized", "holdout"),
        ("revenue_per_impression", "personalized", "holdout"),
    ]
    assert result["comparisons"][0]["lift"] == pytest.approx(0.5 / 1.0 - 1)


def test_coverage_without_a_catalogue_size_is_against_the_items_the_experiment_showed(tmp_path: Path):
    known_archive(tmp_path)
    result = report("exp", tmp_path, definition=HOLDOUT_SPLIT)
    assert result["variants"]["holdout"]["coverage"] == pytest.approx(4 / 7)  # a..g
    assert result["variants"]["personalized"]["coverage"] == pytest.approx(3 / 7)


def test_shorter_windows_move_events_to_outside_window(tmp_path: Path):
    known_archive(tmp_path)
    tight = AttributionWindows(click=3 * MINUTE, purchase=2 * DAY, clock_skew=timedelta(0))
    result = report("exp", tmp_path, definition=HOLDOUT_SPLIT, windows=tight)
    # e4 (5 min) and e16 (2 min early) leave the clicks, e3 (3 days) the purchases; e14 (23 h) the carts
    assert result["variants"]["holdout"]["clicks"] == 1 and result["variants"]["personalized"]["clicks"] == 0
    assert (
        result["variants"]["holdout"]["purchases"] == 0
        and result["variants"]["personalized"]["purchases"] == 1
    )
    assert result["unattributed"]["outside_window"] == {"clicks": 4, "add_to_carts": 0, "purchases": 2}


def test_a_period_counts_its_own_pages_and_the_unattributed_events_that_arrived_in_it(tmp_path: Path):
    known_archive(tmp_path)
    write_records(tmp_path, "impressions", [impression("r7", "u1", "holdout", T0 + 2 * DAY, ["z"])], "later")
    write_records(
        tmp_path,
        "events",
        [
            event("e20", "u1", "z", "click", T0 + 2 * DAY + MINUTE, "r7"),
            event("e21", "u1", "z", "click", T0 + 2 * DAY),
        ],
        "later",
    )
    # Given a report of the day after the first pages only
    later = Period(start=(T0 + 2 * DAY).date(), end=(T0 + 2 * DAY).date())
    result = report("exp", tmp_path, definition=HOLDOUT_SPLIT, period=later)
    # Then only that day's page counts, the purchase on an earlier page (e3) is that page's period's,
    # and only the unattributed events that arrived that day are counted
    assert result["variants"]["holdout"]["impressions"] == 1 and result["variants"]["holdout"]["clicks"] == 1
    assert result["variants"]["holdout"]["purchases"] == 0
    assert result["variants"]["personalized"]["impressions"] == 0
    assert result["unattributed"]["no_recommendation_id"] == {"clicks": 1, "add_to_carts": 0, "purchases": 0}
    assert result["unattributed"]["outside_window"] == {"clicks": 0, "add_to_carts": 0, "purchases": 0}
    # and the first day's report still holds its events read up to 8 days later
    first = report("exp", tmp_path, definition=HOLDOUT_SPLIT, period=Period(start=T0.date(), end=T0.date()))
    assert first["variants"]["holdout"]["purchases"] == 1
    assert first["unattributed"]["outside_window"]["purchases"] == 1  # e6, 8 days later


def test_an_empty_archive_reports_the_declared_variants_with_zeros(tmp_path: Path):
    result = report("exp", tmp_path, definition=HOLDOUT_SPLIT)
    assert result["variants"]["holdout"]["impressions"] == 0 and result["variants"]["holdout"]["ctr"] is None
    assert result["sample_ratio_p_value"] is None and result["sample_ratio_mismatch"] is False
    assert all(lift["lift"] is None for lift in result["comparisons"])


def test_without_a_definition_variants_come_from_the_data_and_no_ratio_is_tested(tmp_path: Path):
    known_archive(tmp_path)
    result = report("exp", tmp_path)
    assert set(result["variants"]) == {"holdout", "personalized"}
    assert result["comparisons"][0]["baseline"] == "holdout"
    assert result["sample_ratio_p_value"] is None
    with pytest.raises(ValueError, match="definition 'exp' is not experiment 'other'"):
        report("other", tmp_path, definition=HOLDOUT_SPLIT)


def simulated_split(
    root: Path, users: dict[str, int], ctr: dict[str, float], seed: int, name: str = "exp"
) -> None:
    """Shoppers of known taste see 1 + Poisson(3) pages of their variant and click the first item."""
    rng = np.random.default_rng(seed)
    pages: list[dict[str, Any]] = []
    clicks: list[dict[str, Any]] = []
    for variant, count in users.items():
        served = 1 + rng.poisson(3.0, count)
        taste = rng.gamma(2.0, 0.5, count)  # mean 1
        for user, (n_pages, liking) in enumerate(zip(served, taste, strict=True)):
            for page in range(n_pages):
                rec, user_id, moment = f"{variant}-{user}-{page}", f"{variant}-u{user}", T0 + page * HOUR
                pages.append(impression(rec, user_id, variant, moment, ["i1", "i2"], experiment=name))
                if rng.random() < min(1.0, ctr[variant] * liking):
                    clicks.append(event(f"c-{rec}", user_id, "i1", "click", moment + MINUTE, rec))
    write_records(root, "impressions", pages)
    write_records(root, "events", clicks)


def test_a_true_ctr_lift_is_found_with_its_truth_inside_the_interval(tmp_path: Path):
    # Given 2,500 shoppers a side, the personalized side clicking 20% more
    simulated_split(
        tmp_path, {"holdout": 2500, "personalized": 2500}, {"holdout": 0.10, "personalized": 0.12}, 3
    )
    # When reported
    result = report("exp", tmp_path, definition=HOLDOUT_SPLIT)
    [ctr] = [c for c in result["comparisons"] if c["metric"] == "ctr"]
    # Then the lift is positive, significant, and its interval holds the true +20%
    assert ctr["lift"] > 0 and ctr["p_value"] < 0.05
    assert ctr["ci_low"] < 0.2 < ctr["ci_high"]
    assert result["sample_ratio_mismatch"] is False


def test_an_a_a_split_finds_nothing(tmp_path: Path):
    simulated_split(
        tmp_path, {"holdout": 2500, "personalized": 2500}, {"holdout": 0.10, "personalized": 0.10}, 5
    )
    result = report("exp", tmp_path, definition=HOLDOUT_SPLIT)
    [ctr] = [c for c in result["comparisons"] if c["metric"] == "ctr"]
    assert ctr["p_value"] > 0.05 and ctr["ci_low"] < 0 < ctr["ci_high"]


def test_a_skewed_split_is_flagged_as_a_sample_ratio_mismatch(tmp_path: Path):
    # Given a 50/50 experiment whose archive holds 1,000 holdout and 1,200 personalized shoppers
    simulated_split(
        tmp_path, {"holdout": 1000, "personalized": 1200}, {"holdout": 0.1, "personalized": 0.1}, 9
    )
    result = report("exp", tmp_path, definition=HOLDOUT_SPLIT)
    assert result["sample_ratio_p_value"] < 0.001 and result["sample_ratio_mismatch"] is True
    assert "MISMATCH" in render_table(result)


def test_interleaving_credits_the_team_of_each_clicked_item(tmp_path: Path):
    # Given an interleaving variant's pages, with the team of each slot, and known clicks
    definition = parse_experiment(
        {
            "name": "exp",
            "surfaces": ["home"],
            "variants": [
                {"name": "control", "share": 0.5},
                {
                    "name": "mixed",
                    "share": 0.5,
                    "kind": "interleaving",
                    "rankers": [{"name": "current"}, {"name": "candidate", "model_version": "v2"}],
                },
            ],
        }
    )
    teams = ["A", "B", "A", "B"]
    items = ["a", "b", "c", "d"]
    write_records(
        tmp_path,
        "impressions",
        [impression(f"p{n}", f"u{n}", "mixed", T0, items, teams=teams) for n in range(1, 7)]
        + [impression("c1", "u9", "control", T0, items)],
    )
    clicks = [
        ("p1", "a"), ("p1", "c"),  # A wins 2-0
        ("p2", "b"),  # B wins
        ("p3", "a"), ("p3", "b"),  # tie
        ("p5", "zz"),  # an attributed click on no item of the page: no credit
        ("p6", "d"), ("p6", "d"),  # B wins: two clicks on its item
        ("c1", "a"),  # a control page has no teams
    ]  # fmt: skip
    user_of = {f"p{n}": f"u{n}" for n in range(1, 7)} | {"c1": "u9"}
    events = [
        event(f"k{n}", user_of[rec], item, "click", T0 + MINUTE, rec) for n, (rec, item) in enumerate(clicks)
    ]
    write_records(tmp_path, "events", [*events, events[2]])  # p2's click delivered twice counts once
    # When reported
    result = report("exp", tmp_path, definition=definition)
    # Then p4 (no click) and p5 (no credited click) are no evidence; p1 A, p2 and p6 B, p3 a tie
    assert result["variants"]["mixed"]["interleaving"] == {
        "wins_a": 1,
        "wins_b": 2,
        "ties": 1,
        "preference": pytest.approx((2 - 1) / 4),
        "p_value": pytest.approx(1.0),
    }
    assert result["variants"]["mixed"]["clicks"] == 8  # every attributed click still counts for CTR
    assert "interleaving" not in result["variants"]["control"]
    assert "mixed" in render_table(result)


def test_parameters_become_literals_both_engines_read_the_same_way():
    assert sql_literal("it's") == "'it''s'"
    assert sql_literal(date(2026, 1, 5)) == "'2026-01-05'"
    assert sql_literal(date(1, 1, 1)) == "'0001-01-01'"
    assert sql_literal(timedelta(days=7)) == "INTERVAL '604800' SECOND"
    assert sql_literal(42) == "42"
    for bad in (None, True, 1.5, ["a"]):
        with pytest.raises(TypeError, match="no SQL literal"):
            sql_literal(bad)
    assert render_sql("SELECT ${a}, ${b}", a="x", b=3) == "SELECT 'x', 3"
    with pytest.raises(KeyError, match="b"):
        render_sql("SELECT ${a}, ${b}", a="x")
    # the report's SQL has every placeholder filled and no engine-specific function
    sql = report_sql("exp", Period(), AttributionWindows()).lower()
    code = "\n".join(line.split("--")[0] for line in sql.splitlines())
    assert "${" not in code and "interval '86400' second" in code
    for duckdb_only in ("read_json", "list_", "struct_", "epoch", "strftime", "::", "unnest", "//"):
        assert duckdb_only not in code, duckdb_only


def test_the_report_prints_as_a_table_or_as_json(tmp_path: Path):
    known_archive(tmp_path)
    result = report("exp", tmp_path, definition=HOLDOUT_SPLIT, catalogue_size=10)
    table = io.StringIO()
    print_report(result, file=table)
    lines = table.getvalue().splitlines()
    assert lines[0] == "experiment exp"
    [holdout] = [line for line in lines if line.startswith("holdout")]
    assert holdout.split() == [
        "holdout",
        "1",
        "2",
        "2",
        "1",
        "1",
        "20.00",
        "100.00%",
        "50.00%",
        "10.0000",
        "40.0%",
    ]
    assert any(line.startswith("personalized vs holdout: ctr") for line in lines)
    assert any(line.split()[:3] == ["outside", "window", "2"] for line in lines)
    as_json = io.StringIO()
    print_report(result, as_json=True, file=as_json)
    assert json.loads(as_json.getvalue()) == json.loads(json.dumps(result))
