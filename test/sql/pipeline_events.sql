-- Pipelines with an events relation (0.3.0): create with events (default
-- and custom column names), the full read, captured events merged on the
-- next refresh, late events counted, bad event rows skipped and counted,
-- events of a customer without purchases, the engagement features in the
-- scores (rule model), refused column types, alter (events => NULL), drop,
-- and a role that may not read the events relation.  Timestamps are
-- relative to now, so every result is the same on any day.  The pipelines
-- start in 2100: the background worker never runs them during the test.
CREATE SCHEMA test_pipeline_events;
SET search_path = test_pipeline_events;
SET TimeZone = 'UTC';
CREATE TABLE purchases (customer_id text, ts timestamptz, amount numeric);
-- a: steady buyer; b: slowing down; c: one purchase long ago; d: no events
INSERT INTO purchases
SELECT 'a', now() - g * interval '10 days', 20 FROM generate_series(0, 17) g
UNION ALL SELECT 'b', now() - g * interval '7 days', 30 FROM generate_series(12, 25) g
UNION ALL SELECT 'b', now() - interval '40 days', 10
UNION ALL SELECT 'c', now() - interval '120 days', 50
UNION ALL SELECT 'd', now() - g * interval '15 days', 25 FROM generate_series(1, 8) g;
CREATE TABLE events (customer_id text, ts timestamptz, kind text, rating int);
INSERT INTO events VALUES
    ('a', now() - interval '2 days', 'visit', NULL), ('a', now() - interval '3 days', 'Login', NULL),
    ('a', now() - interval '5 days', 'interaction', NULL), ('a', now() - interval '20 days', 'review', 5),
    ('b', now() - interval '25 days', 'visit', NULL), ('b', now() - interval '30 days', 'review', 1),
    ('b', now() - interval '70 days', 'login', NULL),
    ('c', now() - interval '100 days', 'visit', NULL);
SELECT churn.register_rules('test_pe_rules');

-- what a customer's stored events must equal: the valid rows, aggregated
CREATE VIEW events_drift AS
WITH truth AS (
    SELECT customer_id, churn.engagement_agg(ts, kind, rating) AS e
    FROM events
    WHERE customer_id IS NOT NULL AND ts IS NOT NULL
      AND churn.pipeline_event_check((ts AT TIME ZONE 'UTC')::date, kind, rating) IS NOT NULL
    GROUP BY 1
), stored AS (
    SELECT c.customer_id, c.engagement AS e
    FROM churn.pipeline_customer c JOIN churn.pipeline p USING (pipeline_id)
    WHERE p.name = 't_ev' AND c.engagement IS NOT NULL
)
SELECT count(*) AS differing_customers
FROM truth FULL JOIN stored USING (customer_id)
WHERE truth.e::text IS DISTINCT FROM stored.e::text;

-- every score is the rule model's score of the purchase and engagement features
CREATE VIEW score_check AS
SELECT count(*) AS customers, count(engagement) AS with_engagement,
       count(*) FILTER (WHERE abs(p_churn - churn.predict('test_pe_rules', churn.feature_vector(features, engagement)))
                              > 1e-12) AS differ
FROM churn.current_warnings WHERE pipeline = 't_ev';

SELECT pipeline, capture, source, events, event_capture, model
FROM churn.create_pipeline('t_ev', 'purchases', model => 'test_pe_rules', time_zone => 'UTC',
                           start_at => '2100-01-01', events => 'events');
SELECT regexp_replace(tgname, '[0-9]+', 'N') AS trigger, tgnargs FROM pg_trigger
WHERE tgrelid = 'events'::regclass ORDER BY 1;

-- the first refresh reads both relations whole
SELECT status, mode, event_mode, new_purchase_rows, new_event_rows, late_event_rows, skipped_event_rows,
       customers_merged, customers_total, customers_scored
FROM churn.refresh('t_ev');
SELECT * FROM events_drift;
SELECT * FROM score_check;
SELECT customer_id, round(p_churn::numeric, 4) AS p_churn, (engagement).days_since_visit,
       (engagement).days_since_login, (engagement).events_recent, (engagement).negative_recent,
       (engagement).avg_rating_recent, churn.rule_score(churn.feature_vector(features, engagement),
                                                        'default') AS rules
FROM churn.current_warnings WHERE pipeline = 't_ev' ORDER BY 1;

