-- Alert handling: the playbook, the alert lifecycle, escalation, NOTIFY
-- payloads, the BI views and the churn_reader role.
--
-- Times are fixed (the functions take an optional "at"); the only alerts
-- raised at now() are shown through intervals and flags.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
-- This test owns churn.alert: nothing may be there yet; alert ids from 1000.
SELECT count(*) AS alerts_before FROM churn.alert;
SELECT setval(pg_get_serial_sequence('churn.alert', 'alert_id'), 1000, false) AS first_alert_id;
\set t0 '2024-03-01 09:00:00+00'

-- An error's SQLSTATE, or 'ok'.
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS
$$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

--
-- The default playbook
--
SELECT code, zone, level, urgency, action, channel, sla_hours, overridden
FROM churn.playbook_effective ORDER BY urgency DESC;
SELECT count(*) AS builtin_rows FROM churn.playbook WHERE builtin;
-- built-in rows are read-only
UPDATE churn.playbook SET sla_hours = 2 WHERE code = 'R1';
DELETE FROM churn.playbook WHERE code = 'B2';
-- a user entry overrides the built-in one; zone and level follow the code
SELECT churn.playbook_set('B1', 'reactivation: win-back coupon', 'sms', 120, 'spring campaign');
INSERT INTO churn.playbook (code, action, channel, sla_hours, builtin) VALUES ('Y4', 'test', 'app', 10, true);
SELECT code, zone, level, action, channel, sla_hours, builtin FROM churn.playbook WHERE NOT builtin ORDER BY code;
SELECT code, action, channel, sla_hours, overridden FROM churn.playbook_effective
WHERE code IN ('B1', 'Y4') ORDER BY code;
SELECT churn.playbook_reset('Y4') AS reset, churn.playbook_reset('Y4') AS reset_again;
-- bad entries
SELECT churn.playbook_set('N0', 'nothing', 'none', 1);
SELECT churn.playbook_set('R1', 'call', 'phone', 0);
INSERT INTO churn.playbook (code, action, channel, sla_hours) VALUES ('R4', 'call', 'phone', 1);
INSERT INTO churn.playbook (code, zone, level, action, channel, sla_hours) VALUES ('R1', 'blue', 1, 'call', 'phone', 1);

--
-- Lifecycle: open -> assigned -> contacted -> retained
--
SELECT churn.raise_alert('c1', ROW('red', 2, 'R2', 'high', 30)::churn.tier, 0.68, 150000,
                         '{frequency_down_30,no_visit_15}', 'shop', :'t0') AS c1;
SELECT alert_id, pipeline, customer_id, code, zone, level, value_segment, p_churn, annual_value, drivers,
       action, channel, sla_hours, status, opened_at, due_at, contacted_at, closed_at, assigned_to,
       escalations, last_changed_at
FROM churn.alert WHERE customer_id = 'c1';
SELECT alert_id, status, assigned_to FROM churn.alert_assign(1000, 'anna', 'manager', 'VIP desk', :'t0'::timestamptz + '1 hour');
SELECT alert_id, status, contacted_at FROM churn.alert_contact(1000, 'anna', 'called, gift offered', :'t0'::timestamptz + '3 hours');
SELECT alert_id, status, contacted_at, closed_at
FROM churn.alert_close(1000, 'retained', 'anna', 'bought again', :'t0'::timestamptz + '10 days');
SELECT alert_id, at, event, from_status, to_status, from_code, to_code, actor, db_user = session_user AS by_me, note
FROM churn.alert_event WHERE alert_id = 1000 ORDER BY event_id;

