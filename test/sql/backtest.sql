-- Backtests: churn.backtest and churn.backtest_scores on a small demo chain.
CREATE SCHEMA test_backtest;
SET search_path = test_backtest;
SET extra_float_digits = 0;
SET datestyle = 'ISO, YMD';
SET client_min_messages = warning;
SELECT customers, churners FROM churn.demo_load('test_backtest', 400, 7);
RESET client_min_messages;

-- the output: stable columns and types
SELECT pg_get_function_result('churn.backtest(regclass,date,int,text,name,name,name,text,int,int,text,date,regclass,name,name,name,name,int,int)'::regprocedure);
SELECT pg_get_function_result('churn.backtest_scores(regclass,date,int,text,name,name,name,text,int,int,text,date,regclass,name,name,name,name,int,int)'::regprocedure);

CREATE TABLE bt AS
SELECT m.model, b.* FROM unnest(ARRAY['auto', 'rules', 'bgnbd', 'logit']) m(model),
     churn.backtest('test_backtest.purchases', '2024-06-30', 90, m.model) b;
-- rows per section (the lift and calibration tables always have 10 bins;
-- the zone table always has red, yellow, blue, none, red+yellow)
SELECT model, section, count(*) AS rows, count(DISTINCT metric) AS metrics
FROM bt WHERE section <> 'fit' GROUP BY 1, 2 ORDER BY 1, min(CASE section WHEN 'summary' THEN 1 WHEN 'value' THEN 2
  WHEN 'zone' THEN 3 WHEN 'code' THEN 4 WHEN 'lift' THEN 5 WHEN 'calibration' THEN 6 WHEN 'lead_time' THEN 7 ELSE 8 END);
SELECT DISTINCT label, metric FROM bt WHERE section = 'zone' ORDER BY 1, 2;
SELECT DISTINCT label, metric FROM bt WHERE section = 'fit' ORDER BY 1, 2;
-- the headline figures
SELECT model, metric, round(value::numeric, 3) AS value, n
FROM bt WHERE section = 'summary' ORDER BY model, metric;
SELECT model, round(value::numeric, 3) AS red_yellow_precision, n AS flagged,
       (SELECT round(value::numeric, 3) FROM bt b2 WHERE b2.model = bt.model AND b2.section = 'zone'
          AND b2.label = 'red+yellow' AND b2.metric = 'recall') AS red_yellow_recall
FROM bt WHERE section = 'zone' AND label = 'red+yellow' AND metric = 'precision' ORDER BY model;
-- everything in range: shares and probabilities in [0, 1], lift >= 0,
-- counts non-negative, lead-time quantiles ordered
SELECT count(*) FILTER (WHERE metric IN ('auc', 'brier', 'churn_rate', 'mean_p', 'precision', 'recall', 'customers')
                          AND section IN ('summary', 'zone', 'code') AND metric <> 'customers'
                          AND NOT value BETWEEN 0 AND 1) AS bad_share,
       count(*) FILTER (WHERE section = 'zone' AND metric = 'customers' AND NOT value BETWEEN 0 AND 1) AS bad_zone_share,
       count(*) FILTER (WHERE section IN ('lift', 'calibration') AND value < 0) AS bad_bins,
       count(*) FILTER (WHERE n < 0) AS bad_n,
       count(*) FILTER (WHERE value = 'NaN' OR value IN ('Infinity', '-Infinity')) AS not_finite
FROM bt;
SELECT model,
       sum(n) FILTER (WHERE section = 'zone' AND metric = 'customers' AND label <> 'red+yellow')
         = max(n) FILTER (WHERE section = 'summary' AND metric = 'customers') AS zones_partition_customers,
       round(sum(value) FILTER (WHERE section = 'zone' AND metric = 'recall' AND label <> 'red+yellow')::numeric, 9) AS recall_sums_to_1,
       max(value) FILTER (WHERE section = 'lift' AND metric = 'cum_capture') AS max_capture,
       sum(n) FILTER (WHERE section = 'lift' AND metric = 'lift' AND label IS NULL)
         = max(n) FILTER (WHERE section = 'summary' AND metric = 'customers')
       AND sum(n) FILTER (WHERE section = 'lift' AND metric = 'lift' AND label = 'recency_baseline')
         = max(n) FILTER (WHERE section = 'summary' AND metric = 'customers') AS lift_bins_cover,
       max(value) FILTER (WHERE section = 'lead_time' AND label = 'red+yellow' AND metric = 'p25_days')
         <= max(value) FILTER (WHERE section = 'lead_time' AND label = 'red+yellow' AND metric = 'median_days')
       AND max(value) FILTER (WHERE section = 'lead_time' AND label = 'red+yellow' AND metric = 'median_days')
         <= max(value) FILTER (WHERE section = 'lead_time' AND label = 'red+yellow' AND metric = 'p75_days') AS lead_quantiles_ordered,
       coalesce(round(sum(value) FILTER (WHERE section = 'first_warning')::numeric, 9), 1) = 1 AS first_warnings_add_up
