--
-- BG/NBD (churn.bgnbd_fit and the per-customer functions) on the CDNOW
-- sample, against the published figures.
--
-- Sources of the published figures:
--   [FHL]  Fader, Hardie & Lee (2005), Marketing Science 24(2): MLE on CDNOW
--          r = 0.2426, alpha = 4.4136, a = 0.7929, b = 2.4259, LL = -9582.43.
--   [BTYD] BTYD 2.4.3 walkthrough vignette (cran/BTYD inst/doc/BTYD-walkthrough.pdf),
--          params 0.2425982 4.4136842 0.7929899 2.4261667, LL -9582.429;
--          customer 1516 (x = 26, t_x = 30.857143, T = 31): expected transactions
--          in 52 weeks 25.75659, P(alive) 0.9688523; bgnbd.Expectation(t = 52)
--          1.444004; x = 10, 15, 20, 25 with t_x = 20, T = 39, 52 weeks:
--          0.3474606 0.04283391 0.004158973 0.0003583685; conditional expected
--          holdout (39 weeks) transactions by calibration frequency 0..6, 7+:
--          0.2250893 0.5231364 1.044126 1.520256 2.163824 2.653789 3.503957 6.157036.
--   [LT]   lifetimes tests/test_estimation.py (from Hardie's spreadsheet):
--          x = 2, t_x = 30.43, T = 38.86: 39-week expectation 1.226 (abs 0.001);
--          E[X(t)] for t = 0.1429 1 3 31.8571 32 78: 0.0078 0.0532 0.1506 1.0405
--          1.0437 1.8576 (3 decimals).
--
\getenv datadir CHURN_DATA_DIR
CREATE TEMP TABLE elog (masterid int, sampleid int, date text, cds int, sales numeric);
\set ECHO none
SELECT format($$COPY elog FROM %L (FORMAT csv, HEADER)$$, :'datadir' || '/cdnow/cdnowElog.csv') \gexec
\set ECHO all
-- one purchase day per customer and day, sales summed
CREATE TEMP TABLE pday AS
    SELECT sampleid AS id, to_date(date, 'YYYYMMDD') AS d, sum(sales) AS sales
    FROM elog GROUP BY 1, 2;
-- calibration summary in weeks (days / 7, unrounded), period ends 1997-09-30
CREATE TEMP TABLE cal AS
    SELECT id, count(*)::int - 1 AS x,
           (max(d) - min(d)) / 7.0::float8 AS t_x,
           (date '1997-09-30' - min(d)) / 7.0::float8 AS t
    FROM pday WHERE d <= date '1997-09-30' GROUP BY id;
-- holdout: purchase days 1997-10-01 .. 1998-06-30
CREATE TEMP TABLE hold AS
    SELECT c.id, count(p.d)::int AS x_star
    FROM cal c LEFT JOIN pday p ON p.id = c.id AND p.d > date '1997-09-30' AND p.d <= date '1998-06-30'
    GROUP BY c.id;
SELECT count(*) AS customers, sum(x) AS repeat_days, count(*) FILTER (WHERE x = 0) AS zero_x FROM cal;
-- ===== maximum likelihood fit vs [FHL], 1e-3 relative
CREATE TEMP TABLE fit AS SELECT churn.bgnbd_fit(x, t_x, t) AS m FROM cal;
SELECT round((m).r::numeric, 4) AS r, round((m).alpha::numeric, 4) AS alpha,
       round((m).a::numeric, 4) AS a, round((m).b::numeric, 4) AS b,
       round((m).loglik::numeric, 2) AS loglik, (m).n, (m).converged,
       (m).iterations BETWEEN 1 AND 200 AS iterations_ok
FROM fit;
SELECT abs((m).r - 0.2426) / 0.2426 < 1e-3 AS r_ok,
       abs((m).alpha - 4.4136) / 4.4136 < 1e-3 AS alpha_ok,
       abs((m).a - 0.7929) / 0.7929 < 1e-3 AS a_ok,
       abs((m).b - 2.4259) / 2.4259 < 1e-3 AS b_ok,
       abs((m).loglik - (-9582.43)) / 9582.43 < 1e-3 AS loglik_ok,
       -- README: -9582.4292 at the MLE with unrounded t_x, t
       abs((m).loglik - (-9582.4292)) < 1e-3 AS loglik_4dp
FROM fit;
-- the total equals the sum of per-customer log-likelihoods
SELECT abs(sum(churn.bgnbd_loglik(m, x, t_x, t)) - min((m).loglik)) < 1e-6 AS loglik_sums
FROM cal, fit;
-- weighted fit on the compressed table (x, t_x, t, count) gives the same
CREATE TEMP TABLE cal_compressed AS SELECT x, t_x, t, count(*)::float8 AS n FROM cal GROUP BY 1, 2, 3;
SELECT count(*) < 2357 AS compressed,
       abs((w).r / (m).r - 1) < 1e-8 AND abs((w).alpha / (m).alpha - 1) < 1e-8
       AND abs((w).a / (m).a - 1) < 1e-8 AND abs((w).b / (m).b - 1) < 1e-8
       AND abs((w).loglik - (m).loglik) < 1e-6 AND (w).n = 2357 AS weighted_same
FROM cal_compressed,
     (SELECT churn.bgnbd_fit(x, t_x, t, n) AS w FROM cal_compressed) wf, fit
GROUP BY w, m;
-- parallel plan (partial aggregates, serialize/combine) gives the same fit
-- (temporary tables are never scanned in parallel: use a plain one)
CREATE TABLE bgnbd_cal_par AS SELECT * FROM cal;
ANALYZE bgnbd_cal_par;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT churn.bgnbd_fit(x, t_x, t) FROM bgnbd_cal_par;
SELECT abs((p).r / (m).r - 1) < 1e-8 AND abs((p).b / (m).b - 1) < 1e-8
       AND abs((p).loglik - (m).loglik) < 1e-6 AND (p).n = 2357 AS parallel_same
FROM (SELECT churn.bgnbd_fit(x, t_x, t) AS p FROM bgnbd_cal_par) pf, fit;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
DROP TABLE bgnbd_cal_par;
-- ===== published per-customer figures
-- [LT] x = 2, t_x = 30.43, T = 38.86, 39 weeks: 1.226 (abs 0.001)
SELECT round(churn.bgnbd_expected(m, 39, 2, 30.43, 38.86)::numeric, 4) AS expected,
       abs(churn.bgnbd_expected(m, 39, 2, 30.43, 38.86) - 1.226) < 0.001 AS ok,
       round(churn.bgnbd_p_alive(m, 2, 30.43, 38.86)::numeric, 4) AS p_alive
FROM fit;
-- [LT] unconditional E[X(t)] (abs 0.001)
SELECT t, round(churn.bgnbd_expected_new(m, t)::numeric, 4) AS expected,
       abs(churn.bgnbd_expected_new(m, t) - pub) < 1e-3 AS ok
FROM fit, unnest(array[0.1429, 1, 3, 31.8571, 32, 78]::float8[],
                 array[0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576]::float8[]) AS u(t, pub);
-- [BTYD] figures at BTYD's own estimate (printed to 7 digits), 1e-5 relative
CREATE TEMP TABLE btyd AS
    SELECT ROW(0.2425982, 4.4136842, 0.7929899, 2.4261667, NULL, NULL, NULL, NULL)::churn.bgnbd AS m;
SELECT round(churn.bgnbd_expected(m, 52, 26, 30.857143, 31)::numeric, 4) AS e1516,
       abs(churn.bgnbd_expected(m, 52, 26, 30.857143, 31) / 25.75659 - 1) < 1e-5 AS e1516_ok,
       round(churn.bgnbd_p_alive(m, 26, 30.857143, 31)::numeric, 6) AS palive1516,
       abs(churn.bgnbd_p_alive(m, 26, 30.857143, 31) / 0.9688523 - 1) < 1e-5 AS palive1516_ok,
       abs(churn.bgnbd_expected_new(m, 52) / 1.444004 - 1) < 1e-5 AS new52_ok
FROM btyd;
SELECT x, abs(churn.bgnbd_expected(m, 52, x, 20, 39) / pub - 1) < 1e-5 AS ok
FROM btyd, unnest(array[10, 15, 20, 25], array[0.3474606, 0.04283391, 0.004158973, 0.0003583685]::float8[]) AS u(x, pub);
SELECT round(sum(churn.bgnbd_loglik(m, x, t_x, t))::numeric, 3) AS btyd_loglik FROM cal, btyd;
-- conditional expected holdout transactions by calibration frequency [BTYD],
-- next to the actual means (the vignette's "act" row)
SELECT least(c.x, 7) AS freq, count(*) AS bin,
       round(avg(h.x_star), 3) AS act,
       round(avg(churn.bgnbd_expected(b.m, 39, c.x, c.t_x, c.t))::numeric, 4) AS exp,
       abs(avg(churn.bgnbd_expected(b.m, 39, c.x, c.t_x, c.t)) /
           (array[0.2250893, 0.5231364, 1.044126, 1.520256, 2.163824, 2.653789, 3.503957, 6.157036])[least(c.x, 7) + 1] - 1) < 1e-5 AS exp_ok
FROM cal c JOIN hold h USING (id), btyd b
GROUP BY 1 ORDER BY 1;
-- ===== properties
-- P(alive) = 1 when x = 0; in [0, 1] over a grid (lifetimes' test)
SELECT churn.bgnbd_p_alive(m, 0, 0, 10) AS p_alive_x0,
       bool_and(churn.bgnbd_p_alive(m, x, tx, tt) BETWEEN 0 AND 1) AS p_alive_in_01
FROM fit, generate_series(0, 90, 10) x, generate_series(10, 90, 10) tx, generate_series(10, 90, 10) tt
WHERE tx <= tt GROUP BY m;
-- P(no purchase): 1 at horizon 0; decreasing in the horizon; -> 1 - P(alive)
-- for a long horizon; x = 0 customers rank as the likeliest churners
SELECT churn.bgnbd_p_churn(m, 0, 3, 20, 30) AS at_zero,
       churn.bgnbd_p_churn(m, 10, 3, 20, 30) > churn.bgnbd_p_churn(m, 20, 3, 20, 30) AS decreasing,
       abs(churn.bgnbd_p_churn(m, 1e12, 3, 20, 30) - (1 - churn.bgnbd_p_alive(m, 3, 20, 30))) < 1e-6 AS long_limit,
       round(churn.bgnbd_p_churn(m, 39, 0, 0, 30)::numeric, 4) AS x0,
       round(churn.bgnbd_p_churn(m, 39, 5, 29, 30)::numeric, 4) AS x5_recent,
       round(churn.bgnbd_p_churn(m, 39, 5, 5, 30)::numeric, 4) AS x5_lapsed
FROM fit;
-- numerics for large x and long horizons: finite, sensible
SELECT round(churn.bgnbd_expected(m, 39, 500, 38, 38.5)::numeric, 2) AS e_x500,
       round(churn.bgnbd_expected(m, 39, 100000, 38.5, 38.5)::numeric, 0) AS e_x100000,
       round(churn.bgnbd_p_alive(m, 100000, 38.5, 38.5)::numeric, 6) AS p_alive_x100000,
       churn.bgnbd_p_alive(m, 100000, 20, 38.5) AS p_alive_big_gap,
       round(churn.bgnbd_loglik(m, 100000, 38, 38.5)::numeric, 1) AS loglik_x100000,
       round(churn.bgnbd_expected(m, 10000, 1, 1, 1)::numeric, 4) AS e_long,
       churn.bgnbd_expected(m, 20000, 1, 1, 1) > churn.bgnbd_expected(m, 10000, 1, 1, 1) AS long_increasing,
       churn.bgnbd_expected(m, 0, 3, 2, 4) AS e_zero_horizon
FROM fit;
-- the same fit in days (alpha scales by 7, the rest unchanged)
SELECT abs((d).alpha / (m).alpha / 7 - 1) < 1e-6 AND abs((d).r / (m).r - 1) < 1e-6
       AND abs((d).b / (m).b - 1) < 1e-6 AS units_ok
FROM (SELECT churn.bgnbd_fit(x, t_x * 7, t * 7) AS d FROM cal) df, fit;
-- ===== churn ranking quality on the 39-week holdout: AUC of P(no purchase
-- in 39 weeks) against "no purchase 1997-10-01 .. 1998-06-30", by rank sum
-- (ties get their average rank), next to 1 - P(alive)
CREATE TEMP TABLE scored AS
    SELECT h.x_star = 0 AS churned,
           churn.bgnbd_p_churn(f.m, 39, c.x, c.t_x, c.t) AS p_churn,
           1 - churn.bgnbd_p_alive(f.m, c.x, c.t_x, c.t) AS p_dead
    FROM cal c JOIN hold h USING (id), fit f;
SELECT count(*) FILTER (WHERE churned) AS churners, count(*) FILTER (WHERE NOT churned) AS stayers FROM scored;
WITH ranked AS (
    SELECT churned,
           rank() OVER (ORDER BY p_churn) + (count(*) OVER (PARTITION BY p_churn) - 1) / 2.0 AS rk_churn,
           rank() OVER (ORDER BY p_dead) + (count(*) OVER (PARTITION BY p_dead) - 1) / 2.0 AS rk_dead
    FROM scored),
n AS (SELECT count(*) FILTER (WHERE churned) AS n1, count(*) FILTER (WHERE NOT churned) AS n0 FROM scored)
SELECT round(((sum(rk_churn) FILTER (WHERE churned) - n1 * (n1 + 1) / 2.0) / (n1 * n0))::numeric, 3) AS auc_p_churn,
       round(((sum(rk_dead) FILTER (WHERE churned) - n1 * (n1 + 1) / 2.0) / (n1 * n0))::numeric, 3) AS auc_one_minus_p_alive
FROM ranked, n GROUP BY n1, n0;
-- ===== input handling
-- NULL rows are skipped; no rows (or only NULL rows, or total weight 0) -> NULL
SELECT (churn.bgnbd_fit(x, t_x, t)).n AS n_without_nulls
FROM (SELECT x, t_x, t FROM cal UNION ALL VALUES (NULL::int, 1.0::float8, 2.0::float8), (1, NULL, 2), (1, 1, NULL)) s;
SELECT churn.bgnbd_fit(x, t_x, t) IS NULL AS empty_is_null FROM cal WHERE false;
SELECT churn.bgnbd_fit(x, t_x, t, 0) IS NULL AS zero_weight_is_null FROM cal;
SELECT (churn.bgnbd_fit(x, t_x, t, NULL::float8)) IS NULL AS null_weights_is_null FROM cal;
-- errors
SELECT churn.bgnbd_fit(x, t_x, t) FROM (VALUES (-1, 0.0, 1.0)) v(x, t_x, t);
SELECT churn.bgnbd_fit(x, t_x, t) FROM (VALUES (1, 3.0, 2.0)) v(x, t_x, t);
SELECT churn.bgnbd_fit(x, t_x, t) FROM (VALUES (2, 0.0, 2.0)) v(x, t_x, t);
SELECT churn.bgnbd_fit(x, t_x, t) FROM (VALUES (1, -1.0, 2.0)) v(x, t_x, t);
SELECT churn.bgnbd_fit(x, t_x, t) FROM (VALUES (1, 1.0, 'NaN'::float8)) v(x, t_x, t);
SELECT churn.bgnbd_fit(x, t_x, t) FROM (VALUES (1, 1.0, 'Infinity'::float8)) v(x, t_x, t);
SELECT churn.bgnbd_fit(x, t_x, t, w) FROM (VALUES (1, 1.0, 2.0, -1.0)) v(x, t_x, t, w);
SELECT churn.bgnbd_fit(x, t_x, t, w) FROM (VALUES (1, 1.0, 2.0, 'NaN'::float8)) v(x, t_x, t, w);
SELECT churn.bgnbd_fit(0, 0, t) FROM cal;
SELECT churn.bgnbd_p_alive(ROW(0.24, -4.4, 0.79, 2.4, NULL, NULL, NULL, NULL)::churn.bgnbd, 1, 1, 2);
SELECT churn.bgnbd_p_alive(ROW(NULL, 4.4, 0.79, 2.4, NULL, NULL, NULL, NULL)::churn.bgnbd, 1, 1, 2);
SELECT churn.bgnbd_p_alive(ROW(0.24, 'Infinity', 0.79, 2.4, NULL, NULL, NULL, NULL)::churn.bgnbd, 1, 1, 2);
SELECT churn.bgnbd_expected(m, -1, 1, 1, 2) FROM fit;
SELECT churn.bgnbd_p_churn(m, 'NaN', 1, 1, 2) FROM fit;
SELECT churn.bgnbd_loglik(m, 1, 2, 1) FROM fit;
SELECT churn.bgnbd_expected_new(m, -2) FROM fit;
-- STRICT: NULL arguments give NULL
SELECT churn.bgnbd_p_alive(m, NULL, 1, 2) IS NULL AS strict_null FROM fit;

-- extreme fits (a z large) used to overflow the series into NaN; the
-- expectation stays finite and between 0 and the no-dropout expectation
SELECT e > 0 AND e <= (5 + 10) / (22 + 60.0) * 26 AS finite_and_bounded,
       round(e::numeric, 6) AS expected
FROM (SELECT churn.bgnbd_expected(ROW(5, 22, 786, 571294, 0, 1, 1, true)::churn.bgnbd, 26, 10, 40, 60) AS e) s;
SELECT round(churn.bgnbd_expected(ROW(5, 22, 786, 571294, 0, 1, 1, true)::churn.bgnbd, 2600, 10, 40, 60)::numeric, 4) AS long_horizon;

-- A degenerate fit (a, b in the millions: the dropout probability is all
-- but fixed) takes the a, b -> infinity limit of the expectation instead of
-- a series of about a * z terms; below the switch the series agrees with the
-- limit to O(1/(a + b)).
SELECT round(churn.bgnbd_expected('(0.6762477965728348,1.4911869707717997,4972230.239464672,47297317.23466028,-301214.28570275614,19973,50,t)'::churn.bgnbd,
                                  365 / 7.0, 0, 0, 67 / 7.0)::numeric, 9) AS degenerate_expected;
WITH m AS (SELECT k, ('(0.676,1.49,' || (k * 0.0951)::text || ',' || k::text || ',0,1,1,t)')::churn.bgnbd AS bg
           FROM unnest(ARRAY[4000, 60000, 2000000]) k)
SELECT k, abs(churn.bgnbd_expected(bg, 52, 3, 20, 30)
              / (churn.bgnbd_p_alive(bg, 3, 20, 30)
                 * (1 - exp(-(0.676 + 3) * ln(1 + (0.0951 / 1.0951) * 52 / (1.49 + 30)))) / (0.0951 / 1.0951)) - 1)
          * (k * 1.0951) < 2 AS within_2_over_a_plus_b
FROM m ORDER BY k;
