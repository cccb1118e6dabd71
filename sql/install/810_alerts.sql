-- churn_warning install script, part 810: alert handling with a playbook, and
-- the views BI tools read.
--
-- A warning tier (part 800) becomes an alert: one row per customer and
-- pipeline while it is being handled, carrying the playbook's action,
-- channel and SLA at the time it was raised.  Alerts move open -> contacted
-- -> retained / churned / dismissed only through churn.alert_move (and its
-- wrappers), which lock the row, refuse illegal moves and write the audit
-- trail churn.alert_event.  churn.raise_alert opens or escalates alerts and
-- sends NOTIFY churn_alert.  The state-changing functions are SECURITY
-- DEFINER with EXECUTE revoked from PUBLIC: grant EXECUTE to the roles that
-- handle alerts and they need no privilege on the tables.  The role
-- churn_reader reads the views and nothing else.

-- Urgency of a tier code, as in churn.tier_codes: R1 = 9 (most urgent) ..
-- B2 = 1; N0 = 0; anything else NULL.
CREATE FUNCTION churn.alert_urgency(code text) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE $1 WHEN 'R1' THEN 9 WHEN 'R2' THEN 8 WHEN 'R3' THEN 7
                   WHEN 'Y1' THEN 6 WHEN 'Y2' THEN 5 WHEN 'Y3' THEN 4 WHEN 'Y4' THEN 3
                   WHEN 'B1' THEN 2 WHEN 'B2' THEN 1 WHEN 'N0' THEN 0 END
$$;
COMMENT ON FUNCTION churn.alert_urgency(text) IS
    'urgency of a tier code: R1 = 9 (most urgent) .. B2 = 1, N0 = 0, NULL for anything else (same scale as churn.tier_codes.urgency)';

-- ---------------------------------------------------------------------------
-- The playbook: what to do for each alerting code.  One table; the built-in
-- rows are read-only, a user row (builtin = false) for the same code
-- overrides the built-in one.  pg_dump keeps the user rows only, so a
-- restore recreates the built-ins with CREATE EXTENSION and then loads the
-- overrides beside them without a conflict.

CREATE TABLE churn.playbook (
    code        text    NOT NULL CHECK (code IN ('R1', 'R2', 'R3', 'Y1', 'Y2', 'Y3', 'Y4', 'B1', 'B2')),
    zone        text    NOT NULL,
    level       int     NOT NULL,
    action      text    NOT NULL CHECK (btrim(action) <> ''),
    channel     text    NOT NULL CHECK (btrim(channel) <> ''),
    sla_hours   int     NOT NULL CHECK (sla_hours > 0),
    description text,
    builtin     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (code, builtin),
    CHECK (zone = CASE left(code, 1) WHEN 'R' THEN 'red' WHEN 'Y' THEN 'yellow' ELSE 'blue' END
           AND level = substr(code, 2)::int)
);
COMMENT ON TABLE churn.playbook IS
    'what to do for each alerting tier code: action, channel and SLA (hours to first contact); built-in rows are read-only, a user row (builtin = false) for the same code overrides it; user rows are kept by pg_dump';
COMMENT ON COLUMN churn.playbook.code IS 'tier code R1..R3, Y1..Y4, B1..B2';
COMMENT ON COLUMN churn.playbook.zone IS 'red, yellow or blue (follows from the code; filled in when omitted)';
COMMENT ON COLUMN churn.playbook.level IS 'level inside the zone, 1 = most urgent (follows from the code; filled in when omitted)';
COMMENT ON COLUMN churn.playbook.action IS 'what the store does';
COMMENT ON COLUMN churn.playbook.channel IS 'how the customer is reached';
COMMENT ON COLUMN churn.playbook.sla_hours IS 'hours from raising (or escalating) an alert to the first contact';
COMMENT ON COLUMN churn.playbook.description IS 'longer explanation for the person handling the alert';
COMMENT ON COLUMN churn.playbook.builtin IS 'true for the read-only rows installed with the extension';

INSERT INTO churn.playbook (code, zone, level, action, channel, sla_hours, description, builtin) VALUES
    ('R1', 'red',    1, 'VIP retention: store manager call and VIP gift', 'phone',      4,
     'most urgent: the store manager calls the customer personally and offers a VIP gift', true),
    ('R2', 'red',    2, 'VIP retention: personal call and VIP gift',      'phone',     12,
     'a personal call from the customer''s store with a VIP gift', true),
    ('R3', 'red',    3, 'VIP retention: VIP gift or personal service',    'phone',     24,
     'a VIP gift or a personal service offer (personal shopper, free grooming), by phone within a day', true),
    ('Y1', 'yellow', 1, 'targeted promotion: second item at half price',  'app',       48,
     'a personal offer on the products the customer buys: second item at half price', true),
    ('Y2', 'yellow', 2, 'targeted promotion: second item at half price',  'app',       72,
     'second item at half price on the customer''s usual categories', true),
    ('Y3', 'yellow', 3, 'targeted promotion',                              'email',     96,
     'a promotion chosen from the customer''s purchase history', true),
    ('Y4', 'yellow', 4, 'targeted promotion',                              'email',     96,
     'a promotion chosen from the customer''s purchase history', true),
    ('B1', 'blue',   1, 'reactivation: personal reminder',                 'email',    168,
     'a reminder with recommendations based on past purchases', true),
    ('B2', 'blue',   2, 'reactivation: newsletter',                        'newsletter', 168,
     'include the customer in the next reactivation newsletter', true);

-- Built-in rows are read-only; user rows get zone and level from their code.
CREATE TRIGGER builtin_guard BEFORE INSERT OR UPDATE OR DELETE ON churn.playbook
    FOR EACH ROW EXECUTE FUNCTION churn.builtin_guard('code',
        'the built-in playbook entry for code %s cannot be changed',
        'Override it with a user entry: SELECT churn.playbook_set(%L, action, channel, sla_hours);');

