-- churn_warning demo, part 2: the warnings report.  Run by scripts/demo.sh
-- after scripts/demo.sql, in the same database (schema churn_demo with
-- purchases, customers, histories, engagement, features).
\set ON_ERROR_STOP 1
\set QUIET on
\pset footer off
SET client_min_messages = warning;

\echo
\echo '== 7. Warning tiers as of 2024-12-31 (logistic model trained in the database on earlier dates) =='
-- per customer: churn probability over the next 180 days, annual value
-- (trailing 365-day spend when the Gamma-Gamma fit is not usable) and tier
DROP TABLE IF EXISTS churn_demo.warnings;
CREATE TABLE churn_demo.warnings AS
SELECT s.customer_id::bigint AS customer_id, s.p_churn, s.annual_value, s.value_source,
       s.zone, s.level, s.code, s.value_segment, s.lead_days, s.last_purchase
FROM churn.backtest_scores('churn_demo.purchases', '2024-12-31', 180, 'logit') s;
SELECT zone, code, value_segment AS value, count(*) AS customers,
       round(avg(p_churn)::numeric, 3) AS mean_p_churn,
       round(avg(annual_value)::numeric, 0) AS mean_annual_value,
       min(lead_days) AS lead_days
FROM churn_demo.warnings
GROUP BY zone, level, code, value_segment
ORDER BY CASE zone WHEN 'red' THEN 1 WHEN 'yellow' THEN 2 WHEN 'blue' THEN 3 ELSE 4 END, level,
         CASE value_segment WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END;
SELECT zone, count(*) AS customers, round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct
FROM churn_demo.warnings GROUP BY zone
ORDER BY CASE zone WHEN 'red' THEN 1 WHEN 'yellow' THEN 2 WHEN 'blue' THEN 3 ELSE 4 END;

\echo
\echo '== 8. The most urgent cases: playbook action and the warning signs behind them =='
-- drivers: the warning signs that fire for the customer (the rule model's
-- rules, with engagement), strongest first
DROP TABLE IF EXISTS churn_demo.warning_drivers;
CREATE TABLE churn_demo.warning_drivers AS
SELECT w.customer_id, (churn.rule_score(f.f, churn.engagement_features(e.engagement, '2024-12-31', 30))).fired AS drivers
FROM churn_demo.warnings w
JOIN (SELECT customer_id, churn.features(history, '2024-12-31') AS f FROM churn_demo.histories) f USING (customer_id)
LEFT JOIN churn_demo.engagement e USING (customer_id)
WHERE w.zone <> 'none';
SELECT to_regprocedure('churn.raise_alert(text,churn.tier,float8,float8,text[],text,timestamptz)') IS NOT NULL
       AND to_regclass('churn.open_alerts') IS NOT NULL AS have_alerts \gset
\if :have_alerts
-- raise an alert for every customer in a warning zone; the playbook gives
-- action, channel and SLA
SELECT count(churn.raise_alert(w.customer_id::text,
                               ROW(w.zone, w.level, w.code, w.value_segment, w.lead_days)::churn.tier,
                               w.p_churn, w.annual_value, coalesce(d.drivers, '{}'), 'demo'))
       AS alerts_raised
FROM churn_demo.warnings w LEFT JOIN churn_demo.warning_drivers d USING (customer_id)
WHERE w.zone <> 'none';
SELECT a.code, a.customer_id AS customer, a.value_segment AS value, round(a.p_churn::numeric, 3) AS p_churn,
       round(a.annual_value::numeric, 0) AS annual_value, a.action, a.channel, a.sla_hours,
       array_to_string(a.drivers[1:3], ', ') AS drivers
FROM churn.open_alerts a WHERE a.pipeline = 'demo'
ORDER BY a.urgency DESC, a.annual_value DESC NULLS LAST, a.customer_id
LIMIT 12;
\else
\echo '(alert handling is not installed: showing tiers and drivers only)'
SELECT w.code, w.customer_id AS customer, w.value_segment AS value, round(w.p_churn::numeric, 3) AS p_churn,
       round(w.annual_value::numeric, 0) AS annual_value, array_to_string(d.drivers[1:3], ', ') AS drivers
FROM churn_demo.warnings w LEFT JOIN churn_demo.warning_drivers d USING (customer_id)
WHERE w.zone IN ('red', 'yellow')
ORDER BY w.zone = 'red' DESC, w.level, w.annual_value DESC, w.customer_id
LIMIT 12;
\endif

\echo
\echo '== 9. Backtest: the same model at 2024-06-30, checked against the next 180 days and the recorded ground truth =='
CREATE TEMP TABLE bt AS
SELECT m.model, b.* FROM unnest(ARRAY['rules', 'bgnbd', 'logit']) WITH ORDINALITY m(model, o),
     churn.backtest('churn_demo.purchases', '2024-06-30', 180, m.model) b;
SELECT model,
       round(max(value) FILTER (WHERE section = 'summary' AND metric = 'auc')::numeric, 3) AS auc,
       round(max(value) FILTER (WHERE section = 'summary' AND metric = 'brier')::numeric, 3) AS brier,
       max(n) FILTER (WHERE section = 'zone' AND label = 'red+yellow' AND metric = 'customers') AS red_yellow,
       round(max(value) FILTER (WHERE section = 'zone' AND label = 'red+yellow' AND metric = 'precision')::numeric, 3) AS precision,
       round(max(value) FILTER (WHERE section = 'zone' AND label = 'red+yellow' AND metric = 'recall')::numeric, 3) AS recall,
       round(max(value) FILTER (WHERE section = 'lift' AND bin = 1 AND metric = 'lift')::numeric, 2) AS top10_lift,
       max(value) FILTER (WHERE section = 'lead_time' AND metric = 'median_days') AS median_lead_days
FROM bt GROUP BY model ORDER BY min(CASE model WHEN 'rules' THEN 1 WHEN 'bgnbd' THEN 2 ELSE 3 END);
\echo 'Logistic model, per zone at 2024-06-30 (precision = share that made no purchase in the next 180 days):'
SELECT label AS zone,
       max(n) FILTER (WHERE metric = 'customers') AS customers,
       round(max(value) FILTER (WHERE metric = 'precision')::numeric, 3) AS precision,
       round(max(value) FILTER (WHERE metric = 'recall')::numeric, 3) AS recall
FROM bt WHERE model = 'logit' AND section = 'zone'
GROUP BY label ORDER BY min(CASE label WHEN 'red' THEN 1 WHEN 'yellow' THEN 2 WHEN 'blue' THEN 3
                                       WHEN 'none' THEN 4 ELSE 5 END);
\echo 'Against the generator''s ground truth (gone: last purchase on or before 2024-06-30; leaving: still buying then, gone within 180 days):'
SELECT CASE WHEN c.will_churn AND c.churn_date <= date '2024-06-30' + 1 THEN 'gone'
            WHEN c.will_churn AND c.churn_date <= date '2024-06-30' + 180 THEN 'leaving'
            ELSE 'stays' END AS truth,
       count(*) AS customers,
       round(avg((s.zone IN ('red', 'yellow'))::int)::numeric, 3) AS share_red_yellow,
       round(avg(s.p_churn)::numeric, 3) AS mean_p_churn
FROM churn.backtest_scores('churn_demo.purchases', '2024-06-30', 180, 'logit') s
JOIN churn_demo.customers c ON c.customer_id::text = s.customer_id
GROUP BY 1 ORDER BY 1;
