-- churn_warning install script, part 940 (0.3.0): alerts belong to a
-- pipeline's identity, and only its owner raises or moves them by hand.
--
-- Changes against 0.2.0 (part 810):
--   - churn.alert.pipeline_id: the pipeline that raised the alert (kept
--     when the pipeline is renamed; a new pipeline with a dropped one's name
--     gets a new id and none of its alerts).  An alert raised by hand with a
--     pipeline name that is a pipeline belongs to it; any other name is a
--     free label, as before.
--   - raise_alert, alert_move, alert_contact, alert_close and alert_assign
--     are C functions without SECURITY DEFINER (src/alerts.c): they pass the
--     calling role to the internal functions below, which refuse an alert of
--     a pipeline the caller does not own.  EXECUTE stays revoked from PUBLIC:
--     grant it to the roles that handle alerts.
--   - the NOTIFY churn_alert payload names the event only ('opened',
--     'escalated'): any role can LISTEN, so it carries no customer data.

ALTER TABLE churn.alert ADD COLUMN pipeline_id int;
COMMENT ON COLUMN churn.alert.pipeline_id IS
    'id of the pipeline the alert belongs to (churn.pipeline.pipeline_id, also after a rename or drop); NULL for an alert raised by hand without a pipeline';
-- alerts of 0.2.0 pipelines that still exist belong to them
UPDATE churn.alert a SET pipeline_id = p.pipeline_id FROM churn.pipeline p WHERE a.pipeline = p.name;

-- At most one active alert per customer and pipeline, or per customer and
-- label for alerts raised by hand.
DROP INDEX churn.alert_active_customer;
CREATE UNIQUE INDEX alert_active_customer ON churn.alert ((coalesce(pipeline, '')), customer_id)
    WHERE status IN ('open', 'contacted') AND pipeline_id IS NULL;
CREATE UNIQUE INDEX alert_active_pipeline ON churn.alert (pipeline_id, customer_id)
    WHERE status IN ('open', 'contacted') AND pipeline_id IS NOT NULL;

