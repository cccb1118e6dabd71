-- Rows a refresh cannot use are rejected, not fatal (0.3.0): every kind of
-- bad purchase and event row, on the full read and on the capture queues;
-- the refresh succeeds, rejects exactly those rows with their reasons and
-- scores everyone else; a corrected row comes in; over the limit the run
-- fails.  Timestamps are relative to now; the pipeline starts in 2100, so
-- the background worker never runs it during the test.
CREATE SCHEMA test_pipeline_rejects;
SET search_path = test_pipeline_rejects;
SET TimeZone = 'UTC';
CREATE TABLE purchases (id serial, customer_id text, ts timestamptz, amount numeric);
INSERT INTO purchases (customer_id, ts, amount)
SELECT c, now() - g * interval '9 days', 10 + g
FROM unnest(ARRAY['a', 'b', 'c', 'd']) c, generate_series(1, 12) g;
CREATE TABLE events (id serial, customer_id text, ts timestamptz, kind text, rating numeric);
INSERT INTO events (customer_id, ts, kind, rating)
SELECT c, now() - g * interval '5 days', 'visit', NULL FROM unnest(ARRAY['a', 'b', 'c']) c, generate_series(1, 4) g;
SELECT churn.register_rules('test_rej_rules');

-- what every customer's stored history must equal: the rows without a reason
CREATE VIEW drift AS
WITH truth AS (
    SELECT customer_id, churn.history_agg(ts, amount) AS h FROM purchases
    WHERE churn.pipeline_purchase_reject(customer_id, ts, amount::float8) IS NULL GROUP BY 1
), stored AS (
    SELECT c.customer_id, c.history AS h FROM churn.pipeline_customer c JOIN churn.pipeline p USING (pipeline_id)
    WHERE p.name = 't_rej' AND c.history IS NOT NULL
)
SELECT count(*) AS differing_customers FROM truth FULL JOIN stored USING (customer_id)
WHERE truth.h::text IS DISTINCT FROM stored.h::text;
CREATE VIEW last_run AS
SELECT status, mode, event_mode, new_purchase_rows, new_event_rows, skipped_event_rows, rejected_rows,
       customers_total, customers_scored
FROM churn.pipeline_runs WHERE pipeline = 't_rej' ORDER BY run_id DESC LIMIT 1;
CREATE VIEW last_rejects AS
SELECT relation, customer_id, day = current_date AS today, CASE WHEN NOT isfinite(day) THEN day END AS inf_day,
       amount, kind, rating, reason
FROM churn.pipeline_rejects
WHERE run_id = (SELECT max(run_id) FROM churn.pipeline_runs WHERE pipeline = 't_rej')
ORDER BY relation, reason, customer_id;

-- the reasons themselves
SELECT churn.pipeline_purchase_reject('a', current_date, 1) AS good,
       churn.pipeline_purchase_reject(NULL, current_date, 1) AS no_customer,
       churn.pipeline_purchase_reject('a', NULL::date, 1) AS no_time,
       churn.pipeline_purchase_reject('a', 'infinity'::date, 1) AS inf_day,
       churn.pipeline_purchase_reject('a', '-infinity'::timestamptz, 1) AS inf_ts,
       churn.pipeline_purchase_reject('a', '300000-01-01'::date, 1) AS far_day,
       churn.pipeline_purchase_reject('a', current_date, 'NaN') AS nan,
       churn.pipeline_purchase_reject('a', now(), '-Infinity') AS inf_amount,
       churn.pipeline_purchase_reject('a', current_date, NULL) AS null_amount;
SELECT churn.pipeline_event_reject('a', current_date, 'Review', 5) AS good,
       churn.pipeline_event_reject('a', current_date, NULL, NULL) AS no_kind,
       churn.pipeline_event_reject('a', current_date, 'purchase', NULL) AS unknown,
       churn.pipeline_event_reject('a', current_date, 'visit', 3) AS rating_on_visit,
       churn.pipeline_event_reject('a', current_date, 'review', 'NaN') AS nan,
       churn.pipeline_event_reject('a', current_date, 'review', 0) AS low,
       churn.pipeline_event_reject(NULL, current_date, 'visit', NULL) AS no_customer,
       churn.pipeline_event_reject('a', '-infinity', 'visit', NULL) AS inf_day;

-- bad rows already in both relations when the pipeline starts: the first
-- refresh reads them whole
INSERT INTO purchases (customer_id, ts, amount) VALUES
    ('a', now(), 'NaN'), ('b', 'infinity', 10), (NULL, now(), 5), ('c', now(), 'Infinity'), ('d', NULL, 3),
    ('e', now(), 'NaN');           -- e: no usable row, not a customer
