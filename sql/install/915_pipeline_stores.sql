-- churn_warning install script, part 915 (0.3.0): a customer's store.
-- With store_col a pipeline counts each customer's purchase rows per store
-- (the capture trigger queues the store with each purchase; a full read
-- counts them at once); the customer's store is the store of most of their
-- purchase rows (ties: the smallest store text).  It travels with the
-- customer's warning (churn.current_warnings.store) and alerts
-- (churn.alert.store).

ALTER TABLE churn.pipeline ADD COLUMN store_col name;
COMMENT ON COLUMN churn.pipeline.store_col IS 'the source column naming the store of a purchase (any built-in type the customer column may have; compared as text); NULL: no stores';
ALTER TABLE churn.pipeline_queue ADD COLUMN store text;
ALTER TABLE churn.pipeline_customer ADD COLUMN stores jsonb;
COMMENT ON COLUMN churn.pipeline_customer.stores IS 'purchase rows per store: {"store": count, ...}; NULL without store_col';
ALTER TABLE churn.pipeline_warning ADD COLUMN store text;
COMMENT ON COLUMN churn.pipeline_warning.store IS 'the store of most of the customer''s purchase rows; NULL without store_col';
ALTER TABLE churn.alert ADD COLUMN store text;
COMMENT ON COLUMN churn.alert.store IS 'the customer''s store when the alert was raised or escalated; NULL when unknown';
ALTER TYPE churn.pipeline_alert_candidate ADD ATTRIBUTE store text;

-- Purchase rows per store of an array of stores (NULL ones left out).
CREATE FUNCTION churn.store_counts(stores text[]) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT jsonb_object_agg(s, n) FROM (SELECT s, count(*) AS n FROM unnest(stores) s WHERE s IS NOT NULL GROUP BY s) x
$$;
COMMENT ON FUNCTION churn.store_counts(text[]) IS
    'counts per store of an array of store names, as jsonb {"store": count}; NULL stores left out; NULL when none';

-- Two store counts added up.
CREATE FUNCTION churn.store_counts_merge(a jsonb, b jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE
        (SELECT jsonb_object_agg(k, coalesce((a ->> k)::bigint, 0) + coalesce((b ->> k)::bigint, 0))
         FROM (SELECT jsonb_object_keys(a) AS k UNION SELECT jsonb_object_keys(b)) keys) END
$$;
COMMENT ON FUNCTION churn.store_counts_merge(jsonb, jsonb) IS 'the sum of two store counts';

-- The store of most purchase rows (ties: the smallest store text).
CREATE FUNCTION churn.store_of(counts jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT e.key FROM jsonb_each_text(counts) e ORDER BY e.value::bigint DESC, e.key LIMIT 1
$$;
COMMENT ON FUNCTION churn.store_of(jsonb) IS 'the store with the most purchase rows in a store count; ties go to the smallest store text';

CREATE FUNCTION churn.pipeline_check_store_column(source regclass, store_col name) RETURNS void
    AS 'MODULE_PATHNAME', 'pipeline_check_store_column' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION churn.pipeline_check_store_column(regclass, name) IS
    'pipeline internal: an error unless the store column exists and has a type a pipeline reads (as the customer column)';

-- The whole source as one history (and store count) per customer.
DROP FUNCTION churn.pipeline_read(int);
CREATE FUNCTION churn.pipeline_read(pipeline_id int, OUT customer_id text, OUT history churn.history,
                                    OUT stores jsonb, OUT snapshot pg_snapshot)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'pipeline_read' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION churn.pipeline_read(int) IS
    'pipeline internal: the whole source as one history and store count per customer, read with the owner''s rights; the first row carries the snapshot used';
REVOKE EXECUTE ON FUNCTION churn.pipeline_read(int), churn.pipeline_check_store_column(regclass, name) FROM PUBLIC;
