-- Honest quality on CDNOW: fit BG/NBD and Pareto/NBD on the calibration
-- period (to 1997-09-30, in weeks), score P(no purchase in the 39-week
-- holdout) and measure it against what happened, with churn.auc,
-- churn.calibration, churn.lift, churn.log_loss and churn.brier.
-- This is the query behind the figures in the README.
CREATE SCHEMA test_ref_cdnow_quality;
SET search_path = test_ref_cdnow_quality;
SET extra_float_digits = 0;
\getenv datadir CHURN_DATA_DIR
CREATE TABLE raw (line text);
\set ECHO none
SELECT format('COPY raw FROM %L', :'datadir' || '/cdnow/CDNOW_sample.txt') \gexec
\set ECHO all
CREATE TABLE cdnow AS
SELECT f[2]::int AS customer_id, to_date(f[3], 'YYYYMMDD') AS day, f[5]::numeric AS amount
FROM (SELECT regexp_split_to_array(btrim(line, E' \r\n'), '\s+') AS f FROM raw) s;

CREATE TABLE scored AS
WITH h AS (SELECT customer_id, churn.history_agg(day, amount) AS h FROM cdnow GROUP BY 1),
     f AS (SELECT customer_id, churn.features(h, '1997-09-30') AS f,
                  churn.churned(h, '1997-09-30', 273) AS churned FROM h),
     bg AS (SELECT churn.bgnbd_fit((f).x, (f).t_x / 7, (f).t / 7) AS m FROM f),
     pn AS (SELECT churn.pnbd_fit((f).x, (f).t_x / 7, (f).t / 7) AS m FROM f)
SELECT customer_id, churned,
       churn.bgnbd_p_churn(bg.m, 39, (f).x, (f).t_x / 7, (f).t / 7) AS p_bgnbd,
       churn.pnbd_p_churn(pn.m, 39, (f).x, (f).t_x / 7, (f).t / 7) AS p_pnbd,
       1 - churn.bgnbd_p_alive(bg.m, (f).x, (f).t_x / 7, (f).t / 7) AS one_minus_p_alive
FROM f, bg, pn;

SELECT count(*) AS customers, count(*) FILTER (WHERE churned) AS churned_in_holdout FROM scored;
SELECT 'bgnbd_p_churn' AS score, round(churn.auc(p_bgnbd, churned)::numeric, 4) AS auc,
       round(churn.log_loss(p_bgnbd, churned)::numeric, 4) AS log_loss,
       round(churn.brier(p_bgnbd, churned)::numeric, 4) AS brier,
       round(((churn.lift(p_bgnbd, churned))[1]).lift::numeric, 3) AS top_decile_lift
FROM scored
UNION ALL
SELECT 'pnbd_p_churn', round(churn.auc(p_pnbd, churned)::numeric, 4),
       round(churn.log_loss(p_pnbd, churned)::numeric, 4), round(churn.brier(p_pnbd, churned)::numeric, 4),
       round(((churn.lift(p_pnbd, churned))[1]).lift::numeric, 3)
FROM scored
UNION ALL
SELECT '1 - bgnbd_p_alive (wrong)', round(churn.auc(one_minus_p_alive, churned)::numeric, 4),
       round(churn.log_loss(one_minus_p_alive, churned)::numeric, 4),
       round(churn.brier(one_minus_p_alive, churned)::numeric, 4),
       round(((churn.lift(one_minus_p_alive, churned))[1]).lift::numeric, 3)
FROM scored;
-- calibration of bgnbd_p_churn: predicted vs observed churn rate per bin
SELECT c.bin, c.n, round(c.mean_score::numeric, 3) AS predicted, round(c.rate::numeric, 3) AS observed
FROM (SELECT churn.calibration(p_bgnbd, churned, 10) AS bins FROM scored) s, unnest(s.bins) c
WHERE c.n > 0 ORDER BY c.bin;
