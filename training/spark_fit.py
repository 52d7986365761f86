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
from training.events import HOURS_PER_DAY, ListSettings, epoch_seconds, event_weights, item_rows
from training.fit import (
    BASKET_EVENTS,
    Hyperparameters,
    PopularityLists,
    UserHistory,
    assemble_retrieval,
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


def events_frame(
    spark: SparkSession, interactions: pd.DataFrame, catalog: Catalog, hp: Hyperparameters | None = None
) -> DataFrame:
    """The validated interactions of known items as a Spark frame: user, item row, the event type's
    default weight (``weight``: what the popularity lists count, as ``events.EventArrays``), its weight in
    the user x item matrix (``pair_weight``: ``hp.event_weights()``, the tuned ones), epoch seconds,
    purchase flag and basket key (the session, else the shopper's day)."""
    rows = item_rows(interactions, catalog)
    known = rows >= 0
    day = interactions["timestamp"].dt.strftime("%Y-%m-%d")
    basket = interactions["user_id"].astype("string") + "/" + day
    if "session_id" in interactions.columns:
        basket = interactions["session_id"].astype("string").fillna(basket)
    frame = pd.DataFrame(
        {
            "user_id": interactions["user_id"].astype(str).to_numpy()[known],
            "row": rows[known],
            "weight": event_weights(interactions)[known],
            "pair_weight": event_weights(interactions, hp.event_weights() if hp else None)[known],
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


def decay(timestamp: Column, now: float | Column, half_life_days: float) -> Column:
    """``catalog.recency_decay`` as a Spark expression: halves every half-life; later events count fully.
    ``now``: a moment, or a column of them (each segment's latest event)."""
    from pyspark.sql import functions as F

    reference = now if not isinstance(now, int | float) else F.lit(float(now))
    age_days = F.greatest(F.lit(0.0), reference - timestamp) / F.lit(SECONDS_PER_DAY)
    return F.pow(F.lit(0.5), age_days / F.lit(half_life_days))


def latest_before(events: DataFrame, now: float) -> float:
    """The latest event at or before ``now`` (``now`` when there is none): where ``EventArrays.scores``
    measures a list's window and decay from."""
    from pyspark.sql import functions as F

    latest = events.where(F.col("ts") <= F.lit(now)).agg(F.max("ts")).collect()[0][0]
    return now if latest is None else float(latest)


def list_terms(events: DataFrame, latest: float | Column, settings: ListSettings) -> tuple[DataFrame, Column]:
    """The events a list counts (its window back from ``latest``) and each one's ``weight x decay``, as
    ``events.EventArrays.scores`` computes them."""
    from pyspark.sql import functions as F

    reference = latest if not isinstance(latest, int | float) else F.lit(float(latest))
    if settings.window_hours is not None:
        events = events.where(F.col("ts") >= reference - F.lit(settings.window_hours * 3600.0))
    weight = F.col("weight") if settings.weighting == "event_weight" else F.lit(1.0)
    return events, weight * decay(F.col("ts"), reference, settings.half_life_hours / HOURS_PER_DAY)


def decayed_counts(events: DataFrame, now: float, settings: ListSettings, n_items: int) -> np.ndarray:
    """float32 (n_items,): a popularity list at ``now`` (``events.EventArrays.scores``): summed ``weight x
    decay`` per item row over the list's window, both measured back from the latest event at or before
    ``now``."""
    from pyspark.sql import functions as F

    counted, term = list_terms(events, latest_before(events, now), settings)
    sums = collect(counted.groupBy("row").agg(F.sum(term).alias("total")))
    result = np.zeros(n_items, dtype=np.float64)
    result[sums["row"].to_numpy(np.int64)] = sums["total"].to_numpy(np.float64)
    return result.astype(np.float32)


def last_seen(events: DataFrame, n_items: int) -> np.ndarray:
    """float64 (n_items,): each item's latest event, NaN for none (``events.EventArrays.last_seen``)."""
    from pyspark.sql import functions as F

    latest = collect(events.groupBy("row").agg(F.max("ts").alias("last")))
    result = np.full(n_items, np.nan)
    result[latest["row"].to_numpy(np.int64)] = latest["last"].to_numpy(np.float64)
    return result


def segment_counts(
    spark: SparkSession,
    events: DataFrame,
    kept: dict[str, set[str]],
    now: float,
    hp: Hyperparameters,
    n_items: int,
) -> dict[str, np.ndarray]:
    """Each kept segment's popularity list (``fit.segment_popularity``): its members' events, decayed and
    measured back from the segment's own latest event at or before ``now``."""
    from pyspark.sql import functions as F

    members = pd.DataFrame(
        [(user, key) for key, users in kept.items() for user in sorted(users)], columns=["user_id", "segment"]
    )
    if not len(members):
        return {}
    joined = events.join(spark.createDataFrame(members), "user_id")
    latest = joined.groupBy("segment").agg(
        F.coalesce(F.max(F.when(F.col("ts") <= F.lit(now), F.col("ts"))), F.lit(float(now))).alias("latest")
    )
    counted, term = list_terms(joined.join(latest, "segment"), F.col("latest"), hp.popularity_list())
    sums = collect(counted.groupBy("segment", "row").agg(F.sum(term).alias("total")))
    result = {}
    for key, group in sums.groupby("segment", sort=True):
        scores = np.zeros(n_items, dtype=np.float64)
        scores[group["row"].to_numpy(np.int64)] = group["total"].to_numpy(np.float64)
        result[str(key)] = scores.astype(np.float32)
    return result


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
    events = events_frame(spark, interactions, catalog, hp).cache()
    pairs = (
        events.groupBy("user_id", "row")
        .agg(
            F.sum(F.col("pair_weight") * decay(F.col("ts"), now, hp.half_life_days)).alias("weight"),
            F.sum("weight").alias("raw_weight"),
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
    ).where(F.col("recency") <= hp.cooccurrence_items)
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
    segment_scores = segment_counts(spark, events, kept_segments(active, segments, hp), now, hp, n_items)
    history_pairs = collect(pairs)
    history_pairs["row"] = history_pairs["row"].astype(np.int64)
    model = assemble_retrieval(
        catalog,
        vectors,
        trained=np.bincount(history_pairs["row"].to_numpy(), minlength=n_items) > 0,
        lists=PopularityLists(
            popularity=decayed_counts(events, now, hp.popularity_list(), n_items),
            trending=decayed_counts(events, now, hp.trending_list(), n_items),
            recent_popularity=decayed_counts(events, now, hp.recent_list(), n_items),
            last_seen=last_seen(events, n_items),
        ),
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
