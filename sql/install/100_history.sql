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
