-- churn_warning install script, part 930 (0.3.0): limits, fair
-- scheduling and the launcher's time limit.
--
-- Changes against 0.2.0 (part 900):
--   - limits a superuser sets (per cluster, database or role, like any
--     SUSET setting): churn_warning.max_pipelines_per_role,
--     churn_warning.min_schedule, churn_warning.max_time_limit; max_failures
--     is at most 100;
--   - due pipelines are handed out round-robin by owner, so one role's
--     pipelines cannot starve another's;
--   - a refresh that outlives its time limit (a source can catch the
--     statement timeout) is ended by the launcher and recorded here as
--     timed_out by the next worker, counting as a failure;
--   - failed runs are pruned too; NOTIFY churn_pipeline says only 'paused';
--   - dropping a pipeline dismisses its open alerts;
--   - the optional events relation (part 910): create_pipeline and
--     alter_pipeline take events, event_customer_col, event_ts_col,
--     event_kind_col and event_rating_col after their 0.2.0 arguments.

CREATE FUNCTION churn.pipeline_limits(OUT max_pipelines_per_role int, OUT min_schedule interval,
                                      OUT max_time_limit interval) RETURNS record
    AS 'MODULE_PATHNAME', 'pipeline_limits' LANGUAGE C STABLE;
COMMENT ON FUNCTION churn.pipeline_limits() IS
    'the limits on pipelines in force for this session: churn_warning.max_pipelines_per_role, churn_warning.min_schedule and churn_warning.max_time_limit';

-- The events arguments of create and alter (0.3.0), validated for the
-- pipeline's owner; returns the pipeline row to write.  'events' is a
-- relation's oid, or 0 for none.
CREATE FUNCTION churn.pipeline_apply_event_args(p churn.pipeline, args jsonb) RETURNS churn.pipeline
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF args ? 'events' THEN p.events := nullif((args->>'events')::oid, 0::oid)::regclass; END IF;
    IF args ? 'event_customer_col' THEN p.event_customer_col := args->>'event_customer_col'; END IF;
    IF args ? 'event_ts_col' THEN p.event_ts_col := args->>'event_ts_col'; END IF;
    IF args ? 'event_kind_col' THEN p.event_kind_col := args->>'event_kind_col'; END IF;
    IF args ? 'event_rating_col' THEN p.event_rating_col := args->>'event_rating_col'; END IF;
    IF p.event_customer_col IS NULL OR p.event_ts_col IS NULL OR p.event_kind_col IS NULL
       OR p.event_rating_col IS NULL THEN
        RAISE EXCEPTION 'pipeline settings must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p.events IS NULL THEN
        p.event_ts_kind := NULL;
        p.event_capture := NULL;
        RETURN p;
    END IF;
    p.event_ts_kind := churn.pipeline_check_events(p.events, p.event_customer_col, p.event_ts_col, p.event_kind_col,
                                                   p.event_rating_col, p.owner);
    p.event_capture := churn.pipeline_capture_mode(p.events, p.owner);  -- part 973
    RETURN p;
END
$$;

-- Arguments of create and alter, validated against the limits; returns the
-- pipeline row to write.
CREATE OR REPLACE FUNCTION churn.pipeline_apply_args(p churn.pipeline, args jsonb, caller oid) RETURNS churn.pipeline
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    lim record := churn.pipeline_limits();
    k text;
    known text[] := ARRAY['name', 'source', 'customer_col', 'ts_col', 'amount_col', 'model', 'policy',
                          'horizon_days', 'window_days', 'schedule', 'time_zone', 'time_limit', 'max_failures',
                          'alert_zones', 'alert_max_idle_days', 'run_retention', 'start_at', 'owner',
                          'events', 'event_customer_col', 'event_ts_col', 'event_kind_col', 'event_rating_col',
                          'control_share', 'outcome_days', 'store_col', 'control_zones'];
    new_owner oid;
