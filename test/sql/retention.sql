-- Measurable retention (part 935): alerts close themselves from the
-- purchase data, a control group is held out, and churn.retention_effect
-- measures the uplift with a Newcombe interval.  A simulated campaign:
-- treated customers buy again with probability 0.5, control customers 0.3.
CREATE SCHEMA test_retention;
SET search_path = test_retention;
SET TimeZone = 'UTC';
-- 6,000 customers who bought every 10 days until 20 days ago
CREATE TABLE purchases (customer_id text, ts timestamptz, amount numeric);
INSERT INTO purchases
SELECT 'c' || c, (current_date - 20 - 10 * k)::timestamptz + interval '12 hours', 20 + c % 7
FROM generate_series(1, 6000) c, generate_series(0, 9) k;
-- a model that puts every customer in red, so every one gets an alert
SELECT churn.register_model('ret_all', ROW(ARRAY[10, 0]::float8[], NULL, NULL, NULL, NULL, NULL)::churn.logit,
                            ARRAY['x'], 90);
SELECT pipeline, model FROM churn.create_pipeline('t_ret', 'purchases', model => 'ret_all', control_share => 0.3,
                                                  outcome_days => 30, start_at => '2100-01-01');
SELECT status, alerts_raised, alerts_closed FROM churn.refresh('t_ret');

-- about 30% held out, the same customers on every run; staff see treatment only
-- (the draw hashes the pipeline id with the customer: counts vary with the id, shares do not)
SELECT arm, round(count(*) / 6000.0, 1) AS share,
       bool_and(arm = churn.alert_arm(pipeline_id, customer_id, 0.3)) AS reproducible,
       bool_and((arm = 'control') = (action = 'control group: no action')) AS no_action_for_control
FROM churn.alert WHERE pipeline = 't_ret' GROUP BY arm ORDER BY arm;
SELECT count(*) = (SELECT count(*) FROM churn.alert WHERE pipeline = 't_ret' AND arm = 'treatment') AS treatment_shown,
       count(*) FILTER (WHERE a.arm = 'control') AS control_shown
FROM churn.open_alerts o JOIN churn.alert a USING (alert_id) WHERE o.pipeline = 't_ret';

-- staff close one treatment alert by hand; a purchase later does not override it
SELECT alert_id AS manual FROM churn.alert WHERE pipeline = 't_ret' AND arm = 'treatment' ORDER BY alert_id LIMIT 1 \gset
SELECT status FROM churn.alert_close(:manual, 'dismissed', 'anna', 'moved away');

-- the campaign: a deterministic draw per customer, 0.5 for treatment, 0.3 for control
INSERT INTO purchases
SELECT a.customer_id, current_date + 1 + interval '10 hours', 30
FROM churn.alert a
WHERE a.pipeline = 't_ret'
  AND (hashtextextended(a.customer_id, 77) & 9007199254740991)::float8 / 9007199254740992
      < CASE a.arm WHEN 'treatment' THEN 0.5 ELSE 0.3 END;
-- the next refresh closes the alerts of those who bought as retained
SELECT status, alerts_closed > 0 AS closed_some FROM churn.refresh('t_ret');
-- outcome_days later the rest close as churned
UPDATE churn.alert SET opened_at = opened_at - interval '200 days'
WHERE pipeline = 't_ret' AND status IN ('open', 'contacted');
SELECT status, alerts_closed > 0 AS closed_some FROM churn.refresh('t_ret');
SELECT status, round(count(*) / 6000.0, 1) AS share FROM churn.alert WHERE pipeline = 't_ret' GROUP BY 1 ORDER BY 1;
SELECT status FROM churn.alert WHERE alert_id = :manual;
-- the audit trail says who closed each alert
SELECT e.actor, e.to_status, count(*) > 0 AS some,
       bool_and(e.note LIKE 'bought on %, within 30 days of the alert' OR e.note = 'no purchase within 30 days of the alert'
                OR e.actor <> 'churn.outcome') AS notes
FROM churn.alert_event e JOIN churn.alert a USING (alert_id)
WHERE a.pipeline = 't_ret' AND e.to_status IN ('retained', 'churned', 'dismissed')
GROUP BY 1, 2 ORDER BY 1, 2;

-- the effect: uplift within 0.05 of 0.2, and its interval covers 0.2
SELECT zone, arm, alerts = closed + (arm = 'treatment')::int AS all_closed, round(retention_rate::numeric, 1) AS rate,
       abs(uplift - 0.2) < 0.05 AS uplift_near_0_2, uplift_low < 0.2 AND uplift_high > 0.2 AS covers_0_2,
       uplift_low > 0 AS significant, value_kept > 0 AS value_kept
FROM churn.retention_effect WHERE pipeline = 't_ret' ORDER BY zone, arm;

-- with equal rates the interval covers 0
CREATE TABLE purchases2 AS SELECT 'd' || substr(customer_id, 2) AS customer_id, ts, amount FROM purchases
WHERE ts < current_date;
SELECT pipeline FROM churn.create_pipeline('t_eq', 'purchases2', model => 'ret_all', control_share => 0.3,
                                           outcome_days => 30, start_at => '2100-01-01');
