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
