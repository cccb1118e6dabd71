-- churn.xgb_fit: XGBoost binary:logistic training inside the database with
-- the XGBoost library (parity with python-xgboost: test/reference/check_xgb_fit).
-- Normal fits, parameters, random forest, determinism, missing values,
-- skipped rows, every refused input, the GUCs, cancel safety, parallel plans.
\set VERBOSITY default
SET extra_float_digits = 0;
CREATE SCHEMA xgb_fit_test;
SET search_path = xgb_fit_test, public;

SHOW churn_warning.xgb_threads;
SHOW churn_warning.xgb_max_memory;

-- 2000 rows, 4 features from integer hashing (the same on every platform):
-- f3 has NULLs, f4 has NaNs; the label depends on f1, f2 > 5 and f3
CREATE TABLE d AS
SELECT i,
       ((i * 7919) % 1000)::float8 / 100 AS f1,
       ((i * 104729) % 997)::float8 / 99.7 AS f2,
       CASE WHEN i % 17 = 0 THEN NULL ELSE (i % 13)::float8 END AS f3,
       CASE WHEN i % 23 = 0 THEN 'NaN'::float8 ELSE ((i * 31) % 101)::float8 / 10 END AS f4
FROM generate_series(1, 2000) i;
ALTER TABLE d ADD COLUMN y boolean;
UPDATE d SET y = f1 + 2 * (f2 > 5)::int - 0.3 * coalesce(f3, 6) + ((i::bigint * 2654435761) % 1000)::float8 / 250 > 6;
CREATE VIEW dx AS SELECT i, y, ARRAY[f1, f2, f3, f4] AS x FROM d;
SELECT count(*) AS rows, count(*) FILTER (WHERE y) AS positive,
       count(*) FILTER (WHERE f3 IS NULL) AS null_f3, count(*) FILTER (WHERE f4 = 'NaN') AS nan_f4
FROM d;

