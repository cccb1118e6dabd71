-- Real messy data: the UCI Online Retail log (541,909 invoice lines).
-- Every customer with a customer id is scored, and the handling of
-- cancellations, returns, zero prices, duplicate rows and missing ids that
-- the README documents is pinned here.
CREATE SCHEMA test_ref_online_retail;
SET search_path = test_ref_online_retail;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\getenv datadir CHURN_DATA_DIR
CREATE TABLE raw (invoice text, stock_code text, description text, quantity int,
                  invoice_date timestamp, unit_price numeric, customer_id numeric, country text);
\set ECHO none
SELECT format('COPY raw FROM PROGRAM %L (FORMAT csv, HEADER)',
              'gzip -dc ' || quote_literal(:'datadir' || '/online_retail/online_retail.csv.gz')) \gexec
\set ECHO all
-- the file as described in its README
SELECT count(*) AS rows, count(*) FILTER (WHERE customer_id IS NULL) AS no_customer,
       count(DISTINCT customer_id) AS customers,
       count(*) FILTER (WHERE invoice LIKE 'C%') AS cancellation_rows,
       count(*) FILTER (WHERE unit_price = 0) AS zero_price_rows,
       count(*) - (SELECT count(*) FROM (SELECT DISTINCT * FROM raw) d) AS duplicate_rows
FROM raw;

-- The recommended feed: amount = quantity * unit_price, rows without a
-- customer skipped (they cannot be attributed), everything else as is:
-- cancellations are negative amounts that net against their day, zero-price
-- lines count as purchases, duplicate rows count twice.
CREATE TABLE hist AS
SELECT customer_id::bigint AS customer_id, churn.history_agg(invoice_date, quantity * unit_price) AS h
FROM raw WHERE customer_id IS NOT NULL GROUP BY 1;
CREATE TABLE feat AS SELECT customer_id, (churn.features(h, '2011-12-09')).* FROM hist;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE x IS NOT NULL) AS scored,
       count(*) FILTER (WHERE x IS NULL) AS only_cancellations,
       sum(purchase_days) AS purchase_days, sum(return_days) AS return_only_days,
       round(sum(total_spend)::numeric, 2) AS net_spend
FROM feat;
-- customers without a purchase are exactly those whose every line is negative
SELECT count(*) AS customers_with_no_nonnegative_line FROM (
  SELECT customer_id FROM raw WHERE customer_id IS NOT NULL GROUP BY 1
  HAVING count(*) FILTER (WHERE quantity * unit_price >= 0) = 0) z;
-- net spend equals the plain sum of the scored customers' lines (to the cent)
SELECT round(sum(quantity * unit_price), 2) AS plain_net_spend FROM raw
WHERE customer_id IN (SELECT customer_id FROM feat WHERE x IS NOT NULL);

-- The usual cleaning (no cancellations, quantity > 0, price > 0) reproduces
-- the README's figures: 4,338 customers, 16,763 purchase days, 8,911,407.90
CREATE TABLE clean AS
SELECT customer_id::bigint AS customer_id, churn.history_agg(invoice_date, quantity * unit_price) AS h
FROM raw WHERE customer_id IS NOT NULL AND invoice NOT LIKE 'C%' AND quantity > 0 AND unit_price > 0
GROUP BY 1;
SELECT count(*) AS customers, sum((churn.features(h, '2011-12-09')).purchase_days) AS purchase_days,
       round(sum((churn.features(h, '2011-12-09')).total_spend)::numeric, 2) AS spend
FROM clean;

-- duplicate rows: the aggregate cannot tell a duplicate line from a second
-- identical purchase, so they add spend but never purchase days.  (A day's
-- spend is a float8 sum, so its last bit can depend on row order, as with
-- sum(float8); spend is compared to a cent.)
CREATE TABLE dedup AS
SELECT customer_id::bigint AS customer_id, churn.history_agg(invoice_date, quantity * unit_price) AS h
FROM (SELECT DISTINCT * FROM raw WHERE customer_id IS NOT NULL) d GROUP BY 1;
SELECT count(*) FILTER (WHERE (churn.features(a.h, '2011-12-09')).purchase_days
                              IS DISTINCT FROM (churn.features(b.h, '2011-12-09')).purchase_days) AS purchase_days_differ,
       count(*) FILTER (WHERE abs((churn.features(a.h, '2011-12-09')).total_spend
                                  - (churn.features(b.h, '2011-12-09')).total_spend) >= 0.005) AS spend_differs
FROM hist a JOIN dedup b USING (customer_id);

-- a quarter's churn label at a past date
SELECT count(*) FILTER (WHERE churn.churned(h, '2011-09-09', 90)) AS churned,
       count(*) FILTER (WHERE NOT churn.churned(h, '2011-09-09', 90)) AS stayed,
       count(*) FILTER (WHERE churn.churned(h, '2011-09-09', 90) IS NULL) AS not_yet_customers
FROM hist;
-- shape of the scored features
SELECT round(avg(x), 3) AS avg_x, max(x) AS max_x, round(avg(recency_days)::numeric, 2) AS avg_recency,
       count(*) FILTER (WHERE frequency_change <= -0.3) AS frequency_down_30pct,
       count(*) FILTER (WHERE aov_decline_months >= 3) AS aov_down_3_months
FROM feat;