INSERT INTO events (customer_id, ts, kind, rating) VALUES
    (NULL, now(), 'visit', NULL), ('a', now(), 'bogus', NULL), ('a', now(), 'visit', 3), ('b', now(), 'review', 9),
    ('b', '-infinity', 'login', NULL), ('c', now(), NULL, NULL), ('c', now(), 'review', 'NaN');
SELECT pipeline, model FROM churn.create_pipeline('t_rej', 'purchases', model => 'test_rej_rules',
                                                  time_zone => 'UTC', start_at => '2100-01-01', events => 'events');
SELECT status, mode, rejected_rows FROM churn.refresh('t_rej');
SELECT * FROM last_run;
SELECT * FROM last_rejects;
SELECT * FROM drift;
SELECT customer_id, code IS NOT NULL AS scored FROM churn.current_warnings WHERE pipeline = 't_rej' ORDER BY 1;

-- nothing new: nothing rejected
SELECT status, mode, new_purchase_rows, rejected_rows FROM churn.refresh('t_rej');

-- the capture queues: new bad rows are rejected on the incremental run
-- (rows without a customer or a time too), good ones in the same statement
-- merged
INSERT INTO purchases (customer_id, ts, amount) VALUES
    ('a', now(), 7), ('b', now(), 'NaN'), ('c', '-infinity', 4), ('d', now(), '-Infinity'), ('f', now(), 12),
    (NULL, now(), 6), ('g', NULL, 8);
INSERT INTO events (customer_id, ts, kind, rating) VALUES
    ('a', now(), 'LOGIN', NULL), ('a', now(), 'complaint', 2), ('d', now(), 'review', 0), ('d', now(), 'gift', NULL),
    ('d', 'infinity', 'visit', NULL), (NULL, now(), 'visit', NULL), ('a', NULL, 'login', NULL);
SELECT status, mode, event_mode, rejected_rows FROM churn.refresh('t_rej');
SELECT * FROM last_run;
SELECT * FROM last_rejects;
SELECT * FROM drift;
SELECT customer_id FROM churn.current_warnings WHERE pipeline = 't_rej' ORDER BY 1;

-- correcting rows in the source brings them in (an UPDATE re-reads the
-- source); the rows still bad are rejected again
UPDATE purchases SET amount = 15 WHERE customer_id = 'e';
UPDATE purchases SET ts = now() WHERE customer_id = 'b' AND ts = 'infinity';
SELECT status, mode, rejected_rows FROM churn.refresh('t_rej');
SELECT * FROM drift;
SELECT count(*) FILTER (WHERE customer_id = 'e') AS e_warned FROM churn.current_warnings WHERE pipeline = 't_rej';
SELECT relation, reason, count(*) FROM last_rejects GROUP BY 1, 2 ORDER BY 1, 2;

-- the limit: a share or a count of the rows a run reads
SELECT * FROM churn.set_reject_limit('t_rej', max_rows => 2);
INSERT INTO purchases (customer_id, ts, amount) VALUES ('a', now(), 'NaN'), ('b', now(), 'NaN'), ('c', now(), 'NaN');
SELECT status FROM churn.refresh('t_rej');
SELECT * FROM churn.set_reject_limit('t_rej', max_share => 0.5);
SELECT status, mode, new_purchase_rows, rejected_rows FROM churn.refresh('t_rej');
-- a full read over the share limit (22 of 73 rows)
SELECT * FROM churn.set_reject_limit('t_rej', max_share => 0.2);
INSERT INTO purchases (customer_id, ts, amount) SELECT 'g', now(), 'NaN' FROM generate_series(1, 12);
DELETE FROM purchases WHERE customer_id = 'f';
SELECT status FROM churn.refresh('t_rej');
SELECT * FROM churn.set_reject_limit('t_rej');
SELECT status, mode, rejected_rows FROM churn.refresh('t_rej');
-- a full read over a count limit: without a share limit the read does not
-- count the rows it keeps (part 927), so the error gives the rejected ones
SELECT * FROM churn.set_reject_limit('t_rej', max_rows => 5);
DELETE FROM purchases WHERE ctid = (SELECT min(ctid) FROM purchases WHERE customer_id = 'g');
SELECT status FROM churn.refresh('t_rej');
SELECT * FROM churn.set_reject_limit('t_rej');
SELECT status, mode, rejected_rows FROM churn.refresh('t_rej');
SELECT * FROM churn.set_reject_limit('t_rej', max_share => 1.5);
SELECT * FROM churn.set_reject_limit('t_rej', max_rows => -1);

-- retention: rejects go with their run
SELECT count(*) > 0 AS kept FROM churn.pipeline_reject j JOIN churn.pipeline p USING (pipeline_id) WHERE p.name = 't_rej';
SELECT churn.drop_pipeline('t_rej');
DELETE FROM churn.alert_event WHERE alert_id IN (SELECT alert_id FROM churn.alert WHERE pipeline = 't_rej');
DELETE FROM churn.alert WHERE pipeline = 't_rej';
SELECT count(*) AS left_over FROM churn.pipeline_reject j
WHERE NOT EXISTS (SELECT 1 FROM churn.pipeline_run r WHERE r.run_id = j.run_id);
SELECT count(*) AS rejects_left FROM churn.pipeline_rejects WHERE pipeline = 't_rej';

