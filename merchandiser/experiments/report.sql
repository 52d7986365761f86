-- Attribution and the per-user aggregates of one experiment's report, over the archive.
--
-- One statement, the same text on both engines: DuckDB on the twin and in tests
-- (merchandiser/experiments/report.py), Athena (Trino) in AWS. It reads two tables partitioned by the
-- arrival date, "year", "month", "day" (strings 'YYYY', 'MM', 'DD'):
--   events       event_id, user_id, item_id, event_type, "timestamp", recommendation_id, price, quantity
--   impressions  recommendation_id, user_id, experiment, variant, "timestamp",
--                items ARRAY(ROW(item_id, position, source)), interleaving ARRAY(VARCHAR)
-- (report.ARCHIVE_COLUMNS declares them once for DuckDB's views and for the Glue tables).
--
-- Placeholders such as ${experiment} are replaced by report.render_sql with SQL literals: strings quoted, dates as
-- 'YYYY-MM-DD' strings (compared with the partition key), durations as INTERVAL 'n' SECOND.
--
-- Attribution: an event is deduplicated by event_id (a replay counts once), an impression by
-- recommendation_id; a click, add_to_cart or purchase carrying a recommendation_id joins its impression
-- when the same user acted within the event type's window after the page was served (less the clock
-- skew between the browser that stamps events and the function that stamps impressions). Every other
-- event is counted under its reason in the 'unattributed' rows, never dropped.
--
-- The period: impressions served in [period_start, period_end] are the report's; their events are
-- read up to events_to (period_end + the longest window). Events without a usable impression belong
-- to the period they arrived in. Impressions back to impressions_from (period_start - the longest
-- window) are read only so that an event on an earlier period's page is recognised (it is that
-- period's) rather than called unknown.
--
-- What differs between the engines, and why it does not matter here:
-- - where the tables come from: DuckDB views over read_json of the local archive vs Glue tables over
--   S3; both declare the same columns and the same partition keys.
-- - UNNEST of an array of rows gives one struct column in DuckDB but one column per field in Trino:
--   this file never unnests; it indexes items[slot] over a numbers table of slots 1..1000 (the longest
--   page: the rank route's 1,000 items).
-- - an out-of-range subscript is NULL in DuckDB and an error in Trino: every subscript is guarded by
--   cardinality() (in the join condition, or in a CASE evaluated first).
-- - integer division truncates in Trino and not in DuckDB: this file divides nothing; every ratio and
--   statistic is computed in Python from these sums.
-- - SUM of integers is HUGEINT in DuckDB and BIGINT in Trino: cast to BIGINT in the final SELECT.
-- - "timestamp", "year", "month" and "day" are quoted: Trino reserves some of these words.
-- - timestamps: the stream's are ISO 8601 in UTC; DuckDB's view reads them as TIMESTAMPTZ and gives
--   UTC TIMESTAMPs, the Glue table declares them timestamp: both compare UTC instants.
-- - Trino re-evaluates a WITH query at every reference, DuckDB may materialise it: same rows.
WITH
digits AS (
    SELECT n FROM (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) AS d (n)
),
slots AS (
    SELECT hundreds.n * 100 + tens.n * 10 + ones.n + 1 AS slot
    FROM digits AS hundreds CROSS JOIN digits AS tens CROSS JOIN digits AS ones
),
impression_copies AS (
    SELECT
        recommendation_id,
        user_id,
        experiment,
        variant,
        "timestamp" AS served_at,
        items,
        interleaving,
        "year" || '-' || "month" || '-' || "day" AS served_day,
        ROW_NUMBER() OVER (
            PARTITION BY recommendation_id ORDER BY "timestamp", user_id, experiment, variant
        ) AS copy
    FROM impressions
    WHERE recommendation_id IS NOT NULL
      AND "timestamp" IS NOT NULL
      AND "year" || '-' || "month" || '-' || "day" BETWEEN ${impressions_from} AND ${period_end}
),
served AS (
    SELECT
        recommendation_id,
        user_id,
        experiment,
        variant,
        served_at,
        items,
        interleaving,
        served_day BETWEEN ${period_start} AND ${period_end} AS in_period
    FROM impression_copies
    WHERE copy = 1
),
event_copies AS (
    SELECT
        event_id,
        user_id,
        item_id,
        event_type,
        "timestamp" AS happened_at,
        NULLIF(recommendation_id, '') AS recommendation_id,
        COALESCE(price, 0) * COALESCE(quantity, 1) AS amount,
        "year" || '-' || "month" || '-' || "day" AS arrival_day,
        ROW_NUMBER() OVER (
            PARTITION BY event_id ORDER BY "timestamp", "year" || '-' || "month" || '-' || "day"
        ) AS copy
    FROM events
    WHERE event_id IS NOT NULL
      AND "timestamp" IS NOT NULL
      AND event_type IN ('click', 'add_to_cart', 'purchase')
      AND "year" || '-' || "month" || '-' || "day" BETWEEN ${impressions_from} AND ${events_to}
),
outcomes AS (
    SELECT
        e.event_id,
        e.event_type,
        e.item_id,
        e.amount,
        e.arrival_day,
        s.recommendation_id AS served_id,
        s.experiment,
        s.in_period,
        CASE
            WHEN e.recommendation_id IS NULL THEN 'no_recommendation_id'
            WHEN s.recommendation_id IS NULL THEN 'unknown_recommendation_id'
            WHEN s.user_id IS NULL OR e.user_id IS NULL OR e.user_id <> s.user_id THEN 'other_user'
            WHEN e.happened_at < s.served_at - ${clock_skew}
              OR (e.event_type = 'click' AND e.happened_at > s.served_at + ${click_window})
              OR (e.event_type = 'add_to_cart' AND e.happened_at > s.served_at + ${add_to_cart_window})
              OR (e.event_type = 'purchase' AND e.happened_at > s.served_at + ${purchase_window})
              THEN 'outside_window'
            ELSE 'attributed'
        END AS attribution
    FROM event_copies AS e
    LEFT JOIN served AS s ON s.recommendation_id = e.recommendation_id
    WHERE e.copy = 1
),
exposed AS (
    SELECT recommendation_id, user_id, variant, items, interleaving
    FROM served
    WHERE experiment = ${experiment} AND in_period AND user_id IS NOT NULL
),
credited AS (
    SELECT served_id, event_type, item_id, amount
    FROM outcomes
    WHERE attribution = 'attributed' AND experiment = ${experiment} AND in_period
),
per_page AS (
    SELECT
        x.recommendation_id,
        x.user_id,
        x.variant,
        SUM(CASE WHEN c.event_type = 'click' THEN 1 ELSE 0 END) AS clicks,
        SUM(CASE WHEN c.event_type = 'add_to_cart' THEN 1 ELSE 0 END) AS add_to_carts,
        SUM(CASE WHEN c.event_type = 'purchase' THEN 1 ELSE 0 END) AS purchases,
        SUM(CASE WHEN c.event_type = 'purchase' THEN c.amount ELSE 0 END) AS revenue
    FROM exposed AS x
    LEFT JOIN credited AS c ON c.served_id = x.recommendation_id
    GROUP BY x.recommendation_id, x.user_id, x.variant
),
shown AS (
    SELECT
        x.variant,
        x.recommendation_id,
        x.items[s.slot].item_id AS item_id,
        CASE WHEN s.slot <= cardinality(x.interleaving) THEN x.interleaving[s.slot] END AS team
    FROM exposed AS x
    JOIN slots AS s ON s.slot <= cardinality(x.items)
),
page_credit AS (
    SELECT
        sh.variant,
        sh.recommendation_id,
        SUM(CASE WHEN sh.team = 'A' THEN 1 ELSE 0 END) AS team_a,
        SUM(CASE WHEN sh.team = 'B' THEN 1 ELSE 0 END) AS team_b
    FROM shown AS sh
    JOIN credited AS c
      ON c.served_id = sh.recommendation_id AND c.item_id = sh.item_id AND c.event_type = 'click'
    WHERE sh.team IS NOT NULL
    GROUP BY sh.variant, sh.recommendation_id
)
-- One result, one row layout: a section name, then the columns that section fills (NULL elsewhere).
SELECT
    'user' AS section,
    variant,
    user_id AS unit,
    CAST(COUNT(*) AS BIGINT) AS impressions,
    CAST(SUM(clicks) AS BIGINT) AS clicks,
    CAST(SUM(add_to_carts) AS BIGINT) AS add_to_carts,
    CAST(SUM(purchases) AS BIGINT) AS purchases,
    CAST(SUM(revenue) AS DOUBLE) AS revenue,
    CAST(NULL AS BIGINT) AS items_shown,
    CAST(NULL AS BIGINT) AS wins_a,
    CAST(NULL AS BIGINT) AS wins_b,
    CAST(NULL AS BIGINT) AS ties
FROM per_page
GROUP BY variant, user_id
UNION ALL
SELECT
    'variant_items', variant, CAST(NULL AS VARCHAR),
    CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS DOUBLE),
    CAST(COUNT(DISTINCT item_id) AS BIGINT),
    CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT)