SELECT status FROM churn.refresh('t_eq');
INSERT INTO purchases2
SELECT a.customer_id, current_date + 1 + interval '10 hours', 30 FROM churn.alert a
WHERE a.pipeline = 't_eq' AND (hashtextextended(a.customer_id, 91) & 9007199254740991)::float8 / 9007199254740992 < 0.4;
SELECT status FROM churn.refresh('t_eq');
UPDATE churn.alert SET opened_at = opened_at - interval '200 days' WHERE pipeline = 't_eq' AND status = 'open';
SELECT status FROM churn.refresh('t_eq');
SELECT arm, alerts = closed AS all_closed, round(retention_rate::numeric, 1) AS rate, uplift_low < 0 AND uplift_high > 0 AS covers_0
FROM churn.retention_effect WHERE pipeline = 't_eq' ORDER BY arm;

-- the interval itself: Newcombe (1998) table II, 56/70 vs 48/80 -> 0.0524 .. 0.3339
SELECT round(low::numeric, 4) AS low, round(high::numeric, 4) AS high FROM churn.newcombe_interval(56, 70, 48, 80);
SELECT round(low::numeric, 4) AS low, round(high::numeric, 4) AS high FROM churn.wilson_interval(0, 10);
SELECT * FROM churn.newcombe_interval(1, 0, 1, 10);

-- a plan within a budget: open treatment alerts, most expected value kept per unit of cost first
SELECT pipeline FROM churn.create_pipeline('t_plan', 'purchases2', model => 'ret_all', start_at => '2100-01-01');
SELECT status FROM churn.refresh('t_plan');
-- the built-in call (cost 60) is worth less than it keeps for these low-value customers: nothing to buy
SELECT count(*) AS rows FROM churn.retention_plan('t_plan', 1000);
-- a cheaper call: cost 5, prior uplift 0.2
SELECT churn.playbook_set('R1', 'call', 'phone', 24);
UPDATE churn.playbook SET cost = 5, uplift_prior = 0.2 WHERE code = 'R1' AND NOT builtin;
SELECT count(*) > 0 AS rows, sum(cost) <= 1000 AS within_budget, max(cumulative_cost) <= 1000 AS cumulative_within,
       bool_and(expected_saved_value > 0) AS all_worth_it, min(uplift_source) AS uplift_source
FROM churn.retention_plan('t_plan', 1000);
SELECT why LIKE 'p_churn % x annual value % x prior uplift 0.200 - cost 5.00 = %' AS explained
FROM churn.retention_plan('t_plan', 1000) LIMIT 1;
-- it keeps at least as much as calling the highest p_churn first with the same budget
WITH plan AS (SELECT sum(expected_saved_value) AS v FROM churn.retention_plan('t_plan', 1000)),
top_p AS (SELECT c.expected_saved_value AS v, sum(c.cost) OVER (ORDER BY c.p_churn DESC, c.alert_id) AS cum
          FROM churn.retention_candidates('t_plan') c)
SELECT (SELECT v FROM plan) >= (SELECT sum(v) FROM top_p WHERE cum <= 1000) AS beats_highest_p_first;
-- the candidates: every open treatment alert, priced as the plan prices them
SELECT count(*) = (SELECT count(*) FROM churn.alert WHERE pipeline = 't_plan' AND status = 'open' AND arm = 'treatment')
           AS every_alert,
       bool_and(cost = 5 AND uplift = 0.2 AND uplift_source = 'prior'
                AND expected_saved_value = p_churn * annual_value * 0.2 - 5) AS priced
FROM churn.retention_candidates('t_plan');
SELECT count(*) AS rows FROM churn.retention_plan('t_plan', 0);
-- a user action without a cost is refused
UPDATE churn.playbook SET cost = NULL WHERE code = 'R1' AND NOT builtin;
SELECT * FROM churn.retention_plan('t_plan', 1000);
SELECT churn.playbook_reset('R1');
\set SHOW_CONTEXT never
SELECT * FROM churn.retention_plan('t_plan', -1);
SELECT * FROM churn.retention_plan('t_plan', 'NaN');
SELECT * FROM churn.retention_plan('nope', 10);
SELECT * FROM churn.retention_candidates('nope');
SELECT * FROM churn.retention_candidates('t_eq', 0);

-- bad input
\set SHOW_CONTEXT never
SELECT churn.create_pipeline('x', 'purchases', control_share => 1);
SELECT churn.create_pipeline('x', 'purchases', control_share => -0.1);
SELECT churn.create_pipeline('x', 'purchases', control_share => 'NaN');
SELECT churn.create_pipeline('x', 'purchases', outcome_days => 0);
SELECT pipeline FROM churn.alter_pipeline('t_eq', control_share => 0.5);
SELECT control_share, outcome_days FROM churn.pipeline WHERE name = 't_eq';

-- a control share per zone overrides control_share in the zones it names
SELECT pipeline FROM churn.create_pipeline('t_zone', 'purchases', model => 'ret_all', control_share => 0.1,
                                           control_zones => '{"red": 0.6}', start_at => '2100-01-01');
