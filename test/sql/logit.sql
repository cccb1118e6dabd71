-- churn.logit_fit / churn.logit_predict against statsmodels (fixtures made by
-- test/reference/make_fixtures_ml.py); tolerance 1e-6 relative.
\set VERBOSITY default
SET extra_float_digits = 0;

CREATE TEMP TABLE logit_data (id int, churned boolean, x1 float8, x2 float8, x3 float8, x4 float8, x5 float8);
\copy logit_data FROM 'test/reference/fixtures/logit_data.csv' (FORMAT csv, HEADER)
CREATE TEMP TABLE logit_ref (what text, idx int, value float8);
\copy logit_ref FROM 'test/reference/fixtures/logit_ref.csv' (FORMAT csv, HEADER)

-- relative difference, guarded for zero references
CREATE FUNCTION pg_temp.reldiff(a float8, b float8) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$ SELECT abs(a - b) / greatest(abs(b), 1e-300) $$;

CREATE TEMP TABLE fitm AS
SELECT churn.logit_fit(churned, ARRAY[x1, x2, x3, x4, x5]) AS m FROM logit_data;
CREATE TEMP VIEW fit AS SELECT m, (m).* FROM fitm;

SELECT n, iterations, converged, array_length(coef, 1) AS ncoef FROM fit;

-- coefficients, standard errors and log-likelihood vs statsmodels Logit
SELECT r.what, max(pg_temp.reldiff(CASE r.what WHEN 'coef' THEN f.coef[r.idx] ELSE f.std_err[r.idx] END, r.value)) < 1e-6 AS within_1e6
FROM fit f, logit_ref r WHERE r.what IN ('coef', 'std_err') GROUP BY r.what ORDER BY 1;
SELECT pg_temp.reldiff(f.loglik, r.value) < 1e-9 AS loglik_ok, f.n = rn.value AS n_ok
FROM fit f, logit_ref r, logit_ref rn WHERE r.what = 'loglik' AND rn.what = 'n';

-- the same fit in parallel (partial states passed on, combined in the
-- leader); the cost of combining (0.3.0: of churn.logit_fit_combine on
-- churn.agg_state, before on the serializers) keeps small inputs serial,
-- so lower it here
ALTER FUNCTION churn.logit_fit_combine(churn.agg_state, churn.agg_state) COST 1;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
ALTER TABLE logit_data SET (parallel_workers = 2);
CREATE TABLE logit_par AS SELECT * FROM logit_data;
ALTER TABLE logit_par SET (parallel_workers = 2);
ANALYZE logit_par;
EXPLAIN (COSTS OFF) SELECT churn.logit_fit(churned, ARRAY[x1, x2, x3, x4, x5]) FROM logit_par;
SELECT max(pg_temp.reldiff(p.coef[i], f.coef[i])) < 1e-9 AS coef_same,
       max(pg_temp.reldiff(p.std_err[i], f.std_err[i])) < 1e-9 AS se_same,
       p.n = f.n AS n_same
FROM (SELECT (churn.logit_fit(churned, ARRAY[x1, x2, x3, x4, x5])).* FROM logit_par) p, fit f,
     generate_series(1, 6) i
GROUP BY p.n, f.n;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
ALTER FUNCTION churn.logit_fit_combine(churn.agg_state, churn.agg_state) COST 4000000;
-- by default a small table is fitted without parallel workers
EXPLAIN (COSTS OFF) SELECT churn.logit_fit(churned, ARRAY[x1, x2, x3, x4, x5]) FROM logit_par;
DROP TABLE logit_par;

-- L2 penalty: maximises loglik - l2/2 * |coef[2:]|^2 (reference: sklearn
-- LogisticRegression(C = 1/l2), Newton-polished); std_err from the penalised Hessian
CREATE TEMP TABLE fit_l2 AS
SELECT (churn.logit_fit(churned, ARRAY[x1, x2, x3, x4, x5], 2.0)).* FROM logit_data;
SELECT r.what, max(pg_temp.reldiff(CASE r.what WHEN 'coef_l2' THEN f.coef[r.idx] ELSE f.std_err[r.idx] END, r.value)) < 1e-6 AS within_1e6
FROM fit_l2 f, logit_ref r WHERE r.what IN ('coef_l2', 'std_err_l2') GROUP BY r.what ORDER BY 1;
SELECT pg_temp.reldiff(f.loglik, r.value) < 1e-9 AS loglik_ok, f.converged
FROM fit_l2 f, logit_ref r WHERE r.what = 'loglik_l2';
-- l2 = 0 is the unpenalised fit
SELECT max(pg_temp.reldiff(z.coef[i], f.coef[i])) < 1e-12 AS l2_zero_same
FROM (SELECT (churn.logit_fit(churned, ARRAY[x1, x2, x3, x4, x5], 0)).* FROM logit_data) z, fit f,
     generate_series(1, 6) i;