BEGIN
    FOR k IN SELECT jsonb_object_keys(args) LOOP
        IF NOT k = ANY (known) THEN
            RAISE EXCEPTION 'unknown pipeline setting "%"', k USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    IF args ? 'name' THEN p.name := args->>'name'; END IF;
    IF args ? 'source' THEN p.source := (args->>'source')::oid::regclass; END IF;
    IF args ? 'customer_col' THEN p.customer_col := args->>'customer_col'; END IF;
    IF args ? 'ts_col' THEN p.ts_col := args->>'ts_col'; END IF;
    IF args ? 'amount_col' THEN p.amount_col := args->>'amount_col'; END IF;
    IF args ? 'model' THEN p.model := args->>'model'; END IF;
    IF args ? 'policy' THEN p.policy := args->>'policy'; END IF;
    IF args ? 'horizon_days' THEN p.horizon_days := (args->>'horizon_days')::int; END IF;
    IF args ? 'window_days' THEN p.window_days := (args->>'window_days')::int; END IF;
    IF args ? 'schedule' THEN p.schedule := (args->>'schedule')::interval; END IF;
    IF args ? 'time_zone' THEN p.time_zone := args->>'time_zone'; END IF;
    IF args ? 'time_limit' THEN p.time_limit := (args->>'time_limit')::interval; END IF;
    IF args ? 'max_failures' THEN p.max_failures := (args->>'max_failures')::int; END IF;
    IF args ? 'alert_zones' THEN
        p.alert_zones := ARRAY(SELECT jsonb_array_elements_text(args->'alert_zones'));
    END IF;
    IF args ? 'alert_max_idle_days' THEN p.alert_max_idle_days := (args->>'alert_max_idle_days')::int; END IF;
    IF args ? 'run_retention' THEN p.run_retention := (args->>'run_retention')::interval; END IF;
    IF args ? 'owner' THEN
        new_owner := (args->>'owner')::oid;
        IF NOT pg_has_role(caller, new_owner, 'MEMBER') THEN
            RAISE EXCEPTION 'must be a member of role "%" to give it a pipeline', new_owner::regrole
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        p.owner := new_owner;
    END IF;

    IF p.name IS NULL OR p.name = '' THEN
        RAISE EXCEPTION 'a pipeline needs a name' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p.source IS NULL OR p.customer_col IS NULL OR p.ts_col IS NULL OR p.amount_col IS NULL
       OR p.model IS NULL OR p.policy IS NULL OR p.horizon_days IS NULL OR p.window_days IS NULL
       OR p.schedule IS NULL OR p.time_zone IS NULL OR p.time_limit IS NULL OR p.max_failures IS NULL
       OR p.alert_zones IS NULL OR p.run_retention IS NULL THEN
        RAISE EXCEPTION 'pipeline settings must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p.horizon_days <= 0 THEN
        RAISE EXCEPTION 'horizon_days must be positive, got %', p.horizon_days USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p.window_days < 1 OR p.window_days > 36525 THEN
        RAISE EXCEPTION 'window_days must be between 1 and 36525, got %', p.window_days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p.schedule < lim.min_schedule THEN
        RAISE EXCEPTION 'schedule must be at least % s, got %', extract(epoch FROM lim.min_schedule)::bigint, p.schedule
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A superuser sets the shortest schedule with churn_warning.min_schedule.';
    END IF;
    IF p.time_limit < interval '1 second' THEN
        RAISE EXCEPTION 'time_limit must be at least 1 second, got %', p.time_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p.time_limit > lim.max_time_limit THEN
        RAISE EXCEPTION 'time_limit must be at most % s, got %', extract(epoch FROM lim.max_time_limit)::bigint, p.time_limit
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A superuser sets the longest time limit with churn_warning.max_time_limit.';
    END IF;
    IF p.max_failures < 1 OR p.max_failures > 100 THEN
        RAISE EXCEPTION 'max_failures must be between 1 and 100, got %', p.max_failures
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT p.alert_zones <@ ARRAY['red', 'yellow', 'blue'] THEN
        RAISE EXCEPTION 'alert_zones may hold red, yellow and blue, got %', p.alert_zones
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p.alert_max_idle_days <= 0 THEN
        RAISE EXCEPTION 'alert_max_idle_days must be positive or NULL, got %', p.alert_max_idle_days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p.run_retention < interval '1 hour' THEN
        RAISE EXCEPTION 'run_retention must be at least 1 hour, got %', p.run_retention
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = p.time_zone)
       AND NOT EXISTS (SELECT 1 FROM pg_timezone_abbrevs WHERE abbrev = p.time_zone) THEN
        RAISE EXCEPTION 'unknown time zone "%"', p.time_zone USING ERRCODE = 'invalid_parameter_value';
    END IF;
    p.ts_kind := churn.pipeline_check_source(p.source, p.customer_col, p.ts_col, p.amount_col, p.owner);
    p := churn.pipeline_apply_event_args(p, args);
    p := churn.pipeline_apply_retention_args(p, args);
    PERFORM churn.pipeline_check_model(p.model);
    PERFORM churn.warning_tier(0.5, 0, p.policy);     -- an unknown policy fails here
    p.capture := churn.pipeline_capture_mode(p.source, p.owner);  -- part 973
    IF (p.pipeline_id IS NULL OR args ? 'owner')
       AND (SELECT count(*) FROM churn.pipeline q
            WHERE q.owner = p.owner AND q.pipeline_id IS DISTINCT FROM p.pipeline_id) >= lim.max_pipelines_per_role THEN
        RAISE EXCEPTION 'role % already owns % pipelines', p.owner, lim.max_pipelines_per_role
            USING ERRCODE = 'configuration_limit_exceeded',
                  HINT = 'Drop a pipeline first; a superuser sets the limit with churn_warning.max_pipelines_per_role.';
    END IF;
    IF args ? 'start_at' THEN
        p.anchor_at := (args->>'start_at')::timestamptz;
        p.next_run_at := p.anchor_at;
    END IF;
    RETURN p;