-- the rejects are the owner's: another role sees none of them
CREATE ROLE test_rej_owner;
CREATE ROLE test_rej_other;
GRANT USAGE ON SCHEMA test_pipeline_rejects TO test_rej_owner;
CREATE TABLE owned (customer_id text, ts date, amount float8);
ALTER TABLE owned OWNER TO test_rej_owner;
INSERT INTO owned VALUES ('x', current_date - 3, 5), ('x', current_date - 30, 'NaN'), ('y', 'infinity', 2);
SET ROLE test_rej_owner;
SELECT pipeline FROM churn.create_pipeline('t_rej_owned', 'test_pipeline_rejects.owned', model => 'test_rej_rules',
                                           start_at => '2100-01-01');
SELECT status, rejected_rows FROM churn.refresh('t_rej_owned');
SELECT pipeline, customer_id, amount, reason FROM churn.pipeline_rejects ORDER BY 2;
SET ROLE test_rej_other;
SELECT count(*) AS seen_by_other FROM churn.pipeline_rejects;
SELECT count(*) FROM churn.pipeline_reject;
RESET ROLE;
SELECT churn.drop_pipeline('t_rej_owned');

DELETE FROM churn.model WHERE name = 'test_rej_rules';
RESET search_path;
DROP SCHEMA test_pipeline_rejects CASCADE;
DROP ROLE test_rej_owner;
DROP ROLE test_rej_other;

-- The full read's helpers (part 927).
-- churn.pipeline_day is (timezone(zone, ts))::date: zone names (with DST),
-- abbreviations (which timezone() tries first: EST is both), POSIX
-- offsets; the zone changes from row to row, so its cache is re-filled
SELECT z, count(*) AS n,
       count(*) FILTER (WHERE churn.pipeline_day(ts, z) IS DISTINCT FROM (timezone(z, ts))::date) AS differ
FROM unnest(ARRAY['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe',
                  'EST', 'CEST', 'PST8PDT', '+05', 'UTC-3']) z,
     generate_series(timestamptz '2023-01-01 00:00 UTC', '2025-01-01', interval '97 minutes') ts
GROUP BY z ORDER BY z;
-- a fixed-offset abbreviation is arithmetic: days before 2000 and BC are
-- floored like timezone()'s, and a local time out of range is its error
SELECT z, count(*) AS n,
       count(*) FILTER (WHERE churn.pipeline_day(ts, z) IS DISTINCT FROM (timezone(z, ts))::date) AS differ
FROM unnest(ARRAY['UTC', 'GMT', 'EST', 'CEST', 'NZDT', 'MSK']) z,
     (SELECT generate_series(timestamptz '1899-12-30 00:00 UTC', '1900-01-03', interval '37 minutes')
      UNION ALL
      SELECT generate_series(timestamptz '0100-12-30 00:00 BC UTC', '0100-12-31 23:00 BC UTC', interval '37 minutes')) t(ts)
GROUP BY z ORDER BY z;
SELECT churn.pipeline_day('4714-11-24 00:30 BC UTC', 'EST');
SELECT churn.pipeline_day('294276-12-31 23:30 UTC', 'CEST');
SELECT churn.pipeline_day('infinity', 'UTC') AS pos_inf, churn.pipeline_day('-infinity', 'Europe/Berlin') AS neg_inf,
       churn.pipeline_day(NULL, 'UTC') AS null_ts;
SELECT churn.pipeline_day(now(), 'Mars/Olympus');
-- numeric amounts are checked as numeric
SELECT churn.pipeline_purchase_reject('a', current_date, 'NaN'::numeric) AS nan,
       churn.pipeline_purchase_reject('a', current_date, '-Infinity'::numeric) AS inf,
       churn.pipeline_purchase_reject('a', 'infinity'::date, 1.5::numeric) AS inf_day,
       churn.pipeline_purchase_reject('a', current_date, NULL::numeric) AS null_amount,
       churn.pipeline_purchase_reject('a', current_date, 12345678901234567890.12::numeric) AS big;
-- the rejected rows of a customer: NULL without any
SELECT churn.pipeline_reject_agg(ROW(d, 1.0, NULL, NULL, 'why')::churn.pipeline_reject_row) FILTER (WHERE d > '2024-01-02')
           AS none,
       churn.pipeline_reject_agg(ROW(d, 1.0, NULL, NULL, 'why')::churn.pipeline_reject_row) AS two
FROM unnest(ARRAY[date '2024-01-01', '2024-01-02']) d;
