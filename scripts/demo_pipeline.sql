-- churn_warning demo, part 3: a pipeline keeps the warnings fresh.
-- Runs after demo.sql (which loaded schema churn_demo).
\pset footer off
\echo
\echo '== Pipeline: the background worker keeps the warnings fresh'
\echo 'The chain''s purchase log, moved in time so that its last day is today:'
CREATE TABLE churn_demo.live_purchases AS
SELECT customer_id, store_id, ts + (current_date - date '2024-12-31') * interval '1 day' AS ts, amount
FROM churn_demo.purchases;
CREATE TABLE churn_demo.live_events AS
SELECT customer_id, ts + (current_date - date '2024-12-31') * interval '1 day' AS ts, kind, rating
FROM churn_demo.events;
\echo 'A pipeline over purchases and events (visits, logins, reviews, complaints, interactions), model auto:'
SELECT pipeline, state, capture, model, events, schedule, next_run_at
FROM churn.create_pipeline('pet_chain', 'churn_demo.live_purchases', time_zone => 'UTC', schedule => '1 day',
                           events => 'churn_demo.live_events');

\echo 'The worker runs the first refresh on its own (create_pipeline wakes it); waiting for it ...'
DO $$
BEGIN
    FOR i IN 1 .. 240 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM churn.pipeline_runs
                          WHERE pipeline = 'pet_chain' AND status NOT IN ('running'));
        PERFORM pg_sleep(0.25);
    END LOOP;
END
$$;
SELECT pipeline, trigger, status, mode, customers_total, tier_changes, alerts_raised,
       round(extract(epoch FROM duration)::numeric, 2) AS seconds
FROM churn.pipeline_runs WHERE pipeline = 'pet_chain' ORDER BY run_id;
\echo 'Which model scored, and why:'
SELECT model_used, model_note FROM churn.pipeline_runs WHERE pipeline = 'pet_chain' ORDER BY run_id;

\echo 'Today''s sales arrive (300 purchases, 20 of them dated last week), and a refresh by hand merges only them:'
INSERT INTO churn_demo.live_purchases
SELECT customer_id, store_id, now() - CASE WHEN i <= 20 THEN interval '7 days' ELSE interval '0' END, 25 + (i % 40)
FROM (SELECT customer_id, store_id, row_number() OVER (ORDER BY customer_id) AS i
      FROM (SELECT DISTINCT ON (customer_id) customer_id, store_id FROM churn_demo.live_purchases
            ORDER BY customer_id, ts DESC) c
      ORDER BY customer_id LIMIT 300) s;
SELECT trigger, status, mode, new_purchase_rows, customers_merged, customers_scored, snapshot_rows_written,
       tier_changes, round(extract(epoch FROM duration)::numeric, 3) AS seconds
FROM churn.refresh('pet_chain');

\echo 'Warnings now (churn.current_warnings), by lifecycle: the lost are in reactivation (blue), never called:'
SELECT lifecycle, zone, count(*) AS customers, round(avg(p_churn)::numeric, 3) AS mean_p_churn,
       round(avg(annual_value)::numeric, 0) AS mean_annual_value
FROM churn.current_warnings WHERE pipeline = 'pet_chain'
GROUP BY lifecycle, zone
ORDER BY min(CASE lifecycle WHEN 'new' THEN 1 WHEN 'active' THEN 2 WHEN 'lapsing' THEN 3 ELSE 4 END),
         min(CASE zone WHEN 'red' THEN 1 WHEN 'yellow' THEN 2 WHEN 'blue' THEN 3 ELSE 4 END);
\echo 'The most urgent: customers still buying, the reasons (drivers) and the playbook action of their alert:'
SELECT w.customer_id, w.code, w.lifecycle, round(w.p_churn::numeric, 3) AS p_churn,
       round(w.annual_value::numeric, 0) AS annual_value, w.last_purchase,
       array_to_string(w.drivers, ', ') AS reasons, a.action, a.due_at::date AS contact_by
FROM churn.current_warnings w
LEFT JOIN churn.alert a ON a.pipeline = w.pipeline AND a.customer_id = w.customer_id AND a.status = 'open'
WHERE w.pipeline = 'pet_chain' AND w.zone = 'red'
ORDER BY w.level, w.annual_value DESC, w.customer_id LIMIT 10;
\echo 'Pipeline status:'
SELECT pipeline, state, last_status, last_run_at::timestamp(0), next_run_at::timestamp(0), consecutive_failures, customers
FROM churn.pipeline_status;