-- The NOTIFY payload of an alert event: the event only.
CREATE OR REPLACE FUNCTION churn.alert_payload(a churn.alert, event text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT json_build_object('event', event)::text
$$;
COMMENT ON FUNCTION churn.alert_payload(churn.alert, text) IS
    'payload sent on channel churn_alert: {"event": "opened" | "escalated"}; no alert, customer or pipeline, since any role can LISTEN';

-- The pipeline an alert raised by hand belongs to: the pipeline of that
-- name when there is one (and the caller owns it), else NULL (a label).
CREATE FUNCTION churn.alert_pipeline_for(p_pipeline text, caller oid) RETURNS int
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    p churn.pipeline;
BEGIN
    SELECT * INTO p FROM churn.pipeline q WHERE q.name = p_pipeline;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF NOT pg_has_role(caller, p.owner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of pipeline "%"', p.name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Only the role that owns a pipeline (or a member of it) may raise or move its alerts.';
    END IF;
    RETURN p.pipeline_id;
END
$$;

-- Check that the caller may move an alert: its pipeline's owner, or any
-- role with EXECUTE for alerts raised by hand without a pipeline.
CREATE FUNCTION churn.alert_check_owner(p_alert_id bigint, caller oid) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    pid int;
    p churn.pipeline;
BEGIN
    SELECT a.pipeline_id INTO pid FROM churn.alert a WHERE a.alert_id = p_alert_id;
    IF pid IS NULL THEN
        RETURN;                     -- no such alert (alert_transition says so) or raised by hand
    END IF;
    SELECT * INTO p FROM churn.pipeline q WHERE q.pipeline_id = pid;
    IF NOT FOUND OR NOT pg_has_role(caller, p.owner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of the pipeline of alert %', p_alert_id
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Only the role that owns a pipeline (or a member of it) may raise or move its alerts.';
    END IF;
END
$$;

-- The one alert path: open alerts, or escalate the customers' active
-- alerts to a more urgent code, for a set of candidates of one pipeline (or
-- of one label, for alerts raised by hand: p_pipeline_id NULL).  A
-- candidate whose active alert is as or more urgent changes nothing.
-- Returns one row per candidate with its alert and what happened
-- ('opened', 'escalated', 'unchanged'); a candidate whose insert lost a race
-- with a concurrent transaction returns no row.
CREATE FUNCTION churn.alert_raise_set(p_pipeline_id int, p_pipeline text, cands churn.pipeline_alert_candidate[],
                                      p_at timestamptz, p_actor text, p_control_share float8 DEFAULT 0,
                                      p_control_zones jsonb DEFAULT NULL)
    RETURNS TABLE (customer_id text, alert_id bigint, event text)
    LANGUAGE sql SET search_path = pg_catalog, pg_temp SET enable_nestloop = off SET jit = off AS
$$
    WITH c AS (
        SELECT u.*, pb.zone, pb.level, pb.sla_hours,
               -- a held-out customer (part 935) gets no action; else the
               -- action for the zone and reason (part 917), or the code's
               CASE WHEN arm.arm = 'control' THEN 'control group: no action'
                    ELSE coalesce(pr.action, pb.action) END AS action,
               CASE WHEN arm.arm = 'control' THEN 'none' ELSE coalesce(pr.channel, pb.channel) END AS channel, arm.arm
        FROM unnest(cands) u JOIN churn.playbook_effective pb ON pb.code = u.code
        LEFT JOIN churn.playbook_reason_effective pr ON pr.zone = pb.zone AND pr.reason = u.reason
        CROSS JOIN LATERAL (SELECT CASE WHEN p_pipeline_id IS NULL THEN 'treatment'
                                        ELSE churn.alert_arm(p_pipeline_id, u.customer_id,
                                                             coalesce((p_control_zones->>pb.zone)::float8,
                                                                      p_control_share))
                                   END AS arm) arm
    ), cur AS MATERIALIZED (
        -- the active alerts of these customers (two branches so that each
        -- uses its partial unique index), locked
        SELECT a.alert_id, a.customer_id, a.code, a.status, a.last_changed_at
        FROM churn.alert a
        WHERE a.alert_id IN (
            SELECT a1.alert_id FROM churn.alert a1
            WHERE p_pipeline_id IS NOT NULL AND a1.pipeline_id = p_pipeline_id
              AND a1.status IN ('open', 'contacted') AND a1.customer_id IN (SELECT c.customer_id FROM c)
            UNION ALL
            SELECT a2.alert_id FROM churn.alert a2
            WHERE p_pipeline_id IS NULL AND a2.pipeline_id IS NULL
              AND coalesce(a2.pipeline, '') = coalesce(p_pipeline, '')
              AND a2.status IN ('open', 'contacted') AND a2.customer_id IN (SELECT c.customer_id FROM c))
        FOR UPDATE OF a
    ), esc AS (
        UPDATE churn.alert a
        SET code = c.code, zone = c.zone, level = c.level, value_segment = c.value_segment, p_churn = c.p_churn,
            annual_value = c.annual_value, drivers = coalesce(c.drivers, '{}'), store = c.store, reason = c.reason,
            action = CASE WHEN a.arm = 'control' THEN a.action ELSE c.action END,
            channel = CASE WHEN a.arm = 'control' THEN a.channel ELSE c.channel END, sla_hours = c.sla_hours,
            status = 'open',
            due_at = p_at + make_interval(hours => c.sla_hours), contacted_at = NULL,
            escalations = a.escalations + 1, last_changed_at = p_at
        FROM c JOIN cur ON cur.customer_id = c.customer_id
        WHERE a.alert_id = cur.alert_id AND churn.alert_urgency(c.code) > churn.alert_urgency(cur.code)
        RETURNING a AS alert, cur.status AS from_status, cur.code AS from_code
    ), ins AS (
        INSERT INTO churn.alert AS a (pipeline_id, pipeline, customer_id, code, zone, level, value_segment, p_churn,
                                      annual_value, drivers, action, channel, sla_hours, status, opened_at,
                                      due_at, last_changed_at, arm, store, reason)
        SELECT p_pipeline_id, p_pipeline, c.customer_id, c.code, c.zone, c.level, c.value_segment, c.p_churn,
               c.annual_value, coalesce(c.drivers, '{}'), c.action, c.channel, c.sla_hours, 'open', p_at,
               p_at + make_interval(hours => c.sla_hours), p_at, c.arm, c.store, c.reason
        FROM c WHERE NOT EXISTS (SELECT 1 FROM cur WHERE cur.customer_id = c.customer_id)
        ON CONFLICT DO NOTHING
        RETURNING a AS alert
    ), done AS (
        SELECT e.alert, 'escalated' AS event, e.from_status, e.from_code FROM esc e
        UNION ALL
        SELECT i.alert, 'opened', NULL, NULL FROM ins i
    ), ev AS (
        INSERT INTO churn.alert_event (alert_id, at, event, from_status, to_status, from_code, to_code, actor, note)
        SELECT (d.alert).alert_id, p_at, d.event, d.from_status, 'open', d.from_code, (d.alert).code,
               p_actor, format('p_churn %s', (d.alert).p_churn)
        FROM done d
        RETURNING 1
    ), nt AS (
        -- staff are told of treatment alerts only
        SELECT pg_notify('churn_alert', churn.alert_payload(d.alert, d.event)) FROM done d
        WHERE (d.alert).arm = 'treatment'
    )
    SELECT (d.alert).customer_id, (d.alert).alert_id, d.event
    FROM done d
    WHERE (SELECT count(*) FROM ev) >= 0 AND (SELECT count(*) FROM nt) >= 0
    UNION ALL
    SELECT cur.customer_id, cur.alert_id, 'unchanged'
    FROM cur WHERE NOT EXISTS (SELECT 1 FROM esc e WHERE (e.alert).alert_id = cur.alert_id)
$$;
COMMENT ON FUNCTION churn.alert_raise_set(int, text, churn.pipeline_alert_candidate[], timestamptz, text, float8, jsonb) IS
    'alert internal: opens or escalates the alerts of a set of candidates; the one path behind refreshes and churn.raise_alert';

-- Alerts of one refresh: the set path with the refresh's time and the
-- pipeline as actor; returns the number of alerts opened or escalated.
DROP FUNCTION churn.pipeline_raise_alerts(text, churn.pipeline_alert_candidate[]);
CREATE FUNCTION churn.pipeline_raise_alerts(p_pipeline_id int, cands churn.pipeline_alert_candidate[])
    RETURNS bigint
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS
$$
    SELECT count(*) FILTER (WHERE r.event <> 'unchanged')
    FROM churn.pipeline p
    CROSS JOIN LATERAL churn.alert_raise_set(p.pipeline_id, p.name, cands, now(), p.name, p.control_share,
                                             p.control_zones) r
    WHERE p.pipeline_id = p_pipeline_id AND cardinality(cands) > 0
$$;
COMMENT ON FUNCTION churn.pipeline_raise_alerts(int, churn.pipeline_alert_candidate[]) IS
    'pipeline internal: opens or escalates the alerts of one refresh (churn.alert_raise_set)';

-- One alert raised by hand: checks the arguments, then the set path with
-- one candidate (twice when a concurrent transaction opened the same
-- customer's alert in between).  Returns the alert id; NULL for zone none.
DROP FUNCTION churn.alert_open_or_escalate(text, text, text, int, text, float8, float8, text[], text, timestamptz);
CREATE FUNCTION churn.alert_open_or_escalate(p_customer_id text, p_code text, p_zone text, p_level int,
                                             p_value_segment text, p_churn float8, p_annual_value float8,
                                             p_drivers text[], p_pipeline_id int, p_pipeline text, p_at timestamptz,
                                             p_actor text) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    pb churn.playbook_effective;
    id bigint;
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
    -- an escalation may not be dated before the alert's last change
    PERFORM churn.alert_check_time(p_at, a.last_changed_at)
    FROM churn.alert a
    WHERE a.customer_id = p_customer_id AND a.status IN ('open', 'contacted')
      AND CASE WHEN p_pipeline_id IS NOT NULL THEN a.pipeline_id = p_pipeline_id
               ELSE a.pipeline_id IS NULL AND coalesce(a.pipeline, '') = coalesce(p_pipeline, '') END
      AND churn.alert_urgency(p_code) > churn.alert_urgency(a.code);
    FOR attempt IN 1 .. 2 LOOP
        SELECT r.alert_id INTO id
        FROM churn.alert_raise_set(p_pipeline_id, p_pipeline,
                                   ARRAY[ROW(p_customer_id, p_code, p_value_segment, p_churn, p_annual_value,
                                             p_drivers, NULL, NULL)::churn.pipeline_alert_candidate],
                                   p_at, coalesce(p_pipeline, p_actor)) r;
        IF id IS NOT NULL THEN
            RETURN id;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'could not open an alert for customer % (concurrent changes)', p_customer_id
        USING ERRCODE = 'serialization_failure', HINT = 'Retry the transaction.';
END
$$;

CREATE FUNCTION churn.raise_alert_internal(customer_id text, tier churn.tier, p_churn float8,
                                           annual_value float8, drivers text[], pipeline text, at timestamptz,
                                           caller oid) RETURNS bigint
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.alert_open_or_escalate($1, ($2).code, ($2).zone, ($2).level, ($2).value_segment, $3, $4, $5,
                                        churn.alert_pipeline_for($6, $8), $6, $7, $8::regrole::text)
$$;

CREATE FUNCTION churn.raise_alert_internal(customer_id text, code text, p_churn float8,
                                           annual_value float8, drivers text[], pipeline text, at timestamptz,
                                           caller oid) RETURNS bigint
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.alert_open_or_escalate($1, $2,
                                        churn.tier_code_zone($2), churn.tier_code_level($2),
                                        NULL, $3, $4, $5, churn.alert_pipeline_for($6, $8), $6, $7,
                                        $8::regrole::text)
$$;

CREATE FUNCTION churn.alert_move_internal(alert_id bigint, to_status text, actor text, note text, at timestamptz,
                                          caller oid) RETURNS churn.alert
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    PERFORM churn.alert_check_owner($1, $6);
    RETURN churn.alert_transition($1, $2, $3, $4, $5, false, NULL);
END
$$;

CREATE FUNCTION churn.alert_contact_internal(alert_id bigint, actor text, note text, at timestamptz,
                                             caller oid) RETURNS churn.alert
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    PERFORM churn.alert_check_owner($1, $5);
    RETURN churn.alert_transition($1, 'contacted', $2, $3, $4, false, NULL);
END
$$;

CREATE FUNCTION churn.alert_close_internal(alert_id bigint, outcome text, actor text, note text, at timestamptz,
                                           caller oid) RETURNS churn.alert
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF outcome IS NULL OR outcome NOT IN ('retained', 'churned', 'dismissed') THEN
        RAISE EXCEPTION 'unknown alert outcome %', coalesce(quote_literal(outcome), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Outcomes are retained, churned and dismissed.';
    END IF;
    PERFORM churn.alert_check_owner($1, $6);
    RETURN churn.alert_transition($1, $2, $3, $4, $5, false, NULL);
END
$$;

CREATE FUNCTION churn.alert_assign_internal(alert_id bigint, assignee text, actor text, note text, at timestamptz,
                                            caller oid) RETURNS churn.alert
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    PERFORM churn.alert_check_owner($1, $6);
    RETURN churn.alert_transition($1, NULL, $3, $4, $5, true, $2);
END
$$;

-- The functions users call: C, acting for their caller (src/alerts.c).
CREATE OR REPLACE FUNCTION churn.raise_alert(customer_id text, tier churn.tier, p_churn float8,
                                             annual_value float8 DEFAULT NULL, drivers text[] DEFAULT '{}',
                                             pipeline text DEFAULT NULL, at timestamptz DEFAULT now())
    RETURNS bigint AS 'MODULE_PATHNAME', 'raise_alert' LANGUAGE C VOLATILE;
CREATE OR REPLACE FUNCTION churn.raise_alert(customer_id text, code text, p_churn float8,
                                             annual_value float8 DEFAULT NULL, drivers text[] DEFAULT '{}',
                                             pipeline text DEFAULT NULL, at timestamptz DEFAULT now())
    RETURNS bigint AS 'MODULE_PATHNAME', 'raise_alert' LANGUAGE C VOLATILE;
CREATE OR REPLACE FUNCTION churn.alert_move(alert_id bigint, to_status text, actor text, note text DEFAULT NULL,
                                            at timestamptz DEFAULT now()) RETURNS churn.alert
    AS 'MODULE_PATHNAME', 'alert_move' LANGUAGE C VOLATILE;
CREATE OR REPLACE FUNCTION churn.alert_contact(alert_id bigint, actor text, note text DEFAULT NULL,
                                               at timestamptz DEFAULT now()) RETURNS churn.alert
    AS 'MODULE_PATHNAME', 'alert_contact' LANGUAGE C VOLATILE;
CREATE OR REPLACE FUNCTION churn.alert_close(alert_id bigint, outcome text, actor text, note text DEFAULT NULL,
                                             at timestamptz DEFAULT now()) RETURNS churn.alert
    AS 'MODULE_PATHNAME', 'alert_close' LANGUAGE C VOLATILE;
CREATE OR REPLACE FUNCTION churn.alert_assign(alert_id bigint, assignee text, actor text, note text DEFAULT NULL,
                                              at timestamptz DEFAULT now()) RETURNS churn.alert
    AS 'MODULE_PATHNAME', 'alert_assign' LANGUAGE C VOLATILE;

REVOKE EXECUTE ON FUNCTION churn.pipeline_raise_alerts(int, churn.pipeline_alert_candidate[]),
    churn.alert_raise_set(int, text, churn.pipeline_alert_candidate[], timestamptz, text, float8, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION
    churn.alert_pipeline_for(text, oid), churn.alert_check_owner(bigint, oid),
    churn.alert_open_or_escalate(text, text, text, int, text, float8, float8, text[], int, text, timestamptz, text),
    churn.raise_alert_internal(text, churn.tier, float8, float8, text[], text, timestamptz, oid),
    churn.raise_alert_internal(text, text, float8, float8, text[], text, timestamptz, oid),
    churn.alert_move_internal(bigint, text, text, text, timestamptz, oid),
    churn.alert_contact_internal(bigint, text, text, timestamptz, oid),
    churn.alert_close_internal(bigint, text, text, text, timestamptz, oid),
    churn.alert_assign_internal(bigint, text, text, text, timestamptz, oid)
    FROM PUBLIC;
