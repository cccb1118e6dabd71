-- churn_warning 0.1.0 as released (frozen copy of the generated install script, kept so that
-- CREATE EXTENSION churn_warning VERSION '0.1.0' and ALTER EXTENSION ... UPDATE keep working)
\echo Use "CREATE EXTENSION churn_warning" to load this file. \quit

-- ==== sql/install/000_schema.sql
-- churn_warning install script, part 000: conventions.
--
-- Every object lives in schema churn (the control file's schema). Objects are
-- always schema-qualified here so that the script is safe under any
-- search_path; functions written in SQL or PL/pgSQL carry their own
-- SET search_path.

-- ==== sql/install/050_builtin_guard.sql
-- churn_warning install script, part 050: read-only built-in rows.
--
-- Several configuration tables (RFM segment schemes, rulesets, tier
-- policies, the playbook) ship built-in rows marked builtin = true.  Those
-- rows are read-only, and every row a user writes is marked builtin = false,
-- so that pg_dump can keep the user rows apart ('WHERE NOT builtin') and a
-- restore never collides with the rows CREATE EXTENSION installs.
--
-- Trigger arguments: the key column named in messages, the error message
-- and the hint, both format() strings taking the key value as %s / %L.
CREATE FUNCTION churn.builtin_guard() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    key text;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.builtin THEN
        key := to_jsonb(OLD) ->> TG_ARGV[0];
        RAISE EXCEPTION '%', format(TG_ARGV[1], key)
            USING ERRCODE = 'insufficient_privilege', HINT = format(TG_ARGV[2], key);
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    NEW.builtin := false;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION churn.builtin_guard() IS
    'trigger: built-in configuration rows are read-only; rows users write are never built-in';

-- ==== sql/install/100_history.sql
-- churn_warning install script, part 100: churn.history and its aggregate.

CREATE TYPE churn.history;

CREATE FUNCTION churn.history_in(cstring) RETURNS churn.history
    AS 'MODULE_PATHNAME', 'history_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION churn.history_out(churn.history) RETURNS cstring
    AS 'MODULE_PATHNAME', 'history_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION churn.history_recv(internal) RETURNS churn.history
    AS 'MODULE_PATHNAME', 'history_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION churn.history_send(churn.history) RETURNS bytea
    AS 'MODULE_PATHNAME', 'history_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE churn.history (
    INPUT = churn.history_in,
    OUTPUT = churn.history_out,
    RECEIVE = churn.history_recv,
    SEND = churn.history_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = extended
);
COMMENT ON TYPE churn.history IS
    'one customer''s purchase history: distinct purchase days with the day''s net spend';

-- Transition functions: the state is the churn.history itself, kept as an
-- expanded object while the aggregate runs (see src/daylog.c).
CREATE FUNCTION churn.history_trans(churn.history, timestamptz, float8) RETURNS churn.history
    AS 'MODULE_PATHNAME', 'history_trans_tstz_float8' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION churn.history_trans(churn.history, date, float8) RETURNS churn.history
    AS 'MODULE_PATHNAME', 'history_trans_date_float8' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.history_trans(churn.history, timestamptz, numeric) RETURNS churn.history
    AS 'MODULE_PATHNAME', 'history_trans_tstz_numeric' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION churn.history_trans(churn.history, date, numeric) RETURNS churn.history
    AS 'MODULE_PATHNAME', 'history_trans_date_numeric' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.history_combine(churn.history, churn.history) RETURNS churn.history
    AS 'MODULE_PATHNAME', 'history_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- The timestamptz forms are STABLE: the calendar day depends on the session
-- TimeZone, like ts::date.
CREATE AGGREGATE churn.history_agg(timestamptz, float8) (
    SFUNC = churn.history_trans, STYPE = churn.history, SSPACE = 256,
    COMBINEFUNC = churn.history_combine, PARALLEL = SAFE);
CREATE AGGREGATE churn.history_agg(date, float8) (
    SFUNC = churn.history_trans, STYPE = churn.history, SSPACE = 256,
    COMBINEFUNC = churn.history_combine, PARALLEL = SAFE);
CREATE AGGREGATE churn.history_agg(timestamptz, numeric) (
    SFUNC = churn.history_trans, STYPE = churn.history, SSPACE = 256,
    COMBINEFUNC = churn.history_combine, PARALLEL = SAFE);
CREATE AGGREGATE churn.history_agg(date, numeric) (
    SFUNC = churn.history_trans, STYPE = churn.history, SSPACE = 256,
    COMBINEFUNC = churn.history_combine, PARALLEL = SAFE);

CREATE FUNCTION churn.merge(churn.history, churn.history) RETURNS churn.history
    AS 'MODULE_PATHNAME', 'history_merge' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.merge(churn.history, churn.history) IS
    'union of two histories; same-day spend and purchase counts add; NULL acts as empty';

CREATE FUNCTION churn.history_days(h churn.history,
    OUT day date, OUT amount float8, OUT purchases int) RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'history_days' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION churn.churned(h churn.history, as_of date, horizon_days int) RETURNS boolean
    AS 'MODULE_PATHNAME', 'history_churned' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.churned(churn.history, date, int) IS
    'true when no purchase day falls in (as_of, as_of + horizon_days]; NULL before the first purchase';

CREATE TYPE churn.features AS (
    first_purchase date,
    last_purchase date,
    x int,
    t_x float8,
    t float8,
    recency_days float8,
    purchase_days int,
    total_spend float8,
    avg_spend float8,
    repeat_avg_spend float8,
    mean_gap_days float8,
    sd_gap_days float8,
    overdue_ratio float8,
    recent_days int,
    prior_days int,
    frequency_change float8,
    recent_avg_spend float8,
    prior_avg_spend float8,
    spend_change float8,
    aov_decline_months int,
    return_days int
);

CREATE FUNCTION churn.features(h churn.history, as_of date, window_days int DEFAULT 90)
    RETURNS churn.features
    AS 'MODULE_PATHNAME', 'history_features' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.features(churn.history, date, int) IS
    'purchase features of a history as of a date (purchases after as_of ignored); NULL before the first purchase';

-- ==== sql/install/200_rfm.sql
-- churn_warning install script, part 200: RFM scoring and named segments.

CREATE FUNCTION churn.rfm_cuts_trans(internal, float8, int) RETURNS internal
    AS 'MODULE_PATHNAME', 'rfm_cuts_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.rfm_cuts_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'rfm_cuts_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION churn.rfm_cuts_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'rfm_cuts_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION churn.rfm_cuts_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'rfm_cuts_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION churn.rfm_cuts_final(internal) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'rfm_cuts_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE churn.rfm_cuts(value float8, bins int) (
    SFUNC = churn.rfm_cuts_trans, STYPE = internal,
    FINALFUNC = churn.rfm_cuts_final, FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = churn.rfm_cuts_combine,
    SERIALFUNC = churn.rfm_cuts_serial, DESERIALFUNC = churn.rfm_cuts_deserial,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.rfm_cuts(float8, int) IS
    'bins - 1 quantile cut points of the non-NULL values (percentile_cont interpolation)';

CREATE FUNCTION churn.rfm_bin(value float8, cuts float8[], higher_is_better boolean DEFAULT true)
    RETURNS int
    AS 'MODULE_PATHNAME', 'rfm_bin' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.rfm_bin(float8, float8[], boolean) IS
    'score 1..n of a value against n - 1 cut points; reversed when lower is better (recency)';

-- Named segments on the R score and the combined FM score (the rounded mean
-- of F and M), first match by priority.  The built-in scheme 'default' is
-- read-only so that pg_dump can keep user schemes apart from it; edit a copy
-- made with churn.rfm_copy_scheme().
CREATE TABLE churn.rfm_segments (
    scheme      text NOT NULL,
    segment     text NOT NULL,
    r_min       int  NOT NULL,
    r_max       int  NOT NULL,
    fm_min      int  NOT NULL,
    fm_max      int  NOT NULL,
    priority    int  NOT NULL,
    description text,
    builtin     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (scheme, segment),
    CHECK (r_min <= r_max AND fm_min <= fm_max)
);
COMMENT ON TABLE churn.rfm_segments IS
    'RFM segment bounds per scheme; a score pair (r, fm) gets the first segment by priority whose ranges contain it';

INSERT INTO churn.rfm_segments (scheme, segment, r_min, r_max, fm_min, fm_max, priority, description, builtin) VALUES
    ('default', 'Champions',          5, 5, 4, 5,  1, 'bought recently, buy often and spend the most', true),
    ('default', 'Loyal',              3, 4, 4, 5,  2, 'buy often and spend well; responsive to promotions', true),
    ('default', 'Potential Loyalist', 4, 5, 2, 3,  3, 'recent customers with average frequency', true),
    ('default', 'New',                5, 5, 1, 1,  4, 'bought most recently, but not often', true),
    ('default', 'Promising',          4, 4, 1, 1,  5, 'recent shoppers who have not spent much', true),
    ('default', 'Need Attention',     3, 3, 3, 3,  6, 'above-average recency, frequency and spend', true),
    ('default', 'About To Sleep',     3, 3, 1, 2,  7, 'below-average recency and frequency', true),
    ('default', 'Can''t Lose Them',   1, 2, 5, 5,  8, 'used to buy most often and spend the most, long ago', true),
    ('default', 'At Risk',            1, 2, 3, 4,  9, 'spent and bought often, but long ago', true),
    ('default', 'Hibernating',        2, 2, 1, 2, 10, 'last purchase long ago, few orders, low spend', true),
    ('default', 'Lost',               1, 1, 1, 2, 11, 'lowest recency, frequency and spend', true);

CREATE TRIGGER builtin_guard BEFORE INSERT OR UPDATE OR DELETE ON churn.rfm_segments
    FOR EACH ROW EXECUTE FUNCTION churn.builtin_guard('scheme',
        'the built-in RFM scheme "%s" cannot be changed',
        'Copy it and edit the copy: SELECT churn.rfm_copy_scheme(%L, ''my_scheme'');');
SELECT pg_catalog.pg_extension_config_dump('churn.rfm_segments', 'WHERE NOT builtin');

CREATE FUNCTION churn.rfm_copy_scheme(source text, target text) RETURNS int
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    n int;
BEGIN
    INSERT INTO churn.rfm_segments (scheme, segment, r_min, r_max, fm_min, fm_max, priority, description)
    SELECT target, segment, r_min, r_max, fm_min, fm_max, priority, description
    FROM churn.rfm_segments WHERE scheme = source;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'RFM scheme "%" does not exist', source USING ERRCODE = 'undefined_object';
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION churn.rfm_copy_scheme(text, text) IS
    'copy an RFM segment scheme under a new name; returns the number of segments copied';

CREATE FUNCTION churn.rfm_segment(r int, f int, m int, scheme text DEFAULT 'default') RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT s.segment FROM churn.rfm_segments s
    WHERE s.scheme = $4
      AND $1 BETWEEN s.r_min AND s.r_max
      AND ($2 + $3 + 1) / 2 BETWEEN s.fm_min AND s.fm_max
    ORDER BY s.priority, s.segment
    LIMIT 1
$$;
COMMENT ON FUNCTION churn.rfm_segment(int, int, int, text) IS
    'named RFM segment of scores r, f, m (FM = rounded mean of f and m) in a scheme; NULL when no segment matches';

-- Which (r, fm) cells of a 1..n grid no segment of a scheme covers.
CREATE FUNCTION churn.rfm_uncovered(scheme text DEFAULT 'default', n int DEFAULT 5,
    OUT r int, OUT fm int) RETURNS SETOF record
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT r.r, fm.fm FROM generate_series(1, $2) r(r), generate_series(1, $2) fm(fm)
    WHERE NOT EXISTS (SELECT 1 FROM churn.rfm_segments s
                      WHERE s.scheme = $1 AND r.r BETWEEN s.r_min AND s.r_max
                        AND fm.fm BETWEEN s.fm_min AND s.fm_max)
    ORDER BY 1, 2
$$;

-- ==== sql/install/210_engagement.sql
-- churn_warning install script, part 210: churn.engagement, non-purchase
-- interactions (visit, login, review, complaint, interaction).

CREATE TYPE churn.engagement;

CREATE FUNCTION churn.engagement_in(cstring) RETURNS churn.engagement
    AS 'MODULE_PATHNAME', 'engagement_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION churn.engagement_out(churn.engagement) RETURNS cstring
    AS 'MODULE_PATHNAME', 'engagement_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION churn.engagement_recv(internal) RETURNS churn.engagement
    AS 'MODULE_PATHNAME', 'engagement_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION churn.engagement_send(churn.engagement) RETURNS bytea
    AS 'MODULE_PATHNAME', 'engagement_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE churn.engagement (
    INPUT = churn.engagement_in,
    OUTPUT = churn.engagement_out,
    RECEIVE = churn.engagement_recv,
    SEND = churn.engagement_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = extended
);
COMMENT ON TYPE churn.engagement IS
    'one customer''s non-purchase interactions, counted per day and kind';

CREATE FUNCTION churn.engagement_trans(churn.engagement, timestamptz, text) RETURNS churn.engagement
    AS 'MODULE_PATHNAME', 'engagement_trans' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION churn.engagement_trans(churn.engagement, timestamptz, text, float8) RETURNS churn.engagement
    AS 'MODULE_PATHNAME', 'engagement_trans' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION churn.engagement_combine(churn.engagement, churn.engagement) RETURNS churn.engagement
    AS 'MODULE_PATHNAME', 'engagement_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE churn.engagement_agg(ts timestamptz, kind text) (
    SFUNC = churn.engagement_trans, STYPE = churn.engagement, SSPACE = 256,
    COMBINEFUNC = churn.engagement_combine, PARALLEL = SAFE);
CREATE AGGREGATE churn.engagement_agg(ts timestamptz, kind text, rating float8) (
    SFUNC = churn.engagement_trans, STYPE = churn.engagement, SSPACE = 256,
    COMBINEFUNC = churn.engagement_combine, PARALLEL = SAFE);

CREATE FUNCTION churn.merge(churn.engagement, churn.engagement) RETURNS churn.engagement
    AS 'MODULE_PATHNAME', 'engagement_merge' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE TYPE churn.engagement_features AS (
    last_event date,
    days_since_event float8,
    days_since_visit float8,
    days_since_login float8,
    days_since_review float8,
    days_since_complaint float8,
    days_since_interaction float8,
    events_recent int,
    events_prior int,
    event_change float8,
    visits_recent int,
    logins_recent int,
    reviews_recent int,
    complaints_recent int,
    interactions_recent int,
    negative_reviews_recent int,
    negative_recent int,
    avg_rating_recent float8
);

CREATE FUNCTION churn.engagement_features(e churn.engagement, as_of date, window_days int DEFAULT 30)
    RETURNS churn.engagement_features
    AS 'MODULE_PATHNAME', 'engagement_features' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.engagement_features(churn.engagement, date, int) IS
    'engagement features as of a date (events after as_of ignored); NULL before the first event';

-- ==== sql/install/300_probmodels.sql
-- churn_warning install script, part 300: probabilistic buy-till-you-die
-- models (BG/NBD, Pareto/NBD, Gamma-Gamma).  C code: src/bgnbd.c,
-- src/paretonbd.c, src/gammagamma.c, src/probmodels_common.c.
--
-- Inputs follow the BTYD conventions: x = repeat purchase days, t_x = time
-- from the first to the last purchase day, t = time from the first purchase
-- day to the end of observation, all durations in one unit of the caller's
-- choice (days, weeks); model parameters alpha and beta are in that unit.

-- ---------------------------------------------------------------- types

CREATE TYPE churn.bgnbd AS (
    r          float8,
    alpha      float8,
    a          float8,
    b          float8,
    loglik     float8,
    n          float8,
    iterations int,
    converged  boolean
);
COMMENT ON TYPE churn.bgnbd IS
    'fitted BG/NBD model (Fader, Hardie & Lee 2005): lambda ~ Gamma(r, alpha), dropout p ~ Beta(a, b); loglik at the estimate, n = total weight';

