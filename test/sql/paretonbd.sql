--
-- Pareto/NBD (churn.pnbd_fit and the per-customer functions) on the CDNOW
-- sample, against the published figures.
--
--   [FH]   Fader & Hardie (2005), "A Note on Implementing the Pareto/NBD Model in
--          MATLAB" (brucehardie.com/notes/008), and lifetimes
--          tests/test_estimation.py: MLE r = 0.553, alpha = 10.578, s = 0.606,
--          beta = 11.669, LL = -9594.98.
--   [BTYD] BTYD 2.4.3 walkthrough vignette: its estimate 0.553 10.580 0.606 11.656
--          (LL -9594.976, a slightly less converged optimum; lifetimes' test
--          uses 0.5534 10.5802 0.6061 11.6562); with it, customer 1516
--          (x = 26, t_x = 30.857143, T = 31): P(alive) 0.997874 (lifetimes: 0.9979
--          within 0.001), 52-week expectation 25.45647 (lifetimes: within 0.01
--          of its own fit); pnbd.Expectation(t = 52) = 1.473434; x = 10..25 with
--          t_x = 20, T = 39, 52 weeks: 0.7062289 0.1442396 0.02250658 0.00309267.
--
\getenv datadir CHURN_DATA_DIR
CREATE TEMP TABLE elog (masterid int, sampleid int, date text, cds int, sales numeric);
\set ECHO none
SELECT format($$COPY elog FROM %L (FORMAT csv, HEADER)$$, :'datadir' || '/cdnow/cdnowElog.csv') \gexec
\set ECHO all
CREATE TEMP TABLE pday AS
    SELECT sampleid AS id, to_date(date, 'YYYYMMDD') AS d, sum(sales) AS sales
    FROM elog GROUP BY 1, 2;
CREATE TEMP TABLE cal AS
    SELECT id, count(*)::int - 1 AS x,
           (max(d) - min(d)) / 7.0::float8 AS t_x,
           (date '1997-09-30' - min(d)) / 7.0::float8 AS t
    FROM pday WHERE d <= date '1997-09-30' GROUP BY id;
CREATE TEMP TABLE hold AS
    SELECT c.id, count(p.d)::int AS x_star
    FROM cal c LEFT JOIN pday p ON p.id = c.id AND p.d > date '1997-09-30' AND p.d <= date '1998-06-30'
    GROUP BY c.id;
-- ===== maximum likelihood fit vs [FH], 1e-3 relative
CREATE TEMP TABLE pfit AS SELECT churn.pnbd_fit(x, t_x, t) AS m FROM cal;
SELECT round((m).r::numeric, 4) AS r, round((m).alpha::numeric, 4) AS alpha,
       round((m).s::numeric, 4) AS s, round((m).beta::numeric, 3) AS beta,
       round((m).loglik::numeric, 3) AS loglik, (m).n, (m).converged
FROM pfit;
SELECT abs((m).r - 0.553) / 0.553 < 1e-3 AS r_ok,
       abs((m).alpha - 10.578) / 10.578 < 1e-3 AS alpha_ok,
       abs((m).s - 0.606) / 0.606 < 1e-3 AS s_ok,
       abs((m).beta - 11.669) / 11.669 < 1e-3 AS beta_ok,
       abs((m).loglik - (-9594.98)) / 9594.98 < 1e-3 AS loglik_ok,
       -- our optimum is at least as good as BTYD's
       (m).loglik >= -9594.9765 AS not_worse_than_btyd
FROM pfit;
SELECT abs(sum(churn.pnbd_loglik(m, x, t_x, t)) - min((m).loglik)) < 1e-6 AS loglik_sums FROM cal, pfit;
CREATE TEMP TABLE cal_compressed AS SELECT x, t_x, t, count(*)::float8 AS n FROM cal GROUP BY 1, 2, 3;
SELECT abs((w).r / (m).r - 1) < 1e-6 AND abs((w).alpha / (m).alpha - 1) < 1e-6
       AND abs((w).s / (m).s - 1) < 1e-6 AND abs((w).beta / (m).beta - 1) < 1e-6
       AND abs((w).loglik - (m).loglik) < 1e-6 AND (w).n = 2357 AS weighted_same
