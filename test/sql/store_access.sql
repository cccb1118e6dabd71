-- Per-store access for store staff (parts 985, 986): a pipeline's owner
-- grants a role the stores it serves; its members see those stores' rows in
-- every view with customer data and move those stores' alerts, and nothing
-- else; churn_reader (analysts, BI) keeps seeing everything.
CREATE SCHEMA test_store_access;
SET search_path = test_store_access;
SET TimeZone = 'UTC';
\set VERBOSITY default
\set SHOW_CONTEXT never
CREATE ROLE sa_owner;
CREATE ROLE sa_anna;       -- staff of stores s1 and s2
CREATE ROLE sa_ben;        -- staff of store s3
CREATE ROLE sa_analyst;    -- churn_reader
CREATE ROLE sa_outsider;   -- no grant at all
GRANT churn_store TO sa_anna, sa_ben;
GRANT churn_reader TO sa_analyst;
GRANT USAGE, CREATE ON SCHEMA test_store_access TO sa_owner;
GRANT USAGE ON SCHEMA test_store_access TO PUBLIC;
-- a model that puts every customer in red, so every one gets an alert
SELECT churn.register_model('sa_all', ROW(ARRAY[10, 0]::float8[], NULL, NULL, NULL, NULL, NULL)::churn.logit,
                            ARRAY['x'], 90);

-- sa_owner's chain: 400 customers in stores s1..s4; another pipeline (the
-- superuser's) has a store s1 too, with other customers
SET ROLE sa_owner;
CREATE TABLE test_store_access.sales (customer_id text, ts timestamptz, amount numeric, shop text);
INSERT INTO test_store_access.sales
SELECT 'c' || c, current_date - 20 - 10 * k + interval '12 hours', 25, 's' || (1 + c % 4)
FROM generate_series(1, 400) c, generate_series(0, 9) k;
-- a row the refresh rejects (churn.pipeline_rejects holds customer ids too)
INSERT INTO test_store_access.sales VALUES ('c1', current_date - 5, 'NaN', 's1');
SELECT pipeline FROM churn.create_pipeline('sa_chain', 'test_store_access.sales', model => 'sa_all',
                                           store_col => 'shop', start_at => '2100-01-01');
SELECT status FROM churn.refresh('sa_chain');
SELECT churn.grant_store('sa_anna', 'sa_chain', 's1') AS granted, churn.grant_store('sa_anna', 'sa_chain', 's2'),
       churn.grant_store('sa_ben', 'sa_chain', 's3'), churn.grant_store('sa_anna', 'sa_chain', 's1') AS again;
RESET ROLE;
CREATE TABLE test_store_access.other_sales AS
SELECT 'x' || customer_id AS customer_id, ts, amount, shop FROM test_store_access.sales;
SELECT pipeline FROM churn.create_pipeline('sa_other', 'test_store_access.other_sales', model => 'sa_all',
                                           store_col => 'shop', start_at => '2100-01-01');
SELECT status FROM churn.refresh('sa_other');
-- an alert raised by hand, without a pipeline (no store)
SELECT churn.raise_alert('h1', 'R1', 0.9) > 0 AS raised_by_hand;
-- half of the alerts are past their deadline
UPDATE churn.alert SET due_at = now() - interval '1 hour'
WHERE pipeline IN ('sa_chain', 'sa_other') AND substr(customer_id, 2) ~ '[02468]$';
-- what each customer may be seen by: the customers of the stores granted
CREATE TABLE test_store_access.allowed AS
SELECT r.rolname, w.customer_id
FROM churn.current_warnings w JOIN churn.store_grant g ON g.store = w.store
JOIN churn.pipeline p ON p.pipeline_id = g.pipeline_id AND p.name = w.pipeline
JOIN pg_roles r ON r.oid = g.role;
GRANT SELECT ON test_store_access.allowed TO PUBLIC;
SELECT rolname, count(*) FROM test_store_access.allowed GROUP BY 1 ORDER BY 1;