-- more alerts for the views
SELECT churn.raise_alert('c2', 'Y1', 0.62, 20000, '{spend_down_15}', 'shop', :'t0') AS c2;
SELECT status FROM churn.alert_contact(1001, 'ben', NULL, :'t0'::timestamptz + '50 hours');   -- 2 h past its SLA
SELECT status FROM churn.alert_close(1001, 'churned', 'ben', 'closed the account', :'t0'::timestamptz + '20 days');
SELECT churn.raise_alert('c3', churn.warning_tier(0.45, 5000), 0.45, 5000, '{}', 'shop', :'t0') AS c3;   -- B1, overridden action
SELECT churn.playbook_reset('B1');      -- c3 keeps the action it was raised with
SELECT status FROM churn.alert_move(1002, 'dismissed', 'ben', 'moved abroad', :'t0'::timestamptz + '1 day');
SELECT churn.raise_alert('c4', 'Y4', 0.52, 3000, '{}', 'shop', :'t0') AS c4;                          -- left open: overdue
SELECT churn.raise_alert('c5', 'R1', 0.93, 250000, '{silent_60}', NULL, :'t0') AS c5;                 -- no pipeline
SELECT status FROM churn.alert_contact(1004, 'carla', NULL, :'t0'::timestamptz + '2 hours');
SELECT churn.raise_alert('c6', churn.warning_tier(0.75, 20000), 0.75, 20000) AS c6;                 -- R2, raised now
-- a customer has one active alert per pipeline; a closed alert does not count
SELECT churn.raise_alert('c1', 'B2', 0.31, 150000, '{}', 'web', :'t0') AS c1_web;
SELECT churn.raise_alert('c1', 'B2', 0.31, 150000, '{}', 'shop', :'t0'::timestamptz + '11 days') AS c1_again;
SELECT alert_id, pipeline, code, status FROM churn.alert WHERE customer_id = 'c1' ORDER BY alert_id;

--
-- Escalation: Y2 -> R3; a less urgent or the same code changes nothing
--
SELECT churn.raise_alert('c7', 'Y2', 0.55, 8000, '{overdue_2x}', 'shop', :'t0') AS c7;
SELECT churn.raise_alert('c7', 'Y3', 0.50, 8000, '{}', 'shop', :'t0'::timestamptz + '1 hour') AS less_urgent,
       churn.raise_alert('c7', 'Y2', 0.57, 8000, '{}', 'shop', :'t0'::timestamptz + '1 hour') AS same;
SELECT code, p_churn, drivers, due_at, escalations, last_changed_at FROM churn.alert WHERE alert_id = 1008;
SELECT churn.raise_alert('c7', ROW('red', 3, 'R3', 'low', 50)::churn.tier, 0.86, 8000,
                         '{overdue_2x,negative_feedback}', 'shop', :'t0'::timestamptz + '2 hours') AS escalated;
SELECT code, zone, level, value_segment, p_churn, drivers, action, sla_hours, status, opened_at, due_at,
       escalations, last_changed_at
FROM churn.alert WHERE alert_id = 1008;
SELECT status FROM churn.alert_contact(1008, 'dora', NULL, :'t0'::timestamptz + '5 hours');
-- escalating a contacted alert opens it again for the new action
SELECT churn.raise_alert('c8', 'B1', 0.41, 800, '{}', 'shop', :'t0') AS c8;
SELECT status FROM churn.alert_contact(1009, 'ed', 'newsletter sent', :'t0'::timestamptz + '1 day');
SELECT churn.raise_alert('c8', 'Y1', 0.72, 800, '{}', 'shop', :'t0'::timestamptz + '2 days') AS escalated;
SELECT code, status, contacted_at, due_at, escalations FROM churn.alert WHERE alert_id = 1009;
SELECT alert_id, at, event, from_status, to_status, from_code, to_code, actor, note
FROM churn.alert_event WHERE alert_id IN (1008, 1009) ORDER BY event_id;
-- zone none raises nothing
SELECT churn.warning_tier(0.01, 500) AS tier,
       churn.raise_alert('c9', churn.warning_tier(0.01, 500), 0.01, 500) AS by_tier,
       churn.raise_alert('c9', 'N0', 0.01) AS by_code;
