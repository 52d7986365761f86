"""Spark's retrieval aggregations against the single-machine code they replace, on the same data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from merchandiser.catalog import decayed_popularity, fit_neighbours
from training.spark_fit import decayed_counts, neighbours, spark_session

pytest.importorskip("pyspark")


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    session = spark_session(threads=1)
    yield session
    session.stop()


def test_spark_neighbours_equal_the_single_machine_ones(spark: Any) -> None:
    # Given random (group, item, value) memberships, some repeated, some groups of one item
    rng = np.random.default_rng(11)
    groups = rng.integers(0, 40, size=400)
    rows = rng.integers(0, 30, size=400)
    values = rng.integers(1, 3, size=400).astype(np.float64)
    # When both compute the top 5 cosine neighbours (repeated pairs summed first, as the CSR does)
    expected = fit_neighbours(groups, rows, values, n_items=30, top_n=5)
    frame = (
        pd.DataFrame({"group": groups, "row": rows, "value": values})
        .groupby(["group", "row"], as_index=False)
        .sum()
    )
    got = neighbours(spark.createDataFrame(frame), n_items=30, top_n=5)
    # Then the same neighbours in the same order, with the same similarities
    np.testing.assert_array_equal(got.indptr, expected.indptr)
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_allclose(got.similarity, expected.similarity, rtol=1e-6)


def test_spark_decayed_counts_equal_decayed_popularity(spark: Any) -> None:
    rng = np.random.default_rng(5)
    rows = rng.integers(0, 20, size=200)
    weights = rng.choice([1.0, 2.0, 8.0], size=200)
    stamps = rng.uniform(0, 30 * 86_400, size=200)
    now = 31 * 86_400.0
    events = spark.createDataFrame(pd.DataFrame({"row": rows, "weight": weights, "ts": stamps}))
    np.testing.assert_allclose(
        decayed_counts(events, now, 7.0, 20),
        decayed_popularity(rows, weights, stamps, now, 7.0, 20),
        rtol=1e-5,
    )
