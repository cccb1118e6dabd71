-- churn_warning install script, part 220 (0.3.0): which events
-- churn.engagement_agg accepts, for callers that skip (and count) the
-- others instead of failing on them.

CREATE FUNCTION churn.event_valid(kind text, rating float8) RETURNS boolean
    AS 'MODULE_PATHNAME', 'event_valid' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.event_valid(text, float8) IS
    'true for an event pipelines and backtests keep: a known kind (visit, login, review, complaint, interaction; any case) and no rating, or a rating in [1, 5] on a review';
