-- churn.features: definitions pinned on a small history, then checked field
-- by field against an independent plain-SQL formulation on random data.
CREATE SCHEMA test_features;
SET search_path = test_features;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET extra_float_digits = 0;

-- one customer: purchases every ~30 days, then slower and cheaper; a return
-- and a zero-amount day
SELECT (churn.features(
  '{2024-01-01:100,2024-01-31:90,2024-03-01:100,2024-04-01:80,2024-05-01:60,2024-06-01:40:2,2024-06-10:-15,2024-08-01:30,2024-09-20:0}',
  '2024-10-01')).*;
-- as_of before the first purchase: NULL; on the first purchase day: x = 0
SELECT churn.features('{2024-01-01:100}', '2023-12-31') IS NULL AS before_first;
SELECT (churn.features('{2024-01-01:100,2024-02-01:50}', '2024-01-01')).*;
-- a history of only returns has no purchase: NULL
SELECT churn.features('{2024-01-01:-10}', '2024-02-01') IS NULL AS only_returns;
-- window_days
SELECT (churn.features('{2024-01-01:10,2024-01-20:10,2024-02-05:20}', '2024-02-10', 30)).recent_days;
SELECT churn.features('{2024-01-01:10}', '2024-02-10', 0);
SELECT churn.features('{2024-01-01:10}', 'infinity', 30);
SELECT churn.features('{2024-01-01:10}', '2024-02-10', NULL) IS NULL AS strict;

-- plain SQL formulation of the same features, as an analyst would write it
CREATE TABLE purchases AS
SELECT c AS customer_id,
       '2023-01-01'::timestamptz + (((c * 7 + g * g * 13) % (30 + c % 400)) + g * (3 + c % 11)) * interval '1 day'
         + (g % 5) * interval '3 hours' AS ts,
       CASE WHEN (c + g) % 23 = 0 THEN -((c % 7) + 1)::float8
            WHEN (c + g) % 31 = 0 THEN NULL
            WHEN (c + g) % 37 = 0 THEN 0
            ELSE ((c * g) % 97 + 1) * 1.25 END AS amount
FROM generate_series(1, 3000) c, generate_series(1, 1 + (c % 40)) g;

\set as_of '''2024-06-30'''
\set win 90
CREATE TABLE plain AS
WITH days AS (
  SELECT customer_id, ts::date AS day, coalesce(sum(amount), 0) AS amount,
         count(*) FILTER (WHERE amount >= 0 OR amount IS NULL) AS purchases
  FROM purchases WHERE ts::date <= :as_of GROUP BY 1, 2),
pd AS (
  SELECT customer_id, day, amount, :as_of::date - day AS age,
         day - lag(day) OVER w AS gap, row_number() OVER w AS rn
  FROM days WHERE purchases > 0 WINDOW w AS (PARTITION BY customer_id ORDER BY day)),
months AS (
  SELECT customer_id, age / 30 AS m, avg(amount) AS aov FROM pd WHERE age < 390 GROUP BY 1, 2),
aov AS (
  SELECT c.customer_id,
         coalesce(min(s.m) FILTER (WHERE NOT coalesce(b.aov > 0 AND a.aov <= 0.85 * b.aov, false)), 12) AS run
  FROM (SELECT DISTINCT customer_id FROM pd) c
  CROSS JOIN generate_series(0, 11) s(m)
  LEFT JOIN months a ON a.customer_id = c.customer_id AND a.m = s.m
  LEFT JOIN months b ON b.customer_id = c.customer_id AND b.m = s.m + 1
  GROUP BY c.customer_id)
