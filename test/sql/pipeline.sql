-- Pipelines: create, refresh (full, then incremental), late purchases,
-- source changes that force a re-read, the views, alter/pause/resume/drop
-- and the errors.  Purchases are shifted to end today, so every result is
-- the same on any day.  The pipelines start in 2100: the background worker
-- never runs them during the test.
CREATE SCHEMA test_pipeline;
SET search_path = test_pipeline;
SET TimeZone = 'UTC';
CREATE TABLE purchases (customer_id text, ts timestamptz, amount numeric);
INSERT INTO purchases
SELECT customer_id::text, ts + (current_date - date '2024-12-31') * interval '1 day', amount
FROM churn.demo_purchases(400, 11);
SELECT count(*) AS purchases, count(DISTINCT customer_id) AS customers FROM purchases;

-- the full recomputation every stored history must equal
CREATE VIEW drift AS
WITH truth AS (
    SELECT customer_id, d.day, d.purchases, d.amount AS spend
    FROM (SELECT customer_id, churn.history_agg(ts, amount) h FROM purchases
          WHERE customer_id IS NOT NULL GROUP BY 1) s, churn.history_days(s.h) d
), stored AS (
    SELECT c.customer_id, d.day, d.purchases, d.amount AS spend
    FROM churn.pipeline_customer c JOIN churn.pipeline p USING (pipeline_id), churn.history_days(c.history) d
    WHERE p.name = 't_shop'
)
SELECT count(*) AS differing_days
FROM truth FULL JOIN stored USING (customer_id, day)
WHERE truth.purchases IS DISTINCT FROM stored.purchases
   OR NOT abs(truth.spend - stored.spend) <= 1e-9 * greatest(1, abs(truth.spend));

SELECT pipeline, state, last_run_at, last_status, next_run_at, consecutive_failures, owner, source, model,
       policy, schedule, time_zone, capture
FROM churn.create_pipeline('t_shop', 'purchases', model => 'bgnbd', schedule => '1 day', time_zone => 'UTC',
                           start_at => '2100-01-01 06:00 UTC');

-- the first refresh reads the whole source
SELECT pipeline, trigger, status, as_of = current_date AS today, mode, new_purchase_rows, customers_merged,
       customers_total, customers_scored, snapshot_rows_written, tier_changes, alerts_raised, error_message
FROM churn.refresh('t_shop');
SELECT * FROM drift;
SELECT zone, code, count(*) FROM churn.current_warnings WHERE pipeline = 't_shop' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) = count(p_alive) AS all_have_p_alive, bool_and(p_churn BETWEEN 0 AND 1) AS p_in_range,
       bool_and(as_of = current_date) AS as_of_today, count(DISTINCT as_of) AS as_of_values
FROM churn.current_warnings WHERE pipeline = 't_shop';
SELECT count(*) AS alerts, count(*) FILTER (WHERE zone IN ('red', 'yellow')) AS red_or_yellow
FROM churn.alert WHERE pipeline = 't_shop';
SELECT count(*) AS tier_changes FROM churn.tier_changes WHERE pipeline = 't_shop';

-- the daily refit of BG/NBD is exactly the fit of the customers' features,
-- also when the refresh fits in parallel (partial fits are summed in key
-- order): a new day (as_of set back) with parallel plans made cheap and
-- the histories analyzed (right after a first read the statistics say the
-- slice is nearly empty, and a fit that small is not worth workers)
ANALYZE churn.pipeline_customer;
CREATE FUNCTION fit_plan() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    line text;
    plan text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) SELECT churn.bgnbd_fit(f.x, f.t_x / 7, f.t / 7)
                         FROM churn.pipeline_customer c
                         CROSS JOIN LATERAL churn.features(c.history, current_date, 90) f
                         WHERE c.pipeline_id = (SELECT pipeline_id FROM churn.pipeline WHERE name = ''t_shop'')
                           AND f.first_purchase IS NOT NULL' LOOP
        plan := plan || line;
    END LOOP;
    RETURN CASE WHEN plan LIKE '%Gather%Partial Aggregate%' THEN 'parallel' ELSE 'serial' END;
