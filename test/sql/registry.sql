-- The model registry: register, predict, drivers, pg_dump-friendly storage.
CREATE SCHEMA test_registry;
SET search_path = test_registry;
SET extra_float_digits = 0;
-- training data: features as of 2024-06-30, label = churned over 90 days
CREATE TABLE hist AS
SELECT c AS customer_id,
       churn.history_agg('2023-01-01'::date + ((c * 13 + g * (5 + c % 40)) % 600), (10 + (c * g) % 50)::float8) AS h
FROM generate_series(1, 2000) c, generate_series(1, 1 + c % 15) g GROUP BY c;
CREATE TABLE train AS
SELECT customer_id, churn.features(h, '2024-06-30') AS f, churn.churned(h, '2024-06-30', 90) AS label
FROM hist WHERE churn.features(h, '2024-06-30') IS DISTINCT FROM NULL;
SELECT count(*) AS rows, count(*) FILTER (WHERE label) AS churned FROM train;

-- BG/NBD in weeks, horizon 90 days
SELECT churn.register_model('bg_weeks',
         (SELECT churn.bgnbd_fit((f).x, (f).t_x / 7, (f).t / 7) FROM train), 90, time_unit_days => 7);
-- logistic regression on three features
SELECT churn.register_model('lr',
         (SELECT churn.logit_fit(label, ARRAY[(f).recency_days, (f).x, (f).avg_spend]) FROM train),
         ARRAY['recency_days', 'x', 'avg_spend'], 90, '{"note": "test"}');
SELECT churn.register_rules('rules_default');
\set xgbjson `cat test/reference/fixtures/xgb_model.json`
SELECT churn.register_model('xgb8', churn.xgb_load(:'xgbjson'), ARRAY['f1','f2','f3','f4','f5','f6','f7','f8'], 30);
SELECT name, kind, cardinality(feature_names) AS features, feature_names[1:3] AS first_features, horizon_days, time_unit_days, metrics
FROM churn.model ORDER BY name;

-- predict equals the model's own function
SELECT count(*) FILTER (WHERE abs(churn.predict('bg_weeks', ARRAY[(f).x, (f).t_x, (f).t])
            - churn.bgnbd_p_churn(m.bgnbd, 90 / 7.0, (f).x, (f).t_x / 7, (f).t / 7)) > 1e-12) AS bg_mismatch,
       count(*) FILTER (WHERE abs(churn.predict('lr', ARRAY[(f).recency_days, (f).x, (f).avg_spend])
            - churn.logit_predict(l.logit, ARRAY[(f).recency_days, (f).x, (f).avg_spend])) > 1e-12) AS lr_mismatch
FROM train, churn.model m, churn.model l WHERE m.name = 'bg_weeks' AND l.name = 'lr';
-- a registered model ranks churners above stayers on its training data
SELECT round(churn.auc(churn.predict('bg_weeks', ARRAY[(f).x, (f).t_x, (f).t]), label)::numeric, 2) > 0.5 AS bg_informative,
       round(churn.auc(churn.predict('lr', ARRAY[(f).recency_days, (f).x, (f).avg_spend]), label)::numeric, 2) > 0.5 AS lr_informative
FROM train;
SELECT round(churn.predict('xgb8', ARRAY[-0.6705585386584472, -1.0, 62.53709246924059, 2.4215080991332742,
       0.5126901378326624, 0.47024942686722426, -0.7983855572245898, -0.10233698732526855])::numeric, 6) AS xgb_row1;
SELECT * FROM churn.drivers('xgb8', ARRAY[-0.67, -1.0, 62.5, 2.42, 0.51, 0.47, -0.80, -0.10], 3);
SELECT churn.top_drivers('lr', ARRAY[400, 0, 10]) AS lr_drivers;
SELECT churn.top_drivers('rules_default',
         churn.feature_vector(churn.features('{2024-01-01:50,2024-01-15:50,2024-02-01:50,2024-03-01:40,2024-04-20:30}', '2024-07-01', 60))) AS rule_drivers;
SELECT count(*) AS bg_drivers FROM churn.drivers('bg_weeks', ARRAY[1, 10, 20]);

-- errors
SELECT churn.predict('nope', ARRAY[1]);
SELECT churn.predict('lr', ARRAY[1, 2]);
SELECT churn.register_model('lr_bad', (SELECT logit FROM churn.model WHERE name = 'lr'), ARRAY['a'], 90);
SELECT churn.register_model('', (SELECT bgnbd FROM churn.model WHERE name = 'bg_weeks'), 90);
SELECT churn.register_model('bg0', (SELECT bgnbd FROM churn.model WHERE name = 'bg_weeks'), 0);
SELECT churn.register_rules('r', 'nope');
-- replacing a model keeps one row
SELECT churn.register_rules('rules_default', 'default', 60);
SELECT count(*), max(horizon_days) FROM churn.model WHERE name = 'rules_default';
DELETE FROM churn.model;
