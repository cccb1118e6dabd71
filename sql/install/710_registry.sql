-- churn_warning install script, part 710: the model registry.

CREATE TABLE churn.model (
    name           text PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('bgnbd', 'pnbd', 'logit', 'xgb', 'rules')),
    bgnbd          churn.bgnbd,
    pnbd           churn.pnbd,
    logit          churn.logit,
    xgb            churn.xgb,
    ruleset        text,
    feature_names  text[] NOT NULL,
    horizon_days   int NOT NULL CHECK (horizon_days > 0),
    time_unit_days float8 NOT NULL DEFAULT 1 CHECK (time_unit_days > 0),
    trained_at     timestamptz NOT NULL DEFAULT now(),
    metrics        jsonb NOT NULL DEFAULT '{}',
    description    text,
    registered_by  name NOT NULL DEFAULT current_user,
    -- exactly the column of its kind is set (num_nonnulls: a composite whose
    -- fields are all NULL still counts as set)
    CHECK (num_nonnulls(bgnbd, pnbd, logit, xgb, ruleset) = 1 AND
           CASE kind WHEN 'bgnbd' THEN num_nonnulls(bgnbd) WHEN 'pnbd' THEN num_nonnulls(pnbd)
                     WHEN 'logit' THEN num_nonnulls(logit) WHEN 'xgb' THEN num_nonnulls(xgb)
                     ELSE num_nonnulls(ruleset) END = 1)
);
COMMENT ON TABLE churn.model IS
    'registered churn models: parameters, feature names, horizon, training time and metrics; kept by pg_dump';
COMMENT ON COLUMN churn.model.time_unit_days IS
    'for bgnbd and pnbd: days per model time unit (7 when fitted in weeks)';
SELECT pg_catalog.pg_extension_config_dump('churn.model', '');

-- Insert or replace a registry row (shared by the typed register functions).
CREATE FUNCTION churn.model_upsert(m churn.model) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF m.name IS NULL OR m.name = '' THEN
        RAISE EXCEPTION 'a model needs a name' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF m.horizon_days IS NULL OR m.horizon_days <= 0 THEN
        RAISE EXCEPTION 'horizon_days must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM churn.model WHERE name = m.name;
    INSERT INTO churn.model SELECT m.*;
    RETURN m.name;
END
$$;

CREATE FUNCTION churn.register_model(name text, m churn.bgnbd, horizon_days int,
                                     time_unit_days float8 DEFAULT 1, metrics jsonb DEFAULT '{}',
                                     description text DEFAULT NULL) RETURNS text
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.model_upsert(ROW($1, 'bgnbd', $2, NULL, NULL, NULL, NULL, '{x,t_x,t}', $3, $4,
                                  now(), $5, $6, current_user)::churn.model)
$$;
CREATE FUNCTION churn.register_model(name text, m churn.pnbd, horizon_days int,
                                     time_unit_days float8 DEFAULT 1, metrics jsonb DEFAULT '{}',
                                     description text DEFAULT NULL) RETURNS text
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.model_upsert(ROW($1, 'pnbd', NULL, $2, NULL, NULL, NULL, '{x,t_x,t}', $3, $4,
                                  now(), $5, $6, current_user)::churn.model)
$$;
CREATE FUNCTION churn.register_model(name text, m churn.logit, feature_names text[], horizon_days int,
                                     metrics jsonb DEFAULT '{}', description text DEFAULT NULL) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF cardinality(m.coef) <> cardinality(feature_names) + 1 THEN
        RAISE EXCEPTION 'the logistic model has % coefficients but % feature names were given',
            cardinality(m.coef), cardinality(feature_names)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'coef[1] is the intercept; give one name per remaining coefficient.';
    END IF;
    RETURN churn.model_upsert(ROW(name, 'logit', NULL, NULL, m, NULL, NULL, feature_names, horizon_days, 1,
                                  now(), metrics, description, current_user)::churn.model);
END
$$;
CREATE FUNCTION churn.register_model(name text, m churn.xgb, feature_names text[], horizon_days int,
                                     metrics jsonb DEFAULT '{}', description text DEFAULT NULL) RETURNS text
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.model_upsert(ROW($1, 'xgb', NULL, NULL, NULL, $2, NULL, $3, $4, 1,
                                  now(), $5, $6, current_user)::churn.model)
