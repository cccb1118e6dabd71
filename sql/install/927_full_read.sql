-- churn_warning install script, part 927 (0.3.0): a full read that costs
-- what the feature aggregate costs.
--
-- The full read of a source (src/pipeline.c) is the feature aggregate plus
-- the quarantine of part 921.  Profiled on 2M purchases it cost 1.7× the
-- bare aggregate, for three reasons fixed here:
--   - numeric amounts went through amount::float8, numeric's text round
--     trip (a tenth of the read): now they reach history_agg and the check
--     as numeric (history_agg converts them exactly without text);
--   - timezone(zone, ts) parsed the zone's name on every row (another
--     tenth): churn.pipeline_day looks it up once;
--   - the rejected rows were collected with array_agg, whose state the
--     planner sizes at 8 kB a customer, so it planned the read's hash
--     aggregate to spill to disk in 16 batches: churn.pipeline_reject_agg
--     collects them with a state sized for what it is, nothing for almost
--     every customer (SSPACE; without it array_append's state is sized at
--     1 kB, and the read still spilled in 5 batches).

CREATE FUNCTION churn.pipeline_purchase_reject(customer_id text, day date, amount numeric) RETURNS text
    AS 'MODULE_PATHNAME', 'pipeline_purchase_reject_numeric' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.pipeline_purchase_reject(text, date, numeric) IS
    'why a pipeline rejects a purchase row with a numeric amount; NULL for a row it keeps';

CREATE FUNCTION churn.pipeline_day(ts timestamptz, zone text) RETURNS date
    AS 'MODULE_PATHNAME', 'pipeline_day' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.pipeline_day(timestamptz, text) IS
    'pipeline internal: the calendar day of ts in the named zone, equal to (timezone(zone, ts))::date; the zone is looked up once per call site';

CREATE AGGREGATE churn.pipeline_reject_agg(churn.pipeline_reject_row) (
    SFUNC = pg_catalog.array_append, STYPE = churn.pipeline_reject_row[], SSPACE = 8,
    COMBINEFUNC = pg_catalog.array_cat, PARALLEL = SAFE);
COMMENT ON AGGREGATE churn.pipeline_reject_agg(churn.pipeline_reject_row) IS
    'pipeline internal: the rejected rows of a customer as an array (NULL without any)';
