-- The churn features of every customer in plain SQL, as an analyst writes
-- them today without the extension: one row per (customer, day), lag() over
-- the purchase days for the gaps, FILTER for the recent and prior windows,
-- and ntile(5) R/F/M quintile scores on top.  Same definitions as
-- churn.features(history, as_of, window_days) (see src/features.c), minus
-- aov_decline_months (a month-on-month run that needs another self-join;
-- left out here, which favours the plain formulation).
--
-- Reads table "purchases" (customer_id, ts timestamptz, amount numeric or
-- float8) through search_path; psql variables: as_of (a date) and win (days).
-- bench/features.sh runs this file's query (without its final ";") wrapped in
-- the same way as the other measured queries.
--   psql -v as_of=2025-01-01 -v win=90 -f bench/features_plain.sql
WITH days AS (
  -- the day rollup: net spend of the day; a day with only returns is kept
  -- for total_spend and return_days but is not a purchase day
  SELECT customer_id, ts::date AS day, coalesce(sum(amount), 0)::float8 AS amount,
         count(*) FILTER (WHERE amount >= 0 OR amount IS NULL) > 0 AS is_purchase
  FROM purchases
  WHERE ts::date <= :'as_of'::date
  GROUP BY customer_id, ts::date),
pd AS (
  -- gaps and rank among purchase days only (partition on is_purchase)
  SELECT customer_id, day, amount, is_purchase, :'as_of'::date - day AS age,
         day - lag(day) OVER w AS gap,
         row_number() OVER w AS rn
  FROM days
  WINDOW w AS (PARTITION BY customer_id, is_purchase ORDER BY day)),
f AS (
  SELECT customer_id,
         min(day) FILTER (WHERE is_purchase) AS first_purchase,
         max(day) FILTER (WHERE is_purchase) AS last_purchase,
         (count(*) FILTER (WHERE is_purchase) - 1)::int AS x,
         (max(day) FILTER (WHERE is_purchase) - min(day) FILTER (WHERE is_purchase))::float8 AS t_x,
         (:'as_of'::date - min(day) FILTER (WHERE is_purchase))::float8 AS t,
         (:'as_of'::date - max(day) FILTER (WHERE is_purchase))::float8 AS recency_days,
         count(*) FILTER (WHERE is_purchase)::int AS purchase_days,
         sum(amount) AS total_spend,
         avg(amount) FILTER (WHERE is_purchase) AS avg_spend,
         avg(amount) FILTER (WHERE is_purchase AND rn > 1) AS repeat_avg_spend,
         avg(gap) FILTER (WHERE is_purchase) AS mean_gap_days,
         stddev_samp(gap) FILTER (WHERE is_purchase) AS sd_gap_days,
         (:'as_of'::date - max(day) FILTER (WHERE is_purchase))
           / nullif(avg(gap) FILTER (WHERE is_purchase), 0) AS overdue_ratio,
         count(*) FILTER (WHERE is_purchase AND age < :win)::int AS recent_days,
         count(*) FILTER (WHERE is_purchase AND age >= :win AND age < 2 * :win)::int AS prior_days,
         (count(*) FILTER (WHERE is_purchase AND age < :win)
          - count(*) FILTER (WHERE is_purchase AND age >= :win AND age < 2 * :win))::float8
           / nullif(count(*) FILTER (WHERE is_purchase AND age >= :win AND age < 2 * :win), 0)
           AS frequency_change,
         avg(amount) FILTER (WHERE is_purchase AND age < :win) AS recent_avg_spend,
         avg(amount) FILTER (WHERE is_purchase AND age >= :win AND age < 2 * :win) AS prior_avg_spend,
         CASE WHEN avg(amount) FILTER (WHERE is_purchase AND age >= :win AND age < 2 * :win) > 0
              THEN avg(amount) FILTER (WHERE is_purchase AND age < :win)
                   / avg(amount) FILTER (WHERE is_purchase AND age >= :win AND age < 2 * :win) - 1
         END AS spend_change,
         count(*) FILTER (WHERE NOT is_purchase)::int AS return_days
  FROM pd
  GROUP BY customer_id
  HAVING count(*) FILTER (WHERE is_purchase) > 0)
SELECT f.*,
       ntile(5) OVER (ORDER BY recency_days DESC) AS r_score,
       ntile(5) OVER (ORDER BY purchase_days) AS f_score,
       ntile(5) OVER (ORDER BY total_spend) AS m_score
FROM f;
