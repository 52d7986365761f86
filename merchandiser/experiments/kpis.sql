-- Online KPIs per day: served pages, attributed clicks, add-to-carts, purchases and revenue, and distinct
-- items shown, per surface (the staff console's KPI view) and per experiment variant (the report's days).
--
-- The same archive tables, engines and placeholders as report.sql (read its header): DuckDB on the twin,
-- Athena in AWS, every subscript guarded by cardinality(), no division, sums cast to BIGINT. Attribution
-- is report.sql's, restricted to what is credited: an event counts once (by event_id) for the page whose
-- recommendation_id it carries, when the same shopper acted within its type's window after the page was
-- served (less the clock skew). tests/integration/test_kpis.py checks that a day's variant figures here
-- equal the report's counts over that day.
--
-- Rows: section 'surface' (day, surface: counts), 'surface_items' (day, surface: distinct items shown),
-- 'variant' (day, experiment, variant: counts). A page without a surface counts under 'unknown'.
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
        COALESCE(surface, 'unknown') AS surface,
        experiment,
        variant,
        "timestamp" AS served_at,
        items,
        "year" || '-' || "month" || '-' || "day" AS served_day,
        ROW_NUMBER() OVER (
            PARTITION BY recommendation_id ORDER BY "timestamp", user_id, experiment, variant
        ) AS copy
    FROM impressions
    WHERE recommendation_id IS NOT NULL
      AND "timestamp" IS NOT NULL
      AND "year" || '-' || "month" || '-' || "day" BETWEEN ${period_start} AND ${period_end}
),
served AS (
    SELECT recommendation_id, user_id, surface, experiment, variant, served_at, items, served_day
    FROM impression_copies
    WHERE copy = 1
),
event_copies AS (
    SELECT
        event_id,
        user_id,
        event_type,
        "timestamp" AS happened_at,
        NULLIF(recommendation_id, '') AS recommendation_id,
        COALESCE(price, 0) * COALESCE(quantity, 1) AS amount,
        ROW_NUMBER() OVER (
            PARTITION BY event_id ORDER BY "timestamp", "year" || '-' || "month" || '-' || "day"
        ) AS copy
    FROM events
    WHERE event_id IS NOT NULL
      AND "timestamp" IS NOT NULL
      AND event_type IN ('click', 'add_to_cart', 'purchase')
      AND "year" || '-' || "month" || '-' || "day" BETWEEN ${period_start} AND ${events_to}
),
credited AS (
    SELECT s.recommendation_id AS served_id, e.event_type, e.amount
    FROM event_copies AS e
    JOIN served AS s ON s.recommendation_id = e.recommendation_id
    WHERE e.copy = 1
      AND s.user_id IS NOT NULL AND e.user_id = s.user_id
      AND e.happened_at >= s.served_at - ${clock_skew}
      AND NOT (e.event_type = 'click' AND e.happened_at > s.served_at + ${click_window})
      AND NOT (e.event_type = 'add_to_cart' AND e.happened_at > s.served_at + ${add_to_cart_window})
      AND NOT (e.event_type = 'purchase' AND e.happened_at > s.served_at + ${purchase_window})
),
per_page AS (
    SELECT
        s.recommendation_id,
        s.user_id,
        s.served_day,
        s.surface,
        s.experiment,
        s.variant,
        SUM(CASE WHEN c.event_type = 'click' THEN 1 ELSE 0 END) AS clicks,
        SUM(CASE WHEN c.event_type = 'add_to_cart' THEN 1 ELSE 0 END) AS add_to_carts,
        SUM(CASE WHEN c.event_type = 'purchase' THEN 1 ELSE 0 END) AS purchases,
        SUM(CASE WHEN c.event_type = 'purchase' THEN c.amount ELSE 0 END) AS revenue
    FROM served AS s
    LEFT JOIN credited AS c ON c.served_id = s.recommendation_id
    GROUP BY s.recommendation_id, s.user_id, s.served_day, s.surface, s.experiment, s.variant
),
shown AS (
    SELECT x.served_day, x.surface, x.items[s.slot].item_id AS item_id
    FROM served AS x
    JOIN slots AS s ON s.slot <= cardinality(x.items)
)
SELECT
    'surface' AS section,
    served_day AS day,
    surface,
    CAST(NULL AS VARCHAR) AS experiment,
    CAST(NULL AS VARCHAR) AS variant,
    CAST(COUNT(*) AS BIGINT) AS impressions,
    CAST(SUM(clicks) AS BIGINT) AS clicks,
    CAST(SUM(add_to_carts) AS BIGINT) AS add_to_carts,
    CAST(SUM(purchases) AS BIGINT) AS purchases,
    CAST(SUM(revenue) AS DOUBLE) AS revenue,
    CAST(NULL AS BIGINT) AS items_shown
FROM per_page
GROUP BY served_day, surface
UNION ALL
SELECT
    'surface_items', served_day, surface, CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR),
    CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS DOUBLE),
    CAST(COUNT(DISTINCT item_id) AS BIGINT)
FROM shown
GROUP BY served_day, surface
UNION ALL
SELECT
    'variant', served_day, CAST(NULL AS VARCHAR), experiment, variant,
    CAST(COUNT(*) AS BIGINT),
    CAST(SUM(clicks) AS BIGINT),
    CAST(SUM(add_to_carts) AS BIGINT),
    CAST(SUM(purchases) AS BIGINT),
    CAST(SUM(revenue) AS DOUBLE),
    CAST(NULL AS BIGINT)
FROM per_page
-- an empty experiment is none; as in report.sql, an experiment's pages are its shoppers' (a page without a
-- user id is no exposure)
WHERE COALESCE(experiment, '') <> '' AND variant IS NOT NULL AND user_id IS NOT NULL
GROUP BY served_day, experiment, variant
ORDER BY section, day, surface, experiment, variant
