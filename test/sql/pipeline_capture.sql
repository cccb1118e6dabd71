-- The capture trigger keeps what it captures for the transaction and
-- writes it to the queue at commit (0.3.0): rollbacks and rolled-back
-- savepoints leave nothing, released savepoints keep their rows, a large
-- load written early inside a savepoint goes with it, a pipeline dropped in
-- the same transaction leaves no queue rows, and every committed row is
-- queued exactly once.
CREATE SCHEMA test_cap;
SET TimeZone = 'UTC';
CREATE TABLE test_cap.sales (id bigserial PRIMARY KEY, customer_id text, ts timestamptz, amount numeric,
                             store int);
SELECT pipeline, capture FROM churn.create_pipeline('test_cap', 'test_cap.sales', store_col => 'store',
                                                    start_at => '2100-01-01');
CREATE FUNCTION test_cap.queued() RETURNS TABLE (customer_id text, day date, amount float8, store text,
                                                 rebuild boolean)
    LANGUAGE sql AS $$
    SELECT u.customer_id, u.day, u.amount, u.store, q.rebuild
    FROM churn.pipeline_queue q JOIN churn.pipeline p USING (pipeline_id)
    LEFT JOIN LATERAL ROWS FROM (unnest(q.customer_ids), unnest(q.days), unnest(q.amounts), unnest(q.stores))
                      AS u(customer_id, day, amount, store) ON true
    WHERE p.name = 'test_cap' ORDER BY 1, 2, 3 $$;

-- nothing reaches the queue before commit; at commit, the rows of the
-- transaction under its own id (rows without a customer or a time too: the
-- refresh rejects them)
BEGIN;
INSERT INTO test_cap.sales (customer_id, ts, amount, store)
VALUES ('a', '2025-03-01 10:00', 10, 1), ('b', '2025-03-01 23:30', NULL, NULL), (NULL, '2025-03-01', 5, 1),
       ('c', NULL, 5, 1);
SELECT count(*) AS queued_before_commit FROM test_cap.queued();
COMMIT;
SELECT customer_id, day, amount, store, rebuild FROM test_cap.queued();
SELECT count(*) AS queue_rows, sum(cardinality(q.customer_ids)) AS captured_rows,
       bool_and(q.xid::text = s.xmin::text) AS under_the_writers_xid
FROM churn.pipeline_queue q, test_cap.sales s WHERE s.customer_id = 'a';

-- a rolled-back transaction queues nothing
BEGIN;
INSERT INTO test_cap.sales (customer_id, ts, amount) VALUES ('rolled back', now(), 1);
ROLLBACK;
SELECT count(*) AS after_rollback FROM test_cap.queued() WHERE customer_id = 'rolled back';