END
$$;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
SET enable_indexscan = off;
SELECT fit_plan();
UPDATE churn.pipeline SET as_of = as_of - 1 WHERE name = 't_shop';
SELECT mode, customers_scored, snapshot_rows_written, tier_changes FROM churn.refresh('t_shop');
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET parallel_leader_participation;
RESET enable_indexscan;
SET max_parallel_workers_per_gather = 0;
SELECT fit_plan();
SELECT p.bgnbd = (SELECT churn.bgnbd_fit(f.x, f.t_x / 7, f.t / 7)
                  FROM churn.pipeline_customer c
                  CROSS JOIN LATERAL churn.features(c.history, p.as_of, p.window_days) f
                  WHERE c.pipeline_id = p.pipeline_id AND f.first_purchase IS NOT NULL) AS same_fit
FROM churn.pipeline p WHERE p.name = 't_shop';
RESET max_parallel_workers_per_gather;
DROP FUNCTION fit_plan();

-- nothing new: nothing rescored or written
SELECT mode, new_purchase_rows, customers_merged, customers_scored, snapshot_rows_written, tier_changes
FROM churn.refresh('t_shop');

-- new purchases today, a late one (60 days ago) and a new customer: only
-- they are merged and rescored
INSERT INTO purchases VALUES ('1', now(), 25), ('2', now() - interval '60 days', 40), ('new', now(), 15),
                             ('1', now(), -5), ('3', now(), NULL), (NULL, now(), 99);
SELECT mode, new_purchase_rows, customers_merged, customers_scored, snapshot_rows_written
FROM churn.refresh('t_shop');
SELECT * FROM drift;
SELECT customer_id, code, previous_code IS NOT NULL OR changed_at IS NOT NULL AS tracked
FROM churn.current_warnings WHERE pipeline = 't_shop' AND customer_id = 'new';

-- a purchase inserted and rolled back is never counted
BEGIN;
INSERT INTO purchases VALUES ('4', now(), 1000);
ROLLBACK;
SELECT new_purchase_rows FROM churn.refresh('t_shop');
SELECT * FROM drift;

-- UPDATE, DELETE and TRUNCATE make the next refresh re-read the source
UPDATE purchases SET amount = amount + 1 WHERE customer_id = '5';
SELECT mode, customers_merged FROM churn.refresh('t_shop');
SELECT * FROM drift;
UPDATE purchases SET amount = amount WHERE false;
UPDATE purchases SET amount = amount WHERE customer_id = '7';
DELETE FROM purchases WHERE false;
SELECT mode FROM churn.refresh('t_shop');
DELETE FROM purchases WHERE customer_id = 'new';
SELECT mode, customers_merged, customers_total FROM churn.refresh('t_shop');
SELECT * FROM drift;
SELECT count(*) FROM churn.current_warnings WHERE pipeline = 't_shop' AND customer_id = 'new';

-- the run history and the status
SELECT run_id > 0 AS has_id, trigger, status, mode, error_message FROM churn.pipeline_runs
WHERE pipeline = 't_shop' ORDER BY run_id;
SELECT pipeline, state, last_status, last_error, next_run_at, consecutive_failures, customers
FROM churn.pipeline_status WHERE pipeline = 't_shop';

-- alter: schedule (the next run moves to the new slot), model, rename
SELECT pipeline, schedule, next_run_at FROM churn.alter_pipeline('t_shop', schedule => '6 hours',
                                                                 start_at => '2100-01-01 01:00 UTC');
SELECT churn.register_rules('test_pipeline_rules');
SELECT pipeline, model FROM churn.alter_pipeline('t_shop', model => 'test_pipeline_rules');
SELECT mode, customers_scored = customers_total AS rescored_all FROM churn.refresh('t_shop');
-- the pipeline's set-based rule scoring equals churn.predict, customer by customer
SELECT count(*) AS customers,
       count(*) FILTER (WHERE abs(p_churn - churn.predict('test_pipeline_rules', churn.feature_vector(features)))
                              > 1e-12) AS differ
FROM churn.current_warnings WHERE pipeline = 't_shop';
SELECT count(*) FILTER (WHERE cardinality(drivers) > 0) > 0 AS has_drivers
FROM churn.current_warnings WHERE pipeline = 't_shop' AND zone <> 'none';
SELECT pipeline FROM churn.alter_pipeline('t_shop', new_name => 't_shop2');
SELECT pipeline FROM churn.alter_pipeline('t_shop2', new_name => 't_shop');

