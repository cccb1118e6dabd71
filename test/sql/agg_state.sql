-- churn.agg_state (0.3.0): the state type of the fitting and evaluation
-- aggregates.  What Citus does with it, without Citus: partial states per
-- part of the rows (the transition function alone), passed through their
-- text form, combined (the combine function) and finished (the final
-- function) must give the aggregate over all rows.  Then the errors.
CREATE SCHEMA test_agg_state;
SET search_path = test_agg_state;
CREATE TABLE r AS
SELECT i % 4 AS part, i % 5 AS x,
       CASE WHEN i % 5 = 0 THEN 0 ELSE 1 + i % 20 END::float8 AS tx,
       (25 + i % 4)::float8 AS t, (i * 37 % 100) / 100.0::float8 AS p, i % 3 = 0 AS y,
       ARRAY[(i % 7)::float8, (i % 11) / 5.0] AS xs
FROM generate_series(1, 2000) i;

-- partial aggregates (no final function) and their combination
CREATE AGGREGATE prob_partial(int, float8, float8) (SFUNC = churn.rft_fit_trans, STYPE = churn.agg_state);
CREATE AGGREGATE prob_bgnbd(churn.agg_state) (SFUNC = churn.prob_fit_combine, STYPE = churn.agg_state,
    FINALFUNC = churn.bgnbd_fit_final);
CREATE AGGREGATE rfm_partial(float8, int) (SFUNC = churn.rfm_cuts_trans, STYPE = churn.agg_state);
CREATE AGGREGATE rfm_cuts_of(churn.agg_state) (SFUNC = churn.rfm_cuts_combine, STYPE = churn.agg_state,
    FINALFUNC = churn.rfm_cuts_final);
CREATE AGGREGATE rank_partial(float8, boolean) (SFUNC = churn.eval_rank_trans, STYPE = churn.agg_state);
CREATE AGGREGATE auc_of(churn.agg_state) (SFUNC = churn.eval_rank_combine, STYPE = churn.agg_state,
    FINALFUNC = churn.eval_auc_final);
CREATE AGGREGATE mean_partial(float8, boolean) (SFUNC = churn.eval_logloss_trans, STYPE = churn.agg_state);
CREATE AGGREGATE log_loss_of(churn.agg_state) (SFUNC = churn.eval_mean_combine, STYPE = churn.agg_state,
    FINALFUNC = churn.eval_mean_final);
CREATE AGGREGATE calib_partial(float8, boolean, int) (SFUNC = churn.eval_calib_trans, STYPE = churn.agg_state);
CREATE AGGREGATE calibration_of(churn.agg_state) (SFUNC = churn.eval_calib_combine, STYPE = churn.agg_state,
    FINALFUNC = churn.eval_calib_final);
CREATE AGGREGATE logit_partial(boolean, float8[]) (SFUNC = churn.logit_fit_trans, STYPE = churn.agg_state);
CREATE AGGREGATE logit_of(churn.agg_state) (SFUNC = churn.logit_fit_combine, STYPE = churn.agg_state,
    FINALFUNC = churn.logit_fit_final);

CREATE TABLE parts AS
SELECT part, prob_partial(x, tx, t)::text AS prob, rfm_partial(p, 4)::text AS rfm,
       rank_partial(p, y)::text AS rank, mean_partial(p, y)::text AS mean,
       calib_partial(p, y, 5)::text AS calib, logit_partial(y, xs)::text AS logit
FROM r GROUP BY part;
-- the text forms start with the kind
SELECT part, split_part(prob, ':', 1) AS prob, split_part(rfm, ':', 1) AS rfm, split_part(rank, ':', 1) AS rank,
       split_part(mean, ':', 1) AS mean, split_part(calib, ':', 1) AS calib, split_part(logit, ':', 1) AS logit
FROM parts ORDER BY part;
-- combined from text = over all rows
SELECT (SELECT prob_bgnbd(prob::churn.agg_state) FROM parts) = (SELECT churn.bgnbd_fit(x, tx, t) FROM r) AS bgnbd,
       (SELECT rfm_cuts_of(rfm::churn.agg_state) FROM parts) = (SELECT churn.rfm_cuts(p, 4) FROM r) AS rfm_cuts,
       (SELECT auc_of(rank::churn.agg_state) FROM parts) = (SELECT churn.auc(p, y) FROM r) AS auc,
       (SELECT log_loss_of(mean::churn.agg_state) FROM parts) = (SELECT churn.log_loss(p, y) FROM r) AS log_loss,
       (SELECT calibration_of(calib::churn.agg_state) FROM parts)::text
           = (SELECT churn.calibration(p, y, 5) FROM r)::text AS calibration;
-- logit_fit: the rows come in another order, so Newton's sums differ in the last bits
SELECT max(abs(a.c - b.c)) < 1e-9 AS logit_within_1e_9
FROM unnest((SELECT (logit_of(logit::churn.agg_state)).coef FROM parts)) WITH ORDINALITY a(c, i)
JOIN unnest((SELECT (churn.logit_fit(y, xs)).coef FROM r)) WITH ORDINALITY b(c, i) USING (i);
-- a text form read back prints the same
SELECT bool_and(prob::churn.agg_state::text = prob AND logit::churn.agg_state::text = logit) AS round_trip FROM parts;
-- and PostgreSQL's own parallel aggregation still gives the same
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT (SELECT churn.bgnbd_fit(x, tx, t) FROM r) = (SELECT prob_bgnbd(prob::churn.agg_state) FROM parts) AS parallel_bgnbd,
       (SELECT churn.auc(p, y) FROM r) = (SELECT auc_of(rank::churn.agg_state) FROM parts) AS parallel_auc;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

-- errors
\set VERBOSITY sqlstate
SELECT 'nope:00'::churn.agg_state;
SELECT 'prob_fit'::churn.agg_state;
SELECT 'prob_fit:abc'::churn.agg_state;
SELECT 'prob_fit:zz'::churn.agg_state;
-- a state of another kind
SELECT prob_bgnbd(rfm::churn.agg_state) FROM parts;
-- a state that does not parse
SELECT prob_bgnbd('prob_fit:00'::churn.agg_state);
SELECT logit_of('logit_fit:0000'::churn.agg_state);
SELECT auc_of('eval_rank:00'::churn.agg_state);
-- the support functions need an aggregate
SELECT churn.rft_fit_trans(NULL::churn.agg_state, 1, 2, 3);
\set VERBOSITY default
SELECT 'nope:00'::churn.agg_state;
DROP SCHEMA test_agg_state CASCADE;
