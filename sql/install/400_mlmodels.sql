-- churn_warning install script, part 400: logistic regression and XGBoost
-- scoring (src/logit.c, src/xgb.c; reference: docs/reference/mlmodels.md).

-- ---------------------------------------------------------------------------
-- Logistic regression
-- ---------------------------------------------------------------------------

CREATE TYPE churn.logit AS (
	coef		float8[],	-- coef[1] intercept, then one per element of x
	std_err		float8[],	-- sqrt(diag(inverse negative Hessian)) at the optimum
	loglik		float8,		-- unpenalised log-likelihood at the optimum
	n			bigint,		-- rows used (NULL label or NULL x skipped)
	iterations	int,		-- Newton steps taken
	converged	boolean
);
COMMENT ON TYPE churn.logit IS 'a fitted logistic regression (churn.logit_fit)';

CREATE FUNCTION churn.logit_fit_trans(internal, boolean, float8[])
RETURNS internal
AS 'MODULE_PATHNAME', 'logit_fit_trans'
LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.logit_fit_trans(internal, boolean, float8[], float8)
RETURNS internal
AS 'MODULE_PATHNAME', 'logit_fit_trans_l2'
LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.logit_fit_combine(internal, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'logit_fit_combine'
LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

-- A partial state carries every row it saw (8 bytes per feature), and the
-- Newton passes run in the leader after the combine, so a parallel plan only
-- speeds up the scan while it copies all rows through the tuple queues.  The
-- planner charges serialization once per group, whatever the row count, so
-- these costs stand for a typical partial state of about a million rows:
-- parallel plans win from a few million rows up, where the scan dominates.
CREATE FUNCTION churn.logit_fit_serial(internal)
RETURNS bytea
AS 'MODULE_PATHNAME', 'logit_fit_serial'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 2000000;

CREATE FUNCTION churn.logit_fit_deserial(bytea, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'logit_fit_deserial'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE COST 2000000;

CREATE FUNCTION churn.logit_fit_final(internal)
RETURNS churn.logit
AS 'MODULE_PATHNAME', 'logit_fit_final'
LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE churn.logit_fit(churned boolean, x float8[]) (
	SFUNC = churn.logit_fit_trans,
	STYPE = internal,
	FINALFUNC = churn.logit_fit_final,
	COMBINEFUNC = churn.logit_fit_combine,
	SERIALFUNC = churn.logit_fit_serial,
	DESERIALFUNC = churn.logit_fit_deserial,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.logit_fit(boolean, float8[]) IS
	'maximum likelihood logistic regression of churned on x (Newton/IRLS); coef[1] is the intercept';

CREATE AGGREGATE churn.logit_fit(churned boolean, x float8[], l2 float8) (
	SFUNC = churn.logit_fit_trans,
	STYPE = internal,
	FINALFUNC = churn.logit_fit_final,
	COMBINEFUNC = churn.logit_fit_combine,
	SERIALFUNC = churn.logit_fit_serial,
	DESERIALFUNC = churn.logit_fit_deserial,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.logit_fit(boolean, float8[], float8) IS
	'L2-penalised logistic regression: maximises loglik - l2/2 * sum of squared non-intercept coefficients';

CREATE FUNCTION churn.logit_predict(m churn.logit, x float8[])
RETURNS float8
AS 'MODULE_PATHNAME', 'logit_predict'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.logit_predict(churn.logit, float8[]) IS
	'probability 1 / (1 + exp(-(coef[1] + coef[2:] . x))) of a churn.logit model';

-- ---------------------------------------------------------------------------
-- XGBoost scoring
-- ---------------------------------------------------------------------------

CREATE TYPE churn.xgb;

CREATE FUNCTION churn.xgb_in(cstring) RETURNS churn.xgb
AS 'MODULE_PATHNAME', 'xgb_in'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION churn.xgb_out(churn.xgb) RETURNS cstring
AS 'MODULE_PATHNAME', 'xgb_out'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION churn.xgb_recv(internal) RETURNS churn.xgb
AS 'MODULE_PATHNAME', 'xgb_recv'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION churn.xgb_send(churn.xgb) RETURNS bytea
AS 'MODULE_PATHNAME', 'xgb_send'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE churn.xgb (
	INPUT = churn.xgb_in,
	OUTPUT = churn.xgb_out,
	RECEIVE = churn.xgb_recv,
	SEND = churn.xgb_send,
	INTERNALLENGTH = VARIABLE,
	ALIGNMENT = int4,
	STORAGE = extended
);
COMMENT ON TYPE churn.xgb IS
	'a compiled XGBoost binary:logistic model (churn.xgb_load); text form is xgb:<base64>';

CREATE FUNCTION churn.xgb_load(model jsonb) RETURNS churn.xgb
AS 'MODULE_PATHNAME', 'xgb_load'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.xgb_load(jsonb) IS
	'compile the JSON written by XGBoost save_model (gbtree, binary:logistic) into a churn.xgb';

CREATE FUNCTION churn.xgb_predict(m churn.xgb, x float8[]) RETURNS float8
AS 'MODULE_PATHNAME', 'xgb_predict'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.xgb_predict(churn.xgb, float8[]) IS
	'XGBoost predicted probability; NULL (or NaN) elements of x are missing values';

CREATE FUNCTION churn.xgb_contrib(m churn.xgb, x float8[]) RETURNS float8[]
AS 'MODULE_PATHNAME', 'xgb_contrib'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.xgb_contrib(churn.xgb, float8[]) IS
	'XGBoost approximate (Saabas) contributions to the margin: one per feature, bias last';

CREATE FUNCTION churn.xgb_info(m churn.xgb) RETURNS jsonb
AS 'MODULE_PATHNAME', 'xgb_info'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.xgb_info(churn.xgb) IS
	'objective, trees, nodes, depth, features and base score of a churn.xgb';