-- Every relation that holds customer data: found in the catalog (a column
-- named like customer of a string or composite type), in schema churn and
-- wherever else the extension keeps data (any relation that is a member of
-- the extension), so that a new one shows up here.  For each: may the role
-- read it, how many rows, and how many of them are of customers outside
-- its stores.
CREATE FUNCTION test_store_access.customer_relations() RETURNS TABLE (rel regclass, kind text, col name)
    LANGUAGE sql STABLE AS
$$
    SELECT DISTINCT ON (c.oid) c.oid::regclass, c.relkind::text, a.attname
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_type t ON t.oid = a.atttypid
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND (n.nspname = 'churn'
           OR EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
                        AND e.extname = 'churn_warning'))
      AND a.attname ~ 'customer' AND t.typcategory IN ('S', 'C', 'U') AND a.atttypid <> 'name'::regtype
    ORDER BY c.oid, a.attname = 'customer_id' DESC, a.attnum
$$;
CREATE FUNCTION test_store_access.probe() RETURNS TABLE (rel text, kind text, rls boolean, result text)
    LANGUAGE plpgsql AS
$$
DECLARE
    r record;
    n bigint;
    foreign_rows bigint;
BEGIN
    FOR r IN SELECT * FROM test_store_access.customer_relations() cr ORDER BY cr.rel::text LOOP
        rel := r.rel::text;
        kind := r.kind;
        rls := (SELECT c.relrowsecurity FROM pg_class c WHERE c.oid = r.rel);
        BEGIN
            EXECUTE format('SELECT count(*), count(*) FILTER (WHERE %1$I::text NOT IN (SELECT al.customer_id FROM test_store_access.allowed al WHERE al.rolname = current_user)) FROM %2$s',
                           r.col, r.rel)
                INTO n, foreign_rows;
            result := format('%s rows, %s of other stores', n, foreign_rows);
        EXCEPTION WHEN insufficient_privilege THEN
            result := 'permission denied';
        END;
        RETURN NEXT;
    END LOOP;