FROM (SELECT churn.pnbd_fit(x, t_x, t, n) AS w FROM cal_compressed) wf, pfit;
-- ===== published per-customer figures at BTYD's estimate as printed to 4
-- decimals by lifetimes (so 1e-3 relative; P(alive) 1e-5 absolute)
CREATE TEMP TABLE btyd AS
    SELECT ROW(0.5534, 10.5802, 0.6061, 11.6562, NULL, NULL, NULL, NULL)::churn.pnbd AS m;
SELECT round(churn.pnbd_p_alive(m, 26, 30.857143, 31)::numeric, 6) AS palive1516,
       abs(churn.pnbd_p_alive(m, 26, 30.857143, 31) - 0.997874) < 1e-5 AS palive_ok,
       round(churn.pnbd_expected(m, 52, 26, 30.857143, 31)::numeric, 4) AS e1516,
       abs(churn.pnbd_expected(m, 52, 26, 30.857143, 31) / 25.45647 - 1) < 1e-3 AS e1516_ok,
       round(churn.pnbd_expected_new(m, 52)::numeric, 4) AS new52,
       abs(churn.pnbd_expected_new(m, 52) / 1.473434 - 1) < 1e-3 AS new52_ok
FROM btyd;
SELECT x, round(churn.pnbd_expected(m, 52, x, 20, 39)::numeric, 6) AS expected,
       abs(churn.pnbd_expected(m, 52, x, 20, 39) / pub - 1) < 1e-3 AS ok
FROM btyd, unnest(array[10, 15, 20, 25], array[0.7062289, 0.1442396, 0.02250658, 0.00309267]::float8[]) AS u(x, pub);
-- the same figures with our own fit, 1e-3 relative
SELECT abs(churn.pnbd_p_alive(m, 26, 30.857143, 31) / 0.997874 - 1) < 1e-3 AS palive_ok,
       abs(churn.pnbd_expected(m, 52, 26, 30.857143, 31) / 25.45647 - 1) < 1e-3 AS e1516_ok,
       abs(churn.pnbd_expected_new(m, 52) / 1.473434 - 1) < 1e-3 AS new52_ok
FROM pfit;
-- ===== properties of P(no purchase in the horizon)
-- 1 at horizon 0; decreasing; above 1 - P(alive); and the closed form agrees
-- with a direct numerical integration of E[lambda e^-(lambda+mu)u] over u
SELECT round(churn.pnbd_p_churn(m, 0, 3, 10, 30)::numeric, 12) AS at_zero,
       churn.pnbd_p_churn(m, 10, 3, 10, 30) > churn.pnbd_p_churn(m, 20, 3, 10, 30) AS decreasing,
       churn.pnbd_p_churn(m, 1e9, 3, 10, 30) > 1 - churn.pnbd_p_alive(m, 3, 10, 30) AS above_dead,
       round(churn.pnbd_p_churn(m, 39, 3, 10, 30)::numeric, 4) AS p39