-- nothing new: nothing merged or rescored
SELECT mode, event_mode, new_purchase_rows, new_event_rows, late_event_rows, skipped_event_rows,
       customers_merged, customers_scored
FROM churn.refresh('t_ev');

-- new events: a complaint of a (the negative_feedback rule fires), a visit
-- of d 60 days ago (silent_60 fires), a visit and a review of e who has
-- bought nothing yet; late: dated before the last refresh's as_of (today),
-- i.e. d's and e's visits; and rows a refresh skips and counts: no kind,
-- an unknown kind, a rating outside 1-5, a rating on a visit, an infinite
-- time, and (0.3.0) rows without customer or time, which the capture
-- queues for the refresh to reject and count (part 921).
INSERT INTO events VALUES
    ('a', now(), 'complaint', NULL), ('d', now() - interval '60 days', 'visit', NULL),
    ('e', now() - interval '1 day', 'visit', NULL), ('e', now(), 'REVIEW', 4),
    ('a', now(), NULL, NULL), ('b', now(), 'purchase', NULL), ('b', now(), 'review', 7),
    ('c', now(), 'visit', 3), ('c', 'infinity', 'visit', NULL),
    (NULL, now(), 'visit', NULL), ('a', NULL, 'visit', NULL);
SELECT sum(coalesce(cardinality(customer_ids), 1)) AS queued FROM churn.pipeline_event_queue;  -- batches (0.3.0) counted by row
SELECT status, mode, event_mode, new_purchase_rows, new_event_rows, late_event_rows, skipped_event_rows,
       customers_merged, customers_total, customers_scored
FROM churn.refresh('t_ev');
SELECT * FROM events_drift;
SELECT * FROM score_check;
SELECT customer_id, round(p_churn::numeric, 4) AS p_churn, (engagement).days_since_complaint,
       (engagement).negative_recent, (engagement).days_since_visit
FROM churn.current_warnings WHERE pipeline = 't_ev' AND customer_id IN ('a', 'd') ORDER BY 1;

-- e has events but no purchase: stored, no warning until e buys
SELECT c.customer_id, c.history IS NULL AS no_purchases, (churn.engagement_features(c.engagement, current_date)).events_recent
FROM churn.pipeline_customer c JOIN churn.pipeline p USING (pipeline_id)
WHERE p.name = 't_ev' AND c.customer_id = 'e';
SELECT count(*) AS e_warnings FROM churn.current_warnings WHERE pipeline = 't_ev' AND customer_id = 'e';
INSERT INTO purchases VALUES ('e', now(), 40);
SELECT mode, event_mode, new_purchase_rows, new_event_rows, customers_merged, customers_total, customers_scored
FROM churn.refresh('t_ev');
SELECT customer_id, (engagement).days_since_visit, (engagement).reviews_recent, (engagement).avg_rating_recent
FROM churn.current_warnings WHERE pipeline = 't_ev' AND customer_id = 'e';
SELECT * FROM score_check;

-- an event inserted and rolled back is never counted
BEGIN;
INSERT INTO events VALUES ('b', now(), 'visit', NULL);
ROLLBACK;
SELECT event_mode, new_event_rows, skipped_event_rows FROM churn.refresh('t_ev');

-- UPDATE, DELETE and TRUNCATE of the events make the next refresh re-read
-- them (the purchases stay incremental)
UPDATE events SET rating = 2 WHERE customer_id = 'a' AND kind = 'review';
SELECT mode, event_mode, new_event_rows, skipped_event_rows, customers_merged FROM churn.refresh('t_ev');
SELECT * FROM events_drift;
UPDATE events SET kind = kind WHERE customer_id = 'b';
SELECT event_mode FROM churn.refresh('t_ev');
DELETE FROM events WHERE customer_id = 'c';
SELECT event_mode, customers_merged, customers_total FROM churn.refresh('t_ev');
SELECT * FROM events_drift;
SELECT * FROM score_check;

-- a customer whose purchases are deleted keeps the events, without a warning
INSERT INTO events VALUES ('f', now(), 'login', NULL);
INSERT INTO purchases VALUES ('f', now() - interval '3 days', 12);
SELECT customers_total FROM churn.refresh('t_ev');
DELETE FROM purchases WHERE customer_id = 'f';
SELECT mode, event_mode, customers_total FROM churn.refresh('t_ev');
SELECT c.history IS NULL AS no_purchases, c.engagement IS NOT NULL AS has_events,
       (SELECT count(*) FROM churn.current_warnings w WHERE w.pipeline = 't_ev' AND w.customer_id = 'f') AS warnings
