-- The online KPIs of every served page, per day, surface, experiment and variant, over the archive: pages,
-- attributed clicks, add-to-carts, purchases and revenue, and the distinct items shown (coverage's
-- numerator). The daily job's metrics and alarms read them per surface and variant, the staff console's KPI
-- view per surface, and an experiment report's per-day chart per experiment and variant.
--
-- The same engines, tables, dialect rules and placeholders as report.sql (read its header): one text for
-- DuckDB and Athena, no UNNEST (items[slot] over a numbers table), guarded subscripts, no division,
-- BIGINT sums. Attribution is report.sql's (a replayed event or page counts once; the same shopper; from
-- the clock skew before the page to the window after it), with one window for every event type, so
-- that a day's KPIs are final once that window has passed (the daily job reports the day before that).
-- Pages of every experiment and of production are counted: a page outside experiments has experiment ''
-- and variant 'production'; variant 'all' (experiment '') sums all of a surface's pages. Serving places a
-- page in an experiment only for a known shopper, so an experiment's pages here are the report's exposures.
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
        COALESCE(experiment, '') AS experiment,
        COALESCE(variant, 'production') AS variant,
        "timestamp" AS served_at,
        items,
        "year" || '-' || "month" || '-' || "day" AS served_day,
        ROW_NUMBER() OVER (
            PARTITION BY recommendation_id ORDER BY "timestamp", user_id, experiment, variant
        ) AS copy
    FROM impressions
    WHERE recommendation_id IS NOT NULL
      AND "timestamp" IS NOT NULL
      AND "year" || '-' || "month" || '-' || "day" BETWEEN ${first_day} AND ${last_day}
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
      AND "year" || '-' || "month" || '-' || "day" BETWEEN ${first_day} AND ${events_to}
),
credited AS (
    SELECT s.recommendation_id, e.event_type, e.amount
    FROM event_copies AS e
    JOIN served AS s ON s.recommendation_id = e.recommendation_id
    WHERE e.copy = 1
      AND e.user_id = s.user_id
      AND e.happened_at >= s.served_at - ${clock_skew}
      AND e.happened_at <= s.served_at + ${window}
),
per_page AS (
    SELECT
        s.served_day,
        s.surface,
        s.experiment,
        s.variant,
        s.recommendation_id,
        SUM(CASE WHEN c.event_type = 'click' THEN 1 ELSE 0 END) AS clicks,
        SUM(CASE WHEN c.event_type = 'add_to_cart' THEN 1 ELSE 0 END) AS add_to_carts,
        SUM(CASE WHEN c.event_type = 'purchase' THEN 1 ELSE 0 END) AS purchases,
        SUM(CASE WHEN c.event_type = 'purchase' THEN c.amount ELSE 0 END) AS revenue
    FROM served AS s
    LEFT JOIN credited AS c ON c.recommendation_id = s.recommendation_id
    GROUP BY s.served_day, s.surface, s.experiment, s.variant, s.recommendation_id
),
shown AS (
    SELECT s.served_day, s.surface, s.experiment, s.variant, s.items[t.slot].item_id AS item_id
    FROM served AS s
    JOIN slots AS t ON t.slot <= cardinality(s.items)
),
groups AS (
    SELECT served_day, surface, experiment, variant, clicks, add_to_carts, purchases, revenue FROM per_page
    UNION ALL
    SELECT served_day, surface, '', 'all', clicks, add_to_carts, purchases, revenue FROM per_page
),
items_per_group AS (
    SELECT served_day, surface, experiment, variant, COUNT(DISTINCT item_id) AS items_shown
    FROM shown
    GROUP BY served_day, surface, experiment, variant
    UNION ALL
    SELECT served_day, surface, '', 'all', COUNT(DISTINCT item_id)
    FROM shown
    GROUP BY served_day, surface
)
SELECT
    g.served_day AS day,
    g.surface,
    g.experiment,
    g.variant,
    CAST(COUNT(*) AS BIGINT) AS impressions,
    CAST(SUM(g.clicks) AS BIGINT) AS clicks,
    CAST(SUM(g.add_to_carts) AS BIGINT) AS add_to_carts,
    CAST(SUM(g.purchases) AS BIGINT) AS purchases,
    CAST(SUM(g.revenue) AS DOUBLE) AS revenue,
    CAST(MAX(COALESCE(i.items_shown, 0)) AS BIGINT) AS items_shown
FROM groups AS g
LEFT JOIN items_per_group AS i
  ON i.served_day = g.served_day AND i.surface = g.surface AND i.experiment = g.experiment
  AND i.variant = g.variant
GROUP BY g.served_day, g.surface, g.experiment, g.variant
ORDER BY day, surface, experiment, variant