-- compact description of a model
CREATE FUNCTION xgb_fit_test.info(m churn.xgb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT format('trees %s, num_feature %s, max_depth %s, base_score %s',
                  churn.xgb_info(m)->>'trees', churn.xgb_info(m)->>'num_feature',
                  churn.xgb_info(m)->>'max_depth', churn.xgb_info(m)->>'base_score')
$$;
-- share of rows classified right at p = 0.5
CREATE FUNCTION xgb_fit_test.accuracy(m churn.xgb) RETURNS numeric LANGUAGE sql STABLE AS $$
    SELECT round(avg(((churn.xgb_predict(m, x) > 0.5) = y)::int), 2) FROM xgb_fit_test.dx
$$;

-- defaults: XGBoost's own, 10 rounds
CREATE TABLE m AS SELECT 'default' AS name, churn.xgb_fit(y, x ORDER BY i) AS m FROM dx;
SELECT info(m), accuracy(m) > 0.8 AS learns FROM m;

-- XGBoost parameters
INSERT INTO m SELECT 'boosted', churn.xgb_fit(y, x, '{"max_depth": 3, "eta": 0.1, "num_boost_round": 30, "subsample": 0.8,
    "colsample_bytree": 0.9, "lambda": 2, "min_child_weight": 2, "seed": 7}' ORDER BY i) FROM dx;
INSERT INTO m SELECT 'hist', churn.xgb_fit(y, x, '{"tree_method": "hist", "max_bin": 32, "learning_rate": 0.3,
    "num_boost_round": 15, "reg_alpha": 0.5, "gamma": 0.1, "base_score": 0.4}' ORDER BY i) FROM dx;
INSERT INTO m SELECT 'lossguide', churn.xgb_fit(y, x, '{"tree_method": "hist", "grow_policy": "lossguide", "max_leaves": 8,
    "max_depth": 0, "num_boost_round": 5}' ORDER BY i) FROM dx;
-- constraints as XGBoost strings or as JSON arrays; numbers may be strings
INSERT INTO m SELECT 'monotone', churn.xgb_fit(y, x, '{"monotone_constraints": [1, 0, -1, 0], "num_boost_round": "5", "eta": "0.5"}' ORDER BY i) FROM dx;
INSERT INTO m SELECT 'monotone_text', churn.xgb_fit(y, x, '{"monotone_constraints": "(1,0,-1,0)", "num_boost_round": 5, "eta": 0.5}' ORDER BY i) FROM dx;
INSERT INTO m SELECT 'interaction', churn.xgb_fit(y, x, '{"interaction_constraints": [[0, 1], [2, 3]], "num_boost_round": 5}' ORDER BY i) FROM dx;
SELECT name, info(m), accuracy(m) > 0.8 AS learns FROM m WHERE name <> 'default' ORDER BY name;
SELECT a.m::text = b.m::text AS same_constraints FROM m a, m b WHERE a.name = 'monotone' AND b.name = 'monotone_text';

-- random forest through XGBoost's own parameters: 25 parallel trees in one round
INSERT INTO m SELECT 'forest', churn.xgb_fit(y, x, '{"num_parallel_tree": 25, "subsample": 0.8, "colsample_bynode": 0.7,
    "learning_rate": 1, "num_boost_round": 1, "seed": 3}' ORDER BY i) FROM dx;
INSERT INTO m SELECT 'forest_again', churn.xgb_fit(y, x, '{"num_parallel_tree": 25, "subsample": 0.8, "colsample_bynode": 0.7,
    "learning_rate": 1, "num_boost_round": 1, "seed": 3}' ORDER BY i) FROM dx;
INSERT INTO m SELECT 'forest_seed4', churn.xgb_fit(y, x, '{"num_parallel_tree": 25, "subsample": 0.8, "colsample_bynode": 0.7,
    "learning_rate": 1, "num_boost_round": 1, "seed": 4}' ORDER BY i) FROM dx;
SELECT name, info(m), accuracy(m) > 0.8 AS learns FROM m WHERE name LIKE 'forest%' ORDER BY name;
-- deterministic for a given seed; another seed draws other rows and columns
SELECT (SELECT m::text FROM m WHERE name = 'forest') = (SELECT m::text FROM m WHERE name = 'forest_again') AS same_seed_same_model,
       (SELECT m::text FROM m WHERE name = 'forest') = (SELECT m::text FROM m WHERE name = 'forest_seed4') AS other_seed_same_model;
SELECT churn.xgb_fit(y, x, '{"max_depth": 3, "eta": 0.1, "num_boost_round": 30, "subsample": 0.8,
    "colsample_bytree": 0.9, "lambda": 2, "min_child_weight": 2, "seed": 7}' ORDER BY i)::text
       = (SELECT m::text FROM m WHERE name = 'boosted') AS boosted_again_same
FROM dx;
-- seed and random_state are the same parameter
SELECT churn.xgb_fit(y, x, '{"max_depth": 3, "eta": 0.1, "num_boost_round": 30, "subsample": 0.8,
    "colsample_bytree": 0.9, "lambda": 2, "min_child_weight": 2, "random_state": 7}' ORDER BY i)::text
       = (SELECT m::text FROM m WHERE name = 'boosted') AS random_state_is_seed
FROM dx;
-- the thread count does not change the model
SET churn_warning.xgb_threads = 2;
SELECT churn.xgb_fit(y, x, '{"max_depth": 3, "eta": 0.1, "num_boost_round": 30, "subsample": 0.8,
    "colsample_bytree": 0.9, "lambda": 2, "min_child_weight": 2, "seed": 7, "nthread": 2}' ORDER BY i)::text
       = (SELECT m::text FROM m WHERE name = 'boosted') AS two_threads_same
FROM dx;
-- an nthread above churn_warning.xgb_threads is capped (NOTICE)
SELECT info(churn.xgb_fit(y, x, '{"nthread": 8, "num_boost_round": 2}')) FROM dx;
RESET churn_warning.xgb_threads;

-- scoring: contributions sum to the margin of the prediction
SELECT bool_and(abs((SELECT sum(c) FROM unnest(churn.xgb_contrib(m.m, dx.x)) c)
                    - ln(churn.xgb_predict(m.m, dx.x) / (1 - churn.xgb_predict(m.m, dx.x)))) < 1e-4) AS contrib_sums_to_margin
FROM dx, m WHERE m.name = 'boosted' AND dx.i <= 200;

-- missing values: a NULL element and NaN are the same missing value
SELECT churn.xgb_fit(y, ARRAY[f1, f2, coalesce(f3, 'NaN'), f4] ORDER BY i)::text
       = (SELECT m::text FROM m WHERE name = 'default') AS nan_equals_null,
       churn.xgb_fit(y, ARRAY[f1, f2, f3, CASE WHEN f4 = 'NaN' THEN NULL ELSE f4 END] ORDER BY i)::text
       = (SELECT m::text FROM m WHERE name = 'default') AS null_equals_nan
FROM d;
-- rows with a NULL label or a NULL x are skipped
SELECT churn.xgb_fit(y, x ORDER BY i)::text = (SELECT m::text FROM m WHERE name = 'default') AS null_rows_skipped
FROM (SELECT i, y, x FROM dx
      UNION ALL SELECT 5000 + i, NULL, x FROM dx WHERE i <= 50
      UNION ALL SELECT 6000 + i, true, NULL FROM dx WHERE i <= 50) s;

-- no rows (or only skipped rows): NULL
SELECT churn.xgb_fit(y, x) IS NULL AS no_rows FROM dx WHERE false;
SELECT churn.xgb_fit(NULL::boolean, x, '{"max_depth": 2}') IS NULL AS only_skipped FROM dx;

-- one model per group (all states share the aggregate context)
SELECT i % 2 AS half, info(churn.xgb_fit(y, x, '{"num_boost_round": 3}' ORDER BY i)) FROM dx GROUP BY 1 ORDER BY 1;

-- refused inputs
SELECT churn.xgb_fit(y, CASE WHEN i = 7 THEN ARRAY[1, 2, 3]::float8[] ELSE x END) FROM dx;
SELECT churn.xgb_fit(true, x) FROM dx;
SELECT churn.xgb_fit(false, x) FROM dx;
SELECT churn.xgb_fit(y, '{}'::float8[]) FROM dx;
SELECT churn.xgb_fit(y, ARRAY[[1, 2], [3, 4]]::float8[]) FROM dx;
SELECT churn.xgb_fit(y, ARRAY[f1, 'Infinity']) FROM d;
SELECT churn.xgb_fit(y, ARRAY[f1, 1e39]) FROM d;
SELECT churn.xgb_fit(y, x, '[1]') FROM dx;
SELECT churn.xgb_fit(y, x, '{"max_dept": 3}') FROM dx;
SELECT churn.xgb_fit(y, x, '{"eta": 0.1, "learning_rate": 0.2}') FROM dx;
SELECT churn.xgb_fit(y, x, '{"subsample": 0}') FROM dx;
SELECT churn.xgb_fit(y, x, '{"max_depth": -1}') FROM dx;
SELECT churn.xgb_fit(y, x, '{"base_score": 1}') FROM dx;
SELECT churn.xgb_fit(y, x, '{"num_boost_round": 0}') FROM dx;
SELECT churn.xgb_fit(y, x, '{"seed": 1.5}') FROM dx;
SELECT churn.xgb_fit(y, x, '{"eta": "fast"}') FROM dx;
SELECT churn.xgb_fit(y, x, '{"eta": null}') FROM dx;
SELECT churn.xgb_fit(y, x, '{"eta": [0.1]}') FROM dx;
SELECT churn.xgb_fit(y, x, '{"objective": "reg:squarederror"}') FROM dx;
SELECT churn.xgb_fit(y, x, '{"tree_method": "gpu_hist"}') FROM dx;
SELECT churn.xgb_fit(y, x, '{"seed_per_iteration": "yes"}') FROM dx;
SELECT churn.xgb_fit(y, x, '{"monotone_constraints": [2, 0]}') FROM dx;
SELECT churn.xgb_fit(y, x, '{"interaction_constraints": [0, 1]}') FROM dx;
SELECT churn.xgb_fit(y, x, jsonb_build_object('max_depth', 2 + i % 2)) FROM dx;
-- XGBoost's own checks, its message in the DETAIL
SELECT churn.xgb_fit(y, x, '{"max_depth": 0, "tree_method": "exact"}') FROM dx;
SELECT churn.xgb_fit(y, x, '{"monotone_constraints": "(1,x)"}') FROM dx;
-- the GUCs
SET churn_warning.xgb_threads = 0;
CREATE ROLE xgb_fit_user;
SET ROLE xgb_fit_user;
SET churn_warning.xgb_max_memory = '4GB';
SET churn_warning.xgb_threads = 2;
RESET churn_warning.xgb_threads;
RESET ROLE;
DROP ROLE xgb_fit_user;

-- memory: the estimate is refused above churn_warning.xgb_max_memory ...
SET churn_warning.xgb_max_memory = '1MB';
SELECT churn.xgb_fit(y, x, '{"num_boost_round": 100}') FROM dx;
-- ... and rows are refused as soon as they alone exceed it
SELECT churn.xgb_fit(i % 3 = 0, ARRAY[i, i % 7, i % 11, i % 13]::float8[]) FROM generate_series(1, 60000) i;
RESET churn_warning.xgb_max_memory;

-- cancel: a statement timeout during training frees XGBoost's handles and
-- the session trains again
SET churn_warning.xgb_max_memory = '100GB';
SET statement_timeout = '300ms';
SELECT churn.xgb_fit(y, x, '{"num_boost_round": 100000, "tree_method": "hist"}') FROM dx;
RESET statement_timeout;
RESET churn_warning.xgb_max_memory;
SELECT info(churn.xgb_fit(y, x ORDER BY i)) AS after_cancel, churn.xgb_fit(y, x ORDER BY i)::text = (SELECT m::text FROM m WHERE name = 'default') AS same_as_before FROM dx;
-- and inside a subtransaction (PL/pgSQL exception block), then in the same
-- statement a fit that completes
SET churn_warning.xgb_max_memory = '100GB';
SET statement_timeout = '300ms';
DO $$
DECLARE
    m churn.xgb;
BEGIN
    BEGIN
        PERFORM churn.xgb_fit(y, x, '{"num_boost_round": 100000, "tree_method": "hist", "max_depth": 2}') FROM xgb_fit_test.dx;
    EXCEPTION WHEN query_canceled THEN
        RAISE NOTICE 'cancelled: %', SQLERRM;
    END;
    SELECT churn.xgb_fit(y, x, '{"num_boost_round": 2}') INTO m FROM xgb_fit_test.dx;
    RAISE NOTICE 'then trained: %', xgb_fit_test.info(m);
END
$$;
RESET statement_timeout;
RESET churn_warning.xgb_max_memory;

-- parallel plan: partial states serialized in the workers and combined in
-- the leader (rows then arrive in no fixed order: use ORDER BY for a
-- reproducible model)
ALTER FUNCTION churn.xgb_fit_serial(internal) COST 1;
ALTER FUNCTION churn.xgb_fit_deserial(bytea, internal) COST 1;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
CREATE TABLE dpar AS SELECT * FROM dx;
ALTER TABLE dpar SET (parallel_workers = 2);
ANALYZE dpar;
EXPLAIN (COSTS OFF) SELECT churn.xgb_fit(y, x, '{"max_depth": 3}') FROM dpar;
SELECT info(m), accuracy(m) > 0.8 AS learns FROM (SELECT churn.xgb_fit(y, x, '{"max_depth": 3}') AS m FROM dpar) s;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
ALTER FUNCTION churn.xgb_fit_serial(internal) COST 2000000;
ALTER FUNCTION churn.xgb_fit_deserial(bytea, internal) COST 2000000;

-- a trained model goes into the registry like a loaded one
SELECT churn.register_model('xgb_fit_test_model', m, ARRAY['f1', 'f2', 'f3', 'f4'], 90) FROM m WHERE name = 'boosted';
SELECT round(churn.predict('xgb_fit_test_model', ARRAY[5, 6, NULL, 1]::float8[])::numeric, 4)
       = round(churn.xgb_predict(m, ARRAY[5, 6, NULL, 1]::float8[])::numeric, 4) AS registry_scores
FROM m WHERE name = 'boosted';
DELETE FROM churn.model WHERE name = 'xgb_fit_test_model';

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA xgb_fit_test CASCADE;
RESET client_min_messages;
