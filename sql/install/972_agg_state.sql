-- churn_warning install script, part 972 (0.3.0): churn.agg_state, a real
-- transition type for the fitting and evaluation aggregates.
--
-- Until 0.2.0 bgnbd_fit, pnbd_fit, gg_fit, rfm_cuts, logit_fit, auc, lift,
-- log_loss, brier and calibration had STYPE = internal.  Citus runs an
-- aggregate as partial aggregates on the workers only when its state type
-- is not internal (it passes states as text through the type's I/O), so
-- with internal states it pulled every row to the coordinator.  Their state
-- is now churn.agg_state (src/aggstate.c): an expanded object around the
-- same in-memory state, with a text form "<kind>:<hex>".  CREATE OR
-- REPLACE AGGREGATE cannot change the state type, so the aggregates are
-- dropped and created again (nothing in the catalog depends on them: the
-- SQL and PL/pgSQL functions that call them are parsed at run time).  The
-- internal-state support functions stay, unused, with their C symbols.
-- xgb_fit keeps its internal state (it trains on the coordinator).

CREATE TYPE churn.agg_state;
CREATE FUNCTION churn.agg_state_in(pg_catalog.cstring) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'agg_state_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION churn.agg_state_out(churn.agg_state) RETURNS pg_catalog.cstring
    AS 'MODULE_PATHNAME', 'agg_state_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE churn.agg_state (
    INPUT = churn.agg_state_in, OUTPUT = churn.agg_state_out,
    INTERNALLENGTH = VARIABLE, ALIGNMENT = double, STORAGE = extended);
COMMENT ON TYPE churn.agg_state IS
    'transition state of the fitting and evaluation aggregates; text form <kind>:<hex>, for moving partial states between nodes';

-- ---- support functions: the churn.agg_state overloads --------------------
CREATE FUNCTION churn.rft_fit_trans(churn.agg_state, pg_catalog.int4, pg_catalog.float8, pg_catalog.float8) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'rft_fit_trans_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.rft_fit_trans(churn.agg_state, pg_catalog.int4, pg_catalog.float8, pg_catalog.float8, pg_catalog.float8) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'rft_fit_trans_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.gg_fit_trans(churn.agg_state, pg_catalog.int4, pg_catalog.float8) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'gg_fit_trans_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.gg_fit_trans(churn.agg_state, pg_catalog.int4, pg_catalog.float8, pg_catalog.float8) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'gg_fit_trans_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.prob_fit_combine(churn.agg_state, churn.agg_state) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'prob_fit_combine_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.bgnbd_fit_final(churn.agg_state) RETURNS churn.bgnbd
    AS 'MODULE_PATHNAME', 'bgnbd_fit_final_state' LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.pnbd_fit_final(churn.agg_state) RETURNS churn.pnbd
    AS 'MODULE_PATHNAME', 'pnbd_fit_final_state' LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.gg_fit_final(churn.agg_state) RETURNS churn.gg
    AS 'MODULE_PATHNAME', 'gg_fit_final_state' LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.rfm_cuts_trans(churn.agg_state, pg_catalog.float8, pg_catalog.int4) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'rfm_cuts_trans_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.rfm_cuts_combine(churn.agg_state, churn.agg_state) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'rfm_cuts_combine_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.rfm_cuts_final(churn.agg_state) RETURNS pg_catalog.float8[]
    AS 'MODULE_PATHNAME', 'rfm_cuts_final_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.logit_fit_trans(churn.agg_state, pg_catalog.bool, pg_catalog.float8[]) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'logit_fit_trans_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.logit_fit_trans(churn.agg_state, pg_catalog.bool, pg_catalog.float8[], pg_catalog.float8) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'logit_fit_trans_l2_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
-- COST: what the serializer and deserializer cost before (parts 400, 970): a
-- partial logit_fit state carries every row it saw, so parallel plans only
-- pay off on much data (the planner counts the combine per partial state).
CREATE FUNCTION churn.logit_fit_combine(churn.agg_state, churn.agg_state) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'logit_fit_combine_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE
    COST 4000000;
