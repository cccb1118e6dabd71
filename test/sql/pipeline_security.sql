-- Pipelines and roles: only the owner changes, refreshes or drops a
-- pipeline; the source is read with the owner's rights; quoted names and a
-- hostile search_path change nothing.
CREATE ROLE test_pl_alice;
CREATE ROLE test_pl_bob;
CREATE SCHEMA "test pipeline odd";
CREATE SCHEMA test_pl_evil AUTHORIZATION test_pl_alice;
GRANT USAGE, CREATE ON SCHEMA "test pipeline odd" TO test_pl_alice, test_pl_bob;
SET TimeZone = 'UTC';

SET ROLE test_pl_alice;
CREATE TABLE "test pipeline odd"."Alice's ""Purchases""" ("Customer Id" text, "when" timestamptz, "€ amount" numeric);
INSERT INTO "test pipeline odd"."Alice's ""Purchases"""
SELECT customer_id::text, ts + (current_date - date '2024-12-31') * interval '1 day', amount
FROM churn.demo_purchases(150, 5);

-- a hostile search_path: an = operator and functions that would change or
-- fail every unqualified use
CREATE FUNCTION test_pl_evil.texteq_evil(text, text) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'evil = called'; END $$;
CREATE OPERATOR test_pl_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = test_pl_evil.texteq_evil);
CREATE FUNCTION test_pl_evil.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '1999-01-01'::timestamptz $$;
CREATE FUNCTION test_pl_evil.count(anyelement) RETURNS bigint LANGUAGE sql AS $$ SELECT -1::bigint $$;
SET search_path = test_pl_evil, pg_catalog, "test pipeline odd";

SELECT pipeline, owner, source, capture
FROM churn.create_pipeline('alice''s "shop"', '"test pipeline odd"."Alice''s ""Purchases"""',
                           customer_col => 'Customer Id', ts_col => 'when', amount_col => '€ amount',
                           start_at => '2100-01-01');
SELECT status, mode, customers_total FROM churn.refresh('alice''s "shop"');
INSERT INTO "test pipeline odd"."Alice's ""Purchases""" VALUES ('1', pg_catalog.now(), 10), ('new one', pg_catalog.now(), 20);
SELECT status, mode, new_purchase_rows, customers_merged FROM churn.refresh('alice''s "shop"');
RESET search_path;
SELECT count(*) AS warnings, pg_catalog.min(as_of) = current_date AS as_of_today
FROM churn.current_warnings WHERE pipeline = 'alice''s "shop"';

-- bob may not touch alice's pipeline, nor reach the internals
\set VERBOSITY terse
SET ROLE test_pl_bob;
SELECT churn.refresh('alice''s "shop"');
SELECT churn.alter_pipeline('alice''s "shop"', schedule => '1 second');
SELECT churn.alter_pipeline('alice''s "shop"', owner => 'test_pl_bob');
SELECT churn.pause_pipeline('alice''s "shop"');
SELECT churn.resume_pipeline('alice''s "shop"');
SELECT churn.drop_pipeline('alice''s "shop"');
SELECT churn.pipeline_dispatch('drop', 'alice''s "shop"', NULL);
SELECT churn.pipeline_execute((SELECT 1), NULL);
SELECT * FROM churn.pipeline_read(1);
SELECT churn.pipeline_run_failed(1, '42000', 'x', NULL);
UPDATE churn.pipeline SET schedule = '1 second';
INSERT INTO churn.pipeline_queue (pipeline_id, customer_id, day, amount) VALUES (1, 'x', current_date, 1e6);
SELECT count(*) AS bob_sees FROM churn.current_warnings;
SELECT count(*) AS bob_sees FROM churn.pipeline_status;

-- bob cannot read alice's table through a pipeline of his own
SELECT churn.create_pipeline('bob', '"test pipeline odd"."Alice''s ""Purchases"""',
                             customer_col => 'Customer Id', ts_col => 'when', amount_col => '€ amount');

