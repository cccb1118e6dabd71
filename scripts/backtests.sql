-- Backtests of the rule model, BG/NBD and the logistic model on three data
-- sets; run by scripts/backtests.sh (psql -v datadir=...).  Prints one
-- summary table; the full long-format results stay in backtests.results.
\set ON_ERROR_STOP 1
\set QUIET on
\pset footer off
SET client_min_messages = warning;
SET timezone = 'UTC';
CREATE EXTENSION IF NOT EXISTS churn_warning;
DROP SCHEMA IF EXISTS backtests CASCADE;
CREATE SCHEMA backtests;

-- 1. the demo chain (10,000 customers, seed 42) with the generator's ground truth
\o /dev/null
SELECT churn.demo_load('backtests', 10000, 42, '2023-01-01', '2024-12-31');
\o

-- 2. CDNOW sample: customer id, day, amount (calibration to 1997-09-30, 39-week holdout)
CREATE TABLE backtests.cdnow_raw (line text);
SELECT format('COPY backtests.cdnow_raw FROM %L', :'datadir' || '/cdnow/CDNOW_sample.txt') \gexec
CREATE TABLE backtests.cdnow AS
SELECT f[2]::int AS customer_id, to_date(f[3], 'YYYYMMDD') AS day, f[5]::numeric AS amount
FROM (SELECT regexp_split_to_array(btrim(line, E' \r\n'), '\s+') AS f FROM backtests.cdnow_raw) s;

-- 3. UCI Online Retail: rows with a customer id, amount = quantity * unit price
CREATE TABLE backtests.retail_raw (invoice text, stock_code text, description text, quantity int,
                                   invoice_date timestamp, unit_price numeric, customer_id numeric, country text);
SELECT format('COPY backtests.retail_raw FROM PROGRAM %L (FORMAT csv, HEADER)',
              'gzip -dc ' || quote_literal(:'datadir' || '/online_retail/online_retail.csv.gz')) \gexec
CREATE TABLE backtests.retail AS
SELECT customer_id::bigint AS customer_id, invoice_date AS ts, quantity * unit_price AS amount
FROM backtests.retail_raw WHERE customer_id IS NOT NULL;

CREATE TABLE backtests.runs (dataset text, source regclass, as_of date, horizon int, ts_col name,
                             observed_until date);
INSERT INTO backtests.runs VALUES
    ('demo (seed 42)', 'backtests.purchases', '2024-06-30', 180, 'ts', '2024-12-31'),
    ('CDNOW sample', 'backtests.cdnow', '1997-09-30', 273, 'day', '1998-06-30'),
    ('Online Retail', 'backtests.retail', '2011-09-09', 90, 'ts', '2011-12-09');

\timing on
CREATE TABLE backtests.results AS
SELECT r.dataset, m.model, b.*
FROM backtests.runs r, unnest(ARRAY['rules', 'bgnbd', 'logit']) WITH ORDINALITY m(model, o),
     churn.backtest(r.source, r.as_of, r.horizon, m.model, ts_col => r.ts_col, observed_until => r.observed_until) b;
\timing off

\echo
\echo '== Backtests: AUC, red+yellow precision/recall, top-decile lift, lead time (days from first red/yellow warning to last purchase) =='
SELECT r.dataset, r.as_of, r.horizon AS horizon_days, x.model,
       max(x.n) FILTER (WHERE x.section = 'summary' AND x.metric = 'customers') AS customers,
       round(max(x.value) FILTER (WHERE x.section = 'summary' AND x.metric = 'churn_rate')::numeric, 3) AS churn_rate,
       round(max(x.value) FILTER (WHERE x.section = 'summary' AND x.metric = 'auc')::numeric, 3) AS auc,
       round(max(x.value) FILTER (WHERE x.section = 'summary' AND x.metric = 'brier')::numeric, 3) AS brier,
       max(x.n) FILTER (WHERE x.section = 'zone' AND x.label = 'red+yellow' AND x.metric = 'customers') AS flagged,
       round(max(x.value) FILTER (WHERE x.section = 'zone' AND x.label = 'red+yellow' AND x.metric = 'precision')::numeric, 3) AS precision_ry,
       round(max(x.value) FILTER (WHERE x.section = 'zone' AND x.label = 'red+yellow' AND x.metric = 'recall')::numeric, 3) AS recall_ry,
       round(max(x.value) FILTER (WHERE x.section = 'lift' AND x.bin = 1 AND x.metric = 'lift')::numeric, 2) AS top_decile_lift,
       max(x.value) FILTER (WHERE x.section = 'lead_time' AND x.metric = 'median_days') AS median_lead_days,
       round(max(x.value) FILTER (WHERE x.section = 'lead_time' AND x.metric = 'warned_share')::numeric, 3) AS churners_warned,
       round(max(x.value) FILTER (WHERE x.section = 'lead_time' AND x.metric = 'warned_before_last_purchase_share')::numeric, 3) AS warned_before_last_buy