CREATE TYPE churn.pnbd AS (
    r          float8,
    alpha      float8,
    s          float8,
    beta       float8,
    loglik     float8,
    n          float8,
    iterations int,
    converged  boolean
);
COMMENT ON TYPE churn.pnbd IS
    'fitted Pareto/NBD model (Schmittlein, Morrison & Colombo 1987): lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta)';

CREATE TYPE churn.gg AS (
    p          float8,
    q          float8,
    v          float8,
    loglik     float8,
    n          float8,
    iterations int,
    converged  boolean
);
COMMENT ON TYPE churn.gg IS
    'fitted Gamma-Gamma spend model (Fader & Hardie 2013): spend ~ Gamma(p, nu), nu ~ Gamma(q, v)';

-- ---------------------------------------------------- shared aggregate support

CREATE FUNCTION churn.prob_fit_combine(internal, internal)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'prob_fit_combine'
    LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.prob_fit_serialize(internal)
    RETURNS bytea
    AS 'MODULE_PATHNAME', 'prob_fit_serialize'
    LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.prob_fit_deserialize(bytea, internal)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'prob_fit_deserialize'
    LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

-- ---------------------------------------------------------------- BG/NBD

-- transition shared by bgnbd_fit and pnbd_fit: both collect (x, t_x, t[, weight])
CREATE FUNCTION churn.rft_fit_trans(internal, int, float8, float8)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'prob_rft_fit_trans'
    LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.rft_fit_trans(internal, int, float8, float8, float8)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'prob_rft_fit_trans'
    LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.bgnbd_fit_final(internal)
    RETURNS churn.bgnbd
    AS 'MODULE_PATHNAME', 'bgnbd_fit_final'
    LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE churn.bgnbd_fit(x int, t_x float8, t float8) (
    SFUNC = churn.rft_fit_trans,
    STYPE = internal,
    FINALFUNC = churn.bgnbd_fit_final,
    COMBINEFUNC = churn.prob_fit_combine,
    SERIALFUNC = churn.prob_fit_serialize,
    DESERIALFUNC = churn.prob_fit_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.bgnbd_fit(int, float8, float8) IS
    'maximum likelihood BG/NBD fit; rows with a NULL input are skipped; NULL for no rows';

CREATE AGGREGATE churn.bgnbd_fit(x int, t_x float8, t float8, weight float8) (
    SFUNC = churn.rft_fit_trans,
    STYPE = internal,
    FINALFUNC = churn.bgnbd_fit_final,
    COMBINEFUNC = churn.prob_fit_combine,
    SERIALFUNC = churn.prob_fit_serialize,
    DESERIALFUNC = churn.prob_fit_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.bgnbd_fit(int, float8, float8, float8) IS
    'weighted maximum likelihood BG/NBD fit (weight = number of customers with this x, t_x, t)';

CREATE FUNCTION churn.bgnbd_p_alive(m churn.bgnbd, x int, t_x float8, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'bgnbd_p_alive'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.bgnbd_p_alive(churn.bgnbd, int, float8, float8) IS
    'BG/NBD probability that the customer is alive at t (1 when x = 0)';

CREATE FUNCTION churn.bgnbd_expected(m churn.bgnbd, horizon float8, x int, t_x float8, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'bgnbd_expected'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.bgnbd_expected(churn.bgnbd, float8, int, float8, float8) IS
    'BG/NBD conditional expected number of purchases in (t, t + horizon]';

CREATE FUNCTION churn.bgnbd_expected_new(m churn.bgnbd, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'bgnbd_expected_new'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.bgnbd_expected_new(churn.bgnbd, float8) IS
    'BG/NBD expected number of repeat purchases in (0, t] for a newly acquired customer';

CREATE FUNCTION churn.bgnbd_p_churn(m churn.bgnbd, horizon float8, x int, t_x float8, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'bgnbd_p_churn'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.bgnbd_p_churn(churn.bgnbd, float8, int, float8, float8) IS
    'BG/NBD probability of no purchase in (t, t + horizon]';

CREATE FUNCTION churn.bgnbd_loglik(m churn.bgnbd, x int, t_x float8, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'bgnbd_loglik'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.bgnbd_loglik(churn.bgnbd, int, float8, float8) IS
    'BG/NBD log-likelihood of one customer';

-- ------------------------------------------------------------- Pareto/NBD

CREATE FUNCTION churn.pnbd_fit_final(internal)
    RETURNS churn.pnbd
    AS 'MODULE_PATHNAME', 'pnbd_fit_final'
    LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE churn.pnbd_fit(x int, t_x float8, t float8) (
    SFUNC = churn.rft_fit_trans,
    STYPE = internal,
    FINALFUNC = churn.pnbd_fit_final,
    COMBINEFUNC = churn.prob_fit_combine,
    SERIALFUNC = churn.prob_fit_serialize,
    DESERIALFUNC = churn.prob_fit_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.pnbd_fit(int, float8, float8) IS
    'maximum likelihood Pareto/NBD fit; rows with a NULL input are skipped; NULL for no rows';

CREATE AGGREGATE churn.pnbd_fit(x int, t_x float8, t float8, weight float8) (
    SFUNC = churn.rft_fit_trans,
    STYPE = internal,
    FINALFUNC = churn.pnbd_fit_final,
    COMBINEFUNC = churn.prob_fit_combine,
    SERIALFUNC = churn.prob_fit_serialize,
    DESERIALFUNC = churn.prob_fit_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.pnbd_fit(int, float8, float8, float8) IS
    'weighted maximum likelihood Pareto/NBD fit';

CREATE FUNCTION churn.pnbd_p_alive(m churn.pnbd, x int, t_x float8, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'pnbd_p_alive'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.pnbd_p_alive(churn.pnbd, int, float8, float8) IS
    'Pareto/NBD probability that the customer is alive at t';

CREATE FUNCTION churn.pnbd_expected(m churn.pnbd, horizon float8, x int, t_x float8, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'pnbd_expected'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.pnbd_expected(churn.pnbd, float8, int, float8, float8) IS
    'Pareto/NBD conditional expected number of purchases in (t, t + horizon]';

CREATE FUNCTION churn.pnbd_expected_new(m churn.pnbd, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'pnbd_expected_new'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.pnbd_expected_new(churn.pnbd, float8) IS
    'Pareto/NBD expected number of repeat purchases in (0, t] for a newly acquired customer';

CREATE FUNCTION churn.pnbd_p_churn(m churn.pnbd, horizon float8, x int, t_x float8, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'pnbd_p_churn'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.pnbd_p_churn(churn.pnbd, float8, int, float8, float8) IS
    'Pareto/NBD probability of no purchase in (t, t + horizon]';

CREATE FUNCTION churn.pnbd_loglik(m churn.pnbd, x int, t_x float8, t float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'pnbd_loglik'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.pnbd_loglik(churn.pnbd, int, float8, float8) IS
    'Pareto/NBD log-likelihood of one customer';

-- ------------------------------------------------------------ Gamma-Gamma

CREATE FUNCTION churn.gg_fit_trans(internal, int, float8)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'gg_fit_trans'
    LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.gg_fit_trans(internal, int, float8, float8)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'gg_fit_trans'
    LANGUAGE C CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION churn.gg_fit_final(internal)
    RETURNS churn.gg
    AS 'MODULE_PATHNAME', 'gg_fit_final'
    LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE churn.gg_fit(x int, avg_spend float8) (
    SFUNC = churn.gg_fit_trans,
    STYPE = internal,
    FINALFUNC = churn.gg_fit_final,
    COMBINEFUNC = churn.prob_fit_combine,
    SERIALFUNC = churn.prob_fit_serialize,
    DESERIALFUNC = churn.prob_fit_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.gg_fit(int, float8) IS
    'maximum likelihood Gamma-Gamma fit on customers with x > 0 (x = 0 and NULL rows are skipped)';

CREATE AGGREGATE churn.gg_fit(x int, avg_spend float8, weight float8) (
    SFUNC = churn.gg_fit_trans,
    STYPE = internal,
    FINALFUNC = churn.gg_fit_final,
    COMBINEFUNC = churn.prob_fit_combine,
    SERIALFUNC = churn.prob_fit_serialize,
    DESERIALFUNC = churn.prob_fit_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE churn.gg_fit(int, float8, float8) IS
    'weighted maximum likelihood Gamma-Gamma fit';

CREATE FUNCTION churn.gg_expected_spend(m churn.gg, x int, avg_spend float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'gg_expected_spend'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.gg_expected_spend(churn.gg, int, float8) IS
    'Gamma-Gamma conditional expected spend per transaction (population mean when x = 0)';

CREATE FUNCTION churn.gg_loglik(m churn.gg, x int, avg_spend float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'gg_loglik'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.gg_loglik(churn.gg, int, float8) IS
    'Gamma-Gamma log density of a customer''s average spend over x > 0 transactions';

CREATE FUNCTION churn.predicted_value(m churn.bgnbd, g churn.gg, horizon float8,
                                      x int, t_x float8, t float8, avg_spend float8)
    RETURNS float8
    AS 'MODULE_PATHNAME', 'predicted_value'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.predicted_value(churn.bgnbd, churn.gg, float8, int, float8, float8, float8) IS
    'expected purchases in (t, t + horizon] (BG/NBD) times expected spend (Gamma-Gamma), undiscounted';

-- ==== sql/install/400_mlmodels.sql
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

-- ==== sql/install/500_eval.sql
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

-- ==== sql/install/600_demo.sql
-- churn_warning install script, part 600: demo data for a pet-supply chain.
--
-- churn.demo_stores, churn.demo_customers, churn.demo_purchases,
-- churn.demo_events (generators, deterministic by seed) and churn.demo_load
-- (creates and fills a demo schema).  See docs/reference/demo.md.

-- The ten stores of the demo chain (store_id matches the generators).
CREATE FUNCTION churn.demo_stores()
RETURNS TABLE (store_id int, name text, city text, opened date, size text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES
        (1,  'Happy Paws Central',        'Riverton',   date '2012-03-01', 'large'),
        (2,  'Happy Paws Harbour',        'Riverton',   date '2014-06-15', 'large'),
        (3,  'Happy Paws Northgate Mall', 'Northgate',  date '2015-09-01', 'large'),
        (4,  'Happy Paws Old Town',       'Millbrook',  date '2016-04-20', 'medium'),
        (5,  'Happy Paws Lakeside',       'Lakeside',   date '2017-02-10', 'medium'),
        (6,  'Happy Paws Westfield',      'Westfield',  date '2018-05-05', 'medium'),
        (7,  'Happy Paws Station Square', 'Riverton',   date '2019-08-30', 'medium'),
        (8,  'Happy Paws Hillcrest',      'Hillcrest',  date '2020-11-12', 'small'),
        (9,  'Happy Paws Bayview',        'Bayview',    date '2021-07-01', 'small'),
        (10, 'Happy Paws Airport Plaza',  'Northgate',  date '2022-10-01', 'small')
$$;
COMMENT ON FUNCTION churn.demo_stores() IS 'the ten stores of the churn_warning demo chain';

CREATE FUNCTION churn.demo_customers(customers int, seed int DEFAULT 42,
                                     start_date date DEFAULT '2023-01-01',
                                     end_date date DEFAULT '2024-12-31')
RETURNS TABLE (customer_id bigint, store_id int, signup date, segment text,
               value_tier text, will_churn boolean, churn_date date)
AS 'MODULE_PATHNAME', 'churn_demo_customers'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 10000;
COMMENT ON FUNCTION churn.demo_customers(int, int, date, date) IS
    'demo customers 1..customers of a pet-supply chain, deterministic by seed';

CREATE FUNCTION churn.demo_purchases(customers int, seed int DEFAULT 42,
                                     start_date date DEFAULT '2023-01-01',
                                     end_date date DEFAULT '2024-12-31')
RETURNS TABLE (customer_id bigint, store_id int, ts timestamptz, amount numeric(12,2))
AS 'MODULE_PATHNAME', 'churn_demo_purchases'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 250000;
COMMENT ON FUNCTION churn.demo_purchases(int, int, date, date) IS
    'demo purchases (sales, returns as negative amounts, zero-amount rows) of churn.demo_customers, deterministic by seed';

CREATE FUNCTION churn.demo_events(customers int, seed int DEFAULT 42,
                                  start_date date DEFAULT '2023-01-01',
                                  end_date date DEFAULT '2024-12-31')
RETURNS TABLE (customer_id bigint, ts timestamptz, kind text, rating int)
AS 'MODULE_PATHNAME', 'churn_demo_events'
LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 500000;
COMMENT ON FUNCTION churn.demo_events(int, int, date, date) IS
    'demo interaction events (visit, login, review, complaint, interaction) of churn.demo_customers, deterministic by seed';

-- Worker of churn.demo_load (PL/pgSQL cannot have an input and an output
-- parameter of the same name, so the public function is a SQL wrapper).
CREATE FUNCTION churn.demo_load_impl(target_schema text, n_customers int, seed int,
                                     start_date date, end_date date, replace boolean,
                                     OUT o_customers bigint, OUT o_purchases bigint,
                                     OUT o_events bigint, OUT o_churners bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    existing text;
BEGIN
    IF target_schema IS NULL OR target_schema = '' THEN
        RAISE EXCEPTION 'target_schema must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF target_schema IN ('churn', 'pg_catalog', 'information_schema') OR target_schema LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'target_schema must not be %', target_schema
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a schema of its own, such as churn_demo.';
    END IF;
    IF n_customers IS NULL OR n_customers <= 0 THEN
        RAISE EXCEPTION 'customers must be positive'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = format('The value was %s.', n_customers);
    END IF;
    IF seed IS NULL OR start_date IS NULL OR end_date IS NULL OR replace IS NULL THEN
        RAISE EXCEPTION 'seed, start_date, end_date and replace must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF end_date < start_date THEN
        RAISE EXCEPTION 'end_date must not be before start_date'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('start_date is %s, end_date is %s.', start_date, end_date);
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = target_schema) THEN
        EXECUTE format('CREATE SCHEMA %I', target_schema);
    END IF;
    IF replace THEN
        EXECUTE format('DROP TABLE IF EXISTS %1$I.events, %1$I.purchases, %1$I.customers, %1$I.stores',
                       target_schema);
    ELSE
        SELECT string_agg(c.relname, ', ' ORDER BY c.relname) INTO existing
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = target_schema
          AND c.relname IN ('stores', 'customers', 'purchases', 'events');
        IF existing IS NOT NULL THEN
            RAISE EXCEPTION 'schema % already has demo tables: %', target_schema, existing
                USING ERRCODE = 'duplicate_table',
                      HINT = 'Pass replace => true to drop and reload them, or choose another schema.';
        END IF;
    END IF;

    EXECUTE format($$
        CREATE TABLE %1$I.stores (
            store_id int PRIMARY KEY,
            name     text NOT NULL,
            city     text NOT NULL,
            opened   date NOT NULL,
            size     text NOT NULL
        )$$, target_schema);
    EXECUTE format('INSERT INTO %I.stores SELECT * FROM churn.demo_stores()', target_schema);

    EXECUTE format($$
        CREATE TABLE %1$I.customers (
            customer_id bigint NOT NULL,
            store_id    int NOT NULL,
            signup      date NOT NULL,
            segment     text NOT NULL,
            value_tier  text NOT NULL,
            will_churn  boolean NOT NULL,
            churn_date  date
        )$$, target_schema);
    EXECUTE format('INSERT INTO %I.customers SELECT * FROM churn.demo_customers($1, $2, $3, $4)',
                   target_schema)
        USING n_customers, seed, start_date, end_date;
    GET DIAGNOSTICS o_customers = ROW_COUNT;

    EXECUTE format($$
        CREATE TABLE %1$I.purchases (
            purchase_id bigint GENERATED ALWAYS AS IDENTITY,
            customer_id bigint NOT NULL,
            store_id    int NOT NULL,
            ts          timestamptz NOT NULL,
            amount      numeric(12,2) NOT NULL
        )$$, target_schema);
    EXECUTE format('INSERT INTO %I.purchases (customer_id, store_id, ts, amount)
                    SELECT * FROM churn.demo_purchases($1, $2, $3, $4)', target_schema)
        USING n_customers, seed, start_date, end_date;
    GET DIAGNOSTICS o_purchases = ROW_COUNT;

    EXECUTE format($$
        CREATE TABLE %1$I.events (
            event_id    bigint GENERATED ALWAYS AS IDENTITY,
            customer_id bigint NOT NULL,
            ts          timestamptz NOT NULL,
            kind        text NOT NULL CHECK (kind IN ('visit', 'login', 'review', 'complaint', 'interaction')),
            rating      int CHECK (rating BETWEEN 1 AND 5),
            CHECK ((kind = 'review') = (rating IS NOT NULL))
        )$$, target_schema);
    EXECUTE format('INSERT INTO %I.events (customer_id, ts, kind, rating)
                    SELECT * FROM churn.demo_events($1, $2, $3, $4)', target_schema)
        USING n_customers, seed, start_date, end_date;
    GET DIAGNOSTICS o_events = ROW_COUNT;

    -- keys and indexes after the load (faster than maintaining them row by row)
    EXECUTE format($$
        ALTER TABLE %1$I.customers ADD PRIMARY KEY (customer_id),
            ADD FOREIGN KEY (store_id) REFERENCES %1$I.stores;
        ALTER TABLE %1$I.purchases ADD PRIMARY KEY (purchase_id),
            ADD FOREIGN KEY (customer_id) REFERENCES %1$I.customers,
            ADD FOREIGN KEY (store_id) REFERENCES %1$I.stores;
        CREATE INDEX ON %1$I.purchases (customer_id, ts);
        ALTER TABLE %1$I.events ADD PRIMARY KEY (event_id),
            ADD FOREIGN KEY (customer_id) REFERENCES %1$I.customers;
        CREATE INDEX ON %1$I.events (customer_id, ts);
        ANALYZE %1$I.stores, %1$I.customers, %1$I.purchases, %1$I.events;
        $$, target_schema);

    EXECUTE format('SELECT count(*) FILTER (WHERE will_churn) FROM %I.customers', target_schema)
        INTO o_churners;
END
$fn$;
COMMENT ON FUNCTION churn.demo_load_impl(text, int, int, date, date, boolean) IS
    'implementation of churn.demo_load';

CREATE FUNCTION churn.demo_load(target_schema text DEFAULT 'churn_demo',
                                customers int DEFAULT 10000,
                                seed int DEFAULT 42,
                                start_date date DEFAULT '2023-01-01',
                                end_date date DEFAULT '2024-12-31',
                                replace boolean DEFAULT false)
RETURNS TABLE (customers bigint, purchases bigint, events bigint, churners bigint)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM churn.demo_load_impl($1, $2, $3, $4, $5, $6)
$$;
COMMENT ON FUNCTION churn.demo_load(text, int, int, date, date, boolean) IS
    'create schema target_schema with demo tables stores, customers, purchases, events and fill them';

-- ==== sql/install/700_rules.sql
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

-- ==== sql/install/710_registry.sql
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

-- ==== sql/install/800_tiers.sql
-- churn_warning install script, part 800: warning tiers.
--
-- A churn probability and an annual value become a tier: a zone (red, yellow,
-- blue, none), a level inside the zone (1 = most urgent), a code (R1..R3,
-- Y1..Y4, B1..B2, N0), the value segment and the lead time the segment aims
-- for.  The cut points live in churn.tier_policy, one row per (policy, value
-- segment); the built-in policy 'default' is read-only, edit a copy made with
-- churn.tier_policy_copy().

CREATE TYPE churn.tier AS (
    zone          text,
    level         int,
    code          text,
    value_segment text,
    lead_days     int
);
COMMENT ON TYPE churn.tier IS
    'a warning tier: zone red/yellow/blue/none, level (1 = most urgent in the zone, 0 for none), code R1..R3/Y1..Y4/B1..B2/N0, value segment and its lead time in days';

CREATE TABLE churn.tier_policy (
    policy            text    NOT NULL,
    value_segment     text    NOT NULL,
    min_annual_value  float8  NOT NULL,
    lead_days         int     NOT NULL,
    b2                float8  NOT NULL,
    b1                float8  NOT NULL,
    y4                float8  NOT NULL,
    y3                float8  NOT NULL,
    y2                float8  NOT NULL,
    y1                float8  NOT NULL,
    r3                float8  NOT NULL,
    r2                float8  NOT NULL,
    r1                float8  NOT NULL,
    hysteresis_margin float8  NOT NULL DEFAULT 0,
    description       text,
    builtin           boolean NOT NULL DEFAULT false,
    PRIMARY KEY (policy, value_segment)
);
COMMENT ON TABLE churn.tier_policy IS
    'warning tier policies: one row per (policy, value segment); a customer is in the segment with the largest min_annual_value <= annual value and gets the most urgent code whose cut point is <= p_churn';
COMMENT ON COLUMN churn.tier_policy.policy IS 'policy name, the third argument of churn.warning_tier';
COMMENT ON COLUMN churn.tier_policy.value_segment IS 'value segment name returned in churn.tier.value_segment';
COMMENT ON COLUMN churn.tier_policy.min_annual_value IS 'lowest annual value in the segment (inclusive, currency-neutral); the lowest segment of a policy starts at 0';
COMMENT ON COLUMN churn.tier_policy.lead_days IS 'days ahead of the expected churn that warnings in this segment aim for (> 0)';
COMMENT ON COLUMN churn.tier_policy.b2 IS 'lowest p_churn of code B2 (below it: N0)';
COMMENT ON COLUMN churn.tier_policy.b1 IS 'lowest p_churn of code B1';
COMMENT ON COLUMN churn.tier_policy.y4 IS 'lowest p_churn of code Y4';
COMMENT ON COLUMN churn.tier_policy.y3 IS 'lowest p_churn of code Y3';
COMMENT ON COLUMN churn.tier_policy.y2 IS 'lowest p_churn of code Y2';
COMMENT ON COLUMN churn.tier_policy.y1 IS 'lowest p_churn of code Y1';
COMMENT ON COLUMN churn.tier_policy.r3 IS 'lowest p_churn of code R3';
COMMENT ON COLUMN churn.tier_policy.r2 IS 'lowest p_churn of code R2';
COMMENT ON COLUMN churn.tier_policy.r1 IS 'lowest p_churn of code R1 (the most urgent; up to and including 1)';
COMMENT ON COLUMN churn.tier_policy.hysteresis_margin IS 'margin used by churn.warning_tier(p, value, policy, previous_code) when no margin is given';
COMMENT ON COLUMN churn.tier_policy.builtin IS 'true for the read-only rows installed with the extension';

-- The default policy.  Low-value customers: blue from 0.30 (the top of the
-- business's annual churn base rate of a fifth to a third), yellow from 0.50
-- (churn more likely than not), red from 0.80.  Medium-value customers are
-- warned 0.10 earlier and high-value customers 0.20 earlier on every code, so
-- the bands have the same widths in every segment and all nine codes stay
-- reachable (the highest cut of any segment is 0.90 < 1).
INSERT INTO churn.tier_policy (policy, value_segment, min_annual_value, lead_days,
                               b2, b1, y4, y3, y2, y1, r3, r2, r1, hysteresis_margin, description, builtin) VALUES
    ('default', 'high',   100000, 30, 0.10, 0.20, 0.30, 0.35, 0.40, 0.50, 0.60, 0.65, 0.70, 0.02,
     'annual value >= 100000: warned 0.20 earlier than low, 30-day lead', true),
    ('default', 'medium',  10000, 40, 0.20, 0.30, 0.40, 0.45, 0.50, 0.60, 0.70, 0.75, 0.80, 0.02,
     'annual value >= 10000: warned 0.10 earlier than low, 40-day lead', true),
    ('default', 'low',         0, 50, 0.30, 0.40, 0.50, 0.55, 0.60, 0.70, 0.80, 0.85, 0.90, 0.02,
     'annual value < 10000: 50-day lead', true);

-- Check one policy; raises check_violation (23514) on the first problem.
CREATE FUNCTION churn.tier_policy_validate(policy text) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    r record;
    lowest float8;
    cuts float8[];
    names text[] := ARRAY['b2', 'b1', 'y4', 'y3', 'y2', 'y1', 'r3', 'r2', 'r1'];
    i int;
BEGIN
    IF policy IS NULL OR btrim(policy) = '' THEN
        RAISE EXCEPTION 'tier policy name must not be empty'
            USING ERRCODE = 'check_violation';
    END IF;
    FOR r IN SELECT * FROM churn.tier_policy t WHERE t.policy = tier_policy_validate.policy
             ORDER BY t.min_annual_value, t.value_segment LOOP
        IF btrim(r.value_segment) = '' THEN
            RAISE EXCEPTION 'tier policy "%": value segment name must not be empty', policy
                USING ERRCODE = 'check_violation';
        END IF;
        IF NOT (r.min_annual_value >= 0 AND r.min_annual_value < 'Infinity'::float8) THEN
            RAISE EXCEPTION 'tier policy "%", segment "%": min_annual_value % is not a finite number >= 0',
                policy, r.value_segment, r.min_annual_value
                USING ERRCODE = 'check_violation';
        END IF;
        IF r.lead_days <= 0 THEN
            RAISE EXCEPTION 'tier policy "%", segment "%": lead_days must be positive', policy, r.value_segment
                USING ERRCODE = 'check_violation',
                      DETAIL = format('lead_days was %s.', r.lead_days);
        END IF;
        IF NOT (r.hysteresis_margin >= 0 AND r.hysteresis_margin < 1) THEN
            RAISE EXCEPTION 'tier policy "%", segment "%": hysteresis_margin % is outside [0, 1)',
                policy, r.value_segment, r.hysteresis_margin
                USING ERRCODE = 'check_violation';
        END IF;
        cuts := ARRAY[r.b2, r.b1, r.y4, r.y3, r.y2, r.y1, r.r3, r.r2, r.r1];
        FOR i IN 1 .. 9 LOOP
            IF NOT (cuts[i] >= 0 AND cuts[i] <= 1) THEN
                RAISE EXCEPTION 'tier policy "%", segment "%": cut point % = % is outside [0, 1]',
                    policy, r.value_segment, names[i], cuts[i]
                    USING ERRCODE = 'check_violation',
                          HINT = 'Cut points are churn probabilities.';
            END IF;
            IF i > 1 AND NOT (cuts[i - 1] < cuts[i]) THEN
                RAISE EXCEPTION 'tier policy "%", segment "%": cut points are not strictly increasing',
                    policy, r.value_segment
                    USING ERRCODE = 'check_violation',
                          DETAIL = format('%s = %s is not below %s = %s.', names[i - 1], cuts[i - 1], names[i], cuts[i]),
                          HINT = 'Each code needs a larger p_churn than the less urgent one: b2 < b1 < y4 < y3 < y2 < y1 < r3 < r2 < r1.';
            END IF;
        END LOOP;
        IF lowest IS NULL THEN
            lowest := r.min_annual_value;
            IF lowest <> 0 THEN
                RAISE EXCEPTION 'tier policy "%" leaves annual values below % without a value segment', policy, lowest
                    USING ERRCODE = 'check_violation',
                          HINT = format('Set min_annual_value = 0 on the lowest segment ("%s").', r.value_segment);
            END IF;
        ELSIF r.min_annual_value = lowest THEN
            RAISE EXCEPTION 'tier policy "%": two value segments start at annual value %', policy, lowest
                USING ERRCODE = 'check_violation',
                      HINT = 'Segments of a policy must not overlap: give each a different min_annual_value.';
        ELSE
            lowest := r.min_annual_value;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION churn.tier_policy_validate(text) IS
    'check a tier policy (cut points strictly increasing in [0, 1], segments covering every annual value >= 0 without overlap, lead_days > 0); raises check_violation on the first problem';

-- The built-in rows are read-only; rows written by users are never built-in.
CREATE TRIGGER builtin_guard BEFORE INSERT OR UPDATE OR DELETE ON churn.tier_policy
    FOR EACH ROW EXECUTE FUNCTION churn.builtin_guard('policy',
        'the built-in tier policy "%s" cannot be changed',
        'Copy it and edit the copy: SELECT churn.tier_policy_copy(%L, ''mine'');');

-- Validate every policy a statement touched, at the end of the statement (or
-- at commit after SET CONSTRAINTS churn.tier_policy_valid DEFERRED, to build a
-- policy up over several statements).
CREATE FUNCTION churn.tier_policy_check() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM churn.tier_policy_validate(NEW.policy);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM churn.tier_policy_validate(OLD.policy);
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER tier_policy_valid AFTER INSERT OR UPDATE OR DELETE ON churn.tier_policy
    DEFERRABLE INITIALLY IMMEDIATE
    FOR EACH ROW EXECUTE FUNCTION churn.tier_policy_check();

SELECT pg_catalog.pg_extension_config_dump('churn.tier_policy', 'WHERE NOT builtin');

CREATE FUNCTION churn.tier_policy_copy(source text, target text) RETURNS int
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    n int;
BEGIN
    IF EXISTS (SELECT 1 FROM churn.tier_policy t WHERE t.policy = target) THEN
        RAISE EXCEPTION 'tier policy "%" already exists', target
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Choose another name, or delete the existing policy first.';
    END IF;
    INSERT INTO churn.tier_policy (policy, value_segment, min_annual_value, lead_days,
                                   b2, b1, y4, y3, y2, y1, r3, r2, r1, hysteresis_margin, description)
    SELECT target, value_segment, min_annual_value, lead_days,
           b2, b1, y4, y3, y2, y1, r3, r2, r1, hysteresis_margin, description
    FROM churn.tier_policy t WHERE t.policy = source;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'tier policy "%" does not exist', source
            USING ERRCODE = 'undefined_object',
                  HINT = format('Known policies: %s.',
                                (SELECT string_agg(DISTINCT t.policy, ', ' ORDER BY t.policy) FROM churn.tier_policy t));
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION churn.tier_policy_copy(text, text) IS
    'copy a tier policy under a new, editable name; returns the number of value segments copied';

CREATE FUNCTION churn.warning_tier(p_churn float8, annual_value float8) RETURNS churn.tier
    AS 'MODULE_PATHNAME', 'warning_tier' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.warning_tier(float8, float8) IS
    'warning tier of a churn probability and an annual value under the policy ''default''';

CREATE FUNCTION churn.warning_tier(p_churn float8, annual_value float8, policy text) RETURNS churn.tier
    AS 'MODULE_PATHNAME', 'warning_tier' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.warning_tier(float8, float8, text) IS
    'warning tier of a churn probability and an annual value under a policy of churn.tier_policy';

CREATE FUNCTION churn.warning_tier(p_churn float8, annual_value float8, policy text,
                                   previous_code text, margin float8 DEFAULT NULL) RETURNS churn.tier
    AS 'MODULE_PATHNAME', 'warning_tier_hysteresis' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.warning_tier(float8, float8, text, text, float8) IS
    'warning tier with hysteresis: keeps previous_code while p_churn is within margin (default: the policy''s hysteresis_margin) of that code''s band';

-- Every code of every policy with its probability band, for legends.
CREATE VIEW churn.tier_codes AS
SELECT t.policy, t.value_segment, t.min_annual_value, c.code, c.zone, c.level, c.urgency,
       c.min_p, c.max_p, t.lead_days, t.builtin
FROM churn.tier_policy t
CROSS JOIN LATERAL (VALUES
    ('N0', 'none',   0, 0, 0::float8, t.b2),
    ('B2', 'blue',   2, 1, t.b2, t.b1),
    ('B1', 'blue',   1, 2, t.b1, t.y4),
    ('Y4', 'yellow', 4, 3, t.y4, t.y3),
    ('Y3', 'yellow', 3, 4, t.y3, t.y2),
    ('Y2', 'yellow', 2, 5, t.y2, t.y1),
    ('Y1', 'yellow', 1, 6, t.y1, t.r3),
    ('R3', 'red',    3, 7, t.r3, t.r2),
    ('R2', 'red',    2, 8, t.r2, t.r1),
    ('R1', 'red',    1, 9, t.r1, 1::float8)
) c(code, zone, level, urgency, min_p, max_p);
COMMENT ON VIEW churn.tier_codes IS
    'every code of every tier policy and value segment with its probability band [min_p, max_p) (R1 includes max_p = 1); sort by urgency';
COMMENT ON COLUMN churn.tier_codes.policy IS 'policy name';
COMMENT ON COLUMN churn.tier_codes.value_segment IS 'value segment name';
COMMENT ON COLUMN churn.tier_codes.min_annual_value IS 'lowest annual value of the segment (inclusive)';
COMMENT ON COLUMN churn.tier_codes.code IS 'tier code: N0, B2, B1, Y4, Y3, Y2, Y1, R3, R2, R1';
COMMENT ON COLUMN churn.tier_codes.zone IS 'none, blue, yellow or red';
COMMENT ON COLUMN churn.tier_codes.level IS 'level inside the zone, 1 = most urgent; 0 for none';
COMMENT ON COLUMN churn.tier_codes.urgency IS 'overall urgency 0 (N0) .. 9 (R1), for sorting';
COMMENT ON COLUMN churn.tier_codes.min_p IS 'lowest p_churn of the code (inclusive)';
COMMENT ON COLUMN churn.tier_codes.max_p IS 'p_churn at which the next more urgent code starts (exclusive); 1 (inclusive) for R1';
COMMENT ON COLUMN churn.tier_codes.lead_days IS 'lead time of the segment in days';
COMMENT ON COLUMN churn.tier_codes.builtin IS 'true for the read-only built-in policy';

-- ==== sql/install/810_alerts.sql
-- churn_warning install script, part 810: alert handling with a playbook, and
-- the views BI tools read.
--
-- A warning tier (part 800) becomes an alert: one row per customer and
-- pipeline while it is being handled, carrying the playbook's action,
-- channel and SLA at the time it was raised.  Alerts move open -> contacted
-- -> retained / churned / dismissed only through churn.alert_move (and its
-- wrappers), which lock the row, refuse illegal moves and write the audit
-- trail churn.alert_event.  churn.raise_alert opens or escalates alerts and
-- sends NOTIFY churn_alert.  The state-changing functions are SECURITY
-- DEFINER with EXECUTE revoked from PUBLIC: grant EXECUTE to the roles that
-- handle alerts and they need no privilege on the tables.  The role
-- churn_reader reads the views and nothing else.

-- Urgency of a tier code, as in churn.tier_codes: R1 = 9 (most urgent) ..
-- B2 = 1; N0 = 0; anything else NULL.
CREATE FUNCTION churn.alert_urgency(code text) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE $1 WHEN 'R1' THEN 9 WHEN 'R2' THEN 8 WHEN 'R3' THEN 7
                   WHEN 'Y1' THEN 6 WHEN 'Y2' THEN 5 WHEN 'Y3' THEN 4 WHEN 'Y4' THEN 3
                   WHEN 'B1' THEN 2 WHEN 'B2' THEN 1 WHEN 'N0' THEN 0 END
$$;
COMMENT ON FUNCTION churn.alert_urgency(text) IS
    'urgency of a tier code: R1 = 9 (most urgent) .. B2 = 1, N0 = 0, NULL for anything else (same scale as churn.tier_codes.urgency)';

-- ---------------------------------------------------------------------------
-- The playbook: what to do for each alerting code.  One table; the built-in
-- rows are read-only, a user row (builtin = false) for the same code
-- overrides the built-in one.  pg_dump keeps the user rows only, so a
-- restore recreates the built-ins with CREATE EXTENSION and then loads the
-- overrides beside them without a conflict.

CREATE TABLE churn.playbook (
    code        text    NOT NULL CHECK (code IN ('R1', 'R2', 'R3', 'Y1', 'Y2', 'Y3', 'Y4', 'B1', 'B2')),
    zone        text    NOT NULL,
    level       int     NOT NULL,
    action      text    NOT NULL CHECK (btrim(action) <> ''),
    channel     text    NOT NULL CHECK (btrim(channel) <> ''),
    sla_hours   int     NOT NULL CHECK (sla_hours > 0),
    description text,
    builtin     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (code, builtin),
    CHECK (zone = CASE left(code, 1) WHEN 'R' THEN 'red' WHEN 'Y' THEN 'yellow' ELSE 'blue' END
           AND level = substr(code, 2)::int)
);
COMMENT ON TABLE churn.playbook IS
    'what to do for each alerting tier code: action, channel and SLA (hours to first contact); built-in rows are read-only, a user row (builtin = false) for the same code overrides it; user rows are kept by pg_dump';
COMMENT ON COLUMN churn.playbook.code IS 'tier code R1..R3, Y1..Y4, B1..B2';
COMMENT ON COLUMN churn.playbook.zone IS 'red, yellow or blue (follows from the code; filled in when omitted)';
COMMENT ON COLUMN churn.playbook.level IS 'level inside the zone, 1 = most urgent (follows from the code; filled in when omitted)';
COMMENT ON COLUMN churn.playbook.action IS 'what the store does';
COMMENT ON COLUMN churn.playbook.channel IS 'how the customer is reached';
COMMENT ON COLUMN churn.playbook.sla_hours IS 'hours from raising (or escalating) an alert to the first contact';
COMMENT ON COLUMN churn.playbook.description IS 'longer explanation for the person handling the alert';
COMMENT ON COLUMN churn.playbook.builtin IS 'true for the read-only rows installed with the extension';

INSERT INTO churn.playbook (code, zone, level, action, channel, sla_hours, description, builtin) VALUES
    ('R1', 'red',    1, 'VIP retention: store manager call and VIP gift', 'phone',      4,
     'most urgent: the store manager calls the customer personally and offers a VIP gift', true),
    ('R2', 'red',    2, 'VIP retention: personal call and VIP gift',      'phone',     12,
     'a personal call from the customer''s store with a VIP gift', true),
    ('R3', 'red',    3, 'VIP retention: VIP gift or personal service',    'phone',     24,
     'a VIP gift or a personal service offer (personal shopper, free grooming), by phone within a day', true),
    ('Y1', 'yellow', 1, 'targeted promotion: second item at half price',  'app',       48,
     'a personal offer on the products the customer buys: second item at half price', true),
    ('Y2', 'yellow', 2, 'targeted promotion: second item at half price',  'app',       72,
     'second item at half price on the customer''s usual categories', true),
    ('Y3', 'yellow', 3, 'targeted promotion',                              'email',     96,
     'a promotion chosen from the customer''s purchase history', true),
    ('Y4', 'yellow', 4, 'targeted promotion',                              'email',     96,
     'a promotion chosen from the customer''s purchase history', true),
    ('B1', 'blue',   1, 'reactivation: personal reminder',                 'email',    168,
     'a reminder with recommendations based on past purchases', true),
    ('B2', 'blue',   2, 'reactivation: newsletter',                        'newsletter', 168,
     'include the customer in the next reactivation newsletter', true);

-- Built-in rows are read-only; user rows get zone and level from their code.
CREATE TRIGGER builtin_guard BEFORE INSERT OR UPDATE OR DELETE ON churn.playbook
    FOR EACH ROW EXECUTE FUNCTION churn.builtin_guard('code',
        'the built-in playbook entry for code %s cannot be changed',
        'Override it with a user entry: SELECT churn.playbook_set(%L, action, channel, sla_hours);');

-- A user entry for a tier code gets the code's zone and level by default.
CREATE FUNCTION churn.playbook_fill_zone() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF NEW.code IN ('R1', 'R2', 'R3', 'Y1', 'Y2', 'Y3', 'Y4', 'B1', 'B2') THEN
        NEW.zone := coalesce(NEW.zone, CASE left(NEW.code, 1) WHEN 'R' THEN 'red' WHEN 'Y' THEN 'yellow' ELSE 'blue' END);
        NEW.level := coalesce(NEW.level, substr(NEW.code, 2)::int);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER playbook_fill_zone BEFORE INSERT OR UPDATE ON churn.playbook
    FOR EACH ROW EXECUTE FUNCTION churn.playbook_fill_zone();
SELECT pg_catalog.pg_extension_config_dump('churn.playbook', 'WHERE NOT builtin');

-- The playbook in force: the user row of a code when there is one, else the
-- built-in row.
CREATE VIEW churn.playbook_effective AS
SELECT DISTINCT ON (p.code)
       p.code::text AS code, p.zone::text AS zone, p.level::int AS level,
       churn.alert_urgency(p.code)::int AS urgency,
       p.action::text AS action, p.channel::text AS channel, p.sla_hours::int AS sla_hours,
       p.description::text AS description, (NOT p.builtin)::boolean AS overridden
FROM churn.playbook p
ORDER BY p.code, p.builtin;
COMMENT ON VIEW churn.playbook_effective IS
    'the playbook in force, one row per tier code R1..B2: the user entry when there is one, else the built-in one';
COMMENT ON COLUMN churn.playbook_effective.code IS 'tier code R1..R3, Y1..Y4, B1..B2';
COMMENT ON COLUMN churn.playbook_effective.zone IS 'red, yellow or blue';
COMMENT ON COLUMN churn.playbook_effective.level IS 'level inside the zone, 1 = most urgent';
COMMENT ON COLUMN churn.playbook_effective.urgency IS 'R1 = 9 (most urgent) .. B2 = 1, for sorting';
COMMENT ON COLUMN churn.playbook_effective.action IS 'what the store does';
COMMENT ON COLUMN churn.playbook_effective.channel IS 'how the customer is reached';
COMMENT ON COLUMN churn.playbook_effective.sla_hours IS 'hours from raising (or escalating) an alert to the first contact';
COMMENT ON COLUMN churn.playbook_effective.description IS 'longer explanation for the person handling the alert';
COMMENT ON COLUMN churn.playbook_effective.overridden IS 'true when a user entry replaces the built-in one';

-- Set (insert or replace) the user entry of a code.
CREATE FUNCTION churn.playbook_set(code text, action text, channel text, sla_hours int,
                                   description text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF code IS NULL OR churn.alert_urgency(code) IS NULL OR code = 'N0' THEN
        RAISE EXCEPTION 'unknown playbook code %', coalesce(quote_literal(code), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Playbook codes are R1, R2, R3, Y1, Y2, Y3, Y4, B1 and B2.';
    END IF;
    IF sla_hours IS NULL OR sla_hours <= 0 THEN
        RAISE EXCEPTION 'sla_hours must be a positive number of hours'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF action IS NULL OR btrim(action) = '' OR channel IS NULL OR btrim(channel) = '' THEN
        RAISE EXCEPTION 'action and channel must not be empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM churn.playbook p WHERE p.code = playbook_set.code AND NOT p.builtin;
    INSERT INTO churn.playbook (code, action, channel, sla_hours, description)
    VALUES (playbook_set.code, playbook_set.action, playbook_set.channel, playbook_set.sla_hours,
            playbook_set.description);
END
$$;
COMMENT ON FUNCTION churn.playbook_set(text, text, text, int, text) IS
    'override the playbook entry of a tier code (applies to alerts raised or escalated from now on)';

-- Remove the user entry of a code (back to the built-in one).
CREATE FUNCTION churn.playbook_reset(code text) RETURNS boolean
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS
$$
    WITH d AS (DELETE FROM churn.playbook p WHERE p.code = $1 AND NOT p.builtin RETURNING 1)
    SELECT count(*) > 0 FROM d
$$;
COMMENT ON FUNCTION churn.playbook_reset(text) IS
    'drop the user override of a tier code''s playbook entry; true when there was one';

-- ---------------------------------------------------------------------------
-- Alerts and their audit trail.  Both are user data and kept by pg_dump.

CREATE TABLE churn.alert (
    alert_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pipeline        text CHECK (pipeline <> ''),
    customer_id     text NOT NULL CHECK (customer_id <> ''),
    code            text NOT NULL CHECK (code IN ('R1', 'R2', 'R3', 'Y1', 'Y2', 'Y3', 'Y4', 'B1', 'B2')),
    zone            text NOT NULL,
    level           int  NOT NULL,
    value_segment   text,
    p_churn         float8 NOT NULL CHECK (p_churn >= 0 AND p_churn <= 1),
    annual_value    float8 CHECK (annual_value >= 0 AND annual_value < 'Infinity'::float8),
    drivers         text[] NOT NULL DEFAULT '{}',
    action          text NOT NULL,
    channel         text NOT NULL,
    sla_hours       int  NOT NULL CHECK (sla_hours > 0),
    status          text NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'contacted', 'retained', 'churned', 'dismissed')),
    opened_at       timestamptz NOT NULL,
    due_at          timestamptz NOT NULL,
    contacted_at    timestamptz,
    closed_at       timestamptz,
    assigned_to     text,
    escalations     int NOT NULL DEFAULT 0 CHECK (escalations >= 0),
    last_changed_at timestamptz NOT NULL,
    CHECK (zone = CASE left(code, 1) WHEN 'R' THEN 'red' WHEN 'Y' THEN 'yellow' ELSE 'blue' END
           AND level = substr(code, 2)::int),
    CHECK ((closed_at IS NOT NULL) = (status IN ('retained', 'churned', 'dismissed'))),
    CHECK (status <> 'contacted' OR contacted_at IS NOT NULL)
);
COMMENT ON TABLE churn.alert IS
    'churn alerts: one per customer and pipeline while open or contacted, with the playbook action and SLA of its code; changed only through churn.raise_alert and churn.alert_move; kept by pg_dump';
COMMENT ON COLUMN churn.alert.alert_id IS 'alert number';
COMMENT ON COLUMN churn.alert.pipeline IS 'pipeline that raised the alert; NULL when raised by hand';
COMMENT ON COLUMN churn.alert.customer_id IS 'customer identifier, as text';
COMMENT ON COLUMN churn.alert.code IS 'current tier code R1..B2 (escalation replaces it)';
COMMENT ON COLUMN churn.alert.zone IS 'red, yellow or blue';
COMMENT ON COLUMN churn.alert.level IS 'level inside the zone, 1 = most urgent';
COMMENT ON COLUMN churn.alert.value_segment IS 'value segment of the tier (high, medium, low); NULL when raised from a bare code';
COMMENT ON COLUMN churn.alert.p_churn IS 'churn probability when raised or last escalated';
COMMENT ON COLUMN churn.alert.annual_value IS 'annual value when raised or last escalated (currency-neutral); NULL when unknown';
COMMENT ON COLUMN churn.alert.drivers IS 'top drivers of the risk, most important first';
COMMENT ON COLUMN churn.alert.action IS 'playbook action when raised or last escalated';
COMMENT ON COLUMN churn.alert.channel IS 'playbook channel when raised or last escalated';
COMMENT ON COLUMN churn.alert.sla_hours IS 'playbook SLA in hours when raised or last escalated';
COMMENT ON COLUMN churn.alert.status IS 'open, contacted, retained, churned or dismissed';
COMMENT ON COLUMN churn.alert.opened_at IS 'when the alert was raised';
COMMENT ON COLUMN churn.alert.due_at IS 'contact deadline: raised (or last escalated) + sla_hours';
COMMENT ON COLUMN churn.alert.contacted_at IS 'when the customer was contacted for the current code; NULL before';
COMMENT ON COLUMN churn.alert.closed_at IS 'when the alert was closed (retained, churned, dismissed); NULL while active';
COMMENT ON COLUMN churn.alert.assigned_to IS 'who handles the alert; NULL when unassigned';
COMMENT ON COLUMN churn.alert.escalations IS 'how often the alert was escalated to a more urgent code';
COMMENT ON COLUMN churn.alert.last_changed_at IS 'time of the last event of the alert';

-- At most one active (open or contacted) alert per customer and pipeline;
-- NULL pipeline counts as one pipeline (pipeline = '' is refused above).
CREATE UNIQUE INDEX alert_active_customer ON churn.alert ((coalesce(pipeline, '')), customer_id)
    WHERE status IN ('open', 'contacted');
CREATE INDEX alert_status_due ON churn.alert (status, due_at);
SELECT pg_catalog.pg_extension_config_dump('churn.alert', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('churn.alert', 'alert_id')::regclass, '');

CREATE TABLE churn.alert_event (
    event_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES churn.alert (alert_id),
    at          timestamptz NOT NULL,
    event       text NOT NULL CHECK (event IN ('opened', 'escalated', 'moved', 'assigned')),
    from_status text,
    to_status   text NOT NULL,
    from_code   text,
    to_code     text NOT NULL,
    actor       text NOT NULL,
    db_user     name NOT NULL DEFAULT session_user,
    note        text
);
COMMENT ON TABLE churn.alert_event IS
    'audit trail of churn.alert: one row per opening, escalation, status move and assignment; append-only; kept by pg_dump';
COMMENT ON COLUMN churn.alert_event.event_id IS 'event number, increasing in the order events were written';
COMMENT ON COLUMN churn.alert_event.alert_id IS 'the alert';
COMMENT ON COLUMN churn.alert_event.at IS 'when it happened';
COMMENT ON COLUMN churn.alert_event.event IS 'opened, escalated, moved (status change) or assigned';
COMMENT ON COLUMN churn.alert_event.from_status IS 'status before; NULL for opened';
COMMENT ON COLUMN churn.alert_event.to_status IS 'status after';
COMMENT ON COLUMN churn.alert_event.from_code IS 'code before; NULL for opened';
COMMENT ON COLUMN churn.alert_event.to_code IS 'code after';
COMMENT ON COLUMN churn.alert_event.actor IS 'who did it, as given to the function (the pipeline name or current_user for raised alerts)';
COMMENT ON COLUMN churn.alert_event.db_user IS 'database login (session_user) that ran the function';
COMMENT ON COLUMN churn.alert_event.note IS 'free-text note; for assigned: the new assignee is in the note';
CREATE INDEX alert_event_alert ON churn.alert_event (alert_id, event_id);
SELECT pg_catalog.pg_extension_config_dump('churn.alert_event', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('churn.alert_event', 'event_id')::regclass, '');

CREATE FUNCTION churn.alert_event_guard() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    RAISE EXCEPTION 'the alert audit trail is append-only'
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Events are written by churn.raise_alert and churn.alert_move.';
END
$$;
CREATE TRIGGER alert_event_guard BEFORE UPDATE ON churn.alert_event
    FOR EACH ROW EXECUTE FUNCTION churn.alert_event_guard();

-- Statuses an alert may move to by hand from a status (empty when closed).
CREATE FUNCTION churn.alert_legal_moves(from_status text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE $1 WHEN 'open' THEN ARRAY['contacted', 'dismissed', 'churned']
                   WHEN 'contacted' THEN ARRAY['retained', 'churned', 'dismissed']
                   WHEN 'retained' THEN '{}'::text[] WHEN 'churned' THEN '{}'::text[]
                   WHEN 'dismissed' THEN '{}'::text[] END
$$;
COMMENT ON FUNCTION churn.alert_legal_moves(text) IS
    'statuses an alert may be moved to from a status: open -> contacted, dismissed, churned; contacted -> retained, churned, dismissed; closed -> none; NULL for an unknown status';

-- The NOTIFY payload of an alert event; under 8000 bytes however long the
-- customer id or pipeline name (both cut to 200 characters, with
-- "truncated": true, when the payload would not fit).
CREATE FUNCTION churn.alert_payload(a churn.alert, event text) RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    payload text;
BEGIN
    payload := json_build_object('alert_id', a.alert_id, 'customer_id', a.customer_id, 'code', a.code,
                                 'zone', a.zone, 'level', a.level, 'event', event, 'pipeline', a.pipeline)::text;
    IF octet_length(payload) >= 8000 THEN
        payload := json_build_object('alert_id', a.alert_id, 'customer_id', left(a.customer_id, 200),
                                     'code', a.code, 'zone', a.zone, 'level', a.level, 'event', event,
                                     'pipeline', left(a.pipeline, 200), 'truncated', true)::text;
    END IF;
    RETURN payload;
END
$$;
COMMENT ON FUNCTION churn.alert_payload(churn.alert, text) IS
    'JSON payload sent on channel churn_alert: {alert_id, customer_id, code, zone, level, event, pipeline}; always under 8000 bytes';

-- Check the time of an event: given, not in the future, not before the
-- alert's last event.
CREATE FUNCTION churn.alert_check_time(at timestamptz, last_changed timestamptz) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF at IS NULL OR NOT isfinite(at) THEN
        RAISE EXCEPTION 'the time of an alert event must be a finite timestamp'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF at > clock_timestamp() THEN
        RAISE EXCEPTION 'the time of an alert event must not be in the future'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('at was %s.', at);
    END IF;
    IF at < last_changed THEN
        RAISE EXCEPTION 'the time of an alert event must not be before the alert''s last change'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('at was %s, the alert last changed at %s.', at, last_changed);
    END IF;
END
$$;

-- Open an alert, or escalate the customer's active alert to a more urgent
-- code.  Returns the alert id; NULL for zone none.
CREATE FUNCTION churn.alert_open_or_escalate(p_customer_id text, p_code text, p_zone text, p_level int,
                                             p_value_segment text, p_churn float8, p_annual_value float8,
                                             p_drivers text[], p_pipeline text, p_at timestamptz) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    pb churn.playbook_effective;
    cur churn.alert;
    v_actor text := coalesce(p_pipeline, current_user::text);
BEGIN
    IF p_customer_id IS NULL OR p_customer_id = '' THEN
        RAISE EXCEPTION 'customer_id must not be NULL or empty' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_pipeline = '' THEN
        RAISE EXCEPTION 'pipeline must be NULL or a name, not empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_churn IS NULL OR NOT (p_churn >= 0 AND p_churn <= 1) THEN
        RAISE EXCEPTION 'p_churn must be a probability in [0, 1], not %', coalesce(p_churn::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (p_annual_value >= 0 AND p_annual_value < 'Infinity'::float8) THEN
        RAISE EXCEPTION 'annual_value must be a finite number >= 0 or NULL, not %', p_annual_value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM churn.alert_check_time(p_at, NULL);
    IF p_zone = 'none' OR (p_zone IS NULL AND p_code = 'N0') THEN
        RETURN NULL;
    END IF;
    IF p_code IS NULL THEN
        RAISE EXCEPTION 'the tier must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Pass churn.warning_tier(p_churn, annual_value), or a code R1..B2.';
    END IF;
    SELECT * INTO pb FROM churn.playbook_effective e WHERE e.code = p_code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown tier code %', quote_literal(p_code)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Alerting codes are R1, R2, R3, Y1, Y2, Y3, Y4, B1 and B2; N0 (zone none) raises no alert.';
    END IF;
    IF p_zone IS DISTINCT FROM pb.zone OR p_level IS DISTINCT FROM pb.level THEN
        RAISE EXCEPTION 'tier code % does not match zone % level %', p_code, coalesce(p_zone, 'NULL'),
                        coalesce(p_level::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('%s is zone %s level %s.', p_code, pb.zone, pb.level);
    END IF;

    -- Two attempts: when a concurrent transaction opens the same customer's
    -- alert between our look-up and our insert, the second look-up sees it.
    FOR attempt IN 1 .. 2 LOOP
        SELECT * INTO cur FROM churn.alert a
        WHERE a.customer_id = p_customer_id AND coalesce(a.pipeline, '') = coalesce(p_pipeline, '')
          AND a.status IN ('open', 'contacted')
        FOR UPDATE;
        IF FOUND THEN
            IF churn.alert_urgency(p_code) <= churn.alert_urgency(cur.code) THEN
                RETURN cur.alert_id;        -- same or less urgent: nothing changes
            END IF;
            PERFORM churn.alert_check_time(p_at, cur.last_changed_at);
            UPDATE churn.alert a
            SET code = p_code, zone = pb.zone, level = pb.level, value_segment = p_value_segment,
                p_churn = alert_open_or_escalate.p_churn, annual_value = p_annual_value,
                drivers = coalesce(p_drivers, '{}'), action = pb.action, channel = pb.channel,
                sla_hours = pb.sla_hours, status = 'open',
                due_at = p_at + make_interval(hours => pb.sla_hours), contacted_at = NULL,
                escalations = a.escalations + 1, last_changed_at = p_at
            WHERE a.alert_id = cur.alert_id
            RETURNING * INTO cur;
            INSERT INTO churn.alert_event (alert_id, at, event, from_status, to_status, from_code, to_code, actor, note)
            SELECT cur.alert_id, p_at, 'escalated', e.to_status, 'open', e.to_code, p_code, v_actor,
                   format('p_churn %s', p_churn)
            FROM churn.alert_event e WHERE e.alert_id = cur.alert_id ORDER BY e.event_id DESC LIMIT 1;
            PERFORM pg_catalog.pg_notify('churn_alert', churn.alert_payload(cur, 'escalated'));
            RETURN cur.alert_id;
        END IF;

        INSERT INTO churn.alert (pipeline, customer_id, code, zone, level, value_segment, p_churn, annual_value,
                                 drivers, action, channel, sla_hours, status, opened_at, due_at, last_changed_at)
        VALUES (p_pipeline, p_customer_id, p_code, pb.zone, pb.level, p_value_segment, p_churn, p_annual_value,
                coalesce(p_drivers, '{}'), pb.action, pb.channel, pb.sla_hours, 'open', p_at,
                p_at + make_interval(hours => pb.sla_hours), p_at)
        ON CONFLICT DO NOTHING
        RETURNING * INTO cur;
        IF cur.alert_id IS NOT NULL THEN
            INSERT INTO churn.alert_event (alert_id, at, event, from_status, to_status, from_code, to_code, actor, note)
            VALUES (cur.alert_id, p_at, 'opened', NULL, 'open', NULL, p_code, v_actor, format('p_churn %s', p_churn));
            PERFORM pg_catalog.pg_notify('churn_alert', churn.alert_payload(cur, 'opened'));
            RETURN cur.alert_id;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'could not open an alert for customer % (concurrent changes)', p_customer_id
        USING ERRCODE = 'serialization_failure', HINT = 'Retry the transaction.';
END
$$;

CREATE FUNCTION churn.raise_alert(customer_id text, tier churn.tier, p_churn float8,
                                  annual_value float8 DEFAULT NULL, drivers text[] DEFAULT '{}',
                                  pipeline text DEFAULT NULL, at timestamptz DEFAULT now()) RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.alert_open_or_escalate($1, ($2).code, ($2).zone, ($2).level, ($2).value_segment,
                                        $3, $4, $5, $6, $7)
$$;
COMMENT ON FUNCTION churn.raise_alert(text, churn.tier, float8, float8, text[], text, timestamptz) IS
    'open an alert for a customer''s warning tier, or escalate their active alert to a more urgent code; returns the alert id (the existing one when nothing changes), NULL for zone none; NOTIFY churn_alert on open and escalation';

CREATE FUNCTION churn.raise_alert(customer_id text, code text, p_churn float8,
                                  annual_value float8 DEFAULT NULL, drivers text[] DEFAULT '{}',
                                  pipeline text DEFAULT NULL, at timestamptz DEFAULT now()) RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.alert_open_or_escalate($1, $2,
                                        CASE left($2, 1) WHEN 'R' THEN 'red' WHEN 'Y' THEN 'yellow'
                                                         WHEN 'B' THEN 'blue' WHEN 'N' THEN 'none' END,
                                        CASE WHEN $2 ~ '^[RYBN][0-9]$' THEN substr($2, 2)::int END,
                                        NULL, $3, $4, $5, $6, $7)
$$;
COMMENT ON FUNCTION churn.raise_alert(text, text, float8, float8, text[], text, timestamptz) IS
    'raise_alert with a bare tier code (R1..B2; N0 raises nothing) instead of a churn.tier; value_segment stays NULL';

-- Move an alert to another status (or reassign it), under a row lock.
CREATE FUNCTION churn.alert_transition(p_alert_id bigint, p_to_status text, p_actor text, p_note text,
                                       p_at timestamptz, p_assign boolean, p_assignee text) RETURNS churn.alert
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cur churn.alert;
    legal text[];
BEGIN
    IF p_alert_id IS NULL THEN
        RAISE EXCEPTION 'alert_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_actor IS NULL OR btrim(p_actor) = '' THEN
        RAISE EXCEPTION 'actor must name who handled the alert' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'The audit trail records every change with its actor.';
    END IF;
    IF NOT p_assign AND (p_to_status IS NULL OR churn.alert_legal_moves(p_to_status) IS NULL) THEN
        RAISE EXCEPTION 'unknown alert status %', coalesce(quote_literal(p_to_status), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Statuses are open, contacted, retained, churned and dismissed.';
    END IF;
    SELECT * INTO cur FROM churn.alert a WHERE a.alert_id = p_alert_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', p_alert_id USING ERRCODE = 'no_data_found';
    END IF;
    legal := churn.alert_legal_moves(cur.status);
    IF p_assign THEN
        IF cardinality(legal) = 0 THEN
            RAISE EXCEPTION 'alert % is % and can no longer be assigned', p_alert_id, cur.status
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'Closed alerts (retained, churned, dismissed) are final.';
        END IF;
        p_to_status := cur.status;
    ELSIF cardinality(legal) = 0 THEN
        RAISE EXCEPTION 'alert % cannot move from % to %', p_alert_id, cur.status, p_to_status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('%s is a closed status; closed alerts are final.', cur.status),
                  HINT = 'A new warning for the customer raises a new alert.';
    ELSIF NOT (p_to_status = ANY (legal)) THEN
        RAISE EXCEPTION 'alert % cannot move from % to %', p_alert_id, cur.status, p_to_status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = CASE WHEN p_to_status = 'retained'
                                THEN 'A customer is contacted before they can be recorded as retained.'
                                WHEN p_to_status = 'open'
                                THEN 'Only an escalation to a more urgent code reopens an alert.'
                                ELSE format('The alert is already %s.', cur.status) END,
                  HINT = format('From %s an alert can move to: %s.', cur.status, array_to_string(legal, ', '));
    END IF;
    PERFORM churn.alert_check_time(p_at, cur.last_changed_at);

    IF p_assign THEN
        UPDATE churn.alert a SET assigned_to = p_assignee, last_changed_at = p_at
        WHERE a.alert_id = p_alert_id RETURNING * INTO cur;
        INSERT INTO churn.alert_event (alert_id, at, event, from_status, to_status, from_code, to_code, actor, note)
        VALUES (p_alert_id, p_at, 'assigned', cur.status, cur.status, cur.code, cur.code, p_actor,
                concat_ws(': ', 'assigned to ' || coalesce(p_assignee, 'nobody'), p_note));
    ELSE
        INSERT INTO churn.alert_event (alert_id, at, event, from_status, to_status, from_code, to_code, actor, note)
        VALUES (p_alert_id, p_at, 'moved', cur.status, p_to_status, cur.code, cur.code, p_actor, p_note);
        UPDATE churn.alert a
        SET status = p_to_status,
            contacted_at = CASE WHEN p_to_status = 'contacted' THEN p_at ELSE a.contacted_at END,
            closed_at = CASE WHEN p_to_status IN ('retained', 'churned', 'dismissed') THEN p_at END,
            last_changed_at = p_at
        WHERE a.alert_id = p_alert_id RETURNING * INTO cur;
    END IF;
    RETURN cur;
END
$$;

CREATE FUNCTION churn.alert_move(alert_id bigint, to_status text, actor text, note text DEFAULT NULL,
                                 at timestamptz DEFAULT now()) RETURNS churn.alert
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.alert_transition($1, $2, $3, $4, $5, false, NULL)
$$;
COMMENT ON FUNCTION churn.alert_move(bigint, text, text, text, timestamptz) IS
    'move an alert to another status (open -> contacted/dismissed/churned, contacted -> retained/churned/dismissed), recording actor and note; returns the changed alert';

CREATE FUNCTION churn.alert_contact(alert_id bigint, actor text, note text DEFAULT NULL,
                                    at timestamptz DEFAULT now()) RETURNS churn.alert
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.alert_transition($1, 'contacted', $2, $3, $4, false, NULL)
$$;
COMMENT ON FUNCTION churn.alert_contact(bigint, text, text, timestamptz) IS
    'record that an open alert''s customer was contacted; returns the changed alert';

CREATE FUNCTION churn.alert_close(alert_id bigint, outcome text, actor text, note text DEFAULT NULL,
                                  at timestamptz DEFAULT now()) RETURNS churn.alert
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF outcome IS NULL OR outcome NOT IN ('retained', 'churned', 'dismissed') THEN
        RAISE EXCEPTION 'unknown alert outcome %', coalesce(quote_literal(outcome), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Outcomes are retained, churned and dismissed.';
    END IF;
    RETURN churn.alert_transition($1, $2, $3, $4, $5, false, NULL);
END
$$;
COMMENT ON FUNCTION churn.alert_close(bigint, text, text, text, timestamptz) IS
    'close an alert with an outcome: retained (after contact), churned or dismissed; returns the changed alert';

CREATE FUNCTION churn.alert_assign(alert_id bigint, assignee text, actor text, note text DEFAULT NULL,
                                   at timestamptz DEFAULT now()) RETURNS churn.alert
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.alert_transition($1, NULL, $3, $4, $5, true, $2)
$$;
COMMENT ON FUNCTION churn.alert_assign(bigint, text, text, text, timestamptz) IS
    'assign an open or contacted alert to someone (NULL: unassign); returns the changed alert';

-- Only roles granted EXECUTE may change alerts or the playbook.
REVOKE EXECUTE ON FUNCTION
    churn.alert_open_or_escalate(text, text, text, int, text, float8, float8, text[], text, timestamptz),
    churn.alert_transition(bigint, text, text, text, timestamptz, boolean, text),
    churn.raise_alert(text, churn.tier, float8, float8, text[], text, timestamptz),
    churn.raise_alert(text, text, float8, float8, text[], text, timestamptz),
    churn.alert_move(bigint, text, text, text, timestamptz),
    churn.alert_contact(bigint, text, text, timestamptz),
    churn.alert_close(bigint, text, text, text, timestamptz),
    churn.alert_assign(bigint, text, text, text, timestamptz),
    churn.playbook_set(text, text, text, int, text),
    churn.playbook_reset(text),
    churn.alert_check_time(timestamptz, timestamptz)
    FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Views for BI tools.

CREATE VIEW churn.open_alerts AS
SELECT a.alert_id::bigint AS alert_id, a.pipeline::text AS pipeline, a.customer_id::text AS customer_id,
       a.status::text AS status, a.zone::text AS zone, a.level::int AS level, a.code::text AS code,
       churn.alert_urgency(a.code)::int AS urgency, a.value_segment::text AS value_segment,
       a.p_churn::float8 AS p_churn, a.annual_value::float8 AS annual_value, a.drivers::text[] AS drivers,
       a.action::text AS action, a.channel::text AS channel, a.sla_hours::int AS sla_hours,
       a.assigned_to::text AS assigned_to, a.escalations::int AS escalations,
       a.opened_at::timestamptz AS opened_at, a.due_at::timestamptz AS due_at,
       a.contacted_at::timestamptz AS contacted_at,
       (CASE WHEN a.status = 'open' THEN extract(epoch FROM a.due_at - now()) / 3600 END)::float8 AS hours_left,
       (a.status = 'open' AND a.due_at < now())::boolean AS overdue
FROM churn.alert a
WHERE a.status IN ('open', 'contacted')
ORDER BY churn.alert_urgency(a.code) DESC, a.due_at, a.alert_id;
COMMENT ON VIEW churn.open_alerts IS
    'active alerts (open and contacted), most urgent first: red before yellow before blue, level 1 first, then the earliest deadline';
COMMENT ON COLUMN churn.open_alerts.alert_id IS 'alert number (churn.alert.alert_id)';
COMMENT ON COLUMN churn.open_alerts.pipeline IS 'pipeline that raised the alert; NULL when raised by hand';
COMMENT ON COLUMN churn.open_alerts.customer_id IS 'customer identifier, as text';
COMMENT ON COLUMN churn.open_alerts.status IS 'open (to be contacted) or contacted (waiting for the outcome)';
COMMENT ON COLUMN churn.open_alerts.zone IS 'red, yellow or blue';
COMMENT ON COLUMN churn.open_alerts.level IS 'level inside the zone, 1 = most urgent';
COMMENT ON COLUMN churn.open_alerts.code IS 'tier code R1..B2';
COMMENT ON COLUMN churn.open_alerts.urgency IS 'R1 = 9 (most urgent) .. B2 = 1, for sorting';
COMMENT ON COLUMN churn.open_alerts.value_segment IS 'value segment (high, medium, low); NULL when raised from a bare code';
COMMENT ON COLUMN churn.open_alerts.p_churn IS 'churn probability when raised or last escalated';
COMMENT ON COLUMN churn.open_alerts.annual_value IS 'annual value (currency-neutral); NULL when unknown';
COMMENT ON COLUMN churn.open_alerts.drivers IS 'top drivers of the risk, most important first';
COMMENT ON COLUMN churn.open_alerts.action IS 'playbook action';
COMMENT ON COLUMN churn.open_alerts.channel IS 'playbook channel';
COMMENT ON COLUMN churn.open_alerts.sla_hours IS 'hours allowed from raising (or escalating) to first contact';
COMMENT ON COLUMN churn.open_alerts.assigned_to IS 'who handles it; NULL when unassigned';
COMMENT ON COLUMN churn.open_alerts.escalations IS 'how often it was escalated to a more urgent code';
COMMENT ON COLUMN churn.open_alerts.opened_at IS 'when it was raised';
COMMENT ON COLUMN churn.open_alerts.due_at IS 'contact deadline';
COMMENT ON COLUMN churn.open_alerts.contacted_at IS 'when the customer was contacted; NULL while open';
COMMENT ON COLUMN churn.open_alerts.hours_left IS 'hours until due_at (negative when overdue); NULL once contacted';
COMMENT ON COLUMN churn.open_alerts.overdue IS 'true when still open after due_at';

CREATE VIEW churn.overdue_alerts AS
SELECT a.alert_id::bigint AS alert_id, a.pipeline::text AS pipeline, a.customer_id::text AS customer_id,
       a.zone::text AS zone, a.level::int AS level, a.code::text AS code,
       churn.alert_urgency(a.code)::int AS urgency,
       a.action::text AS action, a.channel::text AS channel, a.sla_hours::int AS sla_hours,
       a.assigned_to::text AS assigned_to, a.escalations::int AS escalations,
       a.opened_at::timestamptz AS opened_at, a.due_at::timestamptz AS due_at,
       (extract(epoch FROM now() - a.due_at) / 3600)::float8 AS hours_overdue
FROM churn.alert a
WHERE a.status = 'open' AND a.due_at < now()
ORDER BY churn.alert_urgency(a.code) DESC, a.due_at, a.alert_id;
COMMENT ON VIEW churn.overdue_alerts IS
    'open alerts past their contact deadline (not contacted within the SLA), most urgent first';
COMMENT ON COLUMN churn.overdue_alerts.alert_id IS 'alert number (churn.alert.alert_id)';
COMMENT ON COLUMN churn.overdue_alerts.pipeline IS 'pipeline that raised the alert; NULL when raised by hand';
COMMENT ON COLUMN churn.overdue_alerts.customer_id IS 'customer identifier, as text';
COMMENT ON COLUMN churn.overdue_alerts.zone IS 'red, yellow or blue';
COMMENT ON COLUMN churn.overdue_alerts.level IS 'level inside the zone, 1 = most urgent';
COMMENT ON COLUMN churn.overdue_alerts.code IS 'tier code R1..B2';
COMMENT ON COLUMN churn.overdue_alerts.urgency IS 'R1 = 9 (most urgent) .. B2 = 1, for sorting';
COMMENT ON COLUMN churn.overdue_alerts.action IS 'playbook action';
COMMENT ON COLUMN churn.overdue_alerts.channel IS 'playbook channel';
COMMENT ON COLUMN churn.overdue_alerts.sla_hours IS 'hours allowed from raising (or escalating) to first contact';
COMMENT ON COLUMN churn.overdue_alerts.assigned_to IS 'who handles it; NULL when unassigned';
COMMENT ON COLUMN churn.overdue_alerts.escalations IS 'how often it was escalated to a more urgent code';
COMMENT ON COLUMN churn.overdue_alerts.opened_at IS 'when it was raised';
COMMENT ON COLUMN churn.overdue_alerts.due_at IS 'contact deadline that passed';
COMMENT ON COLUMN churn.overdue_alerts.hours_overdue IS 'hours since due_at (> 0)';

-- Outcomes by tier and action: one row per code of the playbook in force
-- (so every code appears, with zero alerts) plus one per (code, action) that
-- alerts were raised with under an earlier playbook.
CREATE VIEW churn.alert_outcomes AS
WITH a AS (
    SELECT a.*,
           extract(epoch FROM a.contacted_at - (a.due_at - make_interval(hours => a.sla_hours))) / 3600
               AS hours_to_contact,
           (a.contacted_at IS NOT NULL OR a.due_at <= coalesce(a.closed_at, now())) AS sla_decided
    FROM churn.alert a
), k AS (
    SELECT p.zone, p.level, p.code, p.action FROM churn.playbook_effective p
    UNION
    SELECT a.zone, a.level, a.code, a.action FROM churn.alert a
)
SELECT k.zone::text AS zone, k.level::int AS level, k.code::text AS code,
       churn.alert_urgency(k.code)::int AS urgency, k.action::text AS action,
       count(a.alert_id)::bigint AS alerts,
       count(a.alert_id) FILTER (WHERE a.status = 'open')::bigint AS open,
       count(a.alert_id) FILTER (WHERE a.status = 'contacted')::bigint AS contacted,
       count(a.alert_id) FILTER (WHERE a.status IN ('retained', 'churned', 'dismissed'))::bigint AS closed,
       count(a.alert_id) FILTER (WHERE a.status = 'retained')::bigint AS retained,
       count(a.alert_id) FILTER (WHERE a.status = 'churned')::bigint AS churned,
       count(a.alert_id) FILTER (WHERE a.status = 'dismissed')::bigint AS dismissed,
       (count(a.alert_id) FILTER (WHERE a.status = 'retained')::float8
        / nullif(count(a.alert_id) FILTER (WHERE a.status IN ('retained', 'churned')), 0))::float8 AS retention_rate,
       count(a.contacted_at)::bigint AS ever_contacted,
       (percentile_cont(0.5) WITHIN GROUP (ORDER BY a.hours_to_contact))::float8 AS median_hours_to_contact,
       avg(a.hours_to_contact)::float8 AS avg_hours_to_contact,
       (count(a.alert_id) FILTER (WHERE a.contacted_at <= a.due_at)::float8
        / nullif(count(a.alert_id) FILTER (WHERE a.sla_decided), 0))::float8 AS contacted_within_sla
FROM k
LEFT JOIN a ON a.code = k.code AND a.action = k.action
GROUP BY k.zone, k.level, k.code, k.action
ORDER BY churn.alert_urgency(k.code) DESC, k.action;
COMMENT ON VIEW churn.alert_outcomes IS
    'alert outcomes by zone, level, code and playbook action, over all pipelines: counts by status, retention rate, time to first contact and the share contacted within the SLA; every code of the playbook in force appears, also with no alerts';
COMMENT ON COLUMN churn.alert_outcomes.zone IS 'red, yellow or blue';
COMMENT ON COLUMN churn.alert_outcomes.level IS 'level inside the zone, 1 = most urgent';
COMMENT ON COLUMN churn.alert_outcomes.code IS 'tier code R1..B2 (an escalated alert counts under its last code)';
COMMENT ON COLUMN churn.alert_outcomes.urgency IS 'R1 = 9 (most urgent) .. B2 = 1, for sorting';
COMMENT ON COLUMN churn.alert_outcomes.action IS 'playbook action the alerts carried';
COMMENT ON COLUMN churn.alert_outcomes.alerts IS 'alerts raised (any status)';
COMMENT ON COLUMN churn.alert_outcomes.open IS 'alerts still open (not contacted)';
COMMENT ON COLUMN churn.alert_outcomes.contacted IS 'alerts contacted and waiting for the outcome';
COMMENT ON COLUMN churn.alert_outcomes.closed IS 'alerts closed: retained + churned + dismissed';
COMMENT ON COLUMN churn.alert_outcomes.retained IS 'alerts closed as retained';
COMMENT ON COLUMN churn.alert_outcomes.churned IS 'alerts closed as churned';
COMMENT ON COLUMN churn.alert_outcomes.dismissed IS 'alerts closed as dismissed (not counted in the retention rate)';
COMMENT ON COLUMN churn.alert_outcomes.retention_rate IS 'retained / (retained + churned), 0..1; NULL while neither';
COMMENT ON COLUMN churn.alert_outcomes.ever_contacted IS 'alerts with a contact for their current code (contacted or closed after contact)';
COMMENT ON COLUMN churn.alert_outcomes.median_hours_to_contact IS 'median hours from raising (or the last escalation) to contact, over contacted alerts; NULL when none';
COMMENT ON COLUMN churn.alert_outcomes.avg_hours_to_contact IS 'mean hours from raising (or the last escalation) to contact, over contacted alerts; NULL when none';
COMMENT ON COLUMN churn.alert_outcomes.contacted_within_sla IS 'share, 0..1, of alerts contacted by due_at among those whose SLA is decided (contacted, or still uncontacted when due_at passed); NULL when none is decided';

-- ---------------------------------------------------------------------------
-- The read-only role for BI tools: the views and nothing else.  Roles belong
-- to the cluster, not the extension: it is created once and left in place
-- by DROP EXTENSION.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'churn_reader') THEN
        CREATE ROLE churn_reader NOLOGIN;
    END IF;
END
$$;
COMMENT ON ROLE churn_reader IS
    'reads the churn_warning views (churn.open_alerts, churn.overdue_alerts, churn.alert_outcomes, churn.playbook_effective, churn.tier_codes) and nothing else; grant it to BI logins';
GRANT USAGE ON SCHEMA churn TO churn_reader;
GRANT SELECT ON churn.open_alerts, churn.overdue_alerts, churn.alert_outcomes, churn.playbook_effective,
                churn.tier_codes
    TO churn_reader;

-- ==== sql/install/820_backtest.sql
-- churn_warning install script, part 820: backtests.
--
-- churn.backtest reads a purchase table, goes back to a past date, fits the
-- chosen model on what was known then, scores and tiers every customer, and
-- reports what happened after that date as long-format rows a BI tool can
-- chart.  churn.backtest_scores returns the per-customer rows behind it.
-- Both call churn.backtest_run, which leaves its work in temp tables
-- pg_temp.churn_bt_* (dropped again before the caller returns).

-- Signed log transform of the 19 purchase features, the logistic model's
-- inputs (heavy-tailed counts and amounts become well-scaled).
CREATE FUNCTION churn.backtest_logit_x(f churn.features) RETURNS float8[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT ARRAY(SELECT sign(u.e) * ln(1 + abs(u.e))
                 FROM unnest((churn.feature_vector(f, NULL, 0))[1:19]) WITH ORDINALITY u(e, i)
                 ORDER BY u.i)
$$;
COMMENT ON FUNCTION churn.backtest_logit_x(churn.features) IS
    'backtest internal: sign(v) * ln(1 + |v|) of the 19 purchase features of churn.feature_vector (NULL filled with 0)';

-- Standardise a vector with per-element means and standard deviations
-- (an element whose standard deviation is 0 becomes 0).
CREATE FUNCTION churn.backtest_zscore(v float8[], mu float8[], sd float8[]) RETURNS float8[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT ARRAY(SELECT CASE WHEN sd[i] > 0 THEN (v[i] - mu[i]) / sd[i] ELSE 0 END
                 FROM generate_subscripts(v, 1) i ORDER BY i)
$$;
COMMENT ON FUNCTION churn.backtest_zscore(float8[], float8[], float8[]) IS
    'backtest internal: (v - mu) / sd element by element, 0 where sd = 0';

-- Drop the backtest's temp tables that exist (quietly: no pg_temp schema
-- may exist yet).
CREATE FUNCTION churn.backtest_drop() RETURNS void
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['churn_bt_hist', 'churn_bt_feat', 'churn_bt_fit', 'churn_bt_score', 'churn_bt_train',
                                'churn_bt_rule'] LOOP
        IF to_regclass('pg_temp.' || t) IS NOT NULL THEN
            EXECUTE format('DROP TABLE pg_temp.%I', t);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION churn.backtest_drop() IS
    'backtest internal: drops the temp tables pg_temp.churn_bt_* of this session';

-- The work of a backtest: validate, read the source, fit at every scoring
-- date on what was known then, score and tier.  Leaves
-- pg_temp.churn_bt_score (one row per customer and scoring date) and
-- pg_temp.churn_bt_fit (one row per scoring date) for the caller.
CREATE FUNCTION churn.backtest_run(source regclass, as_of date, horizon_days int, model text,
                                   customer_col name, ts_col name, amount_col name, policy text,
                                   window_days int, lookback int, value_basis text, observed_until date)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    kind       text;
    reg        churn.model;
    col        name;
    typ        oid;
    ts_type    oid;
    cat        "char";
    ts_expr    text;
    first_day  date;
    last_day   date;
    obs        date;
    dates      date[];
    d          date;
    bg         churn.bgnbd;
    gg         churn.gg;
    lg         churn.logit;
    mu         float8[];
    sd         float8[];
    tr_date    date;
    tr_h       int;
    tr_rows    bigint;
    tr_rate    float8;
    value_ok   boolean;
    fname      text;
    vec_fill   float8;
    rs         text;
    i          int;
BEGIN
    -- arguments
    IF source IS NULL OR as_of IS NULL OR horizon_days IS NULL OR model IS NULL OR customer_col IS NULL
       OR ts_col IS NULL OR amount_col IS NULL OR policy IS NULL OR window_days IS NULL OR lookback IS NULL
       OR value_basis IS NULL THEN
        RAISE EXCEPTION 'backtest arguments must not be NULL (only observed_until may be)'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite date' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF horizon_days <= 0 THEN
        RAISE EXCEPTION 'horizon_days must be positive, got %', horizon_days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF window_days < 1 OR window_days > 36525 THEN
        RAISE EXCEPTION 'window_days must be between 1 and 36525, got %', window_days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF lookback < 0 OR lookback > 120 THEN
        RAISE EXCEPTION 'lookback must be between 0 and 120, got %', lookback
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'lookback is the number of earlier scoring dates, 30 days apart, used for the lead time.';
    END IF;
    IF value_basis NOT IN ('predicted', 'trailing') THEN
        RAISE EXCEPTION 'value_basis must be ''predicted'' or ''trailing'', got "%"', value_basis
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF observed_until IS NOT NULL AND NOT isfinite(observed_until) THEN
        RAISE EXCEPTION 'observed_until must be a finite date' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- the model: a built-in name, else a registered model
    IF model IN ('rules', 'bgnbd', 'logit') THEN
        kind := model;
    ELSE
        SELECT * INTO reg FROM churn.model mo WHERE mo.name = backtest_run.model;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown model "%"', model
                USING ERRCODE = 'undefined_object',
                      HINT = 'Use rules, bgnbd, logit or the name of a model registered in churn.model.';
        END IF;
        kind := 'registered';
        IF reg.kind IN ('logit', 'xgb') THEN
            FOREACH fname IN ARRAY reg.feature_names LOOP
                IF array_position(churn.feature_names(), fname) IS NULL THEN
                    RAISE EXCEPTION 'model "%" uses the feature "%", which a backtest cannot compute', model, fname
                        USING ERRCODE = 'feature_not_supported',
                              HINT = 'A backtest computes the features of churn.feature_names() from purchases.';
                END IF;
            END LOOP;
        END IF;
        vec_fill := CASE WHEN reg.kind = 'logit' THEN 0 END;
    END IF;

    -- the source: columns exist, have usable types, and the caller may read them
    FOR i IN 1 .. 3 LOOP
        col := (ARRAY[customer_col, ts_col, amount_col])[i];
        SELECT a.atttypid INTO typ FROM pg_attribute a
        WHERE a.attrelid = source AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" does not exist in %', col, source
                USING ERRCODE = 'undefined_column',
                      HINT = 'Name the columns with customer_col, ts_col and amount_col.';
        END IF;
        IF NOT has_column_privilege(source::oid, col::text, 'SELECT') THEN
            RAISE EXCEPTION 'permission denied to read column "%" of %', col, source
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'A backtest runs with the caller''s rights; GRANT SELECT on the source.';
        END IF;
        IF i = 2 THEN
            ts_type := typ;
            IF typ NOT IN ('date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype) THEN
                RAISE EXCEPTION 'column "%" of % has type %, expected date, timestamp or timestamptz',
                    col, source, typ::regtype USING ERRCODE = 'datatype_mismatch';
            END IF;
        ELSIF i = 3 THEN
            SELECT t.typcategory INTO cat FROM pg_type t WHERE t.oid = typ;
            IF cat <> 'N' THEN
                RAISE EXCEPTION 'column "%" of % has type %, expected a number', col, source, typ::regtype
                    USING ERRCODE = 'datatype_mismatch';
            END IF;
        END IF;
    END LOOP;
    -- an unknown tier policy fails here, with churn.warning_tier's own error
    PERFORM churn.warning_tier(0.5, 0, policy);
    ts_expr := CASE WHEN ts_type = 'date'::regtype THEN format('%I', ts_col)
                    ELSE format('%I::timestamptz', ts_col) END;

    -- histories, one per customer
    PERFORM churn.backtest_drop();
    EXECUTE format('CREATE TEMP TABLE churn_bt_hist ON COMMIT DROP AS '
                   'SELECT %1$I::text AS customer_id, churn.history_agg(%2$s, %3$I::float8) AS h '
                   'FROM %4$s WHERE %1$I IS NOT NULL GROUP BY %1$I',
                   customer_col, ts_expr, amount_col, source);
    SELECT min(dd.day), max(dd.day) INTO first_day, last_day
    FROM pg_temp.churn_bt_hist hh, churn.history_days(hh.h) dd WHERE dd.purchases > 0;
    IF first_day IS NULL OR first_day > as_of THEN
        RAISE EXCEPTION 'no purchases on or before % in %', as_of, source
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = CASE WHEN first_day IS NULL THEN 'The source has no purchase rows.'
                              ELSE format('The first purchase is on %s.', first_day) END;
    END IF;
    obs := coalesce(observed_until, last_day);

    -- scoring dates: as_of and lookback earlier dates 30 days apart
    dates := ARRAY(SELECT as_of - 30 * k FROM generate_series(0, lookback) k ORDER BY k);
    CREATE TEMP TABLE churn_bt_feat ON COMMIT DROP AS
    SELECT hh.customer_id, dd.d AS as_of_date, ff AS f, churn.feature_vector(ff) AS fv,
           greatest(0, coalesce((churn.features(hh.h, dd.d, 365)).recent_days
                                * (churn.features(hh.h, dd.d, 365)).recent_avg_spend, 0)) AS spend_365,
           CASE WHEN dd.d + horizon_days <= obs THEN churn.churned(hh.h, dd.d, horizon_days) END AS churned
    FROM pg_temp.churn_bt_hist hh
    CROSS JOIN unnest(dates) dd(d)
    CROSS JOIN LATERAL churn.features(hh.h, dd.d, window_days) ff
    WHERE ff.first_purchase IS NOT NULL;

    CREATE TEMP TABLE churn_bt_fit (as_of_date date, bg churn.bgnbd, gg churn.gg,
                                    lg churn.logit, mu float8[], sd float8[], train_as_of date,
                                    train_horizon int, train_rows bigint, train_rate float8,
                                    value_ok boolean) ON COMMIT DROP;

    FOREACH d IN ARRAY dates LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_temp.churn_bt_feat WHERE as_of_date = d);
        bg := NULL; gg := NULL; lg := NULL; mu := NULL; sd := NULL;
        tr_date := NULL; tr_h := NULL; tr_rows := NULL; tr_rate := NULL; value_ok := false;

        -- BG/NBD (weeks): the model 'bgnbd', and predicted annual value
        IF kind = 'bgnbd' OR value_basis = 'predicted' THEN
            BEGIN
                bg := (SELECT churn.bgnbd_fit((f).x, (f).t_x / 7, (f).t / 7)
                       FROM pg_temp.churn_bt_feat WHERE as_of_date = d);
            EXCEPTION WHEN OTHERS THEN
                IF kind = 'bgnbd' AND d = as_of THEN
                    RAISE EXCEPTION 'backtest: BG/NBD cannot be fitted at %: %', d, SQLERRM
                        USING ERRCODE = SQLSTATE;
                END IF;
                bg := NULL;
            END;
        END IF;
        IF value_basis = 'predicted' AND (bg).converged THEN
            BEGIN
                gg := (SELECT churn.gg_fit((f).x, (f).repeat_avg_spend)
                              FILTER (WHERE (f).x > 0 AND (f).repeat_avg_spend > 0)
                       FROM pg_temp.churn_bt_feat WHERE as_of_date = d);
            EXCEPTION WHEN OTHERS THEN
                gg := NULL;
            END;
            -- usable only when the fitted population mean spend p·v/(q − 1) is
            -- within a factor 2 of the observed mean repeat spend (a
            -- degenerate fit, q → 1 with p → ∞, is rejected)
            value_ok := coalesce((gg).converged AND (gg).q > 1
                                 AND (SELECT ((gg).p * (gg).v / ((gg).q - 1)) / avg((f).repeat_avg_spend)
                                      FROM pg_temp.churn_bt_feat
                                      WHERE as_of_date = d AND (f).x > 0 AND (f).repeat_avg_spend > 0)
                                     BETWEEN 0.5 AND 2, false);
        END IF;

        IF kind = 'bgnbd' AND bg IS NULL THEN
            CONTINUE;
        END IF;

        -- logistic regression: trained on features at d - h with labels over
        -- (d - h, d], all known at d; h is the horizon, shortened to half the
        -- purchase history before d when the history is shorter than 2 horizons
        IF kind = 'logit' THEN
            tr_h := least(horizon_days, (d - first_day) / 2);
            IF tr_h < 1 THEN
                IF d = as_of THEN
                    RAISE EXCEPTION 'backtest: too little history before % to train the logistic model', d
                        USING ERRCODE = 'invalid_parameter_value',
                              HINT = format('The first purchase is on %s.', first_day);
                END IF;
                CONTINUE;
            END IF;
            tr_date := d - tr_h;
            CREATE TEMP TABLE churn_bt_train ON COMMIT DROP AS
            SELECT churn.backtest_logit_x(ff) AS v, churn.churned(hh.h, tr_date, tr_h) AS y
            FROM pg_temp.churn_bt_hist hh CROSS JOIN LATERAL churn.features(hh.h, tr_date, window_days) ff
            WHERE ff.first_purchase IS NOT NULL;
            SELECT array_agg(s.m ORDER BY s.i), array_agg(s.s ORDER BY s.i) INTO mu, sd
            FROM (SELECT u.i, avg(u.e) AS m, stddev_pop(u.e) AS s
                  FROM pg_temp.churn_bt_train t, unnest(t.v) WITH ORDINALITY u(e, i) GROUP BY u.i) s;
            SELECT count(*), avg(y::int) INTO tr_rows, tr_rate FROM pg_temp.churn_bt_train;
            BEGIN
                lg := (SELECT churn.logit_fit(t.y, churn.backtest_zscore(t.v, mu, sd), 1.0)
                       FROM pg_temp.churn_bt_train t);
                IF lg IS NULL THEN
                    RAISE EXCEPTION 'no training rows' USING ERRCODE = 'data_exception';
                END IF;
            EXCEPTION WHEN OTHERS THEN
                IF d = as_of THEN
                    RAISE EXCEPTION 'backtest: the logistic model cannot be trained at % (horizon % days): %',
                        tr_date, tr_h, SQLERRM USING ERRCODE = SQLSTATE;
                END IF;
                DROP TABLE pg_temp.churn_bt_train;
                CONTINUE;
            END;
            DROP TABLE pg_temp.churn_bt_train;
        END IF;

        INSERT INTO pg_temp.churn_bt_fit
        VALUES (d, bg, gg, lg, mu, sd, tr_date, tr_h, tr_rows, tr_rate, value_ok);
    END LOOP;

    -- the rule model, set-based (the same noisy-OR as churn.rule_score, whose
    -- per-row SQL function calls would dominate the run time)
    IF kind = 'rules' OR reg.kind = 'rules' THEN
        rs := CASE WHEN kind = 'rules' THEN 'default' ELSE reg.ruleset END;
        IF NOT EXISTS (SELECT 1 FROM churn.rules r WHERE r.ruleset = rs) THEN
            RAISE EXCEPTION 'ruleset "%" does not exist', rs USING ERRCODE = 'undefined_object';
        END IF;
        CREATE TEMP TABLE churn_bt_rule ON COMMIT DROP AS
        SELECT f.customer_id, f.as_of_date,
               1 - coalesce(exp(sum(ln(greatest(1 - r.weight, 1e-300))) FILTER (WHERE r.rule IS NOT NULL)), 1) AS p
        FROM pg_temp.churn_bt_feat f
        LEFT JOIN churn.rules r
          ON r.ruleset = rs
         AND CASE r.op WHEN '<' THEN f.fv[array_position(churn.feature_names(), r.feature)] < r.threshold
                       WHEN '<=' THEN f.fv[array_position(churn.feature_names(), r.feature)] <= r.threshold
                       WHEN '>' THEN f.fv[array_position(churn.feature_names(), r.feature)] > r.threshold
                       WHEN '>=' THEN f.fv[array_position(churn.feature_names(), r.feature)] >= r.threshold
                       WHEN '=' THEN f.fv[array_position(churn.feature_names(), r.feature)] = r.threshold
                       ELSE f.fv[array_position(churn.feature_names(), r.feature)] <> r.threshold END
        GROUP BY f.customer_id, f.as_of_date;
    ELSE
        CREATE TEMP TABLE churn_bt_rule (customer_id text, as_of_date date, p float8) ON COMMIT DROP;
    END IF;

    -- scores and tiers
    CREATE TEMP TABLE churn_bt_score ON COMMIT DROP AS
    WITH s AS MATERIALIZED (
        SELECT f.customer_id, f.as_of_date, (f.f).last_purchase AS last_purchase, f.churned,
               CASE WHEN kind = 'rules' OR reg.kind = 'rules' THEN ru.p
                    WHEN kind = 'bgnbd'
                    THEN churn.bgnbd_p_churn(m.bg, horizon_days / 7.0, (f.f).x, (f.f).t_x / 7, (f.f).t / 7)
                    WHEN kind = 'logit'
                    THEN churn.logit_predict(m.lg, churn.backtest_zscore(churn.backtest_logit_x(f.f), m.mu, m.sd))
                    WHEN reg.kind = 'bgnbd'
                    THEN churn.bgnbd_p_churn(reg.bgnbd, horizon_days / reg.time_unit_days, (f.f).x,
                                             (f.f).t_x / reg.time_unit_days, (f.f).t / reg.time_unit_days)
                    WHEN reg.kind = 'pnbd'
                    THEN churn.pnbd_p_churn(reg.pnbd, horizon_days / reg.time_unit_days, (f.f).x,
                                            (f.f).t_x / reg.time_unit_days, (f.f).t / reg.time_unit_days)
                    ELSE (SELECT CASE reg.kind WHEN 'logit' THEN churn.logit_predict(reg.logit, x.x)
                                               ELSE churn.xgb_predict(reg.xgb, x.x) END
                          FROM (SELECT ARRAY(SELECT coalesce(f.fv[array_position(churn.feature_names(), fn.n)],
                                                             vec_fill)
                                             FROM unnest(reg.feature_names) WITH ORDINALITY fn(n, i)
                                             ORDER BY fn.i) AS x) x)
               END AS p_churn,
               CASE WHEN v.pv >= 0 AND v.pv < 'Infinity' THEN v.pv ELSE f.spend_365 END AS annual_value,
               CASE WHEN v.pv >= 0 AND v.pv < 'Infinity' THEN 'predicted' ELSE 'trailing_365d' END AS value_source
        FROM pg_temp.churn_bt_feat f
        JOIN pg_temp.churn_bt_fit m USING (as_of_date)
        LEFT JOIN pg_temp.churn_bt_rule ru ON ru.customer_id = f.customer_id AND ru.as_of_date = f.as_of_date
        -- predicted annual value: BG/NBD expected purchases in the next 365
        -- days times Gamma-Gamma expected spend (the population mean for
        -- customers without a positive repeat spend); NULL when unusable
        CROSS JOIN LATERAL (SELECT CASE WHEN m.value_ok THEN greatest(0,
                   churn.bgnbd_expected(m.bg, 365 / 7.0, (f.f).x, (f.f).t_x / 7, (f.f).t / 7)
                   * churn.gg_expected_spend(m.gg, CASE WHEN (f.f).repeat_avg_spend > 0 THEN (f.f).x ELSE 0 END,
                                             coalesce((f.f).repeat_avg_spend, 0))) END AS pv) v)
    SELECT s.customer_id, s.as_of_date, s.p_churn, s.annual_value, s.value_source,
           t.zone, t.level, t.code, t.value_segment, t.lead_days, s.last_purchase, s.churned
    FROM s LEFT JOIN LATERAL churn.warning_tier(s.p_churn, s.annual_value, policy) t ON true;
END
$$;
COMMENT ON FUNCTION churn.backtest_run(regclass, date, int, text, name, name, name, text, int, int, text, date) IS
    'backtest internal: fits and scores into the temp tables pg_temp.churn_bt_fit and pg_temp.churn_bt_score';

-- Per-customer rows of a backtest: score, annual value, tier and outcome
-- at as_of and at the lookback earlier dates.
CREATE FUNCTION churn.backtest_scores(source regclass, as_of date, horizon_days int, model text DEFAULT 'rules',
                                      customer_col name DEFAULT 'customer_id', ts_col name DEFAULT 'ts',
                                      amount_col name DEFAULT 'amount', policy text DEFAULT 'default',
                                      window_days int DEFAULT 90, lookback int DEFAULT 0,
                                      value_basis text DEFAULT 'predicted', observed_until date DEFAULT NULL)
    RETURNS TABLE (customer_id text, as_of_date date, p_churn float8, annual_value float8, value_source text,
                   zone text, level int, code text, value_segment text, lead_days int,
                   last_purchase date, churned boolean)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_column
BEGIN
    PERFORM churn.backtest_run(source, as_of, horizon_days, model, customer_col, ts_col, amount_col, policy,
                               window_days, lookback, value_basis, observed_until);
    RETURN QUERY SELECT s.customer_id, s.as_of_date, s.p_churn, s.annual_value, s.value_source, s.zone, s.level,
                        s.code, s.value_segment, s.lead_days, s.last_purchase, s.churned
                 FROM pg_temp.churn_bt_score s ORDER BY s.as_of_date DESC, s.customer_id;
    PERFORM churn.backtest_drop();
END
$$;
COMMENT ON FUNCTION churn.backtest_scores(regclass, date, int, text, name, name, name, text, int, int, text, date) IS
    'per customer and scoring date: churn probability, annual value, warning tier, last purchase and the churn label';

-- The backtest: fit at a past date, score, tier, and report what happened.
CREATE FUNCTION churn.backtest(source regclass, as_of date, horizon_days int, model text DEFAULT 'rules',
                               customer_col name DEFAULT 'customer_id', ts_col name DEFAULT 'ts',
                               amount_col name DEFAULT 'amount', policy text DEFAULT 'default',
                               window_days int DEFAULT 90, lookback int DEFAULT 6,
                               value_basis text DEFAULT 'predicted', observed_until date DEFAULT NULL)
    RETURNS TABLE (section text, label text, bin int, metric text, value float8, n bigint)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_column
DECLARE
    obs date;
BEGIN
    PERFORM churn.backtest_run(source, as_of, horizon_days, model, customer_col, ts_col, amount_col, policy,
                               window_days, lookback, value_basis, observed_until);
    IF NOT EXISTS (SELECT 1 FROM pg_temp.churn_bt_score s WHERE s.as_of_date = as_of AND s.churned IS NOT NULL) THEN
        SELECT coalesce(observed_until, max(dd.day)) INTO obs
        FROM pg_temp.churn_bt_hist hh, churn.history_days(hh.h) dd WHERE dd.purchases > 0;
        RAISE EXCEPTION 'as_of + horizon_days (%) is after the end of the data (%): no outcome to compare with',
            as_of + horizon_days, obs
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pick an earlier as_of or a shorter horizon, or pass observed_until if the data runs longer than its last purchase.';
    END IF;

    RETURN QUERY
    WITH s AS (SELECT * FROM pg_temp.churn_bt_score s WHERE s.as_of_date = as_of AND s.churned IS NOT NULL
                                                        AND s.p_churn IS NOT NULL),
    tot AS (SELECT count(*) AS n, count(*) FILTER (WHERE churned) AS pos FROM s),
    fit AS (SELECT * FROM pg_temp.churn_bt_fit f WHERE f.as_of_date = as_of),
    zones AS (SELECT z.ord, z.zone, z.members FROM (VALUES (1, 'red', ARRAY['red']), (2, 'yellow', ARRAY['yellow']),
                     (3, 'blue', ARRAY['blue']), (4, 'none', ARRAY['none']),
                     (5, 'red+yellow', ARRAY['red', 'yellow'])) z(ord, zone, members)),
    zstat AS (SELECT z.ord, z.zone, count(s.customer_id) AS k, count(*) FILTER (WHERE s.churned) AS pos,
                     avg(s.p_churn) AS mean_p
              FROM zones z LEFT JOIN s ON s.zone = ANY (z.members) GROUP BY z.ord, z.zone),
    cstat AS (SELECT s.zone, s.level, s.code, count(*) AS k, count(*) FILTER (WHERE s.churned) AS pos
              FROM s GROUP BY 1, 2, 3),
    lift AS (SELECT b.* FROM unnest((SELECT churn.lift(s.p_churn, s.churned, 10) FROM s)) b),
    calib AS (SELECT b.* FROM unnest((SELECT churn.calibration(s.p_churn, s.churned, 10) FROM s)) b),
    -- lead time: for every churner, the first scoring date at which they were red or yellow
    firstw AS (SELECT w.customer_id, min(w.as_of_date) AS first_warning FROM pg_temp.churn_bt_score w
               WHERE w.zone IN ('red', 'yellow') GROUP BY w.customer_id),
    warn AS (SELECT s.customer_id, s.last_purchase, fw.first_warning
             FROM s LEFT JOIN firstw fw ON fw.customer_id = s.customer_id WHERE s.churned),
    lead AS (SELECT w.*, w.last_purchase - w.first_warning AS lead FROM warn w),
    dates AS (SELECT k, as_of - 30 * k AS d FROM generate_series(0, lookback) k),
    r AS (
        SELECT 1 AS ord, 'summary' AS section, model AS label, NULL::int AS bin, 'customers' AS metric,
               tot.n::float8 AS value, tot.n AS n FROM tot
        UNION ALL SELECT 2, 'summary', model, NULL, 'churn_rate', tot.pos::float8 / nullif(tot.n, 0), tot.pos FROM tot
        UNION ALL SELECT 3, 'summary', model, NULL, 'auc', churn.auc(s.p_churn, s.churned), count(*) FROM s
        UNION ALL SELECT 4, 'summary', model, NULL, 'log_loss', churn.log_loss(s.p_churn, s.churned), count(*) FROM s
        UNION ALL SELECT 5, 'summary', model, NULL, 'brier', churn.brier(s.p_churn, s.churned), count(*) FROM s
        UNION ALL SELECT 6, 'summary', model, NULL, 'mean_p', avg(s.p_churn), count(*) FROM s
        UNION ALL SELECT 7, 'summary', model, NULL, 'horizon_days', horizon_days::float8, NULL FROM tot
        UNION ALL
        -- model fits at as_of
        SELECT 10 + v.o, 'fit', v.l, NULL, v.m, v.v, NULL
        FROM fit, LATERAL (VALUES
            (1, 'bgnbd', 'r', (fit.bg).r), (2, 'bgnbd', 'alpha_weeks', (fit.bg).alpha), (3, 'bgnbd', 'a', (fit.bg).a),
            (4, 'bgnbd', 'b', (fit.bg).b), (5, 'bgnbd', 'converged', (fit.bg).converged::int::float8),
            (11, 'gamma_gamma', 'p', (fit.gg).p), (12, 'gamma_gamma', 'q', (fit.gg).q),
            (13, 'gamma_gamma', 'v', (fit.gg).v), (14, 'gamma_gamma', 'converged', (fit.gg).converged::int::float8),
            (15, 'logit', 'train_rows', fit.train_rows::float8), (16, 'logit', 'train_churn_rate', fit.train_rate),
            (17, 'logit', 'train_horizon_days', fit.train_horizon::float8),
            (18, 'logit', 'train_days_before_as_of', (as_of - fit.train_as_of)::float8),
            (19, 'logit', 'iterations', (fit.lg).iterations::float8),
            (20, 'logit', 'converged', (fit.lg).converged::int::float8)) v(o, l, m, v)
        WHERE v.v IS NOT NULL
        UNION ALL
        SELECT 40, 'value', 'annual_value', NULL, 'predicted_share',
               avg((s.value_source = 'predicted')::int), count(*) FILTER (WHERE s.value_source = 'predicted') FROM s
        UNION ALL SELECT 41, 'value', 'annual_value', NULL, 'mean', avg(s.annual_value), count(*) FROM s
        UNION ALL SELECT 42, 'value', 'annual_value', NULL, 'median',
               percentile_cont(0.5) WITHIN GROUP (ORDER BY s.annual_value), count(*) FROM s
        UNION ALL
        -- zones
        SELECT 100 + 10 * zs.ord + v.o, 'zone', zs.zone, NULL, v.m, v.v, v.n
        FROM zstat zs, tot, LATERAL (VALUES
            (1, 'customers', zs.k::float8 / nullif(tot.n, 0), zs.k),
            (2, 'precision', zs.pos::float8 / nullif(zs.k, 0), zs.k),
            (3, 'recall', zs.pos::float8 / nullif(tot.pos, 0), zs.pos),
            (4, 'mean_p', zs.mean_p, zs.k)) v(o, m, v, n)
        UNION ALL
        SELECT 200 + CASE cs.zone WHEN 'red' THEN 1 WHEN 'yellow' THEN 2 WHEN 'blue' THEN 3 ELSE 4 END,
               'code', cs.code, cs.level, v.m, v.v, v.n
        FROM cstat cs, tot, LATERAL (VALUES
            (1, 'customers', cs.k::float8 / nullif(tot.n, 0), cs.k),
            (2, 'precision', cs.pos::float8 / nullif(cs.k, 0), cs.k),
            (3, 'recall', cs.pos::float8 / nullif(tot.pos, 0), cs.pos)) v(o, m, v, n)
        UNION ALL
        SELECT 300, 'lift', NULL, l.bin, v.m, v.v, l.n
        FROM lift l, LATERAL (VALUES (1, 'mean_score', l.mean_score), (2, 'rate', l.rate), (3, 'lift', l.lift),
                                     (4, 'cum_capture', l.cum_capture)) v(o, m, v)
        UNION ALL
        SELECT 400, 'calibration', NULL, c.bin, v.m, v.v, c.n
        FROM calib c, LATERAL (VALUES (1, 'predicted', c.mean_score), (2, 'observed', c.rate)) v(o, m, v)
        UNION ALL
        SELECT 500, 'lead_time', 'red+yellow', NULL, 'churners', count(*)::float8, count(*) FROM lead
        UNION ALL SELECT 501, 'lead_time', 'red+yellow', NULL, 'warned_share',
               avg((lead.first_warning IS NOT NULL)::int), count(lead.first_warning) FROM lead
        UNION ALL SELECT 502, 'lead_time', 'red+yellow', NULL, 'warned_before_last_purchase_share',
               avg((coalesce(lead.lead, 0) > 0)::int), count(*) FILTER (WHERE lead.lead > 0) FROM lead
        UNION ALL SELECT 503, 'lead_time', 'red+yellow', NULL, 'median_days',
               percentile_cont(0.5) WITHIN GROUP (ORDER BY lead.lead), count(lead.lead) FROM lead
        UNION ALL SELECT 504, 'lead_time', 'red+yellow', NULL, 'p25_days',
               percentile_cont(0.25) WITHIN GROUP (ORDER BY lead.lead), count(lead.lead) FROM lead
        UNION ALL SELECT 505, 'lead_time', 'red+yellow', NULL, 'p75_days',
               percentile_cont(0.75) WITHIN GROUP (ORDER BY lead.lead), count(lead.lead) FROM lead
        UNION ALL SELECT 506, 'lead_time', 'red+yellow', NULL, 'mean_days', avg(lead.lead), count(lead.lead) FROM lead
        UNION ALL SELECT 507, 'lead_time', 'red+yellow', NULL, 'scoring_dates',
               count(*)::float8, count(*) FROM pg_temp.churn_bt_fit
        UNION ALL
        SELECT 600, 'first_warning', to_char(dates.d, 'YYYY-MM-DD'), dates.k, 'churners',
               count(lead.customer_id)::float8 / nullif((SELECT count(*) FROM lead), 0), count(lead.customer_id)
        FROM dates LEFT JOIN lead ON lead.first_warning = dates.d GROUP BY dates.k, dates.d
    )
    SELECT r.section, r.label, r.bin, r.metric, r.value, r.n FROM r ORDER BY r.ord, r.bin, r.label, r.metric;

    PERFORM churn.backtest_drop();
END
$$;
COMMENT ON FUNCTION churn.backtest(regclass, date, int, text, name, name, name, text, int, int, text, date) IS
    'fit a churn model at a past date, score and tier every customer, report AUC, log loss, Brier, precision/recall per zone, lift, calibration and lead time as (section, label, bin, metric, value, n) rows';

-- ==== sql/install/990_grants.sql
-- churn_warning install script, part 990: what roles may use.
--
-- Every role may call the pure functions (history, features, models,
-- evaluation). Functions that read configuration (RFM segment schemes,
-- rulesets, tier policies, the playbook, registered models) need SELECT on
-- it: grant the role churn_user to analysts. churn_reader (part 810) reads
-- the BI views and nothing else. Changing configuration and moving alerts
-- need explicit grants.
GRANT USAGE ON SCHEMA churn TO PUBLIC;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'churn_user') THEN
        CREATE ROLE churn_user NOLOGIN;
    END IF;
END
$$;
GRANT SELECT ON churn.rfm_segments, churn.rules, churn.tier_policy, churn.playbook, churn.model
    TO churn_user;