-- A user entry for a tier code gets the code's zone and level by default.
CREATE FUNCTION churn.playbook_fill_zone() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF NEW.code IN ('R1', 'R2', 'R3', 'Y1', 'Y2', 'Y3', 'Y4', 'B1', 'B2') THEN
        NEW.zone := coalesce(NEW.zone, CASE left(NEW.code, 1) WHEN 'R' THEN 'red' WHEN 'Y' THEN 'yellow' ELSE 'blue' END);
        NEW.level := coalesce(NEW.level, substr(NEW.code, 2)::int);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER playbook_fill_zone BEFORE INSERT OR UPDATE ON churn.playbook
    FOR EACH ROW EXECUTE FUNCTION churn.playbook_fill_zone();
SELECT pg_catalog.pg_extension_config_dump('churn.playbook', 'WHERE NOT builtin');

-- The playbook in force: the user row of a code when there is one, else the
-- built-in row.
CREATE VIEW churn.playbook_effective AS
SELECT DISTINCT ON (p.code)
       p.code::text AS code, p.zone::text AS zone, p.level::int AS level,
       churn.alert_urgency(p.code)::int AS urgency,
       p.action::text AS action, p.channel::text AS channel, p.sla_hours::int AS sla_hours,
       p.description::text AS description, (NOT p.builtin)::boolean AS overridden
FROM churn.playbook p
ORDER BY p.code, p.builtin;
COMMENT ON VIEW churn.playbook_effective IS
    'the playbook in force, one row per tier code R1..B2: the user entry when there is one, else the built-in one';
COMMENT ON COLUMN churn.playbook_effective.code IS 'tier code R1..R3, Y1..Y4, B1..B2';
COMMENT ON COLUMN churn.playbook_effective.zone IS 'red, yellow or blue';
COMMENT ON COLUMN churn.playbook_effective.level IS 'level inside the zone, 1 = most urgent';
COMMENT ON COLUMN churn.playbook_effective.urgency IS 'R1 = 9 (most urgent) .. B2 = 1, for sorting';
COMMENT ON COLUMN churn.playbook_effective.action IS 'what the store does';
COMMENT ON COLUMN churn.playbook_effective.channel IS 'how the customer is reached';
COMMENT ON COLUMN churn.playbook_effective.sla_hours IS 'hours from raising (or escalating) an alert to the first contact';
COMMENT ON COLUMN churn.playbook_effective.description IS 'longer explanation for the person handling the alert';
COMMENT ON COLUMN churn.playbook_effective.overridden IS 'true when a user entry replaces the built-in one';

-- Set (insert or replace) the user entry of a code.
CREATE FUNCTION churn.playbook_set(code text, action text, channel text, sla_hours int,
                                   description text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF code IS NULL OR churn.alert_urgency(code) IS NULL OR code = 'N0' THEN
        RAISE EXCEPTION 'unknown playbook code %', coalesce(quote_literal(code), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Playbook codes are R1, R2, R3, Y1, Y2, Y3, Y4, B1 and B2.';
    END IF;
    IF sla_hours IS NULL OR sla_hours <= 0 THEN
        RAISE EXCEPTION 'sla_hours must be a positive number of hours'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF action IS NULL OR btrim(action) = '' OR channel IS NULL OR btrim(channel) = '' THEN
        RAISE EXCEPTION 'action and channel must not be empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM churn.playbook p WHERE p.code = playbook_set.code AND NOT p.builtin;
    INSERT INTO churn.playbook (code, action, channel, sla_hours, description)
    VALUES (playbook_set.code, playbook_set.action, playbook_set.channel, playbook_set.sla_hours,
            playbook_set.description);
END
$$;
COMMENT ON FUNCTION churn.playbook_set(text, text, text, int, text) IS
    'override the playbook entry of a tier code (applies to alerts raised or escalated from now on)';

-- Remove the user entry of a code (back to the built-in one).
CREATE FUNCTION churn.playbook_reset(code text) RETURNS boolean
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS
$$
    WITH d AS (DELETE FROM churn.playbook p WHERE p.code = $1 AND NOT p.builtin RETURNING 1)
    SELECT count(*) > 0 FROM d
$$;
COMMENT ON FUNCTION churn.playbook_reset(text) IS
    'drop the user override of a tier code''s playbook entry; true when there was one';

-- ---------------------------------------------------------------------------
-- Alerts and their audit trail.  Both are user data and kept by pg_dump.

CREATE TABLE churn.alert (
    alert_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pipeline        text CHECK (pipeline <> ''),
    customer_id     text NOT NULL CHECK (customer_id <> ''),
    code            text NOT NULL CHECK (code IN ('R1', 'R2', 'R3', 'Y1', 'Y2', 'Y3', 'Y4', 'B1', 'B2')),
    zone            text NOT NULL,
    level           int  NOT NULL,
    value_segment   text,
    p_churn         float8 NOT NULL CHECK (p_churn >= 0 AND p_churn <= 1),
    annual_value    float8 CHECK (annual_value >= 0 AND annual_value < 'Infinity'::float8),
    drivers         text[] NOT NULL DEFAULT '{}',
    action          text NOT NULL,
    channel         text NOT NULL,
    sla_hours       int  NOT NULL CHECK (sla_hours > 0),
    status          text NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'contacted', 'retained', 'churned', 'dismissed')),
    opened_at       timestamptz NOT NULL,
    due_at          timestamptz NOT NULL,
    contacted_at    timestamptz,
    closed_at       timestamptz,
    assigned_to     text,
    escalations     int NOT NULL DEFAULT 0 CHECK (escalations >= 0),
    last_changed_at timestamptz NOT NULL,
    CHECK (zone = CASE left(code, 1) WHEN 'R' THEN 'red' WHEN 'Y' THEN 'yellow' ELSE 'blue' END
           AND level = substr(code, 2)::int),
    CHECK ((closed_at IS NOT NULL) = (status IN ('retained', 'churned', 'dismissed'))),
    CHECK (status <> 'contacted' OR contacted_at IS NOT NULL)
);
COMMENT ON TABLE churn.alert IS
    'churn alerts: one per customer and pipeline while open or contacted, with the playbook action and SLA of its code; changed only through churn.raise_alert and churn.alert_move; kept by pg_dump';