FROM pfit;
-- midpoint rule, 200000 steps over (0, 39]: P(purchase | alive) =
-- int_0^h (r+x)/(a'+u) (a'/(a'+u))^(r+x) (b'/(b'+u))^s du
SELECT abs((1 - churn.pnbd_p_churn(m, 39, 3, 10, 30)) / churn.pnbd_p_alive(m, 3, 10, 30)
           - sum(((m).r + 3) / ((m).alpha + 30 + u) * (((m).alpha + 30) / ((m).alpha + 30 + u)) ^ ((m).r + 3)
                 * (((m).beta + 30) / ((m).beta + 30 + u)) ^ (m).s) * 39 / 200000) < 1e-8 AS matches_integral
FROM pfit, LATERAL (SELECT (k - 0.5) * 39 / 200000 AS u FROM generate_series(1, 200000) k) g
GROUP BY m;
-- alpha < beta and alpha > beta branches, large x, s close to 1
SELECT round(churn.pnbd_loglik(ROW(0.5, 20, 0.6, 2, NULL, NULL, NULL, NULL)::churn.pnbd, 3, 10, 30)::numeric, 6) AS ll_alpha_gt_beta,
       round(churn.pnbd_loglik(ROW(0.5, 2, 0.6, 20, NULL, NULL, NULL, NULL)::churn.pnbd, 3, 10, 30)::numeric, 6) AS ll_alpha_lt_beta,
       round(churn.pnbd_loglik(ROW(0.5, 5, 0.6, 5, NULL, NULL, NULL, NULL)::churn.pnbd, 3, 10, 30)::numeric, 6) AS ll_equal,
       round(churn.pnbd_expected(m, 39, 500, 38, 38.5)::numeric, 2) AS e_x500,
       round(churn.pnbd_p_alive(m, 1000, 20, 38.5)::numeric, 6) AS p_alive_x1000,
       abs(churn.pnbd_expected(ROW(0.5, 10, 1, 10, NULL, NULL, NULL, NULL)::churn.pnbd, 39, 2, 5, 30)
           - churn.pnbd_expected(ROW(0.5, 10, 1.0000001, 10, NULL, NULL, NULL, NULL)::churn.pnbd, 39, 2, 5, 30)) < 1e-6 AS s_near_1
FROM pfit;
-- continuity across alpha = beta
SELECT abs(churn.pnbd_loglik(ROW(0.5, 5, 0.6, 5, NULL, NULL, NULL, NULL)::churn.pnbd, 3, 10, 30)
           - churn.pnbd_loglik(ROW(0.5, 5.000001, 0.6, 5, NULL, NULL, NULL, NULL)::churn.pnbd, 3, 10, 30)) < 1e-5 AS continuous
;
-- ===== AUC of P(no purchase in 39 weeks) on the holdout (rank sum)
CREATE TEMP TABLE scored AS
    SELECT h.x_star = 0 AS churned, churn.pnbd_p_churn(f.m, 39, c.x, c.t_x, c.t) AS p_churn
    FROM cal c JOIN hold h USING (id), pfit f;
WITH ranked AS (
    SELECT churned, rank() OVER (ORDER BY p_churn) + (count(*) OVER (PARTITION BY p_churn) - 1) / 2.0 AS rk
    FROM scored),
n AS (SELECT count(*) FILTER (WHERE churned) AS n1, count(*) FILTER (WHERE NOT churned) AS n0 FROM scored)
SELECT round(((sum(rk) FILTER (WHERE churned) - n1 * (n1 + 1) / 2.0) / (n1 * n0))::numeric, 3) AS auc_p_churn
FROM ranked, n GROUP BY n1, n0;
-- ===== input handling
SELECT churn.pnbd_fit(x, t_x, t) IS NULL AS empty_is_null FROM cal WHERE false;
SELECT (churn.pnbd_fit(x, t_x, t)).n FROM (SELECT x, t_x, t FROM cal UNION ALL VALUES (NULL::int, 1.0::float8, 2.0::float8)) s;
SELECT churn.pnbd_fit(x, t_x, t) FROM (VALUES (-1, 0.0, 1.0)) v(x, t_x, t);
SELECT churn.pnbd_fit(x, t_x, t) FROM (VALUES (1, 3.0, 2.0)) v(x, t_x, t);
SELECT churn.pnbd_fit(x, t_x, t) FROM (VALUES (2, 0.0, 2.0)) v(x, t_x, t);
SELECT churn.pnbd_fit(x, t_x, t) FROM (VALUES (1, 1.0, '-Infinity'::float8)) v(x, t_x, t);
SELECT churn.pnbd_fit(x, t_x, t, w) FROM (VALUES (1, 1.0, 2.0, 'Infinity'::float8)) v(x, t_x, t, w);
SELECT churn.pnbd_fit(0, 0, t) FROM cal;
SELECT churn.pnbd_p_alive(ROW(0.5, 10, 0, 11, NULL, NULL, NULL, NULL)::churn.pnbd, 1, 1, 2);
SELECT churn.pnbd_expected(m, -1, 1, 1, 2) FROM pfit;
SELECT churn.pnbd_p_churn(m, 10, 1, 'NaN', 2) FROM pfit;