$$;
CREATE FUNCTION churn.register_rules(name text, ruleset text DEFAULT 'default', horizon_days int DEFAULT 90,
                                     description text DEFAULT NULL) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM churn.rules r WHERE r.ruleset = register_rules.ruleset) THEN
        RAISE EXCEPTION 'ruleset "%" does not exist', ruleset USING ERRCODE = 'undefined_object';
    END IF;
    RETURN churn.model_upsert(ROW(name, 'rules', NULL, NULL, NULL, NULL, ruleset, churn.feature_names(),
                                  horizon_days, 1, now(), '{}', description, current_user)::churn.model);
END
$$;

-- The registry row of a model, or an error naming the model.
CREATE FUNCTION churn.model_get(name text) RETURNS churn.model
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    m churn.model;
BEGIN
    SELECT * INTO m FROM churn.model WHERE model.name = model_get.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" is not registered', name
            USING ERRCODE = 'undefined_object', HINT = 'Registered models are listed in churn.model.';
    END IF;
    RETURN m;
END
$$;

-- Score one feature vector with a registered model: the churn probability
-- over the model's horizon.
CREATE FUNCTION churn.predict(name text, x float8[]) RETURNS float8
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    m churn.model := churn.model_get(name);
BEGIN
    IF cardinality(x) <> cardinality(m.feature_names) THEN
        RAISE EXCEPTION 'model "%" takes % features (%), got %', name, cardinality(m.feature_names),
            array_to_string(m.feature_names, ', '), cardinality(x)
            USING ERRCODE = 'array_subscript_error';
    END IF;
    CASE m.kind
    WHEN 'bgnbd' THEN
        RETURN churn.bgnbd_p_churn(m.bgnbd, m.horizon_days / m.time_unit_days, x[1]::int,
                                   x[2] / m.time_unit_days, x[3] / m.time_unit_days);
    WHEN 'pnbd' THEN
        RETURN churn.pnbd_p_churn(m.pnbd, m.horizon_days / m.time_unit_days, x[1]::int,
                                  x[2] / m.time_unit_days, x[3] / m.time_unit_days);
    WHEN 'logit' THEN
        RETURN churn.logit_predict(m.logit, x);
    WHEN 'xgb' THEN
        RETURN churn.xgb_predict(m.xgb, x);
    ELSE
        RETURN (churn.rule_score(x, m.ruleset)).score;
    END CASE;
END
$$;
COMMENT ON FUNCTION churn.predict(text, float8[]) IS
    'churn probability over the model''s horizon for a feature vector in the model''s feature_names order';

-- What pushed one prediction up: per-feature contributions, largest first.
CREATE FUNCTION churn.drivers(name text, x float8[], k int DEFAULT 3,
                              OUT feature text, OUT contribution float8) RETURNS SETOF record
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    m churn.model := churn.model_get(name);
    c float8[];
BEGIN
    IF cardinality(x) <> cardinality(m.feature_names) THEN
        RAISE EXCEPTION 'model "%" takes % features, got %', name, cardinality(m.feature_names), cardinality(x)
            USING ERRCODE = 'array_subscript_error';
    END IF;
    CASE m.kind
    WHEN 'logit' THEN
        c := ARRAY(SELECT (m.logit).coef[i + 1] * x[i] FROM generate_series(1, cardinality(x)) i ORDER BY i);
    WHEN 'xgb' THEN
        c := (churn.xgb_contrib(m.xgb, x))[1:cardinality(x)];
    WHEN 'rules' THEN
        c := ARRAY(SELECT coalesce(max(r.weight) FILTER (WHERE r.rule = ANY ((churn.rule_score(x, m.ruleset)).fired)), 0)
                   FROM unnest(m.feature_names) WITH ORDINALITY f(name, i)
                   LEFT JOIN churn.rules r ON r.ruleset = m.ruleset AND r.feature = f.name
                   GROUP BY f.i ORDER BY f.i);
    ELSE
        RETURN;   -- BG/NBD and Pareto/NBD have no additive decomposition
    END CASE;
    RETURN QUERY
        SELECT f.name, f.c FROM unnest(m.feature_names, c) f(name, c)
        WHERE f.c > 0 ORDER BY f.c DESC, f.name LIMIT k;
END
$$;
COMMENT ON FUNCTION churn.drivers(text, float8[], int) IS
    'top k features that raised a prediction (logit: coef x value; xgb: approximate contributions; rules: fired weights)';

CREATE FUNCTION churn.top_drivers(name text, x float8[], k int DEFAULT 3) RETURNS text[]
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT coalesce(array_agg(d.feature ORDER BY d.contribution DESC, d.feature), '{}')
    FROM churn.drivers($1, $2, $3) d
$$;
COMMENT ON FUNCTION churn.top_drivers(text, float8[], int) IS
    'names of the top k drivers of a prediction, strongest first';
