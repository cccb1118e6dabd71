-- churn_warning install script, part 720: scoring in one place (0.3.0).
--
-- The feature list, the rule model and the scoring of every model kind are
-- C (src/featurelist.h, src/feature_vector.c, src/rules.c, src/score.c).
-- churn.predict, the backtest and the pipeline refresh all score through
-- churn.model_score.

CREATE OR REPLACE FUNCTION churn.feature_names() RETURNS text[]
    AS 'MODULE_PATHNAME', 'feature_names' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.feature_names() IS
    'names of the elements of churn.feature_vector(), in order';

CREATE FUNCTION churn.feature_names(source text) RETURNS text[]
    AS 'MODULE_PATHNAME', 'feature_names_source' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.feature_names(text) IS
    'names of the purchase or the engagement features, in churn.feature_vector() order (purchase features first)';

CREATE OR REPLACE FUNCTION churn.feature_vector(f churn.features, e churn.engagement_features DEFAULT NULL,
                                                fill float8 DEFAULT NULL) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'feature_vector' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.feature_vector(churn.features, churn.engagement_features, float8) IS
    'features as a float8[] in churn.feature_names() order; undefined values are NULL (missing) or fill';

CREATE OR REPLACE FUNCTION churn.rule_score(x float8[], ruleset text DEFAULT 'default') RETURNS churn.rule_score
    AS 'MODULE_PATHNAME', 'rule_score' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.rule_score(float8[], text) IS
    'rule model score in [0, 1] of a churn.feature_vector() and the rules that fired, strongest first';
DROP FUNCTION churn.rule_unknown_ruleset(text);
DROP FUNCTION churn.rule_bad_vector(int);

-- The churn probability of a vector in the model's feature_names order.
CREATE FUNCTION churn.model_score(m churn.model, x float8[]) RETURNS float8
    AS 'MODULE_PATHNAME', 'model_score' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.model_score(churn.model, float8[]) IS
    'churn probability over the model''s horizon of a vector in the model''s feature_names order';

-- The churn probability of a customer from their features.
CREATE FUNCTION churn.model_score(m churn.model, f churn.features, e churn.engagement_features DEFAULT NULL)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'model_score_features' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.model_score(churn.model, churn.features, churn.engagement_features) IS
    'churn probability over the model''s horizon of a customer''s features; NULL for a customer without purchases';

-- The vector a model reads for a customer (missing values as the model reads them).
CREATE FUNCTION churn.model_input(m churn.model, f churn.features, e churn.engagement_features DEFAULT NULL)
    RETURNS float8[]
    AS 'MODULE_PATHNAME', 'model_input' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.model_input(churn.model, churn.features, churn.engagement_features) IS
    'the feature vector a model reads for a customer, in its feature_names order (logit: missing as 0)';

CREATE OR REPLACE FUNCTION churn.predict(name text, x float8[]) RETURNS float8
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.model_score(churn.model_get(name), x)
$$;
COMMENT ON FUNCTION churn.predict(text, float8[]) IS
    'churn probability over the model''s horizon for a feature vector in the model''s feature_names order';

-- BG/NBD and Pareto/NBD model rows: P(alive) and expected purchases of a
-- customer, with the model's time unit applied.
CREATE FUNCTION churn.model_p_alive(m churn.model, f churn.features) RETURNS float8
    AS 'MODULE_PATHNAME', 'model_p_alive' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.model_p_alive(churn.model, churn.features) IS
    'P(alive) of a customer under a bgnbd or pnbd model row; NULL for a customer without purchases';
CREATE FUNCTION churn.model_expected(m churn.model, f churn.features, days float8) RETURNS float8
    AS 'MODULE_PATHNAME', 'model_expected' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.model_expected(churn.model, churn.features, float8) IS
    'expected purchases of a customer in the next days (calendar days) under a bgnbd or pnbd model row';

-- Model rows for models fitted on the fly (a backtest's or a refresh's), so
-- they score through the same path as registered ones.  NULL parameters
-- (a fit that failed) give a NULL row, which scores NULL.
CREATE FUNCTION churn.model_adhoc(name text, bg churn.bgnbd, horizon_days int, time_unit_days float8 DEFAULT 7)
    RETURNS churn.model
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN bg IS NOT NULL THEN
        ROW(name, 'bgnbd', bg, NULL, NULL, NULL, NULL, '{x,t_x,t}', horizon_days, time_unit_days,
            now(), '{}', NULL, current_user)::churn.model END
$$;
COMMENT ON FUNCTION churn.model_adhoc(text, churn.bgnbd, int, float8) IS
    'an unregistered bgnbd model row (time_unit_days: 7 when fitted in weeks); NULL when bg is NULL';
CREATE FUNCTION churn.model_adhoc(name text, lg churn.logit, feature_names text[], horizon_days int)
    RETURNS churn.model
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN lg IS NOT NULL THEN
        ROW(name, 'logit', NULL, NULL, lg, NULL, NULL, feature_names, horizon_days, 1,
            now(), '{}', NULL, current_user)::churn.model END
$$;
COMMENT ON FUNCTION churn.model_adhoc(text, churn.logit, text[], int) IS
    'an unregistered logit model row over the given feature names; NULL when lg is NULL';
CREATE FUNCTION churn.model_adhoc(name text, ruleset text, horizon_days int) RETURNS churn.model
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT ROW(name, 'rules', NULL, NULL, NULL, NULL, ruleset, churn.feature_names(), horizon_days, 1,
               now(), '{}', NULL, current_user)::churn.model
$$;
COMMENT ON FUNCTION churn.model_adhoc(text, text, int) IS
    'an unregistered rules model row over a ruleset of churn.rules';