-- rows with a NULL label or NULL features are skipped
SELECT (m).n, (m).coef = f.coef AS same_coef
FROM (SELECT churn.logit_fit(churned, x) AS m
      FROM (SELECT churned, ARRAY[x1, x2, x3, x4, x5] AS x FROM logit_data
            UNION ALL VALUES (NULL::boolean, '{1,2,3,4,5}'::float8[]), (true, NULL)) s) s, fit f;

-- logit_predict is the logistic function of the linear predictor
SELECT round(churn.logit_predict(f.m, ARRAY[0.5, -0.2, 30, 4, 480])::numeric, 12) =
       round((1 / (1 + exp(-(f.coef[1] + 0.5 * f.coef[2] - 0.2 * f.coef[3] + 30 * f.coef[4] + 4 * f.coef[5] + 480 * f.coef[6]))))::numeric, 12) AS predict_ok
FROM fit f;
SELECT churn.logit_predict(ROW(ARRAY[0, 1000], NULL, NULL, NULL, NULL, NULL)::churn.logit, ARRAY[1.0]) AS p_one,
       churn.logit_predict(ROW(ARRAY[0, -1000], NULL, NULL, NULL, NULL, NULL)::churn.logit, ARRAY[1.0]) AS p_zero,
       churn.logit_predict(ROW(ARRAY[0.0], NULL, NULL, NULL, NULL, NULL)::churn.logit, '{}') AS p_half;
-- mean predicted probability equals the churn share at the unpenalised optimum
SELECT round(avg(churn.logit_predict(f.m, ARRAY[x1, x2, x3, x4, x5]))::numeric, 9) =
       round(avg(churned::int)::numeric, 9) AS calibrated
FROM logit_data, fit f;

-- intercept-only model: coef[1] = logit of the churn share
SELECT round(coef[1]::numeric, 10) = round(ln(0.25 / 0.75)::numeric, 10) AS intercept_only, n, converged
FROM (SELECT (churn.logit_fit(i % 4 = 0, '{}'::float8[])).* FROM generate_series(1, 100) i) s;

-- bad input: each is a clear error
SELECT churn.logit_fit(churned, ARRAY[x1]) FROM logit_data WHERE false;
SELECT churn.logit_fit(NULL::boolean, ARRAY[x1]) FROM logit_data;
SELECT churn.logit_fit(true, ARRAY[1.0, 2.0]) FROM generate_series(1, 10);
SELECT churn.logit_fit(c, x) FROM (VALUES (true, '{1,2}'::float8[]), (false, '{1,2,3}')) v(c, x);
SELECT churn.logit_fit(c, x) FROM (VALUES (true, '{1,NULL}'::float8[]), (false, '{1,2}')) v(c, x);
SELECT churn.logit_fit(c, x) FROM (VALUES (true, '{1,NaN}'::float8[]), (false, '{1,2}')) v(c, x);
SELECT churn.logit_fit(c, x) FROM (VALUES (true, '{1,Infinity}'::float8[]), (false, '{1,2}')) v(c, x);
SELECT churn.logit_fit(c, x) FROM (VALUES (true, '{{1,2},{3,4}}'::float8[]), (false, '{{1,2},{3,4}}')) v(c, x);
-- perfect separation: x > 0 exactly when churned
SELECT churn.logit_fit(i > 50, ARRAY[i - 50.5]) FROM generate_series(1, 100) i;
-- quasi-complete separation: x2 = 1 only for churned rows
SELECT churn.logit_fit(i % 3 = 0 OR i > 90, ARRAY[sin(i), (i > 90)::int]) FROM generate_series(1, 100) i;
-- ... which an L2 penalty resolves
SELECT converged, coef[3] > 0 AS pushed_up FROM (SELECT (churn.logit_fit(i % 3 = 0 OR i > 90, ARRAY[sin(i), (i > 90)::int], 1.0)).* FROM generate_series(1, 100) i) s;
-- collinear features (x2 = 2 * x1), a constant feature, too few rows
SELECT churn.logit_fit(i % 3 = 0, ARRAY[sin(i), 2 * sin(i)]) FROM generate_series(1, 100) i;
SELECT churn.logit_fit(i % 3 = 0, ARRAY[sin(i), 7]) FROM generate_series(1, 100) i;
SELECT converged FROM (SELECT (churn.logit_fit(i % 3 = 0, ARRAY[sin(i), 2 * sin(i)], 0.5)).* FROM generate_series(1, 100) i) s;
SELECT churn.logit_fit(i = 1, ARRAY[i, i * i, i * i * i]) FROM generate_series(1, 3) i;
-- l2 must be a non-negative constant
SELECT churn.logit_fit(churned, ARRAY[x1], -1) FROM logit_data;
SELECT churn.logit_fit(churned, ARRAY[x1], NULL) FROM logit_data;
SELECT churn.logit_fit(churned, ARRAY[x1], id::float8) FROM logit_data;
-- predict: length mismatch, NULL element
SELECT churn.logit_predict(f.m, ARRAY[1.0, 2.0]) FROM fit f;
SELECT churn.logit_predict(f.m, ARRAY[1.0, 2.0, NULL, 4, 5]) FROM fit f;
