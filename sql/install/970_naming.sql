-- churn_warning install script, part 970 (0.3.0): SQL name = C symbol.
--
-- Until 0.2.0 some C functions had symbols other than their SQL names
-- (churn_eval_*, churn_demo_*, prob_rft_fit_trans) and the serializers of
-- churn.rfm_cuts and churn.logit_fit were called *_serial / *_deserial.  The
-- C symbols are now the SQL names (CONTRIBUTING.md, "Names"), and the
-- serializers are *_serialize / *_deserialize like every other aggregate's.
-- Each function keeps its signature, volatility, strictness, parallel
-- label, cost, rows and comment; only the name or the symbol changes.  The
-- aggregates refer to their support functions by oid, so a rename reaches
-- them.  The old symbols stay exported from src/compat.c for the released
-- install scripts, which still name them.

-- ---- serializers: renamed, then pointed at the renamed C functions --------

ALTER FUNCTION churn.rfm_cuts_serial(internal) RENAME TO rfm_cuts_serialize;
ALTER FUNCTION churn.rfm_cuts_deserial(bytea, internal) RENAME TO rfm_cuts_deserialize;
ALTER FUNCTION churn.logit_fit_serial(internal) RENAME TO logit_fit_serialize;
ALTER FUNCTION churn.logit_fit_deserial(bytea, internal) RENAME TO logit_fit_deserialize;

CREATE OR REPLACE FUNCTION churn.rfm_cuts_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'rfm_cuts_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE OR REPLACE FUNCTION churn.rfm_cuts_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'rfm_cuts_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- COST as in part 400: a partial state carries every row it saw.
CREATE OR REPLACE FUNCTION churn.logit_fit_serialize(internal)
RETURNS bytea
AS 'MODULE_PATHNAME', 'logit_fit_serialize'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 2000000;

CREATE OR REPLACE FUNCTION churn.logit_fit_deserialize(bytea, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'logit_fit_deserialize'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 2000000;

-- ---- the BG/NBD and Pareto/NBD transition (part 300) ----------------------

CREATE OR REPLACE FUNCTION churn.rft_fit_trans(internal, int, float8, float8)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'rft_fit_trans'
    LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.rft_fit_trans(internal, int, float8, float8, float8)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'rft_fit_trans'
    LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

-- ---- evaluation aggregates (part 500) -------------------------------------

CREATE OR REPLACE FUNCTION churn.eval_rank_trans(internal, float8, boolean)
RETURNS internal
AS 'MODULE_PATHNAME', 'eval_rank_trans'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.eval_rank_trans(internal, float8, boolean, int)
RETURNS internal
AS 'MODULE_PATHNAME', 'eval_rank_trans'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.eval_rank_combine(internal, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'eval_rank_combine'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.eval_rank_serialize(internal)
RETURNS bytea
AS 'MODULE_PATHNAME', 'eval_rank_serialize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.eval_rank_deserialize(bytea, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'eval_rank_deserialize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.eval_auc_final(internal)
RETURNS float8
AS 'MODULE_PATHNAME', 'eval_auc_final'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.eval_lift_final(internal)
RETURNS churn.bin_stat[]
AS 'MODULE_PATHNAME', 'eval_lift_final'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.eval_logloss_trans(internal, float8, boolean)
RETURNS internal
AS 'MODULE_PATHNAME', 'eval_logloss_trans'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.eval_brier_trans(internal, float8, boolean)
RETURNS internal
AS 'MODULE_PATHNAME', 'eval_brier_trans'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.eval_mean_combine(internal, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'eval_mean_combine'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.eval_mean_serialize(internal)
RETURNS bytea
AS 'MODULE_PATHNAME', 'eval_mean_serialize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.eval_mean_deserialize(bytea, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'eval_mean_deserialize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.eval_mean_final(internal)
RETURNS float8
AS 'MODULE_PATHNAME', 'eval_mean_final'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.eval_calib_trans(internal, float8, boolean)
RETURNS internal
AS 'MODULE_PATHNAME', 'eval_calib_trans'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.eval_calib_trans(internal, float8, boolean, int)
RETURNS internal
AS 'MODULE_PATHNAME', 'eval_calib_trans'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.eval_calib_combine(internal, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'eval_calib_combine'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.eval_calib_serialize(internal)
RETURNS bytea
AS 'MODULE_PATHNAME', 'eval_calib_serialize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.eval_calib_deserialize(bytea, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'eval_calib_deserialize'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION churn.eval_calib_final(internal)
RETURNS churn.bin_stat[]
AS 'MODULE_PATHNAME', 'eval_calib_final'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- ---- demo data generators (part 600) --------------------------------------

CREATE OR REPLACE FUNCTION churn.demo_customers(customers int, seed int DEFAULT 42,
                                                start_date date DEFAULT '2023-01-01',
                                                end_date date DEFAULT '2024-12-31')
RETURNS TABLE (customer_id bigint, store_id int, signup date, segment text,
               value_tier text, will_churn boolean, churn_date date)
AS 'MODULE_PATHNAME', 'demo_customers'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 10000;

CREATE OR REPLACE FUNCTION churn.demo_purchases(customers int, seed int DEFAULT 42,
                                                start_date date DEFAULT '2023-01-01',
                                                end_date date DEFAULT '2024-12-31')
RETURNS TABLE (customer_id bigint, store_id int, ts timestamptz, amount numeric(12,2))
AS 'MODULE_PATHNAME', 'demo_purchases'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 250000;

CREATE OR REPLACE FUNCTION churn.demo_events(customers int, seed int DEFAULT 42,
                                             start_date date DEFAULT '2023-01-01',
                                             end_date date DEFAULT '2024-12-31')
RETURNS TABLE (customer_id bigint, ts timestamptz, kind text, rating int)
AS 'MODULE_PATHNAME', 'demo_events'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 500000;
