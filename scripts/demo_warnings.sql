-- churn_warning demo, part 2: the warnings report.  Run by scripts/demo.sh
-- after scripts/demo.sql, in the same database (schema churn_demo with
-- purchases, customers, histories, engagement, features).
\set ON_ERROR_STOP 1
\set QUIET on
\pset footer off
SET client_min_messages = warning;

\echo
\echo '== 7. Warning tiers as of 2024-12-31 (model auto: trained in the database on the chain''s own history and events) =='
-- per customer: P(gone by the end of the next 90 days), annual value,
-- lifecycle and tier; a lost customer is reactivated (blue), never called
DROP TABLE IF EXISTS churn_demo.warnings;
CREATE TABLE churn_demo.warnings AS
SELECT s.customer_id::bigint AS customer_id, s.p_churn, s.annual_value, s.value_source,
       s.zone, s.level, s.code, s.value_segment, s.lead_days, s.last_purchase, s.lifecycle
FROM churn.backtest_scores('churn_demo.purchases', '2024-12-31', 90, events => 'churn_demo.events') s;
SELECT zone, code, value_segment AS value, count(*) AS customers,
       round(avg(p_churn)::numeric, 3) AS mean_p_churn,
       round(avg(annual_value)::numeric, 0) AS mean_annual_value,
       min(lead_days) AS lead_days
FROM churn_demo.warnings
GROUP BY zone, level, code, value_segment
ORDER BY CASE zone WHEN 'red' THEN 1 WHEN 'yellow' THEN 2 WHEN 'blue' THEN 3 ELSE 4 END, level,
         CASE value_segment WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END;
\echo 'Zones by lifecycle: warnings are for customers who can still be kept; lost customers go to reactivation (blue):'
SELECT lifecycle, count(*) AS customers,
       count(*) FILTER (WHERE zone = 'red') AS red, count(*) FILTER (WHERE zone = 'yellow') AS yellow,
       count(*) FILTER (WHERE zone = 'blue') AS blue, count(*) FILTER (WHERE zone = 'none') AS none
FROM churn_demo.warnings GROUP BY lifecycle
ORDER BY CASE lifecycle WHEN 'new' THEN 1 WHEN 'active' THEN 2 WHEN 'lapsing' THEN 3 ELSE 4 END;

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
WHERE w.zone <> 'none' AND w.lifecycle <> 'lost';
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
WHERE w.zone <> 'none' AND w.lifecycle <> 'lost';
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
\echo '== 9. Backtest: early warning at the 13 weekly dates to 2024-06-30, against what happened next and the recorded ground truth =='
CREATE TEMP TABLE bt AS
SELECT m.model, m.o, b.* FROM unnest(ARRAY['auto', 'rules', 'logit']) WITH ORDINALITY m(model, o),
     churn.backtest('churn_demo.purchases', '2024-06-30', 90, m.model, lookback => 12, step_days => 7,
                    events => 'churn_demo.events') b;
\echo 'Among customers not yet lost at 2024-06-30 (label: gone by the end of the 90-day horizon):'
SELECT model,
       round(max(value) FILTER (WHERE section = 'early_warning' AND label = 'active' AND metric = 'auc')::numeric, 3) AS auc,
       round(max(value) FILTER (WHERE section = 'early_warning' AND label = 'recency_baseline' AND metric = 'auc')::numeric, 3) AS recency_auc,
       max(n) FILTER (WHERE section = 'early_warning' AND label = 'red+yellow' AND metric = 'precision') AS red_yellow,
       round(max(value) FILTER (WHERE section = 'early_warning' AND label = 'red+yellow' AND metric = 'precision')::numeric, 3) AS precision,
       round(max(value) FILTER (WHERE section = 'early_warning' AND label = 'recency_baseline' AND metric = 'precision')::numeric, 3) AS recency_precision,
       round(max(value) FILTER (WHERE section = 'lead_time' AND metric = 'warned_14_days_before_share')::numeric, 3) AS warned_14d_before,
       max(value) FILTER (WHERE section = 'lead_time' AND metric = 'median_days') AS median_lead_days
FROM bt GROUP BY model ORDER BY min(o);
\echo 'The auto model''s choice (validation AUC of each candidate on its newest training date):'
SELECT label, metric, round(value::numeric, 4) AS value FROM bt WHERE model = 'auto' AND section = 'fit' AND label = 'auto';
\echo 'Against the generator''s ground truth (gone: last purchase on or before 2024-06-30; leaving: still buying then, gone within 90 days):'
SELECT CASE WHEN c.will_churn AND c.churn_date <= date '2024-06-30' + 1 THEN 'gone'
            WHEN c.will_churn AND c.churn_date <= date '2024-06-30' + 90 THEN 'leaving'
            ELSE 'stays' END AS truth,
       count(*) AS customers,
       round(avg((s.zone IN ('red', 'yellow'))::int)::numeric, 3) AS share_red_yellow,
       round(avg((s.zone = 'blue' AND s.lifecycle = 'lost')::int)::numeric, 3) AS share_reactivation,
       round(avg(s.p_churn)::numeric, 3) AS mean_p_churn
FROM churn.backtest_scores('churn_demo.purchases', '2024-06-30', 90, events => 'churn_demo.events') s
JOIN churn_demo.customers c ON c.customer_id::text = s.customer_id
GROUP BY 1 ORDER BY 1;