FROM bt GROUP BY model ORDER BY model;
SELECT label, bin FROM bt WHERE model = 'rules' AND section = 'first_warning' ORDER BY bin;
-- the recency baseline's lead time: the same leavers, warned as often as the model at every date
SELECT model, count(DISTINCT value) FILTER (WHERE metric = 'leavers') = 1 AS same_leavers,
       bool_and(value BETWEEN 0 AND 1) FILTER (WHERE metric LIKE 'warned%share') AS shares_in_0_1,
       count(*) FILTER (WHERE label = 'recency_baseline') AS baseline_rows
FROM bt WHERE section = 'lead_time' GROUP BY model ORDER BY model;

-- deterministic: a second run gives the same rows, bit for bit
SELECT count(*) AS differing_rows FROM (
  (SELECT section, label, bin, metric, value, n FROM bt WHERE model = 'logit'
   EXCEPT ALL SELECT * FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90, 'logit'))
  UNION ALL
  (SELECT * FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90, 'logit')
   EXCEPT ALL SELECT section, label, bin, metric, value, n FROM bt WHERE model = 'logit')) d;

-- per-customer rows: the rule model's score is churn.rule_score's, the tier
-- is churn.warning_tier's (lifecycle applied), the label is churn.gone_by's
CREATE TABLE hist AS SELECT customer_id::text AS customer_id, churn.history_agg(ts, amount) AS h
FROM test_backtest.purchases GROUP BY customer_id;
CREATE TABLE sc AS SELECT * FROM churn.backtest_scores('test_backtest.purchases', '2024-06-30', 90, 'rules', lookback => 2);
SELECT as_of_date, count(*) AS customers, count(churned) AS labelled FROM sc GROUP BY 1 ORDER BY 1;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE abs(s.p_churn - (churn.rule_score(churn.features(h.h, s.as_of_date))).score) > 1e-12) AS score_differs,
       count(*) FILTER (WHERE (churn.lifecycle_tier(churn.warning_tier(s.p_churn, s.annual_value), s.lifecycle)).code
                              IS DISTINCT FROM s.code) AS tier_differs,
       count(*) FILTER (WHERE churn.gone_by(h.h, s.as_of_date, 90) IS DISTINCT FROM s.churned) AS label_differs,
       count(*) FILTER (WHERE (churn.features(h.h, s.as_of_date)).last_purchase IS DISTINCT FROM s.last_purchase) AS last_purchase_differs,
       count(DISTINCT s.value_source) AS value_sources
FROM sc s JOIN hist h USING (customer_id);
-- a date whose horizon runs past the data has no label
SELECT count(*) AS customers, count(churned) AS labelled
FROM churn.backtest_scores('test_backtest.purchases', '2024-12-31', 90, 'bgnbd');

-- other column names, a date column, a temp table source, a registered model
CREATE TEMP TABLE sales AS SELECT customer_id AS cust, ts::date AS day, amount AS net FROM test_backtest.purchases;
SELECT metric, round(value::numeric, 3) AS value, n
FROM churn.backtest('sales', '2024-06-30', 90, 'rules', customer_col => 'cust', ts_col => 'day', amount_col => 'net',
                    lookback => 0)
WHERE section = 'summary' AND metric IN ('customers', 'auc');
SELECT churn.register_rules('bt_rules', 'default', 90);
SELECT metric, round(value::numeric, 3) AS value, n
FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90, 'bt_rules', lookback => 0)
WHERE section = 'summary' AND metric IN ('customers', 'auc');
SELECT churn.register_model('bt_bg', (SELECT churn.bgnbd_fit((f).x, (f).t_x, (f).t)
                                      FROM (SELECT churn.features(h, '2024-06-30') f FROM hist) s), 90);
SELECT metric, round(value::numeric, 3) AS value
FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90, 'bt_bg', lookback => 0, value_basis => 'trailing')
WHERE section = 'summary' AND metric = 'auc';
DELETE FROM churn.model WHERE name IN ('bt_rules', 'bt_bg');

-- a hostile search_path changes nothing
CREATE FUNCTION test_backtest.features(h churn.history, d date, w int) RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE TABLE test_backtest.pg_class (x int);
SET search_path = test_backtest, public;
SELECT count(*) AS differing_rows FROM (
  SELECT * FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90, 'rules')
  EXCEPT ALL SELECT section, label, bin, metric, value, n FROM bt WHERE model = 'rules') d;
