-- churn_warning install script, part 921 (0.3.0): rows a refresh cannot use
-- are quarantined, not fatal.
--
-- In 0.2.0 one purchase with amount NaN (or an infinite timestamp) in a
-- source failed every refresh of its pipeline until someone deleted it.
-- Now the refresh splits, in the pass that reads them (part 920: the full
-- reads of src/pipeline.c, the merges of the capture queues), the rows it
-- keeps from those it rejects; rejected rows go to churn.pipeline_reject
-- with their reason, the refresh goes on, and the run records how many it
-- rejected.  A limit per pipeline (churn.set_reject_limit) fails a run that
-- rejects more, for a source that is broken rather than dirty.

-- Why a row is rejected: C (src/quarantine.c), pure.
CREATE FUNCTION churn.pipeline_purchase_reject(customer_id text, day date, amount float8) RETURNS text
    AS 'MODULE_PATHNAME', 'pipeline_purchase_reject' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.pipeline_purchase_reject(text, date, float8) IS
    'why a pipeline rejects a purchase row (customer is NULL, time is NULL, time is infinite, time out of range, amount is NaN, amount is infinite); NULL for a row it keeps';
CREATE FUNCTION churn.pipeline_purchase_reject(customer_id text, ts timestamptz, amount float8) RETURNS text
    AS 'MODULE_PATHNAME', 'pipeline_purchase_reject_tstz' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.pipeline_purchase_reject(text, timestamptz, float8) IS
    'why a pipeline rejects a purchase row with a timestamptz time; NULL for a row it keeps';
CREATE FUNCTION churn.pipeline_event_reject(customer_id text, day date, kind text, rating float8) RETURNS text
    AS 'MODULE_PATHNAME', 'pipeline_event_reject' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.pipeline_event_reject(text, date, text, float8) IS
    'why a pipeline rejects an event row (customer or time NULL, time infinite or out of range, kind NULL or unknown, rating NaN, outside 1-5 or on a kind other than review); NULL for a row it keeps';

-- A rejected row as the full reads return it.
CREATE TYPE churn.pipeline_reject_row AS (day date, amount float8, kind text, rating float8, reason text);
COMMENT ON TYPE churn.pipeline_reject_row IS 'pipeline internal: a row a full read rejected, without its customer';

-- The rejects of every run, kept (and dropped) with the run.
CREATE TABLE churn.pipeline_reject (
    run_id      bigint NOT NULL REFERENCES churn.pipeline_run (run_id) ON DELETE CASCADE,
    pipeline_id int NOT NULL,
    relation    text NOT NULL CHECK (relation IN ('purchases', 'events')),
    customer_id text,
    day         date,
    amount      float8,
    kind        text,
    rating      float8,
    reason      text NOT NULL
);
CREATE INDEX pipeline_reject_run ON churn.pipeline_reject (run_id);
COMMENT ON TABLE churn.pipeline_reject IS
    'pipeline internal: source and event rows a run rejected, with their reason; behind churn.pipeline_rejects, kept by pg_dump, pruned with the runs';
SELECT pg_catalog.pg_extension_config_dump('churn.pipeline_reject', '');

ALTER TABLE churn.pipeline_run ADD COLUMN rejected_rows bigint;
COMMENT ON COLUMN churn.pipeline_run.rejected_rows IS
    'rows of the source and the events relation the run rejected (churn.pipeline_rejects); NULL for runs that did not finish';

ALTER TABLE churn.pipeline
    ADD COLUMN max_rejected_rows bigint CHECK (max_rejected_rows >= 0),
    ADD COLUMN max_rejected_share float8 CHECK (max_rejected_share >= 0 AND max_rejected_share <= 1);
COMMENT ON COLUMN churn.pipeline.max_rejected_rows IS 'a run rejecting more rows fails; NULL: no limit';
COMMENT ON COLUMN churn.pipeline.max_rejected_share IS
    'a run rejecting a larger share of the rows it read fails; NULL: no limit';

-- The whole events relation, split into kept and rejected rows (C,
-- src/pipeline.c); replaces the 0.3.0 development version of part 920.
CREATE FUNCTION churn.pipeline_read_events(pipeline_id int, OUT customer_id text, OUT engagement churn.engagement,
                                           OUT kept bigint, OUT rejects churn.pipeline_reject_row[],
                                           OUT snapshot pg_snapshot)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'pipeline_read_events' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION churn.pipeline_read_events(int) IS
    'pipeline internal: the whole events relation as one engagement per customer, the rows kept and those rejected, read with the owner''s rights; the first row carries the snapshot used';