FROM churn.pipeline_customer c JOIN churn.pipeline p USING (pipeline_id)
WHERE p.name = 't_ev' AND c.customer_id = 'f';
SELECT * FROM events_drift;

-- the run history and the status
SELECT mode, event_mode, new_event_rows, late_event_rows, skipped_event_rows FROM churn.pipeline_runs
WHERE pipeline = 't_ev' ORDER BY run_id;
SELECT pipeline, events, event_capture, last_status FROM churn.pipeline_status WHERE pipeline = 't_ev';

-- custom column names (and other accepted types): a bigint customer, a
-- date, a varchar kind, a numeric rating; the full read and the capture
CREATE TABLE "Odd Purchases" ("Client" bigint, "When" date, "Paid" numeric);
INSERT INTO "Odd Purchases" SELECT 7, current_date - g * 9, 10 FROM generate_series(0, 10) g;
CREATE TABLE "Odd Events" ("Client" bigint, "On" date, "What" varchar(20), "Stars" numeric);
INSERT INTO "Odd Events" VALUES (7, current_date - 1, 'Visit', NULL), (7, current_date - 2, 'review', 2.5),
                                (8, current_date, 'login', NULL), (7, current_date, 'review', 0);
SELECT pipeline, capture, events, event_capture
FROM churn.create_pipeline('t_ev_odd', '"Odd Purchases"', customer_col => 'Client', ts_col => 'When',
                           amount_col => 'Paid', time_zone => 'UTC', start_at => '2100-01-01',
                           events => '"Odd Events"', event_customer_col => 'Client', event_ts_col => 'On',
                           event_kind_col => 'What', event_rating_col => 'Stars');
SELECT mode, event_mode, skipped_event_rows, customers_total FROM churn.refresh('t_ev_odd');
INSERT INTO "Odd Events" VALUES (7, current_date, 'COMPLAINT', NULL), (7, current_date - 400, 'visit', NULL),
                                (8, current_date, 'vist', NULL);
SELECT mode, event_mode, new_event_rows, late_event_rows, skipped_event_rows FROM churn.refresh('t_ev_odd');
SELECT c.customer_id, c.history IS NOT NULL AS has_purchases, c.engagement::text = (
           SELECT churn.engagement_agg(e."On", lower(e."What"), e."Stars"::float8)::text FROM "Odd Events" e
           WHERE e."Client"::text = c.customer_id
             AND churn.pipeline_event_check(e."On", e."What", e."Stars"::float8) IS NOT NULL) AS engagement_right
FROM churn.pipeline_customer c JOIN churn.pipeline p USING (pipeline_id)
WHERE p.name = 't_ev_odd' ORDER BY 1;

TRUNCATE "Odd Events";
SELECT mode, event_mode, skipped_event_rows, customers_merged, customers_total FROM churn.refresh('t_ev_odd');
SELECT c.customer_id, c.history IS NOT NULL AS has_purchases, c.engagement IS NOT NULL AS has_events
FROM churn.pipeline_customer c JOIN churn.pipeline p USING (pipeline_id)
WHERE p.name = 't_ev_odd' ORDER BY 1;

-- a capture trigger attached by hand to another table queues nothing
CREATE TABLE inject (customer_id text, ts timestamptz, kind text, rating int);
SELECT format('CREATE TRIGGER inject AFTER INSERT ON inject REFERENCING NEW TABLE AS churn_new '
              'FOR EACH STATEMENT EXECUTE FUNCTION churn.pipeline_capture(%L, %L)', pipeline_id, 'events') AS ddl
FROM churn.pipeline WHERE name = 't_ev' \gset
:ddl;
INSERT INTO inject VALUES ('a', now(), 'complaint', NULL);
SELECT count(*) AS injected FROM churn.pipeline_event_queue;