CREATE FUNCTION churn.logit_fit_final(churn.agg_state) RETURNS churn.logit
    AS 'MODULE_PATHNAME', 'logit_fit_final_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.eval_rank_trans(churn.agg_state, pg_catalog.float8, pg_catalog.bool) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'eval_rank_trans_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.eval_rank_trans(churn.agg_state, pg_catalog.float8, pg_catalog.bool, pg_catalog.int4) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'eval_rank_trans_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.eval_rank_combine(churn.agg_state, churn.agg_state) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'eval_rank_combine_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.eval_auc_final(churn.agg_state) RETURNS pg_catalog.float8
    AS 'MODULE_PATHNAME', 'eval_auc_final_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.eval_lift_final(churn.agg_state) RETURNS churn.bin_stat[]
    AS 'MODULE_PATHNAME', 'eval_lift_final_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.eval_logloss_trans(churn.agg_state, pg_catalog.float8, pg_catalog.bool) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'eval_logloss_trans_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.eval_brier_trans(churn.agg_state, pg_catalog.float8, pg_catalog.bool) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'eval_brier_trans_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.eval_mean_combine(churn.agg_state, churn.agg_state) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'eval_mean_combine_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.eval_mean_final(churn.agg_state) RETURNS pg_catalog.float8
    AS 'MODULE_PATHNAME', 'eval_mean_final_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.eval_calib_trans(churn.agg_state, pg_catalog.float8, pg_catalog.bool) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'eval_calib_trans_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.eval_calib_trans(churn.agg_state, pg_catalog.float8, pg_catalog.bool, pg_catalog.int4) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'eval_calib_trans_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.eval_calib_combine(churn.agg_state, churn.agg_state) RETURNS churn.agg_state
    AS 'MODULE_PATHNAME', 'eval_calib_combine_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.eval_calib_final(churn.agg_state) RETURNS churn.bin_stat[]
    AS 'MODULE_PATHNAME', 'eval_calib_final_state' LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