-- nor inject purchases with the capture trigger on his own table
CREATE TABLE "test pipeline odd".bobs (customer_id text, ts timestamptz, amount numeric);
RESET ROLE;
SELECT format('CREATE TRIGGER inject AFTER INSERT ON "test pipeline odd".bobs REFERENCING NEW TABLE AS churn_new '
              'FOR EACH STATEMENT EXECUTE FUNCTION churn.pipeline_capture(%L)', pipeline_id) AS ddl
FROM churn.pipeline WHERE name = 'alice''s "shop"' \gset
SET ROLE test_pl_bob;
:ddl;
INSERT INTO "test pipeline odd".bobs VALUES ('1', now(), 1e6);
RESET ROLE;
SELECT count(*) AS injected FROM churn.pipeline_queue;
SELECT new_purchase_rows FROM churn.refresh('alice''s "shop"');

-- code in alice's source runs as alice, inside a security-restricted
-- operation: it can neither write the pipeline tables nor create objects
SET ROLE test_pl_alice;
CREATE FUNCTION "test pipeline odd".sneaky() RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN UPDATE churn.pipeline SET schedule = '1 second'; RETURN true; END $$;
CREATE FUNCTION "test pipeline odd".sneaky_temp() RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN CREATE TEMP TABLE IF NOT EXISTS stash (x int); RETURN true; END $$;
CREATE VIEW "test pipeline odd".sneaky_view AS
SELECT * FROM "test pipeline odd"."Alice's ""Purchases""" WHERE "test pipeline odd".sneaky();
CREATE VIEW "test pipeline odd".sneaky_temp_view AS
SELECT * FROM "test pipeline odd"."Alice's ""Purchases""" WHERE "test pipeline odd".sneaky_temp();
SELECT pipeline FROM churn.create_pipeline('sneaky', '"test pipeline odd".sneaky_view', customer_col => 'Customer Id',
                                           ts_col => 'when', amount_col => '€ amount', start_at => '2100-01-01');
SELECT pipeline FROM churn.create_pipeline('sneaky temp', '"test pipeline odd".sneaky_temp_view',
                                           customer_col => 'Customer Id', ts_col => 'when', amount_col => '€ amount',
                                           start_at => '2100-01-01');
SELECT churn.refresh('sneaky');
SELECT churn.refresh('sneaky temp');
SELECT churn.drop_pipeline('sneaky');
SELECT churn.drop_pipeline('sneaky temp');

-- a superuser may refresh alice's pipeline; it still reads as alice
RESET ROLE;
REVOKE SELECT ON "test pipeline odd"."Alice's ""Purchases""" FROM test_pl_alice;
UPDATE "test pipeline odd"."Alice's ""Purchases""" SET "€ amount" = "€ amount" + 1 WHERE "Customer Id" = '1';
SELECT churn.refresh('alice''s "shop"');    -- the update forces a re-read, which alice may no longer do
GRANT SELECT ON "test pipeline odd"."Alice's ""Purchases""" TO test_pl_alice;
SELECT status, mode FROM churn.refresh('alice''s "shop"');

-- the owner role is dropped: refreshes fail with a clear error until a
-- superuser gives the pipeline to another role
REASSIGN OWNED BY test_pl_alice TO test_pl_bob;
DROP OWNED BY test_pl_alice;
DROP ROLE test_pl_alice;
SELECT state, owner ~ '^[0-9]+$' AS owner_is_dangling FROM churn.pipeline_status WHERE pipeline = 'alice''s "shop"';
SELECT churn.refresh('alice''s "shop"');
SELECT pipeline, owner FROM churn.alter_pipeline('alice''s "shop"', owner => 'test_pl_bob');
SET ROLE test_pl_bob;
SELECT status, mode FROM churn.refresh('alice''s "shop"');
SELECT churn.drop_pipeline('alice''s "shop"');
RESET ROLE;
\set VERBOSITY default

DELETE FROM churn.alert_event WHERE alert_id IN (SELECT alert_id FROM churn.alert WHERE pipeline = 'alice''s "shop"');
DELETE FROM churn.alert WHERE pipeline = 'alice''s "shop"';
DROP SCHEMA "test pipeline odd" CASCADE;
DROP SCHEMA test_pl_evil CASCADE;
DROP OWNED BY test_pl_bob;
DROP ROLE test_pl_bob;