SET search_path = test_backtest;
-- nothing is left behind in pg_temp
SELECT count(*) AS leftover_temp_tables FROM pg_class WHERE relname LIKE 'churn\_bt\_%' AND relpersistence = 't';

-- errors
\set SHOW_CONTEXT never
SELECT * FROM churn.backtest('test_backtest.purchases', '2019-01-01', 180);
SELECT * FROM churn.backtest('test_backtest.purchases', '2024-06-30', 0);
SELECT * FROM churn.backtest('test_backtest.purchases', '2024-06-30', -30);
SELECT * FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90, 'random_forest');
SELECT * FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90, customer_col => 'client');
SELECT * FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90, ts_col => 'store_id');
SELECT * FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90, amount_col => 'ts');
SELECT * FROM churn.backtest('test_backtest.purchases', '2024-12-01', 180);
SELECT * FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90, policy => 'no_such_policy');
SELECT * FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90, lookback => -1);
SELECT * FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90, value_basis => 'hope');
SELECT * FROM churn.backtest('test_backtest.purchases', NULL, 180);
SELECT * FROM churn.backtest('test_backtest.purchases', '2023-01-10', 180, 'logit');
CREATE ROLE backtest_nobody;
GRANT USAGE ON SCHEMA test_backtest, churn TO backtest_nobody;
SET ROLE backtest_nobody;
SELECT * FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90);
RESET ROLE;
-- column privileges on the source are enough (plus reading the rule and
-- tier policy tables the scoring uses)
GRANT SELECT (customer_id, ts, amount) ON test_backtest.purchases TO backtest_nobody;
GRANT SELECT ON churn.rules, churn.tier_policy TO backtest_nobody;
SET ROLE backtest_nobody;
SELECT round(value::numeric, 3) AS auc FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90, 'rules', lookback => 0)
WHERE section = 'summary' AND metric = 'auc';
RESET ROLE;
REVOKE ALL ON test_backtest.purchases FROM backtest_nobody;
REVOKE ALL ON churn.rules, churn.tier_policy FROM backtest_nobody;
REVOKE USAGE ON SCHEMA test_backtest, churn FROM backtest_nobody;
DROP ROLE backtest_nobody;

-- events: the engagement features reach every model (the rule model's
-- engagement rules fire); NULL customers or times, unknown kinds and
-- ratings outside 1..5 are skipped and counted
\set SHOW_CONTEXT never
CREATE TEMP TABLE ev AS
SELECT customer_id, ts, kind, rating FROM test_backtest.events
UNION ALL VALUES (1, '2024-06-01 10:00'::timestamptz, 'telepathy', NULL::int), (1, '2024-06-01 11:00', 'review', 9),
                 (NULL, '2024-06-01 12:00', 'visit', NULL), (2, NULL, 'visit', NULL);
SELECT e.metric, round(e.value::numeric, 3) AS with_events, e.n, round(p.value::numeric, 3) AS purchases_only
FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90, 'rules', lookback => 0, events => 'ev') e
JOIN churn.backtest('test_backtest.purchases', '2024-06-30', 90, 'rules', lookback => 0) p USING (section, label, metric)
WHERE e.section = 'summary' AND e.metric IN ('auc', 'mean_p') ORDER BY 1;
SELECT value AS events_skipped FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90, 'rules', lookback => 0,
                                                    events => 'ev')
WHERE section = 'summary' AND metric = 'events_skipped';
SELECT * FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90, 'rules', events => 'ev', event_kind_col => 'sort');

-- the auto model: trained on what was known at the earliest scoring date,
-- its champion and the candidates it beat are in the fit rows
SELECT label, metric, value IS NOT NULL AS present FROM bt WHERE model = 'auto' AND section = 'fit' AND label = 'auto'
ORDER BY 1, 2;
-- early warning among customers not yet lost, against the recency baseline,
-- and no lost customer is red
SELECT model, label, metric, value BETWEEN 0 AND 1 AS in_range
FROM bt WHERE section = 'early_warning' AND metric IN ('auc', 'precision') ORDER BY 1, 2, 3;
SELECT model, value AS lost_red FROM bt WHERE section = 'early_warning' AND metric = 'red' ORDER BY 1;
-- weekly scoring dates
SELECT count(DISTINCT as_of_date) AS dates, min(as_of_date), max(as_of_date)
FROM churn.backtest_scores('test_backtest.purchases', '2024-06-30', 90, 'rules', lookback => 12, step_days => 7);
SELECT * FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90, step_days => 0);
SELECT * FROM churn.backtest('test_backtest.purchases', '2024-06-30', 90, gone_days => 0);
