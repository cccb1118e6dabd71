-- Pipelines with model auto (the default): the champion is trained on the
-- pipeline's own histories and events, registered as a versioned model,
-- kept until retrain_days have passed, and replaced only by a challenger
-- that is not worse out of time.  The run history says which model scored
-- and why.  Data shifted to end today; pipelines start in 2100 (no worker).
CREATE SCHEMA test_pipeline_auto;
SET search_path = test_pipeline_auto;
SET TimeZone = 'UTC';
CREATE TABLE purchases (customer_id text, ts timestamptz, amount numeric);
CREATE TABLE events (customer_id text, ts timestamptz, kind text, rating int);
INSERT INTO purchases
SELECT customer_id::text, ts + (current_date - date '2024-12-31') * interval '1 day', amount
FROM churn.demo_purchases(2000, 5);
INSERT INTO events
SELECT customer_id::text, ts + (current_date - date '2024-12-31') * interval '1 day', kind, rating
FROM churn.demo_events(2000, 5);

SELECT pipeline, model, events FROM churn.create_pipeline('t_auto', 'purchases', events => 'events',
                                                          start_at => '2100-01-01');
SELECT status, mode, event_mode, customers_scored > 0 AS scored, model_used, model_note LIKE 'auto: t_auto_auto_v1 (%) is the new champion: validation AUC %' AS new_champion
FROM churn.refresh('t_auto');
-- the champion is a registered model with its metrics
SELECT name, kind, metrics ->> 'model' AS model, metrics ->> 'pipeline' AS pipeline,
       (metrics ->> 'training_rows')::int > 0 AS trained, metrics -> 'validation_auc' ? (metrics ->> 'champion') AS compared,
       feature_names = churn.auto_feature_names() OR kind = 'bgnbd' AS auto_features
FROM churn.model WHERE name LIKE 't\_auto\_auto\_v%' ORDER BY name;
-- every customer scored; no lost customer is red or yellow; lifecycle and engagement in the view
SELECT lifecycle, count(*) > 0 AS some, bool_and(zone NOT IN ('red', 'yellow') OR lifecycle <> 'lost') AS lost_not_warned
FROM churn.current_warnings WHERE pipeline = 't_auto' GROUP BY 1 ORDER BY 1;
SELECT count(*) FILTER (WHERE engagement IS NOT NULL) > 0 AS engagement_stored FROM churn.current_warnings
WHERE pipeline = 't_auto';
-- the same day: the champion keeps scoring, nothing is trained
SELECT model_used, model_note LIKE 'auto: champion t_auto_auto_v1 (%) since %; next training on %' AS kept
FROM churn.refresh('t_auto');
-- retrain_days later a challenger is trained and compared out of time
UPDATE churn.pipeline SET auto_trained_on = auto_trained_on - retrain_days WHERE name = 't_auto';
SELECT status, error_message, model_used IN ('t_auto_auto_v1', 't_auto_auto_v2') AS a_champion,
       model_note ~ '^auto: (champion t_auto_auto_v1 kept: AUC [0-9.]+ against the challenger''s [0-9.]+|t_auto_auto_v2 \(.*\) is the new champion: validation AUC [0-9.]+ against t_auto_auto_v1''s [0-9.]+)' AS compared
FROM churn.refresh('t_auto');
-- every warning says why; alerts take the action of their zone and reason when the playbook has one
SELECT reason, count(*) > 0 AS some FROM churn.current_warnings
WHERE pipeline = 't_auto' AND zone IN ('red', 'yellow') GROUP BY 1 ORDER BY 1;
SELECT bool_and(a.action = coalesce(pr.action, pb.action)) AS action_fits_reason
FROM churn.alert a JOIN churn.playbook_effective pb ON pb.code = a.code
LEFT JOIN churn.playbook_reason_effective pr ON pr.zone = a.zone AND pr.reason = a.reason
WHERE a.pipeline = 't_auto' AND a.arm = 'treatment';
-- drivers of the alerts come from the champion
SELECT count(*) FILTER (WHERE cardinality(drivers) > 0) > 0 AS drivers FROM churn.current_warnings
WHERE pipeline = 't_auto' AND zone IN ('red', 'yellow');

-- too little history to learn from (no label known yet): the rule model,
-- which needs no training, is the champion until there is
CREATE TABLE young AS SELECT * FROM purchases WHERE ts > now() - interval '120 days';
SELECT pipeline FROM churn.create_pipeline('t_young', 'young', start_at => '2100-01-01');
SELECT status, model_used, model_note AS note
FROM churn.refresh('t_young');
SELECT kind, metrics -> 'skipped' ->> 'rules' AS why_unvalidated, metrics ->> 'training_rows' AS rows
FROM churn.model WHERE name = 't_young_auto_v1';

-- a pipeline may name a registered auto model directly
SELECT pipeline, model FROM churn.create_pipeline('t_fixed', 'purchases', model => 't_auto_auto_v1', start_at => '2100-01-01');
SELECT status, model_used, model_note FROM churn.refresh('t_fixed');

SELECT churn.drop_pipeline(p) FROM unnest(ARRAY['t_auto', 't_young', 't_fixed']) p;
DELETE FROM churn.model WHERE name LIKE 't\_auto\_auto\_v%';
DROP SCHEMA test_pipeline_auto CASCADE;