END
$$;
SET ROLE sa_anna;
SELECT * FROM test_store_access.probe();
SET ROLE sa_ben;
SELECT rel, result FROM test_store_access.probe() WHERE kind = 'v';
SET ROLE sa_outsider;
SELECT rel, result FROM test_store_access.probe() WHERE kind = 'v';
RESET ROLE;
-- the analyst sees what the superuser sees, in every view
CREATE TABLE test_store_access.seen_by_super AS
SELECT rel::text, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %s', rel), false, true, '')))[1]::text AS n
FROM test_store_access.customer_relations() WHERE kind = 'v';
GRANT SELECT ON test_store_access.seen_by_super TO PUBLIC;
SET ROLE sa_analyst;
SELECT s.rel, s.n = (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %s', s.rel), false, true, '')))[1]::text AS same_as_superuser,
       s.n::int > 0 AS not_empty
FROM test_store_access.seen_by_super s ORDER BY 1;
RESET ROLE;

-- The BI views without customer rows aggregate the role's stores only
SET ROLE sa_anna;
SELECT pipeline, store, sum(alerts) AS alerts FROM churn.alerts_by_store GROUP BY 1, 2 ORDER BY 1, 2;
SELECT pipeline, store, overdue_now + contacted_late + contacted_in_time >= 0 AS listed FROM churn.sla_breaches ORDER BY 1, 2;
SELECT pipeline, zone, raised FROM churn.outcome_funnel ORDER BY 1, 2;
SELECT pipeline, zone, arm, alerts FROM churn.retention_effect ORDER BY 1, 2, 3;
SELECT pipeline, arm, closed FROM churn.retention_effect_monthly ORDER BY 1, 2;
SELECT pipeline, store, via FROM churn.store_access ORDER BY 1, 2;
-- nothing about the pipelines themselves
SELECT count(*) AS pipelines FROM churn.pipeline_status;
SELECT count(*) AS runs FROM churn.pipeline_runs;
RESET ROLE;
SELECT pipeline, store, sum(alerts) AS alerts FROM churn.alerts_by_store WHERE pipeline = 'sa_chain'
GROUP BY 1, 2 ORDER BY 1, 2;

-- A function in the query cannot see other stores' rows (security_barrier):
-- a function that records every row it is shown
CREATE TABLE test_store_access.peek (customer_id text);
GRANT INSERT, SELECT ON test_store_access.peek TO PUBLIC;
CREATE FUNCTION test_store_access.leak(c text) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS
$$ BEGIN INSERT INTO test_store_access.peek VALUES (c); RETURN true; END $$;
SET ROLE sa_anna;
SELECT count(*) FROM churn.open_alerts WHERE test_store_access.leak(customer_id);
SELECT count(*) FROM churn.current_warnings WHERE test_store_access.leak(customer_id);
SELECT count(*) FROM churn.tier_changes WHERE test_store_access.leak(customer_id);
RESET ROLE;
SELECT count(*) AS peeked, count(*) FILTER (WHERE customer_id NOT IN (SELECT customer_id FROM test_store_access.allowed
                                                                     WHERE rolname = 'sa_anna')) AS other_stores
FROM test_store_access.peek;

-- Direct access to the tables is refused
SET ROLE sa_anna;
SELECT count(*) FROM churn.alert;
SELECT count(*) FROM churn.pipeline_warning;
UPDATE churn.alert SET assigned_to = 'anna';
DELETE FROM churn.store_grant;
INSERT INTO churn.store_grant VALUES ('sa_anna'::regrole, 1, 's4', now(), 'anna');
SELECT churn.grant_store_internal('sa_anna', 'sa_chain', 's4', 'sa_owner'::regrole);
RESET ROLE;
-- and row-level security holds if somebody grants a table directly
GRANT SELECT ON churn.alert, churn.pipeline_warning, churn.pipeline_customer TO sa_anna;
SET ROLE sa_anna;
SELECT count(*) AS alerts, count(*) FILTER (WHERE customer_id NOT IN (SELECT customer_id FROM test_store_access.allowed
                                                                      WHERE rolname = 'sa_anna')) AS other_stores
FROM churn.alert;
SELECT count(*) AS warnings, array_agg(DISTINCT store ORDER BY store) AS stores FROM churn.pipeline_warning;
SELECT count(*) AS histories FROM churn.pipeline_customer;
RESET ROLE;
REVOKE SELECT ON churn.alert, churn.pipeline_warning, churn.pipeline_customer FROM sa_anna;

-- The alert functions: a store's alerts, and no other
SELECT min(alert_id) FILTER (WHERE pipeline = 'sa_chain' AND store = 's1') AS a_s1,
       min(alert_id) FILTER (WHERE pipeline = 'sa_chain' AND store = 's3') AS a_s3,
       min(alert_id) FILTER (WHERE pipeline = 'sa_other' AND store = 's1') AS a_other,
       min(alert_id) FILTER (WHERE pipeline_id IS NULL AND customer_id = 'h1') AS a_hand
FROM churn.alert WHERE arm = 'treatment' \gset
-- (errors shown with SQLSTATE, alert numbers left out: they depend on the other tests)
CREATE FUNCTION test_store_access.try(q text) RETURNS text LANGUAGE plpgsql AS
$$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN sqlstate || ': ' || regexp_replace(sqlerrm, 'alert [0-9]+', 'alert N');
END
$$;
SET ROLE sa_anna;
SELECT status FROM churn.alert_contact(:a_s1, 'anna', 'called');
SELECT assigned_to FROM churn.alert_assign(:a_s1, 'anna', 'anna');
SELECT test_store_access.try(format('SELECT churn.alert_contact(%s, %L, %L)', :a_s3, 'anna', 'called')) AS other_store;
SELECT test_store_access.try(format('SELECT churn.alert_close(%s, %L, %L)', :a_s3, 'dismissed', 'anna')) AS other_store;
SELECT test_store_access.try(format('SELECT churn.alert_move(%s, %L, %L)', :a_other, 'contacted', 'anna'))
    AS same_store_name_other_pipeline;
SELECT test_store_access.try(format('SELECT churn.alert_close(%s, %L, %L)', :a_hand, 'dismissed', 'anna'))
    AS raised_by_hand;
SELECT churn.raise_alert('c1', 'R1', 0.9, pipeline => 'sa_chain');
SELECT churn.grant_store('sa_anna', 'sa_chain', 's4');
SELECT churn.revoke_store('sa_ben', 'sa_chain');
SET ROLE sa_ben;
SELECT status FROM churn.alert_close(:a_s3, 'dismissed', 'ben');
SELECT test_store_access.try(format('SELECT churn.alert_close(%s, %L, %L)', :a_s1, 'retained', 'ben')) AS annas_alert;
SET ROLE sa_outsider;
SELECT test_store_access.try(format('SELECT churn.alert_close(%s, %L, %L)', :a_s1, 'retained', 'x')) AS outsider;
SELECT count(*) FROM churn.open_alerts;
SELECT count(*) FROM churn.current_warnings;
RESET ROLE;
SELECT CASE alert_id WHEN :a_s1 THEN 'a_s1' WHEN :a_s3 THEN 'a_s3' WHEN :a_other THEN 'a_other' ELSE 'a_hand' END AS alert,
       status, assigned_to
FROM churn.alert WHERE alert_id IN (:a_s1, :a_s3, :a_other, :a_hand) ORDER BY 1;

-- Bad arguments
SET ROLE sa_owner;
SELECT churn.grant_store('sa_anna', 'sa_chain', '');
SELECT churn.grant_store('sa_anna', 'sa_chain', NULL);
SELECT churn.grant_store(NULL, 'sa_chain', 's1');
SELECT churn.grant_store('sa_anna', NULL, 's1');
SELECT churn.grant_store('sa_anna', 'nope', 's1');
SELECT churn.grant_store('sa_anna', 'sa_other', 's1');
SELECT churn.grant_store('no_such_role', 'sa_chain', 's1');
-- revoking: one store, then all
SELECT churn.revoke_store('sa_anna', 'sa_chain', 's2') AS revoked;
SET ROLE sa_anna;
SELECT store, count(*) FROM churn.current_warnings GROUP BY 1 ORDER BY 1;
SET ROLE sa_owner;
SELECT churn.revoke_store('sa_anna', 'sa_chain') AS revoked, churn.revoke_store('sa_anna', 'sa_chain') AS again;
SET ROLE sa_anna;
SELECT count(*) FROM churn.current_warnings;
SELECT count(*) FROM churn.open_alerts;
RESET ROLE;
-- dropping a pipeline drops its grants
SELECT pipeline_id AS chain_id FROM churn.pipeline WHERE name = 'sa_chain' \gset
SELECT churn.drop_pipeline('sa_chain');
SELECT count(*) AS grants_left FROM churn.store_grant WHERE pipeline_id = :chain_id;

-- leave no alert behind for the other tests
SELECT churn.drop_pipeline('sa_other');
CREATE TEMP TABLE sa_alerts AS
SELECT alert_id FROM churn.alert WHERE pipeline IN ('sa_chain', 'sa_other') OR (pipeline_id IS NULL AND customer_id = 'h1');
DELETE FROM churn.alert_event WHERE alert_id IN (SELECT alert_id FROM sa_alerts);
DELETE FROM churn.alert WHERE alert_id IN (SELECT alert_id FROM sa_alerts);
DELETE FROM churn.model WHERE name = 'sa_all';
DROP SCHEMA test_store_access CASCADE;
REVOKE ALL ON SCHEMA churn FROM sa_owner;
DROP ROLE sa_owner, sa_anna, sa_ben, sa_analyst, sa_outsider;