-- savepoints: a rolled-back one drops its rows (and its inner ones'), a
-- released one hands them to its parent
BEGIN;
INSERT INTO test_cap.sales (customer_id, ts, amount) VALUES ('s0', '2025-03-02', 1);
SAVEPOINT s1;
INSERT INTO test_cap.sales (customer_id, ts, amount) VALUES ('s1', '2025-03-02', 1);
SAVEPOINT s2;
INSERT INTO test_cap.sales (customer_id, ts, amount) VALUES ('s2', '2025-03-02', 1);
RELEASE SAVEPOINT s2;
SAVEPOINT s3;
INSERT INTO test_cap.sales (customer_id, ts, amount) VALUES ('s3 rolled back', '2025-03-02', 1);
SAVEPOINT s4;
INSERT INTO test_cap.sales (customer_id, ts, amount) VALUES ('s4 inside s3', '2025-03-02', 1);
RELEASE SAVEPOINT s4;
ROLLBACK TO SAVEPOINT s3;
INSERT INTO test_cap.sales (customer_id, ts, amount) VALUES ('after s3', '2025-03-02', 1);
RELEASE SAVEPOINT s1;
SAVEPOINT s5;
INSERT INTO test_cap.sales (customer_id, ts, amount) VALUES ('s5 rolled back', '2025-03-02', 1);
ROLLBACK TO SAVEPOINT s5;
COMMIT;
SELECT customer_id FROM test_cap.queued() WHERE day = '2025-03-02';

-- a failed statement inside a PL/pgSQL exception block keeps nothing of it
DO $$
BEGIN
    INSERT INTO test_cap.sales (customer_id, ts, amount) VALUES ('kept', '2025-03-03', 1);
    BEGIN
        INSERT INTO test_cap.sales (customer_id, ts, amount) VALUES ('failed', '2025-03-03', 1);
        INSERT INTO test_cap.sales (id, customer_id, ts, amount) VALUES (1, 'duplicate id', '2025-03-03', 1);
    EXCEPTION WHEN unique_violation THEN
        NULL;
    END;
END $$;
SELECT customer_id FROM test_cap.queued() WHERE day = '2025-03-03';

-- ON CONFLICT DO NOTHING: only the rows inserted are captured
INSERT INTO test_cap.sales (id, customer_id, ts, amount) VALUES (1, 'conflict', '2025-03-04', 1), (1000000, 'new', '2025-03-04', 1)
ON CONFLICT (id) DO NOTHING;
SELECT customer_id FROM test_cap.queued() WHERE day = '2025-03-04';

-- a load larger than what a transaction keeps in memory (100000 rows) is
-- written early under its savepoint: rolled back with it, or kept
BEGIN;
SAVEPOINT big;
INSERT INTO test_cap.sales (customer_id, ts, amount) SELECT 'big ' || i % 1000, '2025-03-05', 1 FROM generate_series(1, 150000) i;
ROLLBACK TO SAVEPOINT big;
INSERT INTO test_cap.sales (customer_id, ts, amount) SELECT 'kept ' || i % 1000, '2025-03-06', 1 FROM generate_series(1, 250000) i;
COMMIT;
SELECT day, count(*) AS rows FROM test_cap.queued() WHERE day IN ('2025-03-05', '2025-03-06') GROUP BY day ORDER BY day;
SELECT count(*) <= 400000 / 1000 + 10 AS written_in_batches FROM churn.pipeline_queue;
SELECT (SELECT count(*) FROM test_cap.sales)
     = (SELECT count(*) FROM test_cap.queued() WHERE NOT rebuild) AS every_row_queued_once;

-- UPDATE, DELETE and TRUNCATE ask for a re-read, at commit
UPDATE test_cap.sales SET amount = 11 WHERE customer_id = 'a';
SELECT count(*) AS rebuild_requests FROM test_cap.queued() WHERE rebuild;

-- a refresh merges the queue (the re-read takes it all)
SELECT status, mode FROM churn.refresh('test_cap');
SELECT count(*) AS left_in_queue FROM test_cap.queued();

-- an incremental refresh merges every captured row of the batches
INSERT INTO test_cap.sales (customer_id, ts, amount, store) SELECT 'n' || i, now(), i, i % 3 FROM generate_series(1, 2500) i;
SELECT count(*) AS queue_rows FROM churn.pipeline_queue;
SELECT status, mode, new_purchase_rows, customers_merged FROM churn.refresh('test_cap');
SELECT count(*) AS customers, sum((stores ->> '0')::int) AS store_0_rows FROM churn.pipeline_customer c
JOIN churn.pipeline p USING (pipeline_id) WHERE p.name = 'test_cap' AND c.customer_id ~ '^n[0-9]+$';

-- the capture reads a changed pipeline again (churn.pipeline_config_changed):
-- without a store column it queues no store (the change drops what was queued:
-- the next refresh reads the whole source)
INSERT INTO test_cap.sales (customer_id, ts, amount, store) VALUES ('with store', '2025-03-07', 1, 7);
SELECT pipeline FROM churn.alter_pipeline('test_cap', store_col => '');
INSERT INTO test_cap.sales (customer_id, ts, amount, store) VALUES ('store dropped', '2025-03-07', 1, 7);
SELECT customer_id, store FROM test_cap.queued() WHERE day = '2025-03-07';

-- a pipeline dropped in the same transaction leaves no queue rows
BEGIN;
INSERT INTO test_cap.sales (customer_id, ts, amount) VALUES ('before drop', now(), 1);
SELECT churn.drop_pipeline('test_cap');
COMMIT;
SELECT count(*) AS orphans FROM churn.pipeline_queue q
WHERE NOT EXISTS (SELECT 1 FROM churn.pipeline p WHERE p.pipeline_id = q.pipeline_id);

DROP SCHEMA test_cap CASCADE;
