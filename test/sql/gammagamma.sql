--
-- Gamma-Gamma spend model (churn.gg_fit, churn.gg_expected_spend,
-- churn.predicted_value) on the CDNOW sample.
--
-- Published figures (Fader & Hardie 2013, "The Gamma-Gamma Model of Monetary
-- Value", brucehardie.com/notes/025; the figures as used by lifetimes
-- tests/test_estimation.py):
--   p = 6.25, q = 3.74, v (gamma) = 15.44 on the 946 customers with x > 0 of
--   cdnow_customers_summary_with_transactions.csv (column zbar), 2 decimals;
--   conditional expected average spend of the first 10 customers, from
--   Hardie's spreadsheet: 24.65 18.91 35.17 35.17 35.17 71.46 18.91 35.17 27.28 35.17
--   (lifetimes checks them with atol 0.1).
--
\getenv datadir CHURN_DATA_DIR
CREATE TEMP TABLE summ (id int, x int, t_x float8, t float8, zbar float8);
\set ECHO none
SELECT format($$COPY summ FROM %L (FORMAT csv, HEADER)$$, :'datadir' || '/cdnow/cdnow_customers_summary_with_transactions.csv') \gexec
\set ECHO all
SELECT count(*) FILTER (WHERE x > 0) AS repeaters, round(avg(zbar) FILTER (WHERE x > 0)::numeric, 2) AS mean_zbar FROM summ;
-- only x > 0 customers enter the fit (x = 0 rows are skipped)
CREATE TEMP TABLE gfit AS SELECT churn.gg_fit(x, zbar) AS g FROM summ;
SELECT round((g).p::numeric, 4) AS p, round((g).q::numeric, 4) AS q, round((g).v::numeric, 4) AS v,
       round((g).loglik::numeric, 3) AS loglik, (g).n, (g).converged
FROM gfit;
-- the published figures are 2-decimal roundings: p and q round to them,
-- v is within 1e-3 relative (the data's zbar is itself rounded to cents)
SELECT round((g).p::numeric, 2) = 6.25 AS p_ok, round((g).q::numeric, 2) = 3.74 AS q_ok,
       abs((g).v - 15.44) / 15.44 < 1e-3 AS v_ok
FROM gfit;
-- log-likelihood = sum of per-customer log densities
SELECT abs(sum(churn.gg_loglik(g, x, zbar)) - min((g).loglik)) < 1e-6 AS loglik_sums
FROM summ, gfit WHERE x > 0;
-- weighted fit on the compressed table, and a parallel fit, agree
CREATE TEMP TABLE summ_compressed AS SELECT x, zbar, count(*)::float8 AS n FROM summ GROUP BY 1, 2;
SELECT abs((w).p / (g).p - 1) < 1e-8 AND abs((w).q / (g).q - 1) < 1e-8
       AND abs((w).v / (g).v - 1) < 1e-8 AND (w).n = 946 AS weighted_same
FROM (SELECT churn.gg_fit(x, zbar, n) AS w FROM summ_compressed) wf, gfit;
CREATE TABLE gg_summ_par AS SELECT * FROM summ;
ANALYZE gg_summ_par;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT churn.gg_fit(x, zbar) FROM gg_summ_par;
SELECT abs((w).p / (g).p - 1) < 1e-8 AND abs((w).v / (g).v - 1) < 1e-8 AS parallel_same
FROM (SELECT churn.gg_fit(x, zbar) AS w FROM gg_summ_par) wf, gfit;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET parallel_leader_participation;
DROP TABLE gg_summ_par;
-- Hardie's spreadsheet values (abs 0.01 with the fitted model; x = 0 gives
-- the population mean p v / (q - 1))
SELECT id, x, zbar, round(churn.gg_expected_spend(g, x, zbar)::numeric, 2) AS expected_spend,
       abs(churn.gg_expected_spend(g, x, zbar) - pub) < 0.01 AS ok
FROM summ, gfit,
     unnest(array[24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17]::float8[])
        WITH ORDINALITY AS u(pub, k)
WHERE id = k ORDER BY id;
-- predicted value: BG/NBD expected purchases in 52 weeks x expected spend
CREATE TEMP TABLE bfit AS SELECT churn.bgnbd_fit(x, t_x, t) AS m FROM summ;
SELECT id, round(churn.predicted_value(m, g, 52, x, t_x, t, zbar)::numeric, 2) AS value_52w,
       abs(churn.predicted_value(m, g, 52, x, t_x, t, zbar)
           - churn.bgnbd_expected(m, 52, x, t_x, t) * churn.gg_expected_spend(g, x, zbar)) < 1e-9 AS product
FROM summ, gfit, bfit WHERE id IN (1, 2, 3, 6, 1516) ORDER BY id;
-- input handling: NULL rows skipped, empty -> NULL, errors
SELECT (churn.gg_fit(x, zbar)).n AS n FROM (SELECT x, zbar FROM summ UNION ALL VALUES (NULL::int, 3.0::float8), (2, NULL)) s;
SELECT churn.gg_fit(x, zbar) IS NULL AS empty_is_null FROM summ WHERE false;
SELECT churn.gg_fit(x, zbar) IS NULL AS only_x0_is_null FROM summ WHERE x = 0;
SELECT churn.gg_fit(x, s) FROM (VALUES (2, 0.0)) v(x, s);
SELECT churn.gg_fit(x, s) FROM (VALUES (2, -5.0)) v(x, s);
SELECT churn.gg_fit(x, s) FROM (VALUES (2, 'NaN'::float8)) v(x, s);
SELECT churn.gg_fit(x, s) FROM (VALUES (-1, 5.0)) v(x, s);
SELECT churn.gg_fit(x, s, w) FROM (VALUES (2, 5.0, -1.0)) v(x, s, w);
SELECT churn.gg_expected_spend(ROW(6.25, 0.8, 15.44, NULL, NULL, NULL, NULL)::churn.gg, 0, 0);
SELECT churn.gg_expected_spend(ROW(6.25, -3.7, 15.44, NULL, NULL, NULL, NULL)::churn.gg, 1, 10);
SELECT churn.gg_expected_spend(g, 1, -10) FROM gfit;
SELECT churn.gg_loglik(g, 0, 10) FROM gfit;
SELECT churn.predicted_value(m, g, -1, 1, 1, 2, 10) FROM bfit, gfit;