COMMENT ON COLUMN churn.alert.alert_id IS 'alert number';
COMMENT ON COLUMN churn.alert.pipeline IS 'pipeline that raised the alert; NULL when raised by hand';
COMMENT ON COLUMN churn.alert.customer_id IS 'customer identifier, as text';
COMMENT ON COLUMN churn.alert.code IS 'current tier code R1..B2 (escalation replaces it)';
COMMENT ON COLUMN churn.alert.zone IS 'red, yellow or blue';
COMMENT ON COLUMN churn.alert.level IS 'level inside the zone, 1 = most urgent';
COMMENT ON COLUMN churn.alert.value_segment IS 'value segment of the tier (high, medium, low); NULL when raised from a bare code';
COMMENT ON COLUMN churn.alert.p_churn IS 'churn probability when raised or last escalated';
COMMENT ON COLUMN churn.alert.annual_value IS 'annual value when raised or last escalated (currency-neutral); NULL when unknown';
COMMENT ON COLUMN churn.alert.drivers IS 'top drivers of the risk, most important first';
COMMENT ON COLUMN churn.alert.action IS 'playbook action when raised or last escalated';
COMMENT ON COLUMN churn.alert.channel IS 'playbook channel when raised or last escalated';
COMMENT ON COLUMN churn.alert.sla_hours IS 'playbook SLA in hours when raised or last escalated';
COMMENT ON COLUMN churn.alert.status IS 'open, contacted, retained, churned or dismissed';
COMMENT ON COLUMN churn.alert.opened_at IS 'when the alert was raised';
COMMENT ON COLUMN churn.alert.due_at IS 'contact deadline: raised (or last escalated) + sla_hours';
COMMENT ON COLUMN churn.alert.contacted_at IS 'when the customer was contacted for the current code; NULL before';
COMMENT ON COLUMN churn.alert.closed_at IS 'when the alert was closed (retained, churned, dismissed); NULL while active';
COMMENT ON COLUMN churn.alert.assigned_to IS 'who handles the alert; NULL when unassigned';
COMMENT ON COLUMN churn.alert.escalations IS 'how often the alert was escalated to a more urgent code';
COMMENT ON COLUMN churn.alert.last_changed_at IS 'time of the last event of the alert';

-- At most one active (open or contacted) alert per customer and pipeline;
-- NULL pipeline counts as one pipeline (pipeline = '' is refused above).
CREATE UNIQUE INDEX alert_active_customer ON churn.alert ((coalesce(pipeline, '')), customer_id)
    WHERE status IN ('open', 'contacted');
CREATE INDEX alert_status_due ON churn.alert (status, due_at);
SELECT pg_catalog.pg_extension_config_dump('churn.alert', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('churn.alert', 'alert_id')::regclass, '');

CREATE TABLE churn.alert_event (
    event_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES churn.alert (alert_id),
    at          timestamptz NOT NULL,
    event       text NOT NULL CHECK (event IN ('opened', 'escalated', 'moved', 'assigned')),
    from_status text,
    to_status   text NOT NULL,
    from_code   text,
    to_code     text NOT NULL,
    actor       text NOT NULL,
    db_user     name NOT NULL DEFAULT session_user,
    note        text
);
COMMENT ON TABLE churn.alert_event IS
    'audit trail of churn.alert: one row per opening, escalation, status move and assignment; append-only; kept by pg_dump';
COMMENT ON COLUMN churn.alert_event.event_id IS 'event number, increasing in the order events were written';
COMMENT ON COLUMN churn.alert_event.alert_id IS 'the alert';
COMMENT ON COLUMN churn.alert_event.at IS 'when it happened';
COMMENT ON COLUMN churn.alert_event.event IS 'opened, escalated, moved (status change) or assigned';
COMMENT ON COLUMN churn.alert_event.from_status IS 'status before; NULL for opened';
COMMENT ON COLUMN churn.alert_event.to_status IS 'status after';
COMMENT ON COLUMN churn.alert_event.from_code IS 'code before; NULL for opened';
COMMENT ON COLUMN churn.alert_event.to_code IS 'code after';
COMMENT ON COLUMN churn.alert_event.actor IS 'who did it, as given to the function (the pipeline name or current_user for raised alerts)';
COMMENT ON COLUMN churn.alert_event.db_user IS 'database login (session_user) that ran the function';
COMMENT ON COLUMN churn.alert_event.note IS 'free-text note; for assigned: the new assignee is in the note';
CREATE INDEX alert_event_alert ON churn.alert_event (alert_id, event_id);
SELECT pg_catalog.pg_extension_config_dump('churn.alert_event', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('churn.alert_event', 'event_id')::regclass, '');

CREATE FUNCTION churn.alert_event_guard() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    RAISE EXCEPTION 'the alert audit trail is append-only'
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Events are written by churn.raise_alert and churn.alert_move.';
END
$$;
CREATE TRIGGER alert_event_guard BEFORE UPDATE ON churn.alert_event
    FOR EACH ROW EXECUTE FUNCTION churn.alert_event_guard();