END
$$;

DROP FUNCTION churn.pipeline_due();
-- Due pipelines, round-robin by owner (each owner's earliest first), with
-- the time limit capped by churn_warning.max_time_limit.
CREATE FUNCTION churn.pipeline_due() RETURNS TABLE (pipeline_id int, name text, time_limit_ms bigint)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT p.pipeline_id, p.name, (1000 * extract(epoch FROM least(p.time_limit, l.max_time_limit)))::bigint
    FROM churn.pipeline p, churn.pipeline_limits() l
    WHERE p.state = 'active' AND p.next_run_at <= now()
    ORDER BY row_number() OVER (PARTITION BY p.owner ORDER BY p.next_run_at, p.pipeline_id),
             p.next_run_at, p.pipeline_id
$$;

-- At the start of a database worker: record the run the launcher ended
-- for overstaying its time limit (timed_out, a failure), then mark runs
-- left 'running' by a process that is gone as interrupted.
DROP FUNCTION churn.pipeline_worker_start();
CREATE FUNCTION churn.pipeline_worker_start(overrun_run_id bigint) RETURNS int
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    n int;
BEGIN
    IF overrun_run_id IS NOT NULL THEN
        PERFORM churn.pipeline_run_failed(overrun_run_id, '57014',
            'canceling refresh: it overstayed its time limit and was ended by the launcher',
            'The refresh went on after its statement timeout (a source that catches query_canceled?).');
    END IF;
    UPDATE churn.pipeline_run r
    SET status = 'interrupted', finished_at = now(),
        error_message = 'the refresh was interrupted (server restart, crash or terminated worker)'
    WHERE r.status = 'running'
      AND (r.started_at < pg_postmaster_start_time()
           OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.pid));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Record a failed scheduled run (see part 900).