SELECT p.customer_id,
       min(day) AS first_purchase, max(day) AS last_purchase, (count(*) - 1)::int AS x,
       (max(day) - min(day))::float8 AS t_x, (:as_of::date - min(day))::float8 AS t,
       (:as_of::date - max(day))::float8 AS recency_days, count(*)::int AS purchase_days,
       (SELECT sum(amount) FROM days d WHERE d.customer_id = p.customer_id) AS total_spend,
       avg(amount) AS avg_spend,
       avg(amount) FILTER (WHERE rn > 1) AS repeat_avg_spend,
       avg(gap) AS mean_gap_days, stddev_samp(gap) AS sd_gap_days,
       (:as_of::date - max(day)) / nullif(avg(gap), 0) AS overdue_ratio,
       count(*) FILTER (WHERE age < :win)::int AS recent_days,
       count(*) FILTER (WHERE age >= :win AND age < 2 * :win)::int AS prior_days,
       (count(*) FILTER (WHERE age < :win) - count(*) FILTER (WHERE age >= :win AND age < 2 * :win))::float8
         / nullif(count(*) FILTER (WHERE age >= :win AND age < 2 * :win), 0) AS frequency_change,
       avg(amount) FILTER (WHERE age < :win) AS recent_avg_spend,
       avg(amount) FILTER (WHERE age >= :win AND age < 2 * :win) AS prior_avg_spend,
       CASE WHEN avg(amount) FILTER (WHERE age >= :win AND age < 2 * :win) > 0
            THEN avg(amount) FILTER (WHERE age < :win) / avg(amount) FILTER (WHERE age >= :win AND age < 2 * :win) - 1 END
         AS spend_change,
       (SELECT run FROM aov WHERE aov.customer_id = p.customer_id)::int AS aov_decline_months
FROM pd p GROUP BY p.customer_id;

CREATE TABLE ext AS
SELECT customer_id, (churn.features(churn.history_agg(ts, amount), :as_of, :win)).*
FROM purchases GROUP BY customer_id;

CREATE FUNCTION pg_temp.close(a float8, b float8) RETURNS boolean LANGUAGE sql IMMUTABLE AS
$$ SELECT (a IS NULL AND b IS NULL) OR abs(a - b) <= 1e-9 * greatest(1, abs(a), abs(b)) $$;

SELECT count(*) AS customers,
       count(*) FILTER (WHERE e.customer_id IS NULL OR p.customer_id IS NULL) AS missing,
       count(*) FILTER (WHERE e.first_purchase IS DISTINCT FROM p.first_purchase
                           OR e.last_purchase IS DISTINCT FROM p.last_purchase
                           OR e.x IS DISTINCT FROM p.x OR e.purchase_days IS DISTINCT FROM p.purchase_days
                           OR e.t_x IS DISTINCT FROM p.t_x OR e.t IS DISTINCT FROM p.t
                           OR e.recency_days IS DISTINCT FROM p.recency_days) AS bad_rft,
       count(*) FILTER (WHERE NOT (pg_temp.close(e.total_spend, p.total_spend)
                           AND pg_temp.close(e.avg_spend, p.avg_spend)
                           AND pg_temp.close(e.repeat_avg_spend, p.repeat_avg_spend))) AS bad_spend,
       count(*) FILTER (WHERE NOT (pg_temp.close(e.mean_gap_days, p.mean_gap_days)
                           AND pg_temp.close(e.sd_gap_days, p.sd_gap_days)
                           AND pg_temp.close(e.overdue_ratio, p.overdue_ratio))) AS bad_gaps,
       count(*) FILTER (WHERE e.recent_days IS DISTINCT FROM p.recent_days
                           OR e.prior_days IS DISTINCT FROM p.prior_days
                           OR NOT pg_temp.close(e.frequency_change, p.frequency_change)) AS bad_frequency,
       count(*) FILTER (WHERE NOT (pg_temp.close(e.recent_avg_spend, p.recent_avg_spend)
                           AND pg_temp.close(e.prior_avg_spend, p.prior_avg_spend)
                           AND pg_temp.close(e.spend_change, p.spend_change))) AS bad_window_spend,
       count(*) FILTER (WHERE e.aov_decline_months IS DISTINCT FROM p.aov_decline_months) AS bad_aov
FROM (SELECT * FROM ext WHERE x IS NOT NULL) e FULL JOIN plain p USING (customer_id);
-- customers whose first purchase is after as_of get NULL features
SELECT count(*) AS not_yet_customers FROM ext WHERE x IS NULL;
-- the data exercise every branch
SELECT count(*) FILTER (WHERE x = 0) AS x0, count(*) FILTER (WHERE frequency_change IS NULL) AS no_prior,
       count(*) FILTER (WHERE aov_decline_months > 0) AS aov_declining,
       count(*) FILTER (WHERE return_days > 0) AS with_returns,
       count(*) FILTER (WHERE spend_change < -0.15) AS spend_down
FROM ext;
