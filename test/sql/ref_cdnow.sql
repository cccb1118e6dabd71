-- Outside reference: the literature's CDNOW calibration summary.
-- Over CDNOW_sample.txt with calibration end 1997-09-30, x, t_x and t (in
-- weeks: days / 7) and the repeat average spend (zbar) must equal
-- cdnow_customers_summary_with_transactions.csv for all 2,357 customers.
-- The summary is rounded to 2 decimals, so we compare round(value, 2);
-- zbar was rounded from sums of cents, and we also report |diff| <= 0.005.
CREATE SCHEMA test_ref_cdnow;
SET search_path = test_ref_cdnow;
\getenv datadir CHURN_DATA_DIR
SET timezone = 'UTC';
CREATE TEMP TABLE raw (line text);
\set ECHO none
SELECT format('COPY raw FROM %L', :'datadir' || '/cdnow/CDNOW_sample.txt') \gexec
\set ECHO all
CREATE TEMP TABLE sample AS
SELECT f[2]::int AS customer_id, to_date(f[3], 'YYYYMMDD') AS day, f[4]::int AS cds, f[5]::numeric AS amount
FROM (SELECT regexp_split_to_array(btrim(line, E' \r\n'), '\s+') AS f FROM raw) s;
SELECT count(*) AS rows, count(DISTINCT customer_id) AS customers,
       count(DISTINCT (customer_id, day)) AS purchase_days, sum(amount) AS total
FROM sample;

CREATE TEMP TABLE summary (id int, x int, t_x numeric, t numeric, zbar numeric);
\set ECHO none
SELECT format('COPY summary FROM %L (FORMAT csv, HEADER)',
              :'datadir' || '/cdnow/cdnow_customers_summary_with_transactions.csv') \gexec
\set ECHO all

CREATE TEMP TABLE ours AS
SELECT customer_id, (churn.features(churn.history_agg(day, amount), '1997-09-30')).*
FROM sample GROUP BY customer_id;

SELECT count(*) AS customers,
       count(*) FILTER (WHERE o.x = s.x) AS x_equal,
       count(*) FILTER (WHERE round((o.t_x / 7)::numeric, 2) = s.t_x) AS t_x_equal,
       count(*) FILTER (WHERE round((o.t / 7)::numeric, 2) = s.t) AS t_equal,
       count(*) FILTER (WHERE round(coalesce(o.repeat_avg_spend, 0)::numeric, 2) = s.zbar) AS zbar_equal,
       count(*) FILTER (WHERE abs(coalesce(o.repeat_avg_spend, 0)::numeric - s.zbar) <= 0.005) AS zbar_within_half_cent
FROM ours o FULL JOIN summary s ON s.id = o.customer_id;

-- the calibration totals quoted in the data README
SELECT count(*) FILTER (WHERE x = 0) AS x_zero, count(*) FILTER (WHERE x > 0) AS x_positive,
       sum(x) AS sum_x, max(x) AS max_x
FROM ours;
-- holdout (1997-10-01 .. 1998-06-30): 1,882 purchase days by calibration customers
SELECT sum(n) AS holdout_purchase_days FROM (
  SELECT count(DISTINCT day) n FROM sample WHERE day BETWEEN '1997-10-01' AND '1998-06-30' GROUP BY customer_id) h;
-- churn.churned over the 39-week holdout agrees with a plain-SQL count
SELECT count(*) FILTER (WHERE churn.churned(h, '1997-09-30', 273)) AS churned_ext,
       (SELECT count(*) FROM (SELECT customer_id FROM sample GROUP BY customer_id
            HAVING count(*) FILTER (WHERE day BETWEEN '1997-10-01' AND '1998-06-30') = 0) z) AS churned_sql
FROM (SELECT customer_id, churn.history_agg(day, amount) h FROM sample GROUP BY customer_id) c;
