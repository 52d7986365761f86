"""ServingReport: stage timings, fallbacks recorded once per kind, the tracing span per stage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from merchandiser.serving import FEATURE_STORE, INDEX, ServingReport, metric_suffix


def test_a_fallback_is_recorded_once_per_kind_in_the_order_it_happened() -> None:
    report = ServingReport()
    report.fallback(INDEX, "index.bin is missing")
    report.fallback(FEATURE_STORE, "timeout")
    report.fallback(INDEX, "again")
    assert report.fallbacks == [INDEX, FEATURE_STORE] and report.degraded


def test_an_unknown_fallback_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown fallback kind"):
        ServingReport().fallback("cosmic_rays", "")


def test_each_stage_is_timed_and_opens_a_span_even_when_it_raises() -> None:
    opened: list[str] = []

    @contextmanager
    def span(name: str) -> Iterator[None]:
        opened.append(name)
        yield

    report = ServingReport(span=span)
    with report.stage("retrieval"):
        pass
    with pytest.raises(RuntimeError), report.stage("ranking"):
        raise RuntimeError("boom")
    assert opened == ["## retrieval", "## ranking"]
    assert set(report.stages) == {"retrieval", "ranking"} and min(report.stages.values()) >= 0


def test_candidates_are_counted_per_source() -> None:
    report = ServingReport()
    report.count_candidates(["ann", "ann", "popularity"])
    assert report.candidates == {"ann": 2, "popularity": 1}


def test_metric_names_are_camel_case() -> None:
    assert [metric_suffix(n) for n in ("ann", "bought_together", "also-viewed")] == [
        "Ann",
        "BoughtTogether",
        "AlsoViewed",
    ]
