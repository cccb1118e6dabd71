-- churn_warning install script, part 700: feature vectors, training rows and
-- the rule model that needs no training.

-- The fixed order of the model feature vector (purchase then engagement
-- features); churn.feature_vector() fills a float8[] in this order.
CREATE FUNCTION churn.feature_names() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$
    SELECT ARRAY['x', 't_x', 't', 'recency_days', 'purchase_days', 'total_spend', 'avg_spend',
                 'repeat_avg_spend', 'mean_gap_days', 'sd_gap_days', 'overdue_ratio',
                 'recent_days', 'prior_days', 'frequency_change', 'recent_avg_spend',
                 'prior_avg_spend', 'spend_change', 'aov_decline_months', 'return_days',
                 'days_since_event', 'days_since_visit', 'days_since_login', 'days_since_review',
                 'days_since_complaint', 'days_since_interaction', 'events_recent', 'events_prior',
                 'event_change', 'negative_recent', 'avg_rating_recent']::text[]
$$;
COMMENT ON FUNCTION churn.feature_names() IS
    'names of the elements of churn.feature_vector(), in order';

CREATE FUNCTION churn.feature_vector(f churn.features, e churn.engagement_features DEFAULT NULL,
                                     fill float8 DEFAULT NULL)
    RETURNS float8[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$
    SELECT CASE WHEN (f).first_purchase IS NULL THEN NULL ELSE
      ARRAY[f.x, f.t_x, f.t, f.recency_days, f.purchase_days, f.total_spend, f.avg_spend,
            coalesce(f.repeat_avg_spend, fill), coalesce(f.mean_gap_days, fill),
            coalesce(f.sd_gap_days, fill), coalesce(f.overdue_ratio, fill),
            f.recent_days, f.prior_days, coalesce(f.frequency_change, fill),
            coalesce(f.recent_avg_spend, fill), coalesce(f.prior_avg_spend, fill),
            coalesce(f.spend_change, fill), f.aov_decline_months, f.return_days,
            coalesce(e.days_since_event, fill), coalesce(e.days_since_visit, fill),
            coalesce(e.days_since_login, fill), coalesce(e.days_since_review, fill),
            coalesce(e.days_since_complaint, fill), coalesce(e.days_since_interaction, fill),
            coalesce(e.events_recent, fill), coalesce(e.events_prior, fill),
            coalesce(e.event_change, fill), coalesce(e.negative_recent, fill),
            coalesce(e.avg_rating_recent, fill)]::float8[]
    END
$$;
COMMENT ON FUNCTION churn.feature_vector(churn.features, churn.engagement_features, float8) IS
    'features as a float8[] in churn.feature_names() order; undefined values are NULL (missing) or fill';

-- (A composite IS NULL only when every field is NULL, so "no features" is
-- tested on first_purchase, which every non-NULL churn.features has.)

-- Leakage-free training rows from one stored history: features as of each
-- date and the label "no purchase in the next horizon_days".
CREATE FUNCTION churn.training_rows(h churn.history, as_of date[], horizon_days int,
                                    window_days int DEFAULT 90, observed_until date DEFAULT NULL,
                                    OUT as_of_date date, OUT features churn.features, OUT churned boolean)
    RETURNS SETOF record
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    d date;
BEGIN
    IF h IS NULL OR as_of IS NULL THEN
        RETURN;
    END IF;
    FOREACH d IN ARRAY as_of LOOP
        IF d IS NULL THEN
            CONTINUE;
        END IF;
        IF observed_until IS NOT NULL AND d + horizon_days > observed_until THEN
            RAISE EXCEPTION 'training date % plus a horizon of % days is after the end of the data (%)',
                d, horizon_days, observed_until
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Labels there would call customers churned whose next purchase is simply not observed yet.';
        END IF;
        features := churn.features(h, d, window_days);
        IF (features).first_purchase IS NOT NULL THEN
            as_of_date := d;
            churned := churn.churned(h, d, horizon_days);
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION churn.training_rows(churn.history, date[], int, int, date) IS
    'one row per date at which the customer had bought: features as of the date and the churn label over the horizon';

-- The rule model: thresholds from the business setting, editable per ruleset.
CREATE TABLE churn.rules (
    ruleset     text NOT NULL,
    rule        text NOT NULL,
    feature     text NOT NULL,
    op          text NOT NULL CHECK (op IN ('<', '<=', '>', '>=', '=', '<>')),
    threshold   float8 NOT NULL CHECK (threshold = threshold),  -- not NaN
    weight      float8 NOT NULL CHECK (weight >= 0 AND weight <= 1),
    description text,
    builtin     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (ruleset, rule)
);
COMMENT ON TABLE churn.rules IS
    'rule model: a rule fires when feature op threshold; score = 1 - product of (1 - weight) over fired rules';

INSERT INTO churn.rules (ruleset, rule, feature, op, threshold, weight, description, builtin) VALUES
    ('default', 'frequency_down_30',  'frequency_change',       '<=', -0.30, 0.25, 'purchase frequency fell 30% or more against the prior window', true),
    ('default', 'aov_down_3_months',  'aov_decline_months',     '>=',  3,    0.20, 'average order value fell 15% or more three months running', true),
    ('default', 'spend_down_15',      'spend_change',           '<=', -0.15, 0.10, 'order value fell 15% or more against the prior window', true),
    ('default', 'overdue_2x',         'overdue_ratio',          '>=',  2,    0.30, 'twice as long since the last purchase as the usual gap', true),
    ('default', 'no_visit_15',        'days_since_visit',       '>=', 15,    0.05, 'no store visit for 15 days', true),
    ('default', 'no_login_20',        'days_since_login',       '>=', 20,    0.05, 'no login for 20 days', true),
    ('default', 'no_interaction_30',  'days_since_interaction', '>=', 30,    0.05, 'no member interaction for 30 days', true),
    ('default', 'silent_60',          'days_since_event',       '>=', 60,    0.15, 'no interaction of any kind for 60 days', true),
    ('default', 'negative_feedback',  'negative_recent',        '>=',  1,    0.15, 'a complaint or a review rated 2 or lower in the recent window', true);

CREATE TRIGGER builtin_guard BEFORE INSERT OR UPDATE OR DELETE ON churn.rules
    FOR EACH ROW EXECUTE FUNCTION churn.builtin_guard('ruleset',
        'the built-in ruleset "%s" cannot be changed',
        'Copy it and edit the copy: SELECT churn.rules_copy(%L, ''my_rules'');');

-- A rule must name a feature of churn.feature_vector().
CREATE FUNCTION churn.rules_check_feature() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF NOT (NEW.feature = ANY (churn.feature_names())) THEN
        RAISE EXCEPTION 'unknown feature "%" in rule "%"', NEW.feature, NEW.rule
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Features are the names in churn.feature_names().';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER rules_check_feature BEFORE INSERT OR UPDATE ON churn.rules
    FOR EACH ROW EXECUTE FUNCTION churn.rules_check_feature();
SELECT pg_catalog.pg_extension_config_dump('churn.rules', 'WHERE NOT builtin');

CREATE FUNCTION churn.rules_copy(source text, target text) RETURNS int
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    n int;
BEGIN
    INSERT INTO churn.rules (ruleset, rule, feature, op, threshold, weight, description)
    SELECT target, rule, feature, op, threshold, weight, description
    FROM churn.rules WHERE ruleset = source;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'ruleset "%" does not exist', source USING ERRCODE = 'undefined_object';
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION churn.rules_copy(text, text) IS
    'copy a ruleset under a new name; returns the number of rules copied';

CREATE TYPE churn.rule_score AS (score float8, fired text[]);

-- Score a feature vector (churn.feature_names() order) with a ruleset.
CREATE FUNCTION churn.rule_score(x float8[], ruleset text DEFAULT 'default') RETURNS churn.rule_score
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM churn.rules r0 WHERE r0.ruleset = $2)
                THEN churn.rule_unknown_ruleset($2)
                WHEN cardinality($1) <> cardinality(churn.feature_names())
                THEN churn.rule_bad_vector(cardinality($1))
           END;
    SELECT ROW(1 - coalesce(exp(sum(ln(greatest(1 - r.weight, 1e-300)))), 1),
               coalesce(array_agg(r.rule ORDER BY r.weight DESC, r.rule), '{}'))::churn.rule_score
    FROM churn.rules r
    JOIN LATERAL (SELECT $1[array_position(churn.feature_names(), r.feature)] AS v) f ON true
    WHERE r.ruleset = $2
      AND CASE r.op WHEN '<' THEN f.v < r.threshold WHEN '<=' THEN f.v <= r.threshold
                    WHEN '>' THEN f.v > r.threshold WHEN '>=' THEN f.v >= r.threshold
                    WHEN '=' THEN f.v = r.threshold ELSE f.v <> r.threshold END
$$;

CREATE FUNCTION churn.rule_unknown_ruleset(ruleset text) RETURNS churn.rule_score
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    RAISE EXCEPTION 'ruleset "%" does not exist', ruleset
        USING ERRCODE = 'undefined_object', HINT = 'Rulesets are the ruleset values in churn.rules.';
END
$$;
CREATE FUNCTION churn.rule_bad_vector(n int) RETURNS churn.rule_score
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    RAISE EXCEPTION 'feature vector has % elements, the rule model needs %', n, cardinality(churn.feature_names())
        USING ERRCODE = 'array_subscript_error', HINT = 'Build it with churn.feature_vector(features, engagement).';
END
$$;

CREATE FUNCTION churn.rule_score(f churn.features, e churn.engagement_features DEFAULT NULL,
                                 ruleset text DEFAULT 'default') RETURNS churn.rule_score
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN ($1).first_purchase IS NULL THEN NULL ELSE churn.rule_score(churn.feature_vector($1, $2), $3) END
$$;
COMMENT ON FUNCTION churn.rule_score(churn.features, churn.engagement_features, text) IS
    'rule model score in [0, 1] and the rules that fired, strongest first; NULL features give NULL';