-- a hostile search_path changes nothing in the capture or the reads
CREATE SCHEMA test_pe_evil;
CREATE FUNCTION test_pe_evil.texteq_evil(text, text) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'evil = called'; END $$;
CREATE OPERATOR test_pe_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = test_pe_evil.texteq_evil);
CREATE FUNCTION test_pe_evil.lower(text) RETURNS text LANGUAGE sql AS $$ SELECT 'visit'::text $$;
SET search_path = test_pe_evil, pg_catalog, test_pipeline_events;
INSERT INTO events VALUES ('b', pg_catalog.now(), 'visit', NULL);
SELECT event_mode, new_event_rows FROM churn.refresh('t_ev');
UPDATE events SET rating = rating WHERE customer_id OPERATOR(pg_catalog.=) 'b';
DELETE FROM events WHERE customer_id OPERATOR(pg_catalog.=) 'b' AND kind OPERATOR(pg_catalog.=) 'purchase';
SELECT event_mode, skipped_event_rows FROM churn.refresh('t_ev');
SET search_path = test_pipeline_events;
SELECT * FROM events_drift;
DROP SCHEMA test_pe_evil CASCADE;

-- an events relation that is a view is read whole on every refresh
CREATE VIEW events_view AS SELECT * FROM events;
SELECT pipeline, capture, event_capture FROM churn.alter_pipeline('t_ev_odd', events => 'events_view',
                                                                  event_customer_col => 'customer_id',
                                                                  event_ts_col => 'ts', event_kind_col => 'kind',
                                                                  event_rating_col => 'rating');
SELECT count(*) AS triggers_left_on_odd_events FROM pg_trigger WHERE tgrelid = '"Odd Events"'::regclass;
SELECT mode, event_mode, new_event_rows FROM churn.refresh('t_ev_odd');
SELECT mode, event_mode, new_event_rows FROM churn.refresh('t_ev_odd');

-- churn.pipeline_event_check: the kind kept, or NULL (skipped and counted)
SELECT k, r, churn.pipeline_event_check(current_date, k, r) AS kept
FROM (VALUES ('visit', NULL::float8), ('Review', 1), ('review', 5.5), ('review', 'NaN'), ('complaint', 2),
             ('interaction', NULL), ('shopping', NULL), (NULL, NULL)) v(k, r);
SELECT churn.pipeline_event_check('infinity', 'visit', NULL) AS infinite,
       churn.pipeline_event_check('300000-01-01', 'visit', NULL) AS beyond_timestamps,
       churn.pipeline_event_check(NULL, 'visit', NULL) AS no_day;

-- errors: missing columns, refused types (42804), a retyped column at
-- capture and refresh, an events relation that is gone
\set VERBOSITY terse
CREATE TABLE bad_kind (customer_id text, ts timestamptz, kind int, rating int);
CREATE TABLE bad_rating (customer_id text, ts timestamptz, kind text, rating text);
CREATE TYPE mood AS ENUM ('visit', 'login');
CREATE TABLE bad_enum (customer_id text, ts timestamptz, kind mood, rating int);
CREATE TABLE bad_ts (customer_id text, ts text, kind text, rating int);
SELECT churn.create_pipeline('x', 'purchases', events => 'bad_kind');
SELECT churn.create_pipeline('x', 'purchases', events => 'bad_rating');
SELECT churn.create_pipeline('x', 'purchases', events => 'bad_enum');
SELECT churn.create_pipeline('x', 'purchases', events => 'bad_ts');
SELECT churn.create_pipeline('x', 'purchases', events => 'events', event_kind_col => 'what');
SELECT churn.create_pipeline('x', 'purchases', events => 'pg_catalog.pg_class_oid_index');
SELECT churn.alter_pipeline('t_ev', events => 'bad_kind');
SELECT churn.alter_pipeline('t_ev', event_rating_col => 'ts');
CREATE TABLE ev2 (customer_id text, ts timestamptz, kind text, rating int);
SELECT pipeline, events FROM churn.create_pipeline('t_ev2', 'purchases', start_at => '2100-01-01', events => 'ev2');
SELECT status, event_mode FROM churn.refresh('t_ev2');
ALTER TABLE ev2 ALTER COLUMN kind TYPE mood USING kind::mood;
INSERT INTO ev2 VALUES ('a', now(), 'visit', NULL);
SELECT churn.refresh('t_ev2');
ALTER TABLE ev2 ALTER COLUMN kind TYPE text;
ALTER TABLE ev2 ALTER COLUMN ts TYPE date;
SELECT churn.refresh('t_ev2');
SELECT pipeline, events FROM churn.alter_pipeline('t_ev2', event_ts_col => 'ts');
SELECT status, event_mode FROM churn.refresh('t_ev2');
DROP TABLE ev2;
SELECT churn.refresh('t_ev2');
\set VERBOSITY default

