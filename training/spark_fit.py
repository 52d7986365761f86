"""Retrieval learnt on Spark: the artifacts of ``fit.fit_retrieval`` (ALS item vectors, popularity,
trending, co-occurrence neighbours, segment popularity, the shoppers' histories) from Spark MLlib's ALS
and Spark aggregations, for histories that outgrow one machine.

What is small stays on the driver with the single-machine code, so both engines publish the same
artifacts: content placement of items without interactions, the HNSW index (``fit.assemble_retrieval``),
the ranker learnt from a sample of shoppers and the evaluation (``job.run``). Here Spark runs in local
mode on the channels the job has read and validated; on EMR Serverless the same functions run on the
cluster (``spark_session`` takes the master from ``SPARK_MASTER`` when it is set).
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd

from merchandiser.catalog import SECONDS_PER_DAY, Catalog, ItemModel, Neighbours
from training.fit import (
    BASKET_EVENTS,
    NEIGHBOUR_HISTORY,
    Hyperparameters,
    UserHistory,
    assemble_retrieval,
    epoch_seconds,
    event_weights,
    kept_segments,
    user_histories,
    user_segments,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

logger = logging.getLogger(__name__)

LOCAL_THREADS = 2


def spark_session(threads: int = LOCAL_THREADS) -> SparkSession:
    """Local mode here (``local[threads]``), the cluster's master when ``SPARK_MASTER`` is set."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(os.environ.get("SPARK_MASTER", f"local[{threads}]"))
        .appName("merchandiser-training")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(threads))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "4g"))
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )


def events_frame(spark: SparkSession, interactions: pd.DataFrame, catalog: Catalog) -> DataFrame:
    """The validated interactions of known items as a Spark frame: user, item row, event weight, epoch
    seconds, purchase flag and basket key (the session, else the shopper's day)."""
    rows = interactions["item_id"].map(catalog.row_of)
    known = rows.notna().to_numpy()
    day = interactions["timestamp"].dt.strftime("%Y-%m-%d")
    basket = interactions["user_id"].astype("string") + "/" + day
    if "session_id" in interactions.columns:
        basket = interactions["session_id"].astype("string").fillna(basket)
    frame = pd.DataFrame(
        {
            "user_id": interactions["user_id"].astype(str).to_numpy()[known],
            "row": rows.to_numpy()[known].astype(np.int64),
            "weight": event_weights(interactions)[known],
            "ts": epoch_seconds(interactions["timestamp"])[known].astype(np.float64),
            "purchase": (interactions["event_type"] == "purchase").to_numpy()[known],
            "in_basket": interactions["event_type"].isin(BASKET_EVENTS).to_numpy()[known],
            "basket": basket.astype(str).to_numpy()[known],
        }
    )
    return spark.createDataFrame(frame)


def collect(frame: DataFrame) -> pd.DataFrame:
    """A (small, aggregated) Spark frame on the driver."""
    return cast(pd.DataFrame, frame.toPandas())


def decay(timestamp: Column, now: float, half_life_days: float) -> Column:
    """``catalog.recency_decay`` as a Spark expression: halves every half-life; later events count fully."""
    from pyspark.sql import functions as F

    age_days = F.greatest(F.lit(0.0), F.lit(now) - timestamp) / F.lit(SECONDS_PER_DAY)
    return F.pow(F.lit(0.5), age_days / F.lit(half_life_days))


def decayed_counts(events: DataFrame, now: float, half_life_days: float, n_items: int) -> np.ndarray:
    """float32 (n_items,): summed ``weight x decay`` per item row (``catalog.decayed_popularity``)."""
    from pyspark.sql import functions as F

    sums = collect(
        events.groupBy("row").agg(
            F.sum(F.col("weight") * decay(F.col("ts"), now, half_life_days)).alias("total")
        )
    )
    result = np.zeros(n_items, dtype=np.float64)
    result[sums["row"].to_numpy(np.int64)] = sums["total"].to_numpy(np.float64)
    return result.astype(np.float32)