SELECT count(*) AS c9_alerts FROM churn.alert WHERE customer_id = 'c9';

--
-- Illegal moves are refused
--
SELECT churn.alert_close(1003, 'retained', 'ben');                  -- open -> retained: contact first
SELECT churn.alert_contact(1000, 'anna');                           -- retained is final
SELECT churn.alert_move(1004, 'contacted', 'carla');                -- contacted -> contacted
SELECT churn.alert_move(1004, 'open', 'carla');                     -- only escalation reopens
SELECT churn.alert_assign(1001, 'ben', 'manager');                  -- churned is final
SELECT churn.alert_move(1003, 'lost', 'ben');
SELECT churn.alert_close(1003, 'won', 'ben');
SELECT churn.alert_contact(999999, 'ben');
SELECT churn.alert_contact(1003, NULL);
SELECT churn.alert_contact(1003, 'ben', NULL, :'t0'::timestamptz - interval '1 hour');
SELECT churn.alert_contact(1003, 'ben', NULL, '2999-01-01');
-- bad input to raise_alert
SELECT churn.raise_alert(NULL, 'R1', 0.9);
SELECT churn.raise_alert('x', 'R1', 1.5);
SELECT churn.raise_alert('x', 'X1', 0.9);
SELECT churn.raise_alert('x', ROW('red', 2, 'Y1', 'low', 50)::churn.tier, 0.9);
SELECT churn.raise_alert('x', NULL::churn.tier, 0.9);
-- every refusal with its SQLSTATE; nothing changed
SELECT q, pg_temp.sqlstate_of(q) AS sqlstate FROM (VALUES
    ($$SELECT churn.alert_close(1003, 'retained', 'ben')$$),
    ($$SELECT churn.alert_contact(1000, 'anna')$$),
    ($$SELECT churn.alert_move(1004, 'contacted', 'carla')$$),
    ($$SELECT churn.alert_move(1000, 'dismissed', 'anna')$$),
    ($$SELECT churn.alert_move(1003, 'lost', 'ben')$$),
    ($$SELECT churn.alert_move(1003, NULL, 'ben')$$),
    ($$SELECT churn.alert_close(1003, 'won', 'ben')$$),
    ($$SELECT churn.alert_contact(999999, 'ben')$$),
    ($$SELECT churn.alert_contact(NULL, 'ben')$$),
    ($$SELECT churn.alert_contact(1003, '')$$),
    ($$SELECT churn.alert_contact(1003, 'ben', NULL, NULL)$$),
    ($$SELECT churn.alert_contact(1003, 'ben', NULL, 'infinity')$$),
    ($$SELECT churn.raise_alert(NULL, 'R1', 0.9)$$),
    ($$SELECT churn.raise_alert('', 'R1', 0.9)$$),
    ($$SELECT churn.raise_alert('x', 'R1', NULL)$$),
    ($$SELECT churn.raise_alert('x', 'R1', 'NaN')$$),
    ($$SELECT churn.raise_alert('x', 'R1', -0.1)$$),
    ($$SELECT churn.raise_alert('x', 'R1', 0.9, -1)$$),
    ($$SELECT churn.raise_alert('x', 'R1', 0.9, 'NaN')$$),
    ($$SELECT churn.raise_alert('x', 'R1', 0.9, 'Infinity')$$),
    ($$SELECT churn.raise_alert('x', 'R1', 0.9, NULL, '{}', '')$$),
    ($$SELECT churn.raise_alert('x', 'X1', 0.9)$$),
    ($$SELECT churn.raise_alert('x', NULL::text, 0.9)$$),
    ($$SELECT churn.raise_alert('x', NULL::churn.tier, 0.9)$$),
    ($$SELECT churn.raise_alert('x', ROW('red', 2, 'Y1', 'low', 50)::churn.tier, 0.9)$$),
    ($$SELECT churn.raise_alert('x', 'R1', 0.9, NULL, '{}', NULL, '2999-01-01')$$),
    ($$UPDATE churn.alert_event SET note = 'rewritten'$$),
    ($$UPDATE churn.alert SET status = 'bogus'$$)
) v(q);
SELECT count(*) AS alerts, count(*) FILTER (WHERE customer_id = 'x') AS x_alerts,
       (SELECT status FROM churn.alert WHERE alert_id = 1003) AS c4_status