CREATE OR REPLACE FUNCTION churn.pipeline_run_failed(p_run_id bigint, sqlstate text, message text, detail text)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    r churn.pipeline_run;
    p churn.pipeline;
    fails int;
    base float8;
    cap float8;
    delay float8;
    owner_gone boolean;
BEGIN
    SELECT * INTO r FROM churn.pipeline_run WHERE run_id = p_run_id AND status = 'running' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF sqlstate = '55P03' THEN            -- a manual refresh holds the pipeline
        UPDATE churn.pipeline_run SET status = 'skipped', finished_at = clock_timestamp(), error_code = sqlstate,
            error_message = message WHERE run_id = p_run_id;
        RETURN;
    END IF;
    UPDATE churn.pipeline_run
    -- 57014 is also a pg_cancel_backend(): only the time limit is 'timed_out'
    -- (0.3.0, part 922: the others 'cancelled')
    SET status = CASE WHEN sqlstate = '57014'
                           AND (message LIKE '%statement timeout%' OR message LIKE '%time limit%') THEN 'timed_out'
                      WHEN sqlstate = '57014' THEN 'cancelled'
                      ELSE 'failed' END,
        finished_at = clock_timestamp(), error_code = sqlstate, error_message = message, error_detail = detail
    WHERE run_id = p_run_id;
    SELECT * INTO p FROM churn.pipeline WHERE pipeline_id = r.pipeline_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    fails := p.consecutive_failures + 1;
    owner_gone := NOT EXISTS (SELECT 1 FROM pg_roles WHERE oid = p.owner);
    -- 10 s, 20 s, 40 s ... capped at the schedule and at one hour, +-25 %
    cap := least(extract(epoch FROM p.schedule), 3600);
    base := least(10, cap);
    delay := least(cap, base * 2 ^ least(fails - 1, 20)) * (0.75 + 0.5 * random());
    IF fails >= p.max_failures OR owner_gone THEN
        UPDATE churn.pipeline
        SET consecutive_failures = fails, state = 'paused',
            paused_reason = CASE WHEN owner_gone THEN 'paused: the owning role no longer exists'
                                 ELSE format('paused after %s failed runs in a row; last error: %s', fails, message) END,
            next_run_at = now() + make_interval(secs => delay)
        WHERE pipeline_id = p.pipeline_id;
        -- no pipeline name or error text: any role can LISTEN
        PERFORM pg_notify('churn_pipeline', 'paused');
        RAISE WARNING 'churn_warning: pipeline "%" paused after % failed runs in a row', p.name, fails
            USING DETAIL = format('Last error (%s): %s', sqlstate, message),
                  HINT = CASE WHEN owner_gone
                              THEN 'Give the pipeline to another role with churn.alter_pipeline(name, owner => ...), then call churn.resume_pipeline.'
                              ELSE 'Fix the cause, then call churn.resume_pipeline.' END;
    ELSE
        UPDATE churn.pipeline
        SET consecutive_failures = fails, next_run_at = now() + make_interval(secs => delay)
        WHERE pipeline_id = p.pipeline_id;
    END IF;
    PERFORM churn.pipeline_prune(p.pipeline_id);
END
$$;


