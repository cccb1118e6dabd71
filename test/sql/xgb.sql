-- churn.xgb_load / xgb_predict / xgb_contrib against XGBoost 1.7 (fixtures
-- made by test/reference/make_fixtures_ml.py): predictions and approximate
-- contributions within 1e-6 absolute (in practice they are bit-identical).
\set VERBOSITY default
SET extra_float_digits = 0;

CREATE TEMP TABLE xgb_doc (j text);
\copy xgb_doc FROM 'test/reference/fixtures/xgb_model.json' (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02')
CREATE TEMP TABLE xgb_data (id int, label int, f1 float8, f2 float8, f3 float8, f4 float8, f5 float8, f6 float8, f7 float8, f8 float8);
\copy xgb_data FROM 'test/reference/fixtures/xgb_data.csv' (FORMAT csv, HEADER)
CREATE TEMP TABLE xgb_ref (id int, pred float8, margin float8, c1 float8, c2 float8, c3 float8, c4 float8, c5 float8, c6 float8, c7 float8, c8 float8, c9 float8);
\copy xgb_ref FROM 'test/reference/fixtures/xgb_ref.csv' (FORMAT csv, HEADER)

CREATE TEMP TABLE xm AS SELECT churn.xgb_load(j::jsonb) AS m, j::jsonb AS j FROM xgb_doc;
SELECT churn.xgb_info(m) FROM xm;
SELECT count(*) AS rows, count(*) FILTER (WHERE num_nulls(f1, f2, f3, f4, f5, f6, f7, f8) > 0) AS rows_with_missing FROM xgb_data;

-- predictions vs xgboost Booster.predict
SELECT max(abs(churn.xgb_predict(m, ARRAY[f1, f2, f3, f4, f5, f6, f7, f8]) - r.pred)) < 1e-6 AS predict_within_1e6,
       count(*) FILTER (WHERE churn.xgb_predict(m, ARRAY[f1, f2, f3, f4, f5, f6, f7, f8]) <> r.pred) AS not_bit_identical
FROM xgb_data d JOIN xgb_ref r USING (id), xm;

-- approximate contributions vs predict(pred_contribs=True, approx_contribs=True)
SELECT max(abs(c[i] - (ARRAY[r.c1, r.c2, r.c3, r.c4, r.c5, r.c6, r.c7, r.c8, r.c9])[i])) < 1e-6 AS contrib_within_1e6,
       count(*) FILTER (WHERE c[i] <> (ARRAY[r.c1, r.c2, r.c3, r.c4, r.c5, r.c6, r.c7, r.c8, r.c9])[i]) AS not_bit_identical
FROM (SELECT id, churn.xgb_contrib(m, ARRAY[f1, f2, f3, f4, f5, f6, f7, f8]) AS c FROM xgb_data, xm) s
     JOIN xgb_ref r USING (id), generate_series(1, 9) i;
-- ... which sum to the margin (output_margin=True)
SELECT max(abs((SELECT sum(v) FROM unnest(c) v) - r.margin)) < 1e-5 AS contrib_sum_is_margin
FROM (SELECT id, churn.xgb_contrib(m, ARRAY[f1, f2, f3, f4, f5, f6, f7, f8]) AS c FROM xgb_data, xm) s
     JOIN xgb_ref r USING (id);

-- XGBoost 2.x/3.x write base_score as "[5E-1]": same model, same predictions
SELECT max(abs(churn.xgb_predict(churn.xgb_load(jsonb_set(j, '{learner,learner_model_param,base_score}', '"[5E-1]"')),
                                 ARRAY[f1, f2, f3, f4, f5, f6, f7, f8]) - r.pred)) < 1e-6 AS bracket_base_score
FROM xgb_data d JOIN xgb_ref r USING (id), xm;
-- a different base_score shifts the margin by its logit
SELECT max(abs(churn.xgb_predict(churn.xgb_load(jsonb_set(j, '{learner,learner_model_param,base_score}', '"2.5E-1"')),
                                 ARRAY[f1, f2, f3, f4, f5, f6, f7, f8])
               - 1 / (1 + exp(-(r.margin + ln(0.25 / 0.75)))))) < 1e-6 AS shifted_base_score
FROM xgb_data d JOIN xgb_ref r USING (id), xm;

-- text form round-trips; the input also takes the JSON document itself
SELECT left(m::text, 4) AS prefix, (m::text)::churn.xgb::text = m::text AS text_roundtrip,
       (j::text)::churn.xgb::text = m::text AS json_input
FROM xm;

-- a stored (TOASTed) model and several models in one query: the per-call
-- cache must follow the model of each row
CREATE TEMP TABLE xgb_models (name text, m churn.xgb);
INSERT INTO xgb_models SELECT 'half', m FROM xm;
INSERT INTO xgb_models SELECT 'quarter', churn.xgb_load(jsonb_set(j, '{learner,learner_model_param,base_score}', '"2.5E-1"')) FROM xm;
SELECT name, max(abs(churn.xgb_predict(mm.m, ARRAY[f1, f2, f3, f4, f5, f6, f7, f8])
                     - 1 / (1 + exp(-(dr.margin + CASE name WHEN 'half' THEN 0 ELSE ln(0.25 / 0.75) END))))) < 1e-6 AS ok
FROM (SELECT * FROM xgb_data d JOIN xgb_ref r USING (id) ORDER BY id) dr, xgb_models mm
GROUP BY name ORDER BY name;
SELECT max(abs(p - r.pred)) < 1e-6 AS interleaved_ok
FROM (SELECT id, churn.xgb_predict(mm.m, ARRAY[f1, f2, f3, f4, f5, f6, f7, f8]) AS p, name
      FROM xgb_data, xgb_models mm) s JOIN xgb_ref r USING (id) WHERE name = 'half';

-- a hand-written one-split model: x[1] < 0.5 goes left (leaf +1), right
-- leaf -1, missing goes left (default_left = 1); comparisons are float32
CREATE TEMP TABLE tiny AS SELECT $j${"learner": {"learner_model_param": {"base_score": "5E-1", "num_class": "0", "num_feature": "2"},
  "objective": {"name": "binary:logistic"},
  "gradient_booster": {"name": "gbtree", "model": {"gbtree_model_param": {"num_trees": "1"}, "tree_info": [0],
    "trees": [{"tree_param": {"num_nodes": "3"}, "left_children": [1, -1, -1], "right_children": [2, -1, -1],
               "split_indices": [0, 0, 0], "split_conditions": [0.5, 1.0, -1.0], "default_left": [1, 0, 0],
               "sum_hessian": [2, 1, 1]}]}}},
  "version": [1, 7, 4]}$j$::jsonb AS j;
SELECT x, churn.xgb_predict(churn.xgb_load(j), x) AS p, churn.xgb_contrib(churn.xgb_load(j), x) AS contrib
FROM tiny, (VALUES ('{0.25,7}'::float8[]), ('{0.5,7}'), ('{0.49999999999,7}'), ('{0.4999999,7}'),
                   ('{NULL,7}'), ('{NaN,7}'), ('{0.9,NULL}')) v(x);
-- default_left = 0: missing goes right
SELECT churn.xgb_predict(churn.xgb_load(jsonb_set(j, '{learner,gradient_booster,model,trees,0,default_left}', '[0, 0, 0]')),
                         '{NULL,7}') AS missing_right FROM tiny;
-- reg:logistic scores the same way
SELECT churn.xgb_predict(churn.xgb_load(jsonb_set(j, '{learner,objective,name}', '"reg:logistic"')), '{0.25,7}') AS reg_logistic
FROM tiny;

-- bad input: each is a clear error
SELECT churn.xgb_load(left(j, 5000)::jsonb) FROM xgb_doc;
SELECT churn.xgb_load(j #- '{learner,gradient_booster,model,trees,3}') FROM xm;
SELECT churn.xgb_load(j #- '{learner,gradient_booster,model,trees}') FROM xm;
SELECT churn.xgb_load('{}');
SELECT churn.xgb_load('[1, 2]');
SELECT churn.xgb_load(jsonb_set(j, '{learner,objective,name}', '"multi:softprob"')) FROM tiny;
SELECT churn.xgb_load(jsonb_set(j, '{learner,objective,name}', '"reg:squarederror"')) FROM tiny;
SELECT churn.xgb_load(jsonb_set(j, '{learner,learner_model_param,num_class}', '"3"')) FROM tiny;
SELECT churn.xgb_load(jsonb_set(j, '{learner,gradient_booster,name}', '"dart"')) FROM tiny;
SELECT churn.xgb_load(jsonb_set(j, '{learner,gradient_booster,name}', '"gblinear"')) FROM tiny;
SELECT churn.xgb_load(jsonb_set(j, '{learner,gradient_booster,model,trees,0,split_type}', '[1, 0, 0]')) FROM tiny;
SELECT churn.xgb_load(jsonb_set(j, '{learner,learner_model_param,base_score}', '"[5E-1,5E-1]"')) FROM tiny;
SELECT churn.xgb_load(jsonb_set(j, '{learner,learner_model_param,base_score}', '"1.5"')) FROM tiny;
SELECT churn.xgb_load(jsonb_set(j, '{learner,gradient_booster,model,trees,0,left_children}', '[1, 0, -1]')) FROM tiny;
SELECT churn.xgb_load(jsonb_set(j, '{learner,gradient_booster,model,trees,0,split_indices}', '[5, 0, 0]')) FROM tiny;
SELECT churn.xgb_load(jsonb_set(j, '{version}', '[4, 0, 0]')) FROM tiny;
SELECT churn.xgb_predict(churn.xgb_load(j), '{0.25}') FROM tiny;
SELECT churn.xgb_predict(churn.xgb_load(j), '{0.25,1,2}') FROM tiny;
SELECT churn.xgb_contrib(churn.xgb_load(j), '{0.25}') FROM tiny;
SELECT churn.xgb_predict(churn.xgb_load(j), '{Infinity,1}') FROM tiny;
SELECT churn.xgb_predict(churn.xgb_load(j), '{{1,2}}') FROM tiny;
SELECT 'hello'::churn.xgb;
SELECT 'xgb:AAAA'::churn.xgb;
SELECT (overlay(m::text placing 'A' from 80 for 1))::churn.xgb IS NOT NULL FROM xm;