-- The whole source, split likewise (the 0.2.0 churn.pipeline_read stays
-- for the released install scripts).
CREATE FUNCTION churn.pipeline_read_purchases(pipeline_id int, OUT customer_id text, OUT history churn.history,
                                              OUT stores jsonb, OUT kept bigint,
                                              OUT rejects churn.pipeline_reject_row[], OUT snapshot pg_snapshot)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'pipeline_read_purchases' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION churn.pipeline_read_purchases(int) IS
    'pipeline internal: the whole source as one history and store count per customer, the rows kept and those rejected, read with the owner''s rights; the first row carries the snapshot used';

-- The rows run rejected; an error when they are over the pipeline's limit
-- (n_rows: the rows the run read, rejected ones included; a full read counts
-- them only for a pipeline with max_rejected_share, part 927).
CREATE FUNCTION churn.pipeline_check_rejects(p churn.pipeline, run bigint, n_rows bigint) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    n bigint := (SELECT count(*) FROM churn.pipeline_reject j WHERE j.run_id = run);
BEGIN
    IF n > p.max_rejected_rows OR n > p.max_rejected_share * n_rows THEN
        RAISE EXCEPTION 'pipeline "%" rejected % rows, more than its limit', p.name, n || coalesce(' of ' || n_rows, '')
            USING ERRCODE = 'data_exception',
                  DETAIL = (SELECT format('Limit: %s. Rejected: %s.',
                                          concat_ws(' and ', p.max_rejected_rows || ' rows',
                                                    round(100 * p.max_rejected_share::numeric, 2) || ' % of the rows'),
                                          string_agg(format('%s %s (%s)', g.n, g.relation, g.reason), ', '
                                                     ORDER BY g.n DESC, g.relation, g.reason))
                            FROM (SELECT j.relation, j.reason, count(*) AS n FROM churn.pipeline_reject j
                                  WHERE j.run_id = run GROUP BY 1, 2) g),
                  HINT = 'A source this broken is not refreshed. Fix its rows (churn.pipeline_purchase_reject and churn.pipeline_event_reject name them), or raise the limit with churn.set_reject_limit.';
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION churn.pipeline_check_rejects(churn.pipeline, bigint, bigint) IS
    'refresh: the rows a run rejected; an error when over the pipeline''s max_rejected_rows or max_rejected_share';

-- The limit of a pipeline, as its owner (through churn.pipeline_dispatch).
CREATE FUNCTION churn.pipeline_reject_limit_internal(p_name text, args jsonb, caller oid) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    rows_limit  bigint := (args ->> 'max_rows')::bigint;
    share_limit float8 := (args ->> 'max_share')::float8;
BEGIN
    IF rows_limit < 0 OR share_limit < 0 OR share_limit > 1 OR share_limit = 'NaN' THEN
        RAISE EXCEPTION 'reject limit out of range: max_rows must be at least 0, max_share from 0 to 1'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE churn.pipeline SET max_rejected_rows = rows_limit, max_rejected_share = share_limit WHERE name = p_name;
    RETURN jsonb_build_object('pipeline', p_name, 'max_rows', rows_limit, 'max_share', share_limit);
END
$$;

CREATE FUNCTION churn.set_reject_limit(name text, max_rows bigint DEFAULT NULL, max_share float8 DEFAULT NULL,
                                       OUT pipeline text, OUT max_rejected_rows bigint,
                                       OUT max_rejected_share float8)
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT j ->> 'pipeline', (j ->> 'max_rows')::bigint, (j ->> 'max_share')::float8
    FROM churn.pipeline_dispatch('reject_limit', $1, jsonb_build_object('max_rows', $2, 'max_share', $3)) j
$$;
COMMENT ON FUNCTION churn.set_reject_limit(text, bigint, float8) IS
    'fail a pipeline''s runs that reject more than max_rows rows or a larger share than max_share of the rows they read (NULL: no such limit); owner only';

REVOKE EXECUTE ON FUNCTION churn.pipeline_read_events(int), churn.pipeline_read_purchases(int),
    churn.pipeline_check_rejects(churn.pipeline, bigint, bigint),
    churn.pipeline_reject_limit_internal(text, jsonb, oid) FROM PUBLIC;