CREATE OR REPLACE FUNCTION churn.pipeline_drop_internal(p_name text, args jsonb, caller oid) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    p churn.pipeline;
BEGIN
    SELECT * INTO p FROM churn.pipeline WHERE name = p_name FOR UPDATE;
    PERFORM churn.pipeline_triggers(p, false);
    -- its alerts still being handled are dismissed, with the reason in
    -- their audit trail: a new pipeline that reuses the name starts clean
    WITH cur AS (
        SELECT a.alert_id, a.status, a.code FROM churn.alert a
        WHERE a.pipeline_id = p.pipeline_id AND a.status IN ('open', 'contacted')
        FOR UPDATE
    ), ev AS (
        INSERT INTO churn.alert_event (alert_id, at, event, from_status, to_status, from_code, to_code, actor, note)
        SELECT cur.alert_id, now(), 'moved', cur.status, 'dismissed', cur.code, cur.code, 'churn.drop_pipeline',
               format('pipeline "%s" was dropped', p.name)
        FROM cur
    )
    UPDATE churn.alert a SET status = 'dismissed', closed_at = now(), last_changed_at = now()
    FROM cur WHERE a.alert_id = cur.alert_id;
    DELETE FROM churn.pipeline_queue WHERE pipeline_id = p.pipeline_id;
    DELETE FROM churn.pipeline_event_queue WHERE pipeline_id = p.pipeline_id;
    DELETE FROM churn.pipeline_customer WHERE pipeline_id = p.pipeline_id;
    DELETE FROM churn.pipeline_warning WHERE pipeline_id = p.pipeline_id;
    DELETE FROM churn.pipeline_tier_change WHERE pipeline_id = p.pipeline_id;
    DELETE FROM churn.pipeline_run WHERE pipeline_id = p.pipeline_id;
    -- the auto models it trained go too, unless another pipeline scores with one
    DELETE FROM churn.model m
    WHERE (m.metrics ->> 'pipeline_id')::int = p.pipeline_id
      AND NOT EXISTS (SELECT 1 FROM churn.pipeline o WHERE o.model = m.name AND o.pipeline_id <> p.pipeline_id);
    DELETE FROM churn.pipeline WHERE pipeline_id = p.pipeline_id;
    RETURN jsonb_build_object('pipeline', p_name, 'dropped', true);
END
$$;


-- Create and alter with the events relation's settings (0.3.0): the
-- settings of part 900, then the event columns.
CREATE OR REPLACE FUNCTION churn.pipeline_create_internal(p_name text, args jsonb, caller oid) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    p churn.pipeline;
BEGIN
    IF EXISTS (SELECT 1 FROM churn.pipeline WHERE name = p_name) THEN
        RAISE EXCEPTION 'pipeline "%" already exists', p_name USING ERRCODE = 'duplicate_object';
    END IF;
    p.name := p_name;
    p.owner := caller;
    p.customer_col := 'customer_id';
    p.ts_col := 'ts';
    p.amount_col := 'amount';
    p.model := 'auto';
    p.control_share := 0;
    -- no policy given: the one for the model (churn.tier_policy_for)
    p.policy := churn.tier_policy_for(coalesce(jsonb_strip_nulls(args)->>'model', 'auto'));
    p.horizon_days := 90;
    p.window_days := 90;
    p.schedule := interval '1 day';
    p.time_zone := current_setting('TimeZone');
    p.time_limit := interval '1 hour';
    p.max_failures := 5;
    p.alert_zones := ARRAY['red', 'yellow'];
    p.alert_max_idle_days := 365;
    p.run_retention := interval '90 days';
    p.event_customer_col := 'customer_id';
    p.event_ts_col := 'ts';
    p.event_kind_col := 'kind';
    p.event_rating_col := 'rating';
    p.state := 'active';
    p.created_at := now();
    p.consecutive_failures := 0;
    p := churn.pipeline_apply_args(p, jsonb_strip_nulls(args) - 'owner' - 'name', caller);
    IF p.anchor_at IS NULL THEN
        -- runs at local midnight + k * schedule; the first refresh right away
        p.anchor_at := date_trunc('day', now() AT TIME ZONE p.time_zone) AT TIME ZONE p.time_zone;
        p.next_run_at := now();
    END IF;
    INSERT INTO churn.pipeline (name, owner, source, customer_col, ts_col, amount_col, ts_kind, capture, model,
                                policy, horizon_days, window_days, schedule, time_zone, time_limit, max_failures,
                                alert_zones, alert_max_idle_days, run_retention, state, created_at, anchor_at,
                                next_run_at, consecutive_failures, events, event_customer_col, event_ts_col,
                                event_kind_col, event_rating_col, event_ts_kind, event_capture, control_share,
                                outcome_days, store_col, control_zones)
    VALUES (p.name, p.owner, p.source, p.customer_col, p.ts_col, p.amount_col, p.ts_kind, p.capture, p.model,
            p.policy, p.horizon_days, p.window_days, p.schedule, p.time_zone, p.time_limit, p.max_failures,
            p.alert_zones, p.alert_max_idle_days, p.run_retention, p.state, p.created_at, p.anchor_at,
            p.next_run_at, 0, p.events, p.event_customer_col, p.event_ts_col, p.event_kind_col, p.event_rating_col,
            p.event_ts_kind, p.event_capture, p.control_share, p.outcome_days, p.store_col, p.control_zones)
    RETURNING * INTO p;
    PERFORM churn.pipeline_triggers(p, true);
    PERFORM churn.worker_wake();
    RETURN jsonb_build_object('pipeline', p.name, 'capture', p.capture, 'next_run_at', p.next_run_at);