-- ---- the aggregates, dropped and created again with the new state ------
DROP AGGREGATE churn.bgnbd_fit(pg_catalog.int4, pg_catalog.float8, pg_catalog.float8);
CREATE AGGREGATE churn.bgnbd_fit(x pg_catalog.int4, t_x pg_catalog.float8, t pg_catalog.float8) (
    SFUNC = churn.rft_fit_trans, STYPE = churn.agg_state,
    FINALFUNC = churn.bgnbd_fit_final, COMBINEFUNC = churn.prob_fit_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.bgnbd_fit(pg_catalog.int4, pg_catalog.float8, pg_catalog.float8) IS
    'maximum likelihood BG/NBD fit; rows with a NULL input are skipped; NULL for no rows';
DROP AGGREGATE churn.bgnbd_fit(pg_catalog.int4, pg_catalog.float8, pg_catalog.float8, pg_catalog.float8);
CREATE AGGREGATE churn.bgnbd_fit(x pg_catalog.int4, t_x pg_catalog.float8, t pg_catalog.float8, weight pg_catalog.float8) (
    SFUNC = churn.rft_fit_trans, STYPE = churn.agg_state,
    FINALFUNC = churn.bgnbd_fit_final, COMBINEFUNC = churn.prob_fit_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.bgnbd_fit(pg_catalog.int4, pg_catalog.float8, pg_catalog.float8, pg_catalog.float8) IS
    'weighted maximum likelihood BG/NBD fit (weight = number of customers with this x, t_x, t)';
DROP AGGREGATE churn.pnbd_fit(pg_catalog.int4, pg_catalog.float8, pg_catalog.float8);
CREATE AGGREGATE churn.pnbd_fit(x pg_catalog.int4, t_x pg_catalog.float8, t pg_catalog.float8) (
    SFUNC = churn.rft_fit_trans, STYPE = churn.agg_state,
    FINALFUNC = churn.pnbd_fit_final, COMBINEFUNC = churn.prob_fit_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.pnbd_fit(pg_catalog.int4, pg_catalog.float8, pg_catalog.float8) IS
    'maximum likelihood Pareto/NBD fit; rows with a NULL input are skipped; NULL for no rows';
DROP AGGREGATE churn.pnbd_fit(pg_catalog.int4, pg_catalog.float8, pg_catalog.float8, pg_catalog.float8);
CREATE AGGREGATE churn.pnbd_fit(x pg_catalog.int4, t_x pg_catalog.float8, t pg_catalog.float8, weight pg_catalog.float8) (
    SFUNC = churn.rft_fit_trans, STYPE = churn.agg_state,
    FINALFUNC = churn.pnbd_fit_final, COMBINEFUNC = churn.prob_fit_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.pnbd_fit(pg_catalog.int4, pg_catalog.float8, pg_catalog.float8, pg_catalog.float8) IS
    'weighted maximum likelihood Pareto/NBD fit';
DROP AGGREGATE churn.gg_fit(pg_catalog.int4, pg_catalog.float8);
CREATE AGGREGATE churn.gg_fit(x pg_catalog.int4, avg_spend pg_catalog.float8) (
    SFUNC = churn.gg_fit_trans, STYPE = churn.agg_state,
    FINALFUNC = churn.gg_fit_final, COMBINEFUNC = churn.prob_fit_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.gg_fit(pg_catalog.int4, pg_catalog.float8) IS
    'maximum likelihood Gamma-Gamma fit on customers with x > 0 (x = 0 and NULL rows are skipped)';
DROP AGGREGATE churn.gg_fit(pg_catalog.int4, pg_catalog.float8, pg_catalog.float8);
CREATE AGGREGATE churn.gg_fit(x pg_catalog.int4, avg_spend pg_catalog.float8, weight pg_catalog.float8) (
    SFUNC = churn.gg_fit_trans, STYPE = churn.agg_state,
    FINALFUNC = churn.gg_fit_final, COMBINEFUNC = churn.prob_fit_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.gg_fit(pg_catalog.int4, pg_catalog.float8, pg_catalog.float8) IS
    'weighted maximum likelihood Gamma-Gamma fit';
DROP AGGREGATE churn.rfm_cuts(pg_catalog.float8, pg_catalog.int4);
CREATE AGGREGATE churn.rfm_cuts(value pg_catalog.float8, bins pg_catalog.int4) (
    SFUNC = churn.rfm_cuts_trans, STYPE = churn.agg_state,
    FINALFUNC = churn.rfm_cuts_final, FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = churn.rfm_cuts_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.rfm_cuts(pg_catalog.float8, pg_catalog.int4) IS
    'bins - 1 quantile cut points of the non-NULL values (percentile_cont interpolation)';
DROP AGGREGATE churn.logit_fit(pg_catalog.bool, pg_catalog.float8[]);
CREATE AGGREGATE churn.logit_fit(churned pg_catalog.bool, x pg_catalog.float8[]) (
    SFUNC = churn.logit_fit_trans, STYPE = churn.agg_state,
    FINALFUNC = churn.logit_fit_final, COMBINEFUNC = churn.logit_fit_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.logit_fit(pg_catalog.bool, pg_catalog.float8[]) IS
    'maximum likelihood logistic regression of churned on x (Newton/IRLS); coef[1] is the intercept';
DROP AGGREGATE churn.logit_fit(pg_catalog.bool, pg_catalog.float8[], pg_catalog.float8);
CREATE AGGREGATE churn.logit_fit(churned pg_catalog.bool, x pg_catalog.float8[], l2 pg_catalog.float8) (
    SFUNC = churn.logit_fit_trans, STYPE = churn.agg_state,
    FINALFUNC = churn.logit_fit_final, COMBINEFUNC = churn.logit_fit_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.logit_fit(pg_catalog.bool, pg_catalog.float8[], pg_catalog.float8) IS
    'L2-penalised logistic regression: maximises loglik - l2/2 * sum of squared non-intercept coefficients';
DROP AGGREGATE churn.auc(pg_catalog.float8, pg_catalog.bool);
CREATE AGGREGATE churn.auc(score pg_catalog.float8, label pg_catalog.bool) (
    SFUNC = churn.eval_rank_trans, STYPE = churn.agg_state,
    FINALFUNC = churn.eval_auc_final, COMBINEFUNC = churn.eval_rank_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.auc(pg_catalog.float8, pg_catalog.bool) IS
    'exact ROC AUC (Mann-Whitney, ties count half); NULL rows skipped, NULL when only one class is present';
DROP AGGREGATE churn.lift(pg_catalog.float8, pg_catalog.bool);
CREATE AGGREGATE churn.lift(score pg_catalog.float8, label pg_catalog.bool) (
    SFUNC = churn.eval_rank_trans, STYPE = churn.agg_state,
    FINALFUNC = churn.eval_lift_final, COMBINEFUNC = churn.eval_rank_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.lift(pg_catalog.float8, pg_catalog.bool) IS
    'lift table in 10 quantile bins by score descending (bin 1 = highest scores), as churn.bin_stat[]';
DROP AGGREGATE churn.lift(pg_catalog.float8, pg_catalog.bool, pg_catalog.int4);
CREATE AGGREGATE churn.lift(score pg_catalog.float8, label pg_catalog.bool, bins pg_catalog.int4) (
    SFUNC = churn.eval_rank_trans, STYPE = churn.agg_state,
    FINALFUNC = churn.eval_lift_final, COMBINEFUNC = churn.eval_rank_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.lift(pg_catalog.float8, pg_catalog.bool, pg_catalog.int4) IS
    'lift table in the given number of quantile bins by score descending (bin 1 = highest scores), as churn.bin_stat[]';
DROP AGGREGATE churn.log_loss(pg_catalog.float8, pg_catalog.bool);
CREATE AGGREGATE churn.log_loss(p pg_catalog.float8, label pg_catalog.bool) (
    SFUNC = churn.eval_logloss_trans, STYPE = churn.agg_state,
    FINALFUNC = churn.eval_mean_final, COMBINEFUNC = churn.eval_mean_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.log_loss(pg_catalog.float8, pg_catalog.bool) IS
    'mean binary cross-entropy in nats, p clipped to [1e-15, 1 - 1e-15] as sklearn.metrics.log_loss';
DROP AGGREGATE churn.brier(pg_catalog.float8, pg_catalog.bool);
CREATE AGGREGATE churn.brier(p pg_catalog.float8, label pg_catalog.bool) (
    SFUNC = churn.eval_brier_trans, STYPE = churn.agg_state,
    FINALFUNC = churn.eval_mean_final, COMBINEFUNC = churn.eval_mean_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.brier(pg_catalog.float8, pg_catalog.bool) IS
    'Brier score: mean of (p - label)^2, as sklearn.metrics.brier_score_loss';
DROP AGGREGATE churn.calibration(pg_catalog.float8, pg_catalog.bool);
CREATE AGGREGATE churn.calibration(p pg_catalog.float8, label pg_catalog.bool) (
    SFUNC = churn.eval_calib_trans, STYPE = churn.agg_state,
    FINALFUNC = churn.eval_calib_final, COMBINEFUNC = churn.eval_calib_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.calibration(pg_catalog.float8, pg_catalog.bool) IS
    'calibration table in 10 equal-width bins of p on [0, 1], as churn.bin_stat[]';
DROP AGGREGATE churn.calibration(pg_catalog.float8, pg_catalog.bool, pg_catalog.int4);
CREATE AGGREGATE churn.calibration(p pg_catalog.float8, label pg_catalog.bool, bins pg_catalog.int4) (
    SFUNC = churn.eval_calib_trans, STYPE = churn.agg_state,
    FINALFUNC = churn.eval_calib_final, COMBINEFUNC = churn.eval_calib_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.calibration(pg_catalog.float8, pg_catalog.bool, pg_catalog.int4) IS
    'calibration table in the given number of equal-width bins of p on [0, 1], as churn.bin_stat[]';