FROM churn.alert;

--
-- NOTIFY churn_alert on a new or escalated alert (psql prints the
-- notifications; the sed filter hides the sender's process id)
--
LISTEN churn_alert;
\o | sed -e 's/PID [0-9]*/PID N/'
SELECT churn.raise_alert('n1', 'Y2', 0.55, 2000, '{}', 'shop', :'t0') AS opened;
SELECT churn.raise_alert('n1', 'Y3', 0.50, 2000, '{}', 'shop', :'t0') AS unchanged;
SELECT churn.raise_alert('n1', 'R3', 0.85, 2000, '{}', 'shop', :'t0') AS escalated;
SELECT churn.raise_alert('n2', 'B2', 0.35) AS opened_no_pipeline;
-- notifications go out at commit, and not at all on rollback
BEGIN;
SELECT churn.raise_alert('n3', 'R1', 0.95, 300000, '{}', 'shop', :'t0') AS rolled_back;
ROLLBACK;
BEGIN;
SELECT churn.raise_alert('n4', 'Y1', 0.65, 1000, '{}', 'shop', :'t0') AS committed;
SELECT 'before commit' AS step;
COMMIT;
\o
UNLISTEN churn_alert;
-- payloads stay under 8000 bytes
SELECT churn.raise_alert(repeat('n5', 6000), 'B2', 0.3, NULL, '{}', repeat('p', 5000), :'t0') IS NOT NULL AS raised;
SELECT octet_length(churn.alert_payload(a, 'opened')) AS payload_bytes,
       churn.alert_payload(a, 'opened')::json ->> 'truncated' AS truncated,
       length(churn.alert_payload(a, 'opened')::json ->> 'customer_id') AS customer_id_chars
FROM churn.alert a WHERE customer_id LIKE 'n5n5%';
SELECT churn.alert_payload(a, 'opened') FROM churn.alert a WHERE alert_id = 1000;

--
-- Views
--
SELECT alert_id, pipeline, customer_id, status, zone, level, code, urgency, value_segment, action,
       sla_hours, assigned_to, escalations, due_at - opened_at AS sla, contacted_at, overdue,
       CASE WHEN hours_left IS NULL THEN 'contacted' WHEN hours_left < 0 THEN 'past due'
            ELSE 'due in ' || ceil(hours_left) || ' h' END AS hours_left
FROM churn.open_alerts WHERE customer_id NOT LIKE 'n5n5%';
SELECT alert_id, customer_id, code, action, assigned_to, due_at, hours_overdue > 0 AS past_due
FROM churn.overdue_alerts WHERE customer_id NOT LIKE 'n5n5%';
SELECT * FROM churn.alert_outcomes;
-- column types and comments of the views
SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.oid IN ('churn.open_alerts'::regclass, 'churn.overdue_alerts'::regclass,
                'churn.alert_outcomes'::regclass, 'churn.playbook_effective'::regclass)
  AND a.attnum > 0
ORDER BY c.relname, a.attnum;
SELECT c.relname, obj_description(c.oid, 'pg_class') IS NOT NULL AS view_comment,
       count(*) FILTER (WHERE col_description(c.oid, a.attnum) IS NULL) AS columns_without_comment
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
WHERE c.oid IN ('churn.open_alerts'::regclass, 'churn.overdue_alerts'::regclass,
                'churn.alert_outcomes'::regclass, 'churn.playbook_effective'::regclass,
                'churn.alert'::regclass, 'churn.alert_event'::regclass, 'churn.playbook'::regclass)
GROUP BY c.oid, c.relname ORDER BY c.relname;

--
-- churn_reader reads the views and nothing else
--
SELECT rolcanlogin FROM pg_roles WHERE rolname = 'churn_reader';
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'churn'::regnamespace AND c.relkind IN ('r', 'p', 'S')
  AND (has_table_privilege('churn_reader', c.oid, 'SELECT') OR has_table_privilege('churn_reader', c.oid, 'INSERT')
       OR has_table_privilege('churn_reader', c.oid, 'UPDATE') OR has_table_privilege('churn_reader', c.oid, 'DELETE'));
SELECT p.oid::regprocedure AS function, has_function_privilege('churn_reader', p.oid, 'EXECUTE') AS reader,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public
FROM pg_proc p
WHERE p.pronamespace = 'churn'::regnamespace
  AND p.proname IN ('raise_alert', 'alert_move', 'alert_contact', 'alert_close', 'alert_assign',
                    'alert_open_or_escalate', 'alert_transition', 'playbook_set', 'playbook_reset')
ORDER BY 1::text;
SET ROLE churn_reader;
SELECT count(*) AS open_alerts FROM churn.open_alerts;
SELECT count(*) AS overdue_alerts FROM churn.overdue_alerts;
SELECT sum(alerts) AS alerts, sum(retained) AS retained FROM churn.alert_outcomes;
SELECT count(*) AS codes FROM churn.playbook_effective;
SELECT * FROM churn.alert;
SELECT * FROM churn.alert_event;
SELECT * FROM churn.playbook;
SELECT churn.raise_alert('r1', 'R1', 0.9);
SELECT churn.alert_contact(1003, 'reader');
SELECT churn.playbook_set('R1', 'x', 'y', 1);
RESET ROLE;
-- a clerk granted EXECUTE on one function moves alerts without any table privilege
CREATE ROLE regress_churn_clerk NOLOGIN;
GRANT USAGE ON SCHEMA churn TO regress_churn_clerk;
GRANT EXECUTE ON FUNCTION churn.alert_contact(bigint, text, text, timestamptz) TO regress_churn_clerk;
SET ROLE regress_churn_clerk;
SELECT alert_id, status FROM churn.alert_contact(1003, 'frank', 'coupon sent', :'t0'::timestamptz + '5 days');
SELECT churn.alert_close(1003, 'retained', 'frank');
SELECT count(*) FROM churn.alert;
RESET ROLE;
SELECT actor, db_user = session_user AS session_user_recorded, note FROM churn.alert_event
WHERE alert_id = 1003 ORDER BY event_id DESC LIMIT 1;
REVOKE ALL ON FUNCTION churn.alert_contact(bigint, text, text, timestamptz) FROM regress_churn_clerk;
REVOKE USAGE ON SCHEMA churn FROM regress_churn_clerk;
DROP ROLE regress_churn_clerk;

--
-- A hostile search_path changes nothing
--
CREATE SCHEMA regress_evil;
CREATE FUNCTION regress_evil.alert_urgency(text) RETURNS int LANGUAGE sql AS 'SELECT 100';
CREATE FUNCTION regress_evil.make_interval(hours int) RETURNS interval LANGUAGE sql AS $$SELECT interval '1 second'$$;
CREATE TABLE regress_evil.alert (alert_id bigint, customer_id text, status text, code text, pipeline text);
SET search_path = regress_evil, pg_catalog, churn;
SELECT churn.raise_alert('h1', 'Y3', 0.5, 100, '{}', 'shop', :'t0') AS h1;
SELECT churn.raise_alert('h1', 'Y4', 0.5, 100, '{}', 'shop', :'t0') AS unchanged,
       churn.raise_alert('h1', 'R2', 0.9, 100, '{}', 'shop', :'t0') AS escalated;
SELECT code, due_at - opened_at AS sla, escalations FROM churn.alert WHERE customer_id = 'h1';
RESET search_path;
DROP SCHEMA regress_evil CASCADE;