def neighbours(memberships: DataFrame, n_items: int, top_n: int) -> Neighbours:
    """Top-``top_n`` cosine neighbours from (group, row, value) memberships, as ``catalog.fit_neighbours``
    computes them: groups of one item dropped, co-occurrence = sum of value products, norms over groups."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    sized = memberships.withColumn("items", F.count("row").over(Window.partitionBy("group")))
    kept = sized.where(F.col("items") > 1).select("group", "row", "value").cache()
    norms = kept.groupBy("row").agg(F.sqrt(F.sum(F.col("value") * F.col("value"))).alias("norm"))
    left, right = kept.alias("a"), kept.alias("b")
    pairs = (
        left.join(right, (F.col("a.group") == F.col("b.group")) & (F.col("a.row") != F.col("b.row")))
        .groupBy(F.col("a.row").alias("item"), F.col("b.row").alias("other"))
        .agg(F.sum(F.col("a.value") * F.col("b.value")).alias("together"))
    )
    scored = (
        pairs.join(norms.withColumnRenamed("row", "item").withColumnRenamed("norm", "item_norm"), "item")
        .join(norms.withColumnRenamed("row", "other").withColumnRenamed("norm", "other_norm"), "other")
        .withColumn("similarity", F.col("together") / (F.col("item_norm") * F.col("other_norm")))
    )
    # strongest first; equal similarity -> lower row first, as the single-machine code orders them
    ranked = scored.withColumn(
        "rank",
        F.row_number().over(Window.partitionBy("item").orderBy(F.desc("similarity"), F.asc("other"))),
    ).where(F.col("rank") <= top_n)
    table = collect(ranked.select("item", "other", "similarity", "rank"))
    kept.unpersist()
    table = table.sort_values(["item", "rank"], kind="stable")
    counts = np.bincount(table["item"].to_numpy(np.int64), minlength=n_items)
    return Neighbours(
        indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        indices=table["other"].to_numpy(np.int32),
        similarity=table["similarity"].to_numpy(np.float32),
    )


def item_vectors(pairs: DataFrame, n_items: int, hp: Hyperparameters, blocks: int) -> np.ndarray:
    """Spark MLlib's implicit-feedback ALS (Hu, Koren & Volinsky) on the decayed (user, item) weights;
    float32 (n_items, factors), zeros for items nobody touched."""
    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.recommendation import ALS

    indexed = (
        StringIndexer(inputCol="user_id", outputCol="user", stringOrderType="alphabetAsc")
        .fit(pairs)
        .transform(pairs)
    )
    als = ALS(
        rank=hp.factors,
        maxIter=hp.iterations,
        regParam=hp.regularization,
        alpha=hp.alpha,
        implicitPrefs=True,
        userCol="user",
        itemCol="row",
        ratingCol="weight",
        seed=hp.seed,
        nonnegative=False,
        # one block per core: the default 10 x 10 blocks make hundreds of tiny tasks per iteration
        numUserBlocks=blocks,
        numItemBlocks=blocks,
    )
    factors = collect(als.fit(indexed).itemFactors)
    vectors = np.zeros((n_items, hp.factors), dtype=np.float32)
    if len(factors):
        vectors[factors["id"].to_numpy(np.int64)] = np.vstack(factors["features"].to_numpy()).astype(
            np.float32
        )
    return vectors


def fit_retrieval_spark(
    spark: SparkSession,
    interactions: pd.DataFrame,
    catalog: Catalog,
    now: float,
    hp: Hyperparameters,
    users: pd.DataFrame | None = None,
) -> tuple[ItemModel, dict[str, UserHistory]]:
    """``fit.fit_retrieval`` with the heavy parts on Spark; the same model and histories."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    started = time.perf_counter()
    n_items = len(catalog)
    events = events_frame(spark, interactions, catalog).cache()
    pairs = (
        events.groupBy("user_id", "row")
        .agg(
            F.sum(F.col("weight") * decay(F.col("ts"), now, hp.half_life_days)).alias("weight"),
            F.max("purchase").alias("purchased"),
            F.max("ts").alias("last"),
        )
        .cache()
    )
    vectors = item_vectors(pairs, n_items, hp, spark.sparkContext.defaultParallelism)
    als_seconds = time.perf_counter() - started
    latest = pairs.withColumn(
        "recency",
        F.row_number().over(Window.partitionBy("user_id").orderBy(F.desc("last"), F.asc("row"))),
    ).where(F.col("recency") <= NEIGHBOUR_HISTORY)
    also_viewed = neighbours(
        latest.select(F.col("user_id").alias("group"), "row", F.lit(1.0).alias("value")),
        n_items,
        hp.neighbours,
    )
    baskets = (
        events.where(F.col("in_basket"))
        .groupBy(F.col("basket").alias("group"), "row")
        .agg(F.count("*").cast("double").alias("value"))
    )
    bought_together = neighbours(baskets, n_items, hp.neighbours)
    segments = user_segments(users)
    active = {str(row.user_id) for row in events.select("user_id").distinct().collect()}
    kept = kept_segments(active, segments, hp)
    members = pd.DataFrame(
        [(user, key) for key, users in kept.items() for user in sorted(users)], columns=["user_id", "segment"]
    )
    segment_scores = {}
    if len(members):
        sums = collect(
            events.join(spark.createDataFrame(members), "user_id")
            .groupBy("segment", "row")
            .agg(F.sum(F.col("weight") * decay(F.col("ts"), now, hp.half_life_days)).alias("total"))
        )
        for key, group in sums.groupby("segment", sort=True):
            scores = np.zeros(n_items, dtype=np.float64)
            scores[group["row"].to_numpy(np.int64)] = group["total"].to_numpy(np.float64)
            segment_scores[str(key)] = scores.astype(np.float32)
    history_pairs = collect(pairs)
    history_pairs["row"] = history_pairs["row"].astype(np.int64)
    model = assemble_retrieval(
        catalog,
        vectors,
        trained=np.bincount(history_pairs["row"].to_numpy(), minlength=n_items) > 0,
        popularity=decayed_counts(events, now, hp.half_life_days, n_items),
        trending=decayed_counts(events, now, hp.trending_half_life_days, n_items),
        also_viewed=also_viewed,
        bought_together=bought_together,
        segments=segment_scores,
        hp=hp,
    )
    events.unpersist()
    pairs.unpersist()
    logger.info(
        "retrieval on Spark: %d pairs, %d items placed by content, %d segments; ALS %.1fs, the rest %.1fs",
        len(history_pairs),
        len(model.placed_rows),
        len(model.signals.segments),
        als_seconds,
        time.perf_counter() - started - als_seconds,
    )
    return model, user_histories(history_pairs, catalog, segments)
