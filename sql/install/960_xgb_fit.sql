-- churn_warning install script, part 960 (0.3.0): churn.xgb_fit, XGBoost
-- training inside the database with the XGBoost library (src/xgb_train.c;
-- reference: docs/models.md, "XGBoost training").  The result is the
-- churn.xgb type of part 400, scored by churn.xgb_predict / xgb_contrib.
-- Every name is schema-qualified, built-in types included, so the part is
-- safe under any search_path.

CREATE FUNCTION churn.xgb_fit_trans(pg_catalog.internal, pg_catalog.bool, pg_catalog.float8[])
RETURNS pg_catalog.internal
AS 'MODULE_PATHNAME', 'xgb_fit_trans'
LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.xgb_fit_trans(pg_catalog.internal, pg_catalog.bool, pg_catalog.float8[]) IS
	'internal: transition function of churn.xgb_fit(label, x)';

CREATE FUNCTION churn.xgb_fit_trans(pg_catalog.internal, pg_catalog.bool, pg_catalog.float8[], pg_catalog.jsonb)
RETURNS pg_catalog.internal
AS 'MODULE_PATHNAME', 'xgb_fit_trans_params'
LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.xgb_fit_trans(pg_catalog.internal, pg_catalog.bool, pg_catalog.float8[], pg_catalog.jsonb) IS
	'internal: transition function of churn.xgb_fit(label, x, params)';

CREATE FUNCTION churn.xgb_fit_combine(pg_catalog.internal, pg_catalog.internal)
RETURNS pg_catalog.internal
AS 'MODULE_PATHNAME', 'xgb_fit_combine'
LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.xgb_fit_combine(pg_catalog.internal, pg_catalog.internal) IS
	'internal: combine function of churn.xgb_fit (appends the rows of a partial state)';

-- A partial state carries every row it saw (4 bytes per feature and label)
-- and training runs in the leader, so as for logit_fit a parallel plan only
-- speeds up the scan; costed so that inputs below a few million rows stay
-- serial.
CREATE FUNCTION churn.xgb_fit_serial(pg_catalog.internal)
RETURNS pg_catalog.bytea
AS 'MODULE_PATHNAME', 'xgb_fit_serial'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 2000000;
COMMENT ON FUNCTION churn.xgb_fit_serial(pg_catalog.internal) IS
	'internal: serialize function of churn.xgb_fit';

CREATE FUNCTION churn.xgb_fit_deserial(pg_catalog.bytea, pg_catalog.internal)
RETURNS pg_catalog.internal
AS 'MODULE_PATHNAME', 'xgb_fit_deserial'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 2000000;
COMMENT ON FUNCTION churn.xgb_fit_deserial(pg_catalog.bytea, pg_catalog.internal) IS
	'internal: deserialize function of churn.xgb_fit';

-- STABLE: whether it succeeds depends on churn_warning.xgb_threads and
-- churn_warning.xgb_max_memory and on the installed XGBoost library.
CREATE FUNCTION churn.xgb_fit_final(pg_catalog.internal)
RETURNS churn.xgb
AS 'MODULE_PATHNAME', 'xgb_fit_final'
LANGUAGE C CALLED ON NULL INPUT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.xgb_fit_final(pg_catalog.internal) IS
	'internal: final function of churn.xgb_fit (trains with XGBoost and compiles the model)';

CREATE AGGREGATE churn.xgb_fit(label pg_catalog.bool, x pg_catalog.float8[]) (
	SFUNC = churn.xgb_fit_trans,
	STYPE = pg_catalog.internal,
	FINALFUNC = churn.xgb_fit_final,
	COMBINEFUNC = churn.xgb_fit_combine,
	SERIALFUNC = churn.xgb_fit_serial,
	DESERIALFUNC = churn.xgb_fit_deserial,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.xgb_fit(pg_catalog.bool, pg_catalog.float8[]) IS
	'XGBoost binary:logistic gradient-boosted trees of label on x with XGBoost''s defaults and 10 rounds; NULL or NaN elements of x are missing values';

CREATE AGGREGATE churn.xgb_fit(label pg_catalog.bool, x pg_catalog.float8[], params pg_catalog.jsonb) (
	SFUNC = churn.xgb_fit_trans,
	STYPE = pg_catalog.internal,
	FINALFUNC = churn.xgb_fit_final,
	COMBINEFUNC = churn.xgb_fit_combine,
	SERIALFUNC = churn.xgb_fit_serial,
	DESERIALFUNC = churn.xgb_fit_deserial,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.xgb_fit(pg_catalog.bool, pg_catalog.float8[], pg_catalog.jsonb) IS
	'XGBoost binary:logistic trees with XGBoost parameters (eta, max_depth, subsample, seed, ...) and num_boost_round in params';