END
$$;

CREATE OR REPLACE FUNCTION churn.pipeline_alter_internal(p_name text, args jsonb, caller oid) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    old churn.pipeline;
    p churn.pipeline;
    a jsonb := jsonb_strip_nulls(args);
BEGIN
    SELECT * INTO old FROM churn.pipeline WHERE name = p_name FOR UPDATE;
    IF a ? 'name' AND a->>'name' <> p_name AND EXISTS (SELECT 1 FROM churn.pipeline WHERE name = a->>'name') THEN
        RAISE EXCEPTION 'pipeline "%" already exists', a->>'name' USING ERRCODE = 'duplicate_object';
    END IF;
    p := churn.pipeline_apply_args(old, a, caller);
    -- what the stored state depends on
    IF (p.source, p.customer_col, p.ts_col, p.amount_col, p.time_zone, p.ts_kind, p.capture, p.store_col)
       IS DISTINCT FROM (old.source, old.customer_col, old.ts_col, old.amount_col, old.time_zone, old.ts_kind,
                         old.capture, old.store_col) THEN
        p.base_snapshot := NULL;       -- re-read the source on the next refresh
        p.scored_model := NULL;        -- and rescore everyone (their store too)
    END IF;
    IF (p.events IS NOT NULL OR old.events IS NOT NULL)
       AND (p.events, p.event_customer_col, p.event_ts_col, p.event_kind_col, p.event_rating_col, p.event_ts_kind,
            p.event_capture, p.time_zone)
           IS DISTINCT FROM (old.events, old.event_customer_col, old.event_ts_col, old.event_kind_col,
                             old.event_rating_col, old.event_ts_kind, old.event_capture, old.time_zone) THEN
        p.event_snapshot := NULL;      -- re-read the events on the next refresh, and rescore everyone
        p.scored_model := NULL;
    END IF;
    IF (p.model, p.policy, p.horizon_days, p.window_days) IS DISTINCT FROM
       (old.model, old.policy, old.horizon_days, old.window_days) THEN
        p.scored_model := NULL;        -- rescore every customer on the next refresh
    END IF;
    IF p.schedule IS DISTINCT FROM old.schedule OR a ? 'start_at' OR p.time_zone IS DISTINCT FROM old.time_zone THEN
        IF NOT a ? 'start_at' THEN
            p.anchor_at := date_trunc('day', now() AT TIME ZONE p.time_zone) AT TIME ZONE p.time_zone;
        END IF;
        p.next_run_at := churn.pipeline_next_slot(p.anchor_at, p.schedule, p.time_zone,
                                                  coalesce(old.last_success_at, now() - p.schedule));
    END IF;
    PERFORM churn.pipeline_triggers(old, false);
    UPDATE churn.pipeline SET name = p.name, owner = p.owner, source = p.source, customer_col = p.customer_col,
        ts_col = p.ts_col, amount_col = p.amount_col, ts_kind = p.ts_kind, capture = p.capture, model = p.model,
        policy = p.policy, horizon_days = p.horizon_days, window_days = p.window_days, schedule = p.schedule,
        time_zone = p.time_zone, time_limit = p.time_limit, max_failures = p.max_failures,
        alert_zones = p.alert_zones, alert_max_idle_days = p.alert_max_idle_days, run_retention = p.run_retention,
        anchor_at = p.anchor_at, next_run_at = p.next_run_at, base_snapshot = p.base_snapshot,
        scored_model = p.scored_model, events = p.events, event_customer_col = p.event_customer_col,
        event_ts_col = p.event_ts_col, event_kind_col = p.event_kind_col, event_rating_col = p.event_rating_col,
        control_share = p.control_share, outcome_days = p.outcome_days, store_col = p.store_col,
        control_zones = p.control_zones,
        event_ts_kind = p.event_ts_kind, event_capture = p.event_capture, event_snapshot = p.event_snapshot
    WHERE pipeline_id = old.pipeline_id
    RETURNING * INTO p;
    IF p.base_snapshot IS NULL THEN
        DELETE FROM churn.pipeline_queue WHERE pipeline_id = p.pipeline_id;
    END IF;
    IF p.event_snapshot IS NULL THEN
        DELETE FROM churn.pipeline_event_queue WHERE pipeline_id = p.pipeline_id;
    END IF;
    IF p.events IS NULL AND old.events IS NOT NULL THEN
        -- no events any more: customers keep their purchases only
        DELETE FROM churn.pipeline_customer WHERE pipeline_id = p.pipeline_id AND history IS NULL;
        UPDATE churn.pipeline_customer SET engagement = NULL
        WHERE pipeline_id = p.pipeline_id AND engagement IS NOT NULL;
    END IF;
    PERFORM churn.pipeline_triggers(p, true);
    PERFORM churn.worker_wake();
    RETURN jsonb_build_object('pipeline', p.name, 'capture', p.capture, 'next_run_at', p.next_run_at);