FROM backtests.results x JOIN backtests.runs r USING (dataset)
GROUP BY r.dataset, r.as_of, r.horizon, x.model
ORDER BY min(r.as_of) DESC, CASE x.model WHEN 'rules' THEN 1 WHEN 'bgnbd' THEN 2 ELSE 3 END;

\echo
\echo '== Demo data: scores at 2024-06-30 against the generator''s recorded ground truth =='
\echo '   gone = will_churn with the last purchase on or before as_of (churn_date <= as_of + 1);'
\echo '   leaving = will_churn with the last purchase in (as_of, as_of + 180): still buying at as_of, gone by the end;'
\echo '   truth = gone or leaving.  The backtest label (no purchase in the 180 days) counts "leaving" as not churned.'
CREATE TABLE backtests.demo_scores AS
SELECT m.model, s.*
FROM unnest(ARRAY['rules', 'bgnbd', 'logit']) m(model),
     churn.backtest_scores('backtests.purchases', '2024-06-30', 180, m.model) s;
CREATE TABLE backtests.demo_truth AS
SELECT s.*, coalesce(c.will_churn AND c.churn_date <= date '2024-06-30' + 1, false) AS gone,
       coalesce(c.will_churn AND c.churn_date > date '2024-06-30' + 1 AND c.churn_date <= date '2024-06-30' + 180, false) AS leaving,
       s.zone IN ('red', 'yellow') AS flagged
FROM backtests.demo_scores s JOIN backtests.customers c ON c.customer_id::text = s.customer_id;
SELECT model, count(*) AS customers, count(*) FILTER (WHERE churned) AS label_churned,
       count(*) FILTER (WHERE gone) AS gone, count(*) FILTER (WHERE leaving) AS leaving,
       count(*) FILTER (WHERE churned IS DISTINCT FROM gone) AS label_ne_gone,
       round(churn.auc(p_churn, gone OR leaving)::numeric, 3) AS auc_truth,
       round(churn.auc(p_churn, leaving) FILTER (WHERE NOT gone)::numeric, 3) AS auc_leaving_vs_staying,
       round(avg((gone OR leaving)::int) FILTER (WHERE flagged)::numeric, 3) AS precision_ry_truth,
       round(avg(flagged::int) FILTER (WHERE gone)::numeric, 3) AS recall_ry_gone,
       round(avg(flagged::int) FILTER (WHERE leaving)::numeric, 3) AS recall_ry_leaving
FROM backtests.demo_truth
GROUP BY model ORDER BY CASE model WHEN 'rules' THEN 1 WHEN 'bgnbd' THEN 2 ELSE 3 END;

\echo
\echo '== Demo data, logistic model: customers per zone at 2024-06-30 and what happened =='
SELECT zone, count(*) AS customers, count(*) FILTER (WHERE churned) AS churned_next_180_days,
       round(avg(churned::int)::numeric, 3) AS churn_rate, round(avg(p_churn)::numeric, 3) AS mean_p
FROM backtests.demo_scores WHERE model = 'logit'
GROUP BY zone ORDER BY CASE zone WHEN 'red' THEN 1 WHEN 'yellow' THEN 2 WHEN 'blue' THEN 3 ELSE 4 END;