-- pause and resume
SELECT pipeline, state, next_run_at FROM churn.pause_pipeline('t_shop');
SELECT status FROM churn.refresh('t_shop');   -- a paused pipeline can still be refreshed by hand
SELECT pipeline, state, next_run_at FROM churn.resume_pipeline('t_shop');

-- churn.history_spend: net spend of the days in (as_of - days, as_of]
SELECT churn.history_spend(h, '2024-01-10', 5) AS last_5_days, churn.history_spend(h, '2024-01-10', 1) AS last_day,
       churn.history_spend(h, '2023-12-31', 30) AS before_first
FROM (SELECT churn.history_agg(d, a) AS h
      FROM (VALUES (date '2024-01-01', 10.0::float8), ('2024-01-06', 20), ('2024-01-08', -5), ('2024-01-10', 7),
                   ('2024-01-11', 100)) v(d, a)) s;
SELECT churn.history_spend(NULL, '2024-01-10', 5) AS null_history;

-- errors
\set VERBOSITY terse
SELECT churn.history_spend(churn.history_agg(date '2024-01-01', 1.0::float8), '2024-01-10', 0);
SELECT churn.create_pipeline('t_shop', 'purchases');
SELECT churn.create_pipeline(NULL, 'purchases');
SELECT churn.create_pipeline('', 'purchases');
SELECT churn.create_pipeline('x', 'purchases', customer_col => 'cust');
SELECT churn.create_pipeline('x', 'purchases', model => 'nope');
SELECT churn.create_pipeline('x', 'purchases', policy => 'nope');
SELECT churn.create_pipeline('x', 'purchases', schedule => '10 milliseconds');
SELECT churn.create_pipeline('x', 'purchases', time_zone => 'Mars/Olympus');
SELECT churn.create_pipeline('x', 'purchases', horizon_days => 0);
SELECT churn.create_pipeline('x', 'purchases', alert_zones => '{purple}');
SELECT churn.create_pipeline('x', 'purchases', ts_col => 'amount');
SELECT churn.create_pipeline('x', 'purchases', amount_col => 'customer_id');
SELECT churn.create_pipeline('x', 'pg_catalog.pg_class_oid_index');
SELECT churn.refresh('nope');
SELECT churn.alter_pipeline('nope', schedule => '1 day');
SELECT churn.drop_pipeline('nope');
SELECT churn.refresh(NULL);

-- a source that is not a plain table is re-read on every refresh
CREATE VIEW purchases_view AS SELECT * FROM purchases;
SELECT pipeline, capture FROM churn.create_pipeline('t_shop_view', 'purchases_view', start_at => '2100-01-01');
SELECT mode, customers_total FROM churn.refresh('t_shop_view');
SELECT mode, customers_merged FROM churn.refresh('t_shop_view');

-- a source whose table is dropped fails with a clear error
CREATE TABLE gone (customer_id text, ts date, amount float8);
SELECT pipeline FROM churn.create_pipeline('gone', 'gone', start_at => '2100-01-01');
DROP TABLE gone;
SELECT churn.refresh('gone');
\set VERBOSITY default

-- drop removes everything, the capture triggers too
SELECT churn.drop_pipeline('t_shop_view');
SELECT churn.drop_pipeline('gone');
SELECT churn.drop_pipeline('t_shop');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'purchases'::regclass;
SELECT (SELECT count(*) FROM churn.pipeline) AS pipelines, (SELECT count(*) FROM churn.pipeline_customer) AS histories,
       (SELECT count(*) FROM churn.pipeline_warning) AS warnings, (SELECT count(*) FROM churn.pipeline_queue) AS queued,
       (SELECT count(*) FROM churn.pipeline_run) AS runs;

DELETE FROM churn.alert_event WHERE alert_id IN (SELECT alert_id FROM churn.alert WHERE pipeline LIKE 't\_shop%');
DELETE FROM churn.alert WHERE pipeline LIKE 't\_shop%';
DELETE FROM churn.model WHERE name = 'test_pipeline_rules';
RESET search_path;
DROP SCHEMA test_pipeline CASCADE;