-- events => NULL stops reading events: the engagement goes (customers with
-- events only too), the triggers leave the events relation, the scores
-- are the purchase scores again
SELECT pipeline, events, event_capture FROM churn.alter_pipeline('t_ev', events => NULL);
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'events'::regclass;
SELECT count(*) FILTER (WHERE c.engagement IS NOT NULL) AS with_events, count(*) FILTER (WHERE c.history IS NULL) AS events_only
FROM churn.pipeline_customer c JOIN churn.pipeline p USING (pipeline_id) WHERE p.name = 't_ev';
SELECT mode, event_mode, new_event_rows, skipped_event_rows, customers_scored = customers_total AS rescored_all
FROM churn.refresh('t_ev');
SELECT count(*) AS customers, count(engagement) AS with_engagement,
       count(*) FILTER (WHERE abs(p_churn - churn.predict('test_pe_rules', churn.feature_vector(features))) > 1e-12)
           AS differ
FROM churn.current_warnings WHERE pipeline = 't_ev';
-- other settings leave the events alone; and back on
SELECT pipeline, events FROM churn.alter_pipeline('t_ev', schedule => '2 days');
SELECT pipeline, events, event_capture FROM churn.alter_pipeline('t_ev', events => 'events');
SELECT mode, event_mode, skipped_event_rows FROM churn.refresh('t_ev');
SELECT * FROM events_drift;
SELECT * FROM score_check;

-- a role may point a pipeline only at an events relation whose columns it
-- may read; one of another role is read with the pipeline owner's rights,
-- and create warns
CREATE ROLE test_pe_carol;
CREATE ROLE test_pe_owner;
ALTER TABLE purchases OWNER TO test_pe_owner;
ALTER TABLE events OWNER TO test_pe_owner;
GRANT USAGE ON SCHEMA test_pipeline_events TO test_pe_carol;
GRANT SELECT, TRIGGER ON purchases TO test_pe_carol;
\set VERBOSITY terse
SET ROLE test_pe_carol;
SELECT churn.create_pipeline('carol', 'test_pipeline_events.purchases', start_at => '2100-01-01',
                             events => 'test_pipeline_events.events');
RESET ROLE;
GRANT SELECT (customer_id, ts, kind) ON events TO test_pe_carol;
SET ROLE test_pe_carol;
SELECT churn.create_pipeline('carol', 'test_pipeline_events.purchases', start_at => '2100-01-01',
                             events => 'test_pipeline_events.events');
SELECT churn.alter_pipeline('t_ev', events => NULL);
RESET ROLE;
GRANT SELECT ON events TO test_pe_carol;
SET ROLE test_pe_carol;
SELECT pipeline, capture, event_capture
FROM churn.create_pipeline('carol', 'test_pipeline_events.purchases', start_at => '2100-01-01',
                           events => 'test_pipeline_events.events');
SELECT status, event_mode, customers_total FROM churn.refresh('carol');
SELECT churn.drop_pipeline('carol');
RESET ROLE;
\set VERBOSITY default

-- drop removes the pipelines, their queues and every capture trigger
SELECT churn.drop_pipeline('t_ev');
SELECT churn.drop_pipeline('t_ev_odd');
SELECT churn.drop_pipeline('t_ev2');
SELECT count(*) AS triggers_left FROM pg_trigger
WHERE tgrelid IN ('events'::regclass, 'purchases'::regclass, '"Odd Events"'::regclass, '"Odd Purchases"'::regclass);
SELECT (SELECT count(*) FROM churn.pipeline WHERE name LIKE 't\_ev%') AS pipelines,
       (SELECT count(*) FROM churn.pipeline_event_queue) AS queued_events;

DELETE FROM churn.alert_event
WHERE alert_id IN (SELECT alert_id FROM churn.alert WHERE pipeline LIKE 't\_ev%' OR pipeline = 'carol');
DELETE FROM churn.alert WHERE pipeline LIKE 't\_ev%' OR pipeline = 'carol';
DELETE FROM churn.model WHERE name = 'test_pe_rules';
RESET search_path;
DROP SCHEMA test_pipeline_events CASCADE;
DROP ROLE test_pe_carol;
DROP ROLE test_pe_owner;