END
$$;

-- The user's create and alter, with the events arguments appended (0.3.0),
-- so positional calls of 0.2.0 keep working.  In alter_pipeline, events =>
-- NULL stops reading events; left out (the default '-', no relation), it is
-- unchanged.
DROP FUNCTION churn.create_pipeline(text, regclass, name, name, name, text, text, int, interval, text, int, interval,
                                    int, timestamptz, text[], int, interval);
CREATE FUNCTION churn.create_pipeline(name text, source regclass, customer_col name DEFAULT 'customer_id',
                                      ts_col name DEFAULT 'ts', amount_col name DEFAULT 'amount',
                                      model text DEFAULT 'auto', policy text DEFAULT NULL,
                                      horizon_days int DEFAULT 90, schedule interval DEFAULT '1 day',
                                      time_zone text DEFAULT NULL, window_days int DEFAULT 90,
                                      time_limit interval DEFAULT '1 hour', max_failures int DEFAULT 5,
                                      start_at timestamptz DEFAULT NULL,
                                      alert_zones text[] DEFAULT '{red,yellow}',
                                      alert_max_idle_days int DEFAULT 365,
                                      run_retention interval DEFAULT '90 days', events regclass DEFAULT NULL,
                                      event_customer_col name DEFAULT 'customer_id', event_ts_col name DEFAULT 'ts',
                                      event_kind_col name DEFAULT 'kind', event_rating_col name DEFAULT 'rating',
                                      control_share float8 DEFAULT 0, outcome_days int DEFAULT NULL,
                                      store_col name DEFAULT NULL, control_zones jsonb DEFAULT NULL)
    RETURNS churn.pipeline_status
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.pipeline_dispatch('create', $1, jsonb_build_object(
        'source', $2::oid, 'customer_col', $3, 'ts_col', $4, 'amount_col', $5, 'model', $6, 'policy', $7,
        'horizon_days', $8, 'schedule', $9, 'time_zone', $10, 'window_days', $11, 'time_limit', $12,
        'max_failures', $13, 'start_at', $14, 'alert_zones', to_jsonb($15), 'alert_max_idle_days', $16,
        'run_retention', $17, 'events', $18::oid, 'event_customer_col', $19, 'event_ts_col', $20,
        'event_kind_col', $21, 'event_rating_col', $22, 'control_share', $23, 'outcome_days', $24,
        'store_col', $25, 'control_zones', $26));
    SELECT * FROM churn.pipeline_status s WHERE s.pipeline = $1;
