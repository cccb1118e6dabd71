-- churn_warning install script, part 500: evaluation aggregates.
--
-- churn.auc, churn.log_loss, churn.brier, churn.lift and churn.calibration.
-- All are parallel aggregates (internal state with combine, serialize and
-- deserialize functions); see docs/reference/eval.md.

-- One row of a lift table or a calibration table.
CREATE TYPE churn.bin_stat AS (
    bin          int,      -- 1-based bin number
    n            bigint,   -- rows in the bin
    positives    bigint,   -- rows with label true
    mean_score   float8,   -- mean score (lift) or mean predicted probability (calibration)
    rate         float8,   -- positives / n: observed rate of label true
    lift         float8,   -- rate / overall rate
    cum_rate     float8,   -- positives / n over bins 1..bin
    cum_lift     float8,   -- cum_rate / overall rate
    min_score    float8,   -- lowest score in the bin
    max_score    float8,   -- highest score in the bin
    cum_n        bigint,   -- rows in bins 1..bin
    cum_capture  float8    -- share of all positives that are in bins 1..bin
);
COMMENT ON TYPE churn.bin_stat IS
    'one bin of churn.lift or churn.calibration: counts, mean score, observed rate, lift and cumulative gains';

-- ---- rank state: churn.auc and churn.lift ----------------------------------

CREATE FUNCTION churn.eval_rank_trans(internal, float8, boolean)
RETURNS internal
AS 'MODULE_PATHNAME', 'churn_eval_rank_trans'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.eval_rank_trans(internal, float8, boolean, int)
RETURNS internal
AS 'MODULE_PATHNAME', 'churn_eval_rank_trans'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.eval_rank_combine(internal, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'churn_eval_rank_combine'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.eval_rank_serialize(internal)
RETURNS bytea
AS 'MODULE_PATHNAME', 'churn_eval_rank_serialize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION churn.eval_rank_deserialize(bytea, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'churn_eval_rank_deserialize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION churn.eval_auc_final(internal)
RETURNS float8
AS 'MODULE_PATHNAME', 'churn_eval_auc_final'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.eval_lift_final(internal)
RETURNS churn.bin_stat[]
AS 'MODULE_PATHNAME', 'churn_eval_lift_final'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE churn.auc(score float8, label boolean) (
    SFUNC = churn.eval_rank_trans,
    STYPE = internal,
    FINALFUNC = churn.eval_auc_final,
    COMBINEFUNC = churn.eval_rank_combine,
    SERIALFUNC = churn.eval_rank_serialize,
    DESERIALFUNC = churn.eval_rank_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.auc(float8, boolean) IS
    'exact ROC AUC (Mann-Whitney, ties count half); NULL rows skipped, NULL when only one class is present';

CREATE AGGREGATE churn.lift(score float8, label boolean) (
    SFUNC = churn.eval_rank_trans,
    STYPE = internal,
    FINALFUNC = churn.eval_lift_final,
    COMBINEFUNC = churn.eval_rank_combine,
    SERIALFUNC = churn.eval_rank_serialize,
    DESERIALFUNC = churn.eval_rank_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.lift(float8, boolean) IS
    'lift table in 10 quantile bins by score descending (bin 1 = highest scores), as churn.bin_stat[]';

CREATE AGGREGATE churn.lift(score float8, label boolean, bins int) (
    SFUNC = churn.eval_rank_trans,
    STYPE = internal,
    FINALFUNC = churn.eval_lift_final,
    COMBINEFUNC = churn.eval_rank_combine,
    SERIALFUNC = churn.eval_rank_serialize,
    DESERIALFUNC = churn.eval_rank_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.lift(float8, boolean, int) IS
    'lift table in the given number of quantile bins by score descending (bin 1 = highest scores), as churn.bin_stat[]';

-- ---- mean state: churn.log_loss and churn.brier ----------------------------

CREATE FUNCTION churn.eval_logloss_trans(internal, float8, boolean)
RETURNS internal
AS 'MODULE_PATHNAME', 'churn_eval_logloss_trans'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.eval_brier_trans(internal, float8, boolean)
RETURNS internal
AS 'MODULE_PATHNAME', 'churn_eval_brier_trans'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.eval_mean_combine(internal, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'churn_eval_mean_combine'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.eval_mean_serialize(internal)
RETURNS bytea
AS 'MODULE_PATHNAME', 'churn_eval_mean_serialize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION churn.eval_mean_deserialize(bytea, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'churn_eval_mean_deserialize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION churn.eval_mean_final(internal)
RETURNS float8
AS 'MODULE_PATHNAME', 'churn_eval_mean_final'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE churn.log_loss(p float8, label boolean) (
    SFUNC = churn.eval_logloss_trans,
    STYPE = internal,
    FINALFUNC = churn.eval_mean_final,
    COMBINEFUNC = churn.eval_mean_combine,
    SERIALFUNC = churn.eval_mean_serialize,
    DESERIALFUNC = churn.eval_mean_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.log_loss(float8, boolean) IS
    'mean binary cross-entropy in nats, p clipped to [1e-15, 1 - 1e-15] as sklearn.metrics.log_loss';

CREATE AGGREGATE churn.brier(p float8, label boolean) (
    SFUNC = churn.eval_brier_trans,
    STYPE = internal,
    FINALFUNC = churn.eval_mean_final,
    COMBINEFUNC = churn.eval_mean_combine,
    SERIALFUNC = churn.eval_mean_serialize,
    DESERIALFUNC = churn.eval_mean_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.brier(float8, boolean) IS
    'Brier score: mean of (p - label)^2, as sklearn.metrics.brier_score_loss';

-- ---- calibration state -----------------------------------------------------

CREATE FUNCTION churn.eval_calib_trans(internal, float8, boolean)
RETURNS internal
AS 'MODULE_PATHNAME', 'churn_eval_calib_trans'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.eval_calib_trans(internal, float8, boolean, int)
RETURNS internal
AS 'MODULE_PATHNAME', 'churn_eval_calib_trans'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.eval_calib_combine(internal, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'churn_eval_calib_combine'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.eval_calib_serialize(internal)
RETURNS bytea
AS 'MODULE_PATHNAME', 'churn_eval_calib_serialize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION churn.eval_calib_deserialize(bytea, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'churn_eval_calib_deserialize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION churn.eval_calib_final(internal)
RETURNS churn.bin_stat[]
AS 'MODULE_PATHNAME', 'churn_eval_calib_final'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE churn.calibration(p float8, label boolean) (
    SFUNC = churn.eval_calib_trans,
    STYPE = internal,
    FINALFUNC = churn.eval_calib_final,
    COMBINEFUNC = churn.eval_calib_combine,
    SERIALFUNC = churn.eval_calib_serialize,
    DESERIALFUNC = churn.eval_calib_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.calibration(float8, boolean) IS
    'calibration table in 10 equal-width bins of p on [0, 1], as churn.bin_stat[]';

CREATE AGGREGATE churn.calibration(p float8, label boolean, bins int) (
    SFUNC = churn.eval_calib_trans,
    STYPE = internal,
    FINALFUNC = churn.eval_calib_final,
    COMBINEFUNC = churn.eval_calib_combine,
    SERIALFUNC = churn.eval_calib_serialize,
    DESERIALFUNC = churn.eval_calib_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.calibration(float8, boolean, int) IS
    'calibration table in the given number of equal-width bins of p on [0, 1], as churn.bin_stat[]';