-- Statuses an alert may move to by hand from a status (empty when closed).
CREATE FUNCTION churn.alert_legal_moves(from_status text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE $1 WHEN 'open' THEN ARRAY['contacted', 'dismissed', 'churned']
                   WHEN 'contacted' THEN ARRAY['retained', 'churned', 'dismissed']
                   WHEN 'retained' THEN '{}'::text[] WHEN 'churned' THEN '{}'::text[]
                   WHEN 'dismissed' THEN '{}'::text[] END
$$;
COMMENT ON FUNCTION churn.alert_legal_moves(text) IS
    'statuses an alert may be moved to from a status: open -> contacted, dismissed, churned; contacted -> retained, churned, dismissed; closed -> none; NULL for an unknown status';

-- The NOTIFY payload of an alert event; under 8000 bytes however long the
-- customer id or pipeline name (both cut to 200 characters, with
-- "truncated": true, when the payload would not fit).
CREATE FUNCTION churn.alert_payload(a churn.alert, event text) RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    payload text;
BEGIN
    payload := json_build_object('alert_id', a.alert_id, 'customer_id', a.customer_id, 'code', a.code,
                                 'zone', a.zone, 'level', a.level, 'event', event, 'pipeline', a.pipeline)::text;
    IF octet_length(payload) >= 8000 THEN
        payload := json_build_object('alert_id', a.alert_id, 'customer_id', left(a.customer_id, 200),
                                     'code', a.code, 'zone', a.zone, 'level', a.level, 'event', event,
                                     'pipeline', left(a.pipeline, 200), 'truncated', true)::text;
    END IF;
    RETURN payload;
END
$$;
COMMENT ON FUNCTION churn.alert_payload(churn.alert, text) IS
    'JSON payload sent on channel churn_alert: {alert_id, customer_id, code, zone, level, event, pipeline}; always under 8000 bytes';

-- Check the time of an event: given, not in the future, not before the
-- alert's last event.
CREATE FUNCTION churn.alert_check_time(at timestamptz, last_changed timestamptz) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF at IS NULL OR NOT isfinite(at) THEN
        RAISE EXCEPTION 'the time of an alert event must be a finite timestamp'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF at > clock_timestamp() THEN
        RAISE EXCEPTION 'the time of an alert event must not be in the future'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('at was %s.', at);
    END IF;
    IF at < last_changed THEN
        RAISE EXCEPTION 'the time of an alert event must not be before the alert''s last change'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('at was %s, the alert last changed at %s.', at, last_changed);
    END IF;
END
$$;

-- Open an alert, or escalate the customer's active alert to a more urgent
-- code.  Returns the alert id; NULL for zone none.
CREATE FUNCTION churn.alert_open_or_escalate(p_customer_id text, p_code text, p_zone text, p_level int,
                                             p_value_segment text, p_churn float8, p_annual_value float8,
                                             p_drivers text[], p_pipeline text, p_at timestamptz) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    pb churn.playbook_effective;
    cur churn.alert;
    v_actor text := coalesce(p_pipeline, current_user::text);
BEGIN
    IF p_customer_id IS NULL OR p_customer_id = '' THEN
        RAISE EXCEPTION 'customer_id must not be NULL or empty' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_pipeline = '' THEN
        RAISE EXCEPTION 'pipeline must be NULL or a name, not empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_churn IS NULL OR NOT (p_churn >= 0 AND p_churn <= 1) THEN
        RAISE EXCEPTION 'p_churn must be a probability in [0, 1], not %', coalesce(p_churn::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT (p_annual_value >= 0 AND p_annual_value < 'Infinity'::float8) THEN
        RAISE EXCEPTION 'annual_value must be a finite number >= 0 or NULL, not %', p_annual_value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM churn.alert_check_time(p_at, NULL);
    IF p_zone = 'none' OR (p_zone IS NULL AND p_code = 'N0') THEN
        RETURN NULL;
    END IF;
    IF p_code IS NULL THEN
        RAISE EXCEPTION 'the tier must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Pass churn.warning_tier(p_churn, annual_value), or a code R1..B2.';
    END IF;
    SELECT * INTO pb FROM churn.playbook_effective e WHERE e.code = p_code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown tier code %', quote_literal(p_code)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Alerting codes are R1, R2, R3, Y1, Y2, Y3, Y4, B1 and B2; N0 (zone none) raises no alert.';
    END IF;
    IF p_zone IS DISTINCT FROM pb.zone OR p_level IS DISTINCT FROM pb.level THEN
        RAISE EXCEPTION 'tier code % does not match zone % level %', p_code, coalesce(p_zone, 'NULL'),
                        coalesce(p_level::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('%s is zone %s level %s.', p_code, pb.zone, pb.level);
    END IF;

    -- Two attempts: when a concurrent transaction opens the same customer's
    -- alert between our look-up and our insert, the second look-up sees it.
    FOR attempt IN 1 .. 2 LOOP
        SELECT * INTO cur FROM churn.alert a
        WHERE a.customer_id = p_customer_id AND coalesce(a.pipeline, '') = coalesce(p_pipeline, '')
          AND a.status IN ('open', 'contacted')
        FOR UPDATE;
        IF FOUND THEN
            IF churn.alert_urgency(p_code) <= churn.alert_urgency(cur.code) THEN
                RETURN cur.alert_id;        -- same or less urgent: nothing changes
            END IF;
            PERFORM churn.alert_check_time(p_at, cur.last_changed_at);
            UPDATE churn.alert a
            SET code = p_code, zone = pb.zone, level = pb.level, value_segment = p_value_segment,
                p_churn = alert_open_or_escalate.p_churn, annual_value = p_annual_value,
                drivers = coalesce(p_drivers, '{}'), action = pb.action, channel = pb.channel,
                sla_hours = pb.sla_hours, status = 'open',
                due_at = p_at + make_interval(hours => pb.sla_hours), contacted_at = NULL,
                escalations = a.escalations + 1, last_changed_at = p_at
            WHERE a.alert_id = cur.alert_id
            RETURNING * INTO cur;
            INSERT INTO churn.alert_event (alert_id, at, event, from_status, to_status, from_code, to_code, actor, note)
            SELECT cur.alert_id, p_at, 'escalated', e.to_status, 'open', e.to_code, p_code, v_actor,
                   format('p_churn %s', p_churn)
            FROM churn.alert_event e WHERE e.alert_id = cur.alert_id ORDER BY e.event_id DESC LIMIT 1;
            PERFORM pg_catalog.pg_notify('churn_alert', churn.alert_payload(cur, 'escalated'));
            RETURN cur.alert_id;
        END IF;

        INSERT INTO churn.alert (pipeline, customer_id, code, zone, level, value_segment, p_churn, annual_value,
                                 drivers, action, channel, sla_hours, status, opened_at, due_at, last_changed_at)
        VALUES (p_pipeline, p_customer_id, p_code, pb.zone, pb.level, p_value_segment, p_churn, p_annual_value,
                coalesce(p_drivers, '{}'), pb.action, pb.channel, pb.sla_hours, 'open', p_at,
                p_at + make_interval(hours => pb.sla_hours), p_at)
        ON CONFLICT DO NOTHING
        RETURNING * INTO cur;
        IF cur.alert_id IS NOT NULL THEN
            INSERT INTO churn.alert_event (alert_id, at, event, from_status, to_status, from_code, to_code, actor, note)
            VALUES (cur.alert_id, p_at, 'opened', NULL, 'open', NULL, p_code, v_actor, format('p_churn %s', p_churn));
            PERFORM pg_catalog.pg_notify('churn_alert', churn.alert_payload(cur, 'opened'));
            RETURN cur.alert_id;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'could not open an alert for customer % (concurrent changes)', p_customer_id
        USING ERRCODE = 'serialization_failure', HINT = 'Retry the transaction.';
END
$$;

CREATE FUNCTION churn.raise_alert(customer_id text, tier churn.tier, p_churn float8,
                                  annual_value float8 DEFAULT NULL, drivers text[] DEFAULT '{}',
                                  pipeline text DEFAULT NULL, at timestamptz DEFAULT now()) RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.alert_open_or_escalate($1, ($2).code, ($2).zone, ($2).level, ($2).value_segment,
                                        $3, $4, $5, $6, $7)
$$;
COMMENT ON FUNCTION churn.raise_alert(text, churn.tier, float8, float8, text[], text, timestamptz) IS
    'open an alert for a customer''s warning tier, or escalate their active alert to a more urgent code; returns the alert id (the existing one when nothing changes), NULL for zone none; NOTIFY churn_alert on open and escalation';

CREATE FUNCTION churn.raise_alert(customer_id text, code text, p_churn float8,
                                  annual_value float8 DEFAULT NULL, drivers text[] DEFAULT '{}',
                                  pipeline text DEFAULT NULL, at timestamptz DEFAULT now()) RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.alert_open_or_escalate($1, $2,
                                        CASE left($2, 1) WHEN 'R' THEN 'red' WHEN 'Y' THEN 'yellow'
                                                         WHEN 'B' THEN 'blue' WHEN 'N' THEN 'none' END,
                                        CASE WHEN $2 ~ '^[RYBN][0-9]$' THEN substr($2, 2)::int END,
                                        NULL, $3, $4, $5, $6, $7)
$$;
COMMENT ON FUNCTION churn.raise_alert(text, text, float8, float8, text[], text, timestamptz) IS
    'raise_alert with a bare tier code (R1..B2; N0 raises nothing) instead of a churn.tier; value_segment stays NULL';

-- Move an alert to another status (or reassign it), under a row lock.
CREATE FUNCTION churn.alert_transition(p_alert_id bigint, p_to_status text, p_actor text, p_note text,
                                       p_at timestamptz, p_assign boolean, p_assignee text) RETURNS churn.alert
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cur churn.alert;
    legal text[];
BEGIN
    IF p_alert_id IS NULL THEN
        RAISE EXCEPTION 'alert_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_actor IS NULL OR btrim(p_actor) = '' THEN
        RAISE EXCEPTION 'actor must name who handled the alert' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'The audit trail records every change with its actor.';
    END IF;
    IF NOT p_assign AND (p_to_status IS NULL OR churn.alert_legal_moves(p_to_status) IS NULL) THEN
        RAISE EXCEPTION 'unknown alert status %', coalesce(quote_literal(p_to_status), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Statuses are open, contacted, retained, churned and dismissed.';
    END IF;
    SELECT * INTO cur FROM churn.alert a WHERE a.alert_id = p_alert_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', p_alert_id USING ERRCODE = 'no_data_found';
    END IF;
    legal := churn.alert_legal_moves(cur.status);
    IF p_assign THEN
        IF cardinality(legal) = 0 THEN
            RAISE EXCEPTION 'alert % is % and can no longer be assigned', p_alert_id, cur.status
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'Closed alerts (retained, churned, dismissed) are final.';
        END IF;
        p_to_status := cur.status;
    ELSIF cardinality(legal) = 0 THEN
        RAISE EXCEPTION 'alert % cannot move from % to %', p_alert_id, cur.status, p_to_status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('%s is a closed status; closed alerts are final.', cur.status),
                  HINT = 'A new warning for the customer raises a new alert.';
    ELSIF NOT (p_to_status = ANY (legal)) THEN
        RAISE EXCEPTION 'alert % cannot move from % to %', p_alert_id, cur.status, p_to_status
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = CASE WHEN p_to_status = 'retained'
                                THEN 'A customer is contacted before they can be recorded as retained.'
                                WHEN p_to_status = 'open'
                                THEN 'Only an escalation to a more urgent code reopens an alert.'
                                ELSE format('The alert is already %s.', cur.status) END,
                  HINT = format('From %s an alert can move to: %s.', cur.status, array_to_string(legal, ', '));
    END IF;
    PERFORM churn.alert_check_time(p_at, cur.last_changed_at);

    IF p_assign THEN
        UPDATE churn.alert a SET assigned_to = p_assignee, last_changed_at = p_at
        WHERE a.alert_id = p_alert_id RETURNING * INTO cur;
        INSERT INTO churn.alert_event (alert_id, at, event, from_status, to_status, from_code, to_code, actor, note)
        VALUES (p_alert_id, p_at, 'assigned', cur.status, cur.status, cur.code, cur.code, p_actor,
                concat_ws(': ', 'assigned to ' || coalesce(p_assignee, 'nobody'), p_note));
    ELSE
        INSERT INTO churn.alert_event (alert_id, at, event, from_status, to_status, from_code, to_code, actor, note)
        VALUES (p_alert_id, p_at, 'moved', cur.status, p_to_status, cur.code, cur.code, p_actor, p_note);
        UPDATE churn.alert a
        SET status = p_to_status,
            contacted_at = CASE WHEN p_to_status = 'contacted' THEN p_at ELSE a.contacted_at END,
            closed_at = CASE WHEN p_to_status IN ('retained', 'churned', 'dismissed') THEN p_at END,
            last_changed_at = p_at
        WHERE a.alert_id = p_alert_id RETURNING * INTO cur;
    END IF;
    RETURN cur;
END
$$;

CREATE FUNCTION churn.alert_move(alert_id bigint, to_status text, actor text, note text DEFAULT NULL,
                                 at timestamptz DEFAULT now()) RETURNS churn.alert
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.alert_transition($1, $2, $3, $4, $5, false, NULL)
$$;
COMMENT ON FUNCTION churn.alert_move(bigint, text, text, text, timestamptz) IS
    'move an alert to another status (open -> contacted/dismissed/churned, contacted -> retained/churned/dismissed), recording actor and note; returns the changed alert';

CREATE FUNCTION churn.alert_contact(alert_id bigint, actor text, note text DEFAULT NULL,
                                    at timestamptz DEFAULT now()) RETURNS churn.alert
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.alert_transition($1, 'contacted', $2, $3, $4, false, NULL)
$$;
COMMENT ON FUNCTION churn.alert_contact(bigint, text, text, timestamptz) IS
    'record that an open alert''s customer was contacted; returns the changed alert';

CREATE FUNCTION churn.alert_close(alert_id bigint, outcome text, actor text, note text DEFAULT NULL,
                                  at timestamptz DEFAULT now()) RETURNS churn.alert
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF outcome IS NULL OR outcome NOT IN ('retained', 'churned', 'dismissed') THEN
        RAISE EXCEPTION 'unknown alert outcome %', coalesce(quote_literal(outcome), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Outcomes are retained, churned and dismissed.';
    END IF;
    RETURN churn.alert_transition($1, $2, $3, $4, $5, false, NULL);
END
$$;
COMMENT ON FUNCTION churn.alert_close(bigint, text, text, text, timestamptz) IS
    'close an alert with an outcome: retained (after contact), churned or dismissed; returns the changed alert';

CREATE FUNCTION churn.alert_assign(alert_id bigint, assignee text, actor text, note text DEFAULT NULL,
                                   at timestamptz DEFAULT now()) RETURNS churn.alert
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.alert_transition($1, NULL, $3, $4, $5, true, $2)
$$;
COMMENT ON FUNCTION churn.alert_assign(bigint, text, text, text, timestamptz) IS
    'assign an open or contacted alert to someone (NULL: unassign); returns the changed alert';

-- Only roles granted EXECUTE may change alerts or the playbook.
REVOKE EXECUTE ON FUNCTION
    churn.alert_open_or_escalate(text, text, text, int, text, float8, float8, text[], text, timestamptz),
    churn.alert_transition(bigint, text, text, text, timestamptz, boolean, text),
    churn.raise_alert(text, churn.tier, float8, float8, text[], text, timestamptz),
    churn.raise_alert(text, text, float8, float8, text[], text, timestamptz),
    churn.alert_move(bigint, text, text, text, timestamptz),
    churn.alert_contact(bigint, text, text, timestamptz),
    churn.alert_close(bigint, text, text, text, timestamptz),
    churn.alert_assign(bigint, text, text, text, timestamptz),
    churn.playbook_set(text, text, text, int, text),
    churn.playbook_reset(text),
    churn.alert_check_time(timestamptz, timestamptz)
    FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Views for BI tools.

CREATE VIEW churn.open_alerts AS
SELECT a.alert_id::bigint AS alert_id, a.pipeline::text AS pipeline, a.customer_id::text AS customer_id,
       a.status::text AS status, a.zone::text AS zone, a.level::int AS level, a.code::text AS code,
       churn.alert_urgency(a.code)::int AS urgency, a.value_segment::text AS value_segment,
       a.p_churn::float8 AS p_churn, a.annual_value::float8 AS annual_value, a.drivers::text[] AS drivers,
       a.action::text AS action, a.channel::text AS channel, a.sla_hours::int AS sla_hours,
       a.assigned_to::text AS assigned_to, a.escalations::int AS escalations,
       a.opened_at::timestamptz AS opened_at, a.due_at::timestamptz AS due_at,
       a.contacted_at::timestamptz AS contacted_at,
       (CASE WHEN a.status = 'open' THEN extract(epoch FROM a.due_at - now()) / 3600 END)::float8 AS hours_left,
       (a.status = 'open' AND a.due_at < now())::boolean AS overdue
FROM churn.alert a
WHERE a.status IN ('open', 'contacted')
ORDER BY churn.alert_urgency(a.code) DESC, a.due_at, a.alert_id;
COMMENT ON VIEW churn.open_alerts IS
    'active alerts (open and contacted), most urgent first: red before yellow before blue, level 1 first, then the earliest deadline';
COMMENT ON COLUMN churn.open_alerts.alert_id IS 'alert number (churn.alert.alert_id)';
COMMENT ON COLUMN churn.open_alerts.pipeline IS 'pipeline that raised the alert; NULL when raised by hand';
COMMENT ON COLUMN churn.open_alerts.customer_id IS 'customer identifier, as text';
COMMENT ON COLUMN churn.open_alerts.status IS 'open (to be contacted) or contacted (waiting for the outcome)';
COMMENT ON COLUMN churn.open_alerts.zone IS 'red, yellow or blue';
COMMENT ON COLUMN churn.open_alerts.level IS 'level inside the zone, 1 = most urgent';
COMMENT ON COLUMN churn.open_alerts.code IS 'tier code R1..B2';
COMMENT ON COLUMN churn.open_alerts.urgency IS 'R1 = 9 (most urgent) .. B2 = 1, for sorting';
COMMENT ON COLUMN churn.open_alerts.value_segment IS 'value segment (high, medium, low); NULL when raised from a bare code';
COMMENT ON COLUMN churn.open_alerts.p_churn IS 'churn probability when raised or last escalated';
COMMENT ON COLUMN churn.open_alerts.annual_value IS 'annual value (currency-neutral); NULL when unknown';
COMMENT ON COLUMN churn.open_alerts.drivers IS 'top drivers of the risk, most important first';
COMMENT ON COLUMN churn.open_alerts.action IS 'playbook action';
COMMENT ON COLUMN churn.open_alerts.channel IS 'playbook channel';
COMMENT ON COLUMN churn.open_alerts.sla_hours IS 'hours allowed from raising (or escalating) to first contact';
COMMENT ON COLUMN churn.open_alerts.assigned_to IS 'who handles it; NULL when unassigned';
COMMENT ON COLUMN churn.open_alerts.escalations IS 'how often it was escalated to a more urgent code';
COMMENT ON COLUMN churn.open_alerts.opened_at IS 'when it was raised';
COMMENT ON COLUMN churn.open_alerts.due_at IS 'contact deadline';
COMMENT ON COLUMN churn.open_alerts.contacted_at IS 'when the customer was contacted; NULL while open';
COMMENT ON COLUMN churn.open_alerts.hours_left IS 'hours until due_at (negative when overdue); NULL once contacted';
COMMENT ON COLUMN churn.open_alerts.overdue IS 'true when still open after due_at';

CREATE VIEW churn.overdue_alerts AS
SELECT a.alert_id::bigint AS alert_id, a.pipeline::text AS pipeline, a.customer_id::text AS customer_id,
       a.zone::text AS zone, a.level::int AS level, a.code::text AS code,
       churn.alert_urgency(a.code)::int AS urgency,
       a.action::text AS action, a.channel::text AS channel, a.sla_hours::int AS sla_hours,
       a.assigned_to::text AS assigned_to, a.escalations::int AS escalations,
       a.opened_at::timestamptz AS opened_at, a.due_at::timestamptz AS due_at,
       (extract(epoch FROM now() - a.due_at) / 3600)::float8 AS hours_overdue
FROM churn.alert a
WHERE a.status = 'open' AND a.due_at < now()
ORDER BY churn.alert_urgency(a.code) DESC, a.due_at, a.alert_id;
COMMENT ON VIEW churn.overdue_alerts IS
    'open alerts past their contact deadline (not contacted within the SLA), most urgent first';
COMMENT ON COLUMN churn.overdue_alerts.alert_id IS 'alert number (churn.alert.alert_id)';
COMMENT ON COLUMN churn.overdue_alerts.pipeline IS 'pipeline that raised the alert; NULL when raised by hand';
COMMENT ON COLUMN churn.overdue_alerts.customer_id IS 'customer identifier, as text';
COMMENT ON COLUMN churn.overdue_alerts.zone IS 'red, yellow or blue';
COMMENT ON COLUMN churn.overdue_alerts.level IS 'level inside the zone, 1 = most urgent';
COMMENT ON COLUMN churn.overdue_alerts.code IS 'tier code R1..B2';
COMMENT ON COLUMN churn.overdue_alerts.urgency IS 'R1 = 9 (most urgent) .. B2 = 1, for sorting';
COMMENT ON COLUMN churn.overdue_alerts.action IS 'playbook action';
COMMENT ON COLUMN churn.overdue_alerts.channel IS 'playbook channel';
COMMENT ON COLUMN churn.overdue_alerts.sla_hours IS 'hours allowed from raising (or escalating) to first contact';
COMMENT ON COLUMN churn.overdue_alerts.assigned_to IS 'who handles it; NULL when unassigned';
COMMENT ON COLUMN churn.overdue_alerts.escalations IS 'how often it was escalated to a more urgent code';
COMMENT ON COLUMN churn.overdue_alerts.opened_at IS 'when it was raised';
COMMENT ON COLUMN churn.overdue_alerts.due_at IS 'contact deadline that passed';
COMMENT ON COLUMN churn.overdue_alerts.hours_overdue IS 'hours since due_at (> 0)';

-- Outcomes by tier and action: one row per code of the playbook in force
-- (so every code appears, with zero alerts) plus one per (code, action) that
-- alerts were raised with under an earlier playbook.
CREATE VIEW churn.alert_outcomes AS
WITH a AS (
    SELECT a.*,
           extract(epoch FROM a.contacted_at - (a.due_at - make_interval(hours => a.sla_hours))) / 3600
               AS hours_to_contact,
           (a.contacted_at IS NOT NULL OR a.due_at <= coalesce(a.closed_at, now())) AS sla_decided
    FROM churn.alert a
), k AS (
    SELECT p.zone, p.level, p.code, p.action FROM churn.playbook_effective p
    UNION
    SELECT a.zone, a.level, a.code, a.action FROM churn.alert a
)
SELECT k.zone::text AS zone, k.level::int AS level, k.code::text AS code,
       churn.alert_urgency(k.code)::int AS urgency, k.action::text AS action,
       count(a.alert_id)::bigint AS alerts,
       count(a.alert_id) FILTER (WHERE a.status = 'open')::bigint AS open,
       count(a.alert_id) FILTER (WHERE a.status = 'contacted')::bigint AS contacted,
       count(a.alert_id) FILTER (WHERE a.status IN ('retained', 'churned', 'dismissed'))::bigint AS closed,
       count(a.alert_id) FILTER (WHERE a.status = 'retained')::bigint AS retained,
       count(a.alert_id) FILTER (WHERE a.status = 'churned')::bigint AS churned,
       count(a.alert_id) FILTER (WHERE a.status = 'dismissed')::bigint AS dismissed,
       (count(a.alert_id) FILTER (WHERE a.status = 'retained')::float8
        / nullif(count(a.alert_id) FILTER (WHERE a.status IN ('retained', 'churned')), 0))::float8 AS retention_rate,
       count(a.contacted_at)::bigint AS ever_contacted,
       (percentile_cont(0.5) WITHIN GROUP (ORDER BY a.hours_to_contact))::float8 AS median_hours_to_contact,
       avg(a.hours_to_contact)::float8 AS avg_hours_to_contact,
       (count(a.alert_id) FILTER (WHERE a.contacted_at <= a.due_at)::float8
        / nullif(count(a.alert_id) FILTER (WHERE a.sla_decided), 0))::float8 AS contacted_within_sla
FROM k
LEFT JOIN a ON a.code = k.code AND a.action = k.action
GROUP BY k.zone, k.level, k.code, k.action
ORDER BY churn.alert_urgency(k.code) DESC, k.action;
COMMENT ON VIEW churn.alert_outcomes IS
    'alert outcomes by zone, level, code and playbook action, over all pipelines: counts by status, retention rate, time to first contact and the share contacted within the SLA; every code of the playbook in force appears, also with no alerts';
COMMENT ON COLUMN churn.alert_outcomes.zone IS 'red, yellow or blue';
COMMENT ON COLUMN churn.alert_outcomes.level IS 'level inside the zone, 1 = most urgent';
COMMENT ON COLUMN churn.alert_outcomes.code IS 'tier code R1..B2 (an escalated alert counts under its last code)';
COMMENT ON COLUMN churn.alert_outcomes.urgency IS 'R1 = 9 (most urgent) .. B2 = 1, for sorting';
COMMENT ON COLUMN churn.alert_outcomes.action IS 'playbook action the alerts carried';
COMMENT ON COLUMN churn.alert_outcomes.alerts IS 'alerts raised (any status)';
COMMENT ON COLUMN churn.alert_outcomes.open IS 'alerts still open (not contacted)';
COMMENT ON COLUMN churn.alert_outcomes.contacted IS 'alerts contacted and waiting for the outcome';
COMMENT ON COLUMN churn.alert_outcomes.closed IS 'alerts closed: retained + churned + dismissed';
COMMENT ON COLUMN churn.alert_outcomes.retained IS 'alerts closed as retained';
COMMENT ON COLUMN churn.alert_outcomes.churned IS 'alerts closed as churned';
COMMENT ON COLUMN churn.alert_outcomes.dismissed IS 'alerts closed as dismissed (not counted in the retention rate)';
COMMENT ON COLUMN churn.alert_outcomes.retention_rate IS 'retained / (retained + churned), 0..1; NULL while neither';
COMMENT ON COLUMN churn.alert_outcomes.ever_contacted IS 'alerts with a contact for their current code (contacted or closed after contact)';
COMMENT ON COLUMN churn.alert_outcomes.median_hours_to_contact IS 'median hours from raising (or the last escalation) to contact, over contacted alerts; NULL when none';
COMMENT ON COLUMN churn.alert_outcomes.avg_hours_to_contact IS 'mean hours from raising (or the last escalation) to contact, over contacted alerts; NULL when none';
COMMENT ON COLUMN churn.alert_outcomes.contacted_within_sla IS 'share, 0..1, of alerts contacted by due_at among those whose SLA is decided (contacted, or still uncontacted when due_at passed); NULL when none is decided';

-- ---------------------------------------------------------------------------
-- The read-only role for BI tools: the views and nothing else.  Roles belong
-- to the cluster, not the extension: it is created once and left in place
-- by DROP EXTENSION.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'churn_reader') THEN
        CREATE ROLE churn_reader NOLOGIN;
    END IF;
END
$$;
COMMENT ON ROLE churn_reader IS
    'reads the churn_warning views (churn.open_alerts, churn.overdue_alerts, churn.alert_outcomes, churn.playbook_effective, churn.tier_codes) and nothing else; grant it to BI logins';
GRANT USAGE ON SCHEMA churn TO churn_reader;
GRANT SELECT ON churn.open_alerts, churn.overdue_alerts, churn.alert_outcomes, churn.playbook_effective,
                churn.tier_codes
    TO churn_reader;