SELECT status FROM churn.refresh('t_zone');
SELECT zone, round(avg((arm = 'control')::int), 1) AS control_share,
       bool_and(arm = churn.alert_arm(pipeline_id, customer_id, 0.6)) AS reproducible
FROM churn.alert WHERE pipeline = 't_zone' GROUP BY zone;
SELECT pipeline FROM churn.alter_pipeline('t_zone', control_zones => '{}');
SELECT control_share, control_zones FROM churn.pipeline WHERE name = 't_zone';
SELECT churn.create_pipeline('x', 'purchases', control_zones => '{"green": 0.1}');
SELECT churn.create_pipeline('x', 'purchases', control_zones => '{"red": 1}');
SELECT churn.create_pipeline('x', 'purchases', control_zones => '{"red": "a lot"}');
SELECT churn.create_pipeline('x', 'purchases', control_zones => '[0.1]');
SELECT churn.drop_pipeline('t_zone');

SELECT churn.drop_pipeline(p) FROM unnest(ARRAY['t_ret', 't_plan']) p;
DELETE FROM churn.model WHERE name = 'ret_all';
DROP SCHEMA test_retention CASCADE;

-- stores: the store of most of a customer's purchase rows travels with the
-- warning and the alert; a store column of any type works (compared as text)
CREATE SCHEMA test_stores;
CREATE TABLE test_stores.sales (customer_id int, ts timestamptz, amount numeric, shop int);
INSERT INTO test_stores.sales
SELECT c, current_date - 20 - 10 * k + interval '12 hours', 25, CASE WHEN k < 7 THEN c % 3 ELSE 9 END
FROM generate_series(1, 300) c, generate_series(0, 9) k;
SELECT churn.register_model('ret_all2', ROW(ARRAY[10, 0]::float8[], NULL, NULL, NULL, NULL, NULL)::churn.logit,
                            ARRAY['x'], 90);
SELECT pipeline FROM churn.create_pipeline('t_store', 'test_stores.sales', model => 'ret_all2', store_col => 'shop',
                                           start_at => '2100-01-01');
SELECT status FROM churn.refresh('t_store');
SELECT store, count(*) FROM churn.current_warnings WHERE pipeline = 't_store' GROUP BY 1 ORDER BY 1;
SELECT store, count(*) FROM churn.alert WHERE pipeline = 't_store' GROUP BY 1 ORDER BY 1;
-- new purchases are captured with their store: customer 1 now buys mostly in shop 9
INSERT INTO test_stores.sales SELECT 1, now() - interval '1 hour' * k, 30, 9 FROM generate_series(1, 5) k;
SELECT status, mode FROM churn.refresh('t_store');
SELECT customer_id, store FROM churn.current_warnings WHERE pipeline = 't_store' AND customer_id IN ('1', '2')
ORDER BY 1;
-- an UPDATE of a store re-reads the source
UPDATE test_stores.sales SET shop = 7 WHERE customer_id = 2;
SELECT status, mode FROM churn.refresh('t_store');
SELECT customer_id, store FROM churn.current_warnings WHERE pipeline = 't_store' AND customer_id = '2';
-- the BI views: alerts by store, the funnel, SLA breaches, the effect per month
SELECT store, zone, arm, alerts, open, overdue > 0 AS some_overdue FROM churn.alerts_by_store
WHERE pipeline = 't_store' ORDER BY store;
SELECT store, overdue_now > 0 AS some_overdue_now, contacted_late, contacted_in_time FROM churn.sla_breaches
WHERE pipeline = 't_store' ORDER BY store;
SELECT zone, raised = retained + churned + dismissed + still_open AS adds_up, still_open FROM churn.outcome_funnel
WHERE pipeline IN ('t_store', 't_plan') ORDER BY pipeline, zone;
SELECT arm, closed > 0 AS closed, round(retention_rate::numeric, 1) AS rate FROM churn.retention_effect_monthly
WHERE pipeline = 't_eq' ORDER BY arm, rate;
-- a store's daily capacity bounds the plan
SELECT churn.playbook_set('R1', 'call', 'phone', 24);
UPDATE churn.playbook SET cost = 1, uplift_prior = 0.2 WHERE code = 'R1' AND NOT builtin;
INSERT INTO churn.store_capacity VALUES ('t_store', '0', 5);
SELECT store, count(*) FROM churn.retention_plan('t_store', 10000) GROUP BY 1 ORDER BY 1;
SELECT churn.playbook_reset('R1');
DELETE FROM churn.store_capacity WHERE pipeline = 't_store';
-- bad store columns
SELECT churn.create_pipeline('x', 'test_stores.sales', store_col => 'nope');
CREATE TABLE test_stores.odd (customer_id int, ts timestamptz, amount numeric, shop point);
SELECT churn.create_pipeline('x', 'test_stores.odd', store_col => 'shop');
SELECT churn.drop_pipeline(p) FROM unnest(ARRAY['t_store', 't_eq']) p;
DELETE FROM churn.model WHERE name = 'ret_all2';
DROP SCHEMA test_stores CASCADE;