FROM shown
GROUP BY variant
UNION ALL
SELECT
    'experiment_items', CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR),
    CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS DOUBLE),
    CAST(COUNT(DISTINCT item_id) AS BIGINT),
    CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT)
FROM shown
UNION ALL
SELECT
    'interleaving', variant, CAST(NULL AS VARCHAR),
    CAST(COUNT(*) AS BIGINT), CAST(SUM(team_a + team_b) AS BIGINT),
    CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS DOUBLE), CAST(NULL AS BIGINT),
    CAST(SUM(CASE WHEN team_a > team_b THEN 1 ELSE 0 END) AS BIGINT),
    CAST(SUM(CASE WHEN team_b > team_a THEN 1 ELSE 0 END) AS BIGINT),
    CAST(SUM(CASE WHEN team_a = team_b THEN 1 ELSE 0 END) AS BIGINT)
FROM page_credit
WHERE team_a + team_b > 0
GROUP BY variant
UNION ALL
SELECT
    'unattributed', CAST(NULL AS VARCHAR), attribution,
    CAST(NULL AS BIGINT),
    CAST(SUM(CASE WHEN event_type = 'click' THEN 1 ELSE 0 END) AS BIGINT),
    CAST(SUM(CASE WHEN event_type = 'add_to_cart' THEN 1 ELSE 0 END) AS BIGINT),
    CAST(SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS BIGINT),
    CAST(NULL AS DOUBLE), CAST(NULL AS BIGINT),
    CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT)
FROM outcomes
WHERE (
        attribution IN ('no_recommendation_id', 'unknown_recommendation_id')
        AND arrival_day BETWEEN ${period_start} AND ${period_end}
    )
   OR (attribution IN ('outside_window', 'other_user') AND experiment = ${experiment} AND in_period)
GROUP BY attribution
ORDER BY section, variant, unit
