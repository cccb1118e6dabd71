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

-- Open an alert, or escalate the customer's active alert to a more urgent
-- code.  Returns the alert id; NULL for zone none.
DROP FUNCTION churn.alert_open_or_escalate(text, text, text, int, text, float8, float8, text[], text, timestamptz);
CREATE FUNCTION churn.alert_open_or_escalate(p_customer_id text, p_code text, p_zone text, p_level int,
                                             p_value_segment text, p_churn float8, p_annual_value float8,
                                             p_drivers text[], p_pipeline_id int, p_pipeline text, p_at timestamptz,
                                             p_actor text) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    pb churn.playbook_effective;
    cur churn.alert;
    v_actor text := coalesce(p_pipeline, p_actor);
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
        WHERE a.customer_id = p_customer_id
          AND CASE WHEN p_pipeline_id IS NOT NULL THEN a.pipeline_id = p_pipeline_id
                   ELSE a.pipeline_id IS NULL AND coalesce(a.pipeline, '') = coalesce(p_pipeline, '') END
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

        INSERT INTO churn.alert (pipeline_id, pipeline, customer_id, code, zone, level, value_segment, p_churn, annual_value,
                                 drivers, action, channel, sla_hours, status, opened_at, due_at, last_changed_at)
        VALUES (p_pipeline_id, p_pipeline, p_customer_id, p_code, pb.zone, pb.level, p_value_segment, p_churn, p_annual_value,
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
                                        CASE left($2, 1) WHEN 'R' THEN 'red' WHEN 'Y' THEN 'yellow'
                                                         WHEN 'B' THEN 'blue' WHEN 'N' THEN 'none' END,
                                        CASE WHEN $2 ~ '^[RYBN][0-9]$' THEN substr($2, 2)::int END,
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
