-- churn_warning install script, part 932 (0.3.0): the capture writes in
-- batches.  At commit the capture trigger (src/capture_queue.c) writes one
-- queue row per pipeline and up to 1000 captured rows, holding them in
-- arrays, instead of one queue row per captured row: a fraction of the
-- heap, index and WAL writes on the writer's path.  Rows queued one by one
-- (by 0.2.0, before an update) stay readable.  The refresh reads both
-- through churn.pipeline_queue_take / churn.pipeline_event_queue_take,
-- which take a pipeline's captured rows off the queue, one output row per
-- captured row, as the queue held them in 0.2.0.

ALTER TABLE churn.pipeline_queue
    ADD COLUMN customer_ids text[],
    ADD COLUMN days date[],
    ADD COLUMN amounts float8[],
    ADD COLUMN stores text[];
-- stored out of line uncompressed: compressing a batch cost the writer more
-- than writing it (pglz was 17 % of a 20,000-row INSERT)
ALTER TABLE churn.pipeline_queue
    ALTER COLUMN customer_ids SET STORAGE EXTERNAL,
    ALTER COLUMN days SET STORAGE EXTERNAL,
    ALTER COLUMN amounts SET STORAGE EXTERNAL,
    ALTER COLUMN stores SET STORAGE EXTERNAL;
COMMENT ON COLUMN churn.pipeline_queue.customer_ids IS
    'a batch of captured rows (0.3.0): their customers; days, amounts and stores hold the rest, element by element; NULL for a row queued alone';

ALTER TABLE churn.pipeline_event_queue
    ADD COLUMN customer_ids text[],
    ADD COLUMN days date[],
    ADD COLUMN kinds text[],
    ADD COLUMN ratings float8[];
ALTER TABLE churn.pipeline_event_queue
    ALTER COLUMN customer_ids SET STORAGE EXTERNAL,
    ALTER COLUMN days SET STORAGE EXTERNAL,
    ALTER COLUMN kinds SET STORAGE EXTERNAL,
    ALTER COLUMN ratings SET STORAGE EXTERNAL;
COMMENT ON COLUMN churn.pipeline_event_queue.customer_ids IS
    'a batch of captured events (0.3.0): their customers; days, kinds and ratings hold the rest, element by element; NULL for an event queued alone';

-- A pipeline's captured purchases, taken off the queue (re-read requests
-- stay): one row per captured row, with the id of the transaction that
-- wrote it.
CREATE FUNCTION churn.pipeline_queue_take(p_pipeline_id int)
    RETURNS TABLE (customer_id text, day date, amount float8, xid xid8, store text)
    LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, pg_temp AS
$$
    WITH q AS (
        DELETE FROM churn.pipeline_queue q WHERE q.pipeline_id = p_pipeline_id AND NOT q.rebuild
        RETURNING q.customer_id, q.day, q.amount, q.xid, q.store, q.customer_ids, q.days, q.amounts, q.stores
    )
    SELECT q.customer_id, q.day, q.amount, q.xid, q.store FROM q WHERE q.customer_ids IS NULL
    UNION ALL
    SELECT u.customer_id, u.day, u.amount, q.xid, u.store
    FROM q, ROWS FROM (unnest(q.customer_ids), unnest(q.days), unnest(q.amounts), unnest(q.stores))
            AS u(customer_id, day, amount, store)
    WHERE q.customer_ids IS NOT NULL
$$;
COMMENT ON FUNCTION churn.pipeline_queue_take(int) IS
    'pipeline internal: deletes a pipeline''s captured purchases from churn.pipeline_queue and returns them one row each (batches unnested); re-read requests stay';

-- The same for the captured events.
CREATE FUNCTION churn.pipeline_event_queue_take(p_pipeline_id int)
    RETURNS TABLE (customer_id text, day date, kind text, rating float8, xid xid8)
    LANGUAGE sql VOLATILE STRICT SET search_path = pg_catalog, pg_temp AS
$$
    WITH q AS (
        DELETE FROM churn.pipeline_event_queue q WHERE q.pipeline_id = p_pipeline_id AND NOT q.rebuild
        RETURNING q.customer_id, q.day, q.kind, q.rating, q.xid, q.customer_ids, q.days, q.kinds, q.ratings
    )
    SELECT q.customer_id, q.day, q.kind, q.rating, q.xid FROM q WHERE q.customer_ids IS NULL
    UNION ALL
    SELECT u.customer_id, u.day, u.kind, u.rating, q.xid
    FROM q, ROWS FROM (unnest(q.customer_ids), unnest(q.days), unnest(q.kinds), unnest(q.ratings))
            AS u(customer_id, day, kind, rating)
    WHERE q.customer_ids IS NOT NULL
$$;
COMMENT ON FUNCTION churn.pipeline_event_queue_take(int) IS
    'pipeline internal: deletes a pipeline''s captured events from churn.pipeline_event_queue and returns them one row each (batches unnested); re-read requests stay';

REVOKE EXECUTE ON FUNCTION churn.pipeline_queue_take(int), churn.pipeline_event_queue_take(int) FROM PUBLIC;