$$;
COMMENT ON FUNCTION churn.create_pipeline(text, regclass, name, name, name, text, text, int, interval, text, int,
                                          interval, int, timestamptz, text[], int, interval, regclass, name, name,
                                          name, name, float8, int, name, jsonb) IS
    'create a pipeline owned by the calling role: a purchase relation (and optionally a relation of events) kept scored on a schedule';

DROP FUNCTION churn.alter_pipeline(text, text, regclass, name, name, name, text, text, int, interval, text, int,
                                   interval, int, timestamptz, text[], int, interval, regrole);
CREATE FUNCTION churn.alter_pipeline(name text, new_name text DEFAULT NULL, source regclass DEFAULT NULL,
                                     customer_col name DEFAULT NULL, ts_col name DEFAULT NULL,
                                     amount_col name DEFAULT NULL, model text DEFAULT NULL,
                                     policy text DEFAULT NULL, horizon_days int DEFAULT NULL,
                                     schedule interval DEFAULT NULL, time_zone text DEFAULT NULL,
                                     window_days int DEFAULT NULL, time_limit interval DEFAULT NULL,
                                     max_failures int DEFAULT NULL, start_at timestamptz DEFAULT NULL,
                                     alert_zones text[] DEFAULT NULL, alert_max_idle_days int DEFAULT NULL,
                                     run_retention interval DEFAULT NULL, owner regrole DEFAULT NULL,
                                     events regclass DEFAULT '-', event_customer_col name DEFAULT NULL,
                                     event_ts_col name DEFAULT NULL, event_kind_col name DEFAULT NULL,
                                     event_rating_col name DEFAULT NULL, control_share float8 DEFAULT NULL,
                                     outcome_days int DEFAULT NULL, store_col name DEFAULT NULL,
                                     control_zones jsonb DEFAULT NULL)
    RETURNS churn.pipeline_status
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.pipeline_dispatch('alter', $1, jsonb_build_object(
        'name', $2, 'source', $3::oid, 'customer_col', $4, 'ts_col', $5, 'amount_col', $6, 'model', $7,
        'policy', $8, 'horizon_days', $9, 'schedule', $10, 'time_zone', $11, 'window_days', $12,
        'time_limit', $13, 'max_failures', $14, 'start_at', $15, 'alert_zones', to_jsonb($16),
        'alert_max_idle_days', $17, 'run_retention', $18, 'owner', $19::oid,
        -- NULL: no events (0); '-' (the default): unchanged (left out)
        'events', CASE WHEN $20 IS NULL THEN 0::oid WHEN $20::oid <> 0::oid THEN $20::oid END,
        'event_customer_col', $21, 'event_ts_col', $22, 'event_kind_col', $23, 'event_rating_col', $24,
        'control_share', $25, 'outcome_days', $26, 'store_col', $27, 'control_zones', $28));
    SELECT * FROM churn.pipeline_status s WHERE s.pipeline = coalesce($2, $1);
$$;
COMMENT ON FUNCTION churn.alter_pipeline(text, text, regclass, name, name, name, text, text, int, interval, text,
                                         int, interval, int, timestamptz, text[], int, interval, regrole, regclass,
                                         name, name, name, name, float8, int, name, jsonb) IS
    'change a pipeline''s settings (NULL: unchanged; events => NULL stops reading events), rename it or give it to another role';

REVOKE EXECUTE ON FUNCTION churn.pipeline_due(), churn.pipeline_worker_start(bigint),
    churn.pipeline_apply_event_args(churn.pipeline, jsonb) FROM PUBLIC;
