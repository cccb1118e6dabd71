-- churn_warning install script, part 900: pipelines.
--
-- A pipeline turns a purchase relation into a warning snapshot, refreshed on
-- a schedule by the background worker (part 910) or on demand with
-- churn.refresh.  It keeps one history per customer and merges only new
-- purchases into it: an INSERT on a plain-table source is captured by a
-- statement trigger into churn.pipeline_queue, whatever the purchase's
-- timestamp, so purchases that arrive late are counted on the next refresh.
-- UPDATE, DELETE or TRUNCATE of the source (and sources that are not plain
-- tables) make the next refresh re-read the whole source.
--
-- The tables below belong to the extension's owner.  Users reach them only
-- through the functions at the end, which go through the C function
-- churn.pipeline_dispatch: it checks that the caller owns the pipeline and
-- runs churn.pipeline_<op>_internal as the extension's owner; reading the
-- source (churn.pipeline_read) runs with the pipeline owner's rights.

CREATE TABLE churn.pipeline (
    pipeline_id          int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                 text NOT NULL UNIQUE CHECK (name <> ''),
    owner                regrole NOT NULL,
    source               regclass NOT NULL,
    customer_col         name NOT NULL,
    ts_col               name NOT NULL,
    amount_col           name NOT NULL,
    ts_kind              text NOT NULL CHECK (ts_kind IN ('date', 'timestamp', 'timestamptz')),
    capture              text NOT NULL CHECK (capture IN ('trigger', 'full')),
    model                text NOT NULL,
    policy               text NOT NULL,
    horizon_days         int NOT NULL CHECK (horizon_days > 0),
    window_days          int NOT NULL CHECK (window_days BETWEEN 1 AND 36525),
    schedule             interval NOT NULL CHECK (schedule >= interval '1 second'),
    time_zone            text NOT NULL,
    time_limit           interval NOT NULL CHECK (time_limit >= interval '1 second'),
    max_failures         int NOT NULL CHECK (max_failures >= 1),
    alert_zones          text[] NOT NULL CHECK (alert_zones <@ ARRAY['red', 'yellow', 'blue']),
    alert_max_idle_days  int CHECK (alert_max_idle_days > 0),
    run_retention        interval NOT NULL CHECK (run_retention >= interval '1 hour'),
    state                text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused')),
    paused_reason        text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    anchor_at            timestamptz NOT NULL,
    next_run_at          timestamptz NOT NULL,
    consecutive_failures int NOT NULL DEFAULT 0,
    -- the state behind the snapshot
    as_of                date,
    scored_model         text,
    base_snapshot        pg_snapshot,
    state_key            text,
    bgnbd                churn.bgnbd,
    last_success_at      timestamptz
);
COMMENT ON TABLE churn.pipeline IS
    'warning pipelines: source, model, tier policy, schedule and state; changed only through churn.create_pipeline, churn.alter_pipeline, churn.pause_pipeline, churn.resume_pipeline and churn.drop_pipeline; kept by pg_dump';
SELECT pg_catalog.pg_extension_config_dump('churn.pipeline', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('churn.pipeline', 'pipeline_id')::regclass, '');

-- Purchases captured since the last refresh (plain-table sources).
CREATE TABLE churn.pipeline_queue (
    pipeline_id int NOT NULL,
    xid         xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    customer_id text,
    day         date,
    amount      float8,
    rebuild     boolean NOT NULL DEFAULT false
);
CREATE INDEX pipeline_queue_pipeline ON churn.pipeline_queue (pipeline_id);
COMMENT ON TABLE churn.pipeline_queue IS
    'pipeline internal: purchases inserted into pipeline sources since their last refresh (rebuild = the source was updated, deleted from or truncated)';

-- One history per customer and pipeline.  A cache of the source: unlogged
-- (no WAL for the biggest writes of a refresh); after a crash it comes back
-- empty and the next refresh reads the whole source again.
CREATE UNLOGGED TABLE churn.pipeline_customer (
    pipeline_id int NOT NULL,
    customer_id text NOT NULL,
    history     churn.history NOT NULL,
    touched_run bigint NOT NULL,
    PRIMARY KEY (pipeline_id, customer_id)
) WITH (fillfactor = 80);           -- room for HOT updates: merges rewrite rows in place
COMMENT ON TABLE churn.pipeline_customer IS
    'pipeline internal: each customer''s merged purchase history and the run that last changed it';

-- The warning snapshot: one row per scored customer and pipeline.
CREATE TABLE churn.pipeline_warning (
    pipeline_id        int NOT NULL,
    customer_id        text NOT NULL,
    features           churn.features NOT NULL,
    p_churn            float8,
    p_alive            float8,
    expected_purchases float8,
    predicted_value    float8,
    annual_value       float8,
    zone               text NOT NULL,
    level              int NOT NULL,
    code               text NOT NULL,
    value_segment      text,
    lead_days          int,
    drivers            text[] NOT NULL DEFAULT '{}',
    previous_code      text,
    changed_at         timestamptz NOT NULL,
    run_id             bigint NOT NULL,
    PRIMARY KEY (pipeline_id, customer_id)
) WITH (fillfactor = 70);           -- a daily refresh updates most rows: keep them HOT
COMMENT ON TABLE churn.pipeline_warning IS
    'pipeline internal: the warning snapshot behind churn.current_warnings; kept by pg_dump';
SELECT pg_catalog.pg_extension_config_dump('churn.pipeline_warning', '');

-- Runs: one row per refresh, kept for the pipeline's run_retention.
CREATE TABLE churn.pipeline_run (
    run_id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pipeline_id          int NOT NULL,
    pipeline             text NOT NULL,
    trigger              text NOT NULL CHECK (trigger IN ('manual', 'schedule')),
    status               text NOT NULL
                         CHECK (status IN ('running', 'succeeded', 'failed', 'timed_out', 'interrupted', 'skipped')),
    started_at           timestamptz NOT NULL,
    finished_at          timestamptz,
    pid                  int,
    attempt              int NOT NULL DEFAULT 1,
    as_of                date,
    mode                 text CHECK (mode IN ('full', 'incremental')),
    new_purchase_rows    bigint,
    customers_merged     bigint,
    customers_total      bigint,
    customers_scored     bigint,
    snapshot_rows_written bigint,
    tier_changes         bigint,
    alerts_raised        bigint,
    merge_ms             float8,
    score_ms             float8,
    finish_ms            float8,
    error_code           text,
    error_message        text,
    error_detail         text
);
CREATE INDEX pipeline_run_pipeline ON churn.pipeline_run (pipeline_id, run_id);
COMMENT ON TABLE churn.pipeline_run IS 'pipeline internal: the run history behind churn.pipeline_runs; kept by pg_dump';
SELECT pg_catalog.pg_extension_config_dump('churn.pipeline_run', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('churn.pipeline_run', 'run_id')::regclass, '');

-- Tier changes, one row per customer whose code changed in a run.
CREATE TABLE churn.pipeline_tier_change (
    pipeline_id int NOT NULL,
    run_id      bigint NOT NULL,
    customer_id text NOT NULL,
    at          timestamptz NOT NULL,
    as_of       date NOT NULL,
    from_code   text NOT NULL,
    to_code     text NOT NULL,
    p_churn     float8
);
CREATE INDEX pipeline_tier_change_pipeline ON churn.pipeline_tier_change (pipeline_id, at);
COMMENT ON TABLE churn.pipeline_tier_change IS 'pipeline internal: the tier changes behind churn.tier_changes; kept by pg_dump';
SELECT pg_catalog.pg_extension_config_dump('churn.pipeline_tier_change', '');

-- ---------------------------------------------------------------------------
-- The C entry points.

CREATE FUNCTION churn.pipeline_dispatch(op text, name text, args jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'pipeline_dispatch' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION churn.pipeline_dispatch(text, text, jsonb) IS
    'pipeline internal: checks that the caller owns the pipeline, then runs churn.pipeline_<op>_internal as the extension owner';

CREATE FUNCTION churn.pipeline_read(pipeline_id int,
                                    OUT customer_id text, OUT history churn.history, OUT snapshot pg_snapshot)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'pipeline_read' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION churn.pipeline_read(int) IS
    'pipeline internal: the whole source as one history per customer, read with the owner''s rights; the first row carries the snapshot used';

CREATE FUNCTION churn.worker_wake() RETURNS void
    AS 'MODULE_PATHNAME', 'worker_wake' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION churn.worker_wake() IS
    'pipeline internal: asks the background worker to look at this database once the transaction commits';

CREATE FUNCTION churn.worker_status(OUT dboid oid, OUT next_check timestamptz, OUT worker_pid int,
                                    OUT wake_requested bool) RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'worker_status' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION churn.worker_status() IS
    'the background worker''s view of each database: when it looks next, the running worker, a pending wake-up (empty when the library is not preloaded)';

-- ---------------------------------------------------------------------------
-- A history function added with pipelines (0.2.0).

CREATE FUNCTION churn.history_spend(h churn.history, as_of date, days int) RETURNS float8
    AS 'MODULE_PATHNAME', 'history_spend' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.history_spend(churn.history, date, int) IS
    'net spend (purchases minus returns) of the days in (as_of - days, as_of]';

-- ---------------------------------------------------------------------------
-- Helpers.

-- Identifies the cluster and database the stored histories were built in;
-- after pg_dump/restore or pg_upgrade it differs and the next refresh
-- re-reads the source (captured transaction ids are meaningless there).
CREATE FUNCTION churn.pipeline_state_key() RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT (SELECT system_identifier FROM pg_control_system())::text || '/'
           || (SELECT oid FROM pg_database WHERE datname = current_database())::text
$$;

-- The first slot of a schedule after a time: anchor + k * schedule in the
-- pipeline's time zone (so '1 day' stays at the same local hour over DST).
CREATE FUNCTION churn.pipeline_next_slot(anchor timestamptz, schedule interval, time_zone text,
                                         after timestamptz) RETURNS timestamptz
    LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    local_anchor timestamp := anchor AT TIME ZONE time_zone;
    k float8 := floor(extract(epoch FROM after - anchor) / extract(epoch FROM schedule));
    t timestamptz;
BEGIN
    IF after < anchor THEN
        RETURN anchor;
    END IF;
    k := greatest(k - 1, 0);
    LOOP
        t := (local_anchor + k * schedule) AT TIME ZONE time_zone;
        EXIT WHEN t > after;
        k := k + 1;
    END LOOP;
    RETURN t;
END
$$;

-- Validate the source relation and its columns for a pipeline owner;
-- returns the kind of the timestamp column.
CREATE FUNCTION churn.pipeline_check_source(source regclass, customer_col name, ts_col name, amount_col name,
                                            owner oid) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    col name;
    typ oid;
    ts_type oid;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = source AND c.relkind IN ('r', 'p', 'v', 'm', 'f')) THEN
        RAISE EXCEPTION '% is not a table, view, materialized view or foreign table', source
            USING ERRCODE = 'wrong_object_type';
    END IF;
    FOR i IN 1 .. 3 LOOP
        col := (ARRAY[customer_col, ts_col, amount_col])[i];
        SELECT a.atttypid INTO typ FROM pg_attribute a
        WHERE a.attrelid = source AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" does not exist in %', col, source
                USING ERRCODE = 'undefined_column',
                      HINT = 'Name the columns with customer_col, ts_col and amount_col.';
        END IF;
        IF NOT has_column_privilege(owner, source, col::text, 'SELECT') THEN
            RAISE EXCEPTION 'permission denied to read column "%" of %', col, source
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'A pipeline reads its source with its owner''s rights.';
        END IF;
        IF i = 2 THEN
            ts_type := typ;
            IF typ NOT IN ('date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype) THEN
                RAISE EXCEPTION 'column "%" of % has type %, expected date, timestamp or timestamptz',
                    col, source, typ::regtype USING ERRCODE = 'datatype_mismatch';
            END IF;
        ELSIF i = 3 THEN
            IF typ NOT IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype, 'numeric'::regtype,
                           'real'::regtype, 'double precision'::regtype) THEN
                RAISE EXCEPTION 'column "%" of % has type %, expected a built-in number type', col, source,
                    typ::regtype USING ERRCODE = 'datatype_mismatch';
            END IF;
        END IF;
    END LOOP;
    RETURN CASE ts_type WHEN 'date'::regtype THEN 'date' WHEN 'timestamp'::regtype THEN 'timestamp'
                        ELSE 'timestamptz' END;
END
$$;

-- Check a model name: bgnbd (fitted on the pipeline's own customers at
-- each new day) or a model registered in churn.model.
CREATE FUNCTION churn.pipeline_check_model(model text) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    reg churn.model;
    fname text;
BEGIN
    IF model = 'bgnbd' THEN
        RETURN;
    END IF;
    SELECT * INTO reg FROM churn.model m WHERE m.name = pipeline_check_model.model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown model "%"', model
            USING ERRCODE = 'undefined_object',
                  HINT = 'Use bgnbd or the name of a model registered in churn.model (churn.register_rules(''rules'') registers the default rule model).';
    END IF;
    IF reg.kind IN ('logit', 'xgb', 'rules') THEN
        FOREACH fname IN ARRAY reg.feature_names LOOP
            IF array_position(churn.feature_names(), fname) IS NULL THEN
                RAISE EXCEPTION 'model "%" uses the feature "%", which a pipeline cannot compute', model, fname
                    USING ERRCODE = 'feature_not_supported',
                          HINT = 'A pipeline computes the purchase features of churn.feature_names().';
            END IF;
        END LOOP;
    END IF;
END
$$;

-- Install or remove the capture triggers of a pipeline on its source.
CREATE FUNCTION churn.pipeline_triggers(p churn.pipeline, install boolean) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    ev text;
BEGIN
    FOREACH ev IN ARRAY ARRAY['ins', 'upd', 'del', 'trunc'] LOOP
        IF EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = p.source
                       AND t.tgname = format('churn_pipeline_%s_%s', p.pipeline_id, ev)) THEN
            EXECUTE format('DROP TRIGGER %I ON %s', format('churn_pipeline_%s_%s', p.pipeline_id, ev), p.source);
        END IF;
    END LOOP;
    IF NOT install OR p.capture <> 'trigger' THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS churn_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION churn.pipeline_capture(%L)',
                   format('churn_pipeline_%s_ins', p.pipeline_id), p.source, p.pipeline_id);
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %s REFERENCING OLD TABLE AS churn_old NEW TABLE AS churn_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION churn.pipeline_capture(%L)',
                   format('churn_pipeline_%s_upd', p.pipeline_id), p.source, p.pipeline_id);
    EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %s REFERENCING OLD TABLE AS churn_old '
                   'FOR EACH STATEMENT EXECUTE FUNCTION churn.pipeline_capture(%L)',
                   format('churn_pipeline_%s_del', p.pipeline_id), p.source, p.pipeline_id);
    EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION churn.pipeline_capture(%L)',
                   format('churn_pipeline_%s_trunc', p.pipeline_id), p.source, p.pipeline_id);
END
$$;

-- The capture trigger: new purchases go to the queue as (customer, local
-- day, amount); any other change asks for a re-read.  It acts only for the
-- pipeline whose source it is attached to.
CREATE FUNCTION churn.pipeline_capture() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    p churn.pipeline;
    day_expr text;
    changed boolean;
BEGIN
    IF TG_NARGS <> 1 OR TG_LEVEL <> 'STATEMENT' OR TG_WHEN <> 'AFTER' THEN
        RAISE EXCEPTION 'churn.pipeline_capture is installed by churn.create_pipeline only'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT * INTO p FROM churn.pipeline WHERE pipeline_id = TG_ARGV[0]::int;
    IF NOT FOUND OR p.source::oid <> TG_RELID OR p.capture <> 'trigger' THEN
        RETURN NULL;
    END IF;
    day_expr := CASE p.ts_kind WHEN 'timestamptz' THEN format('(%I AT TIME ZONE %L)::date', p.ts_col, p.time_zone)
                               ELSE format('%I::date', p.ts_col) END;
    IF TG_OP = 'INSERT' THEN
        EXECUTE format('INSERT INTO churn.pipeline_queue (pipeline_id, customer_id, day, amount) '
                       'SELECT $1, %1$I::text, %2$s, %3$I::float8 FROM churn_new '
                       'WHERE %1$I IS NOT NULL AND %4$I IS NOT NULL',
                       p.customer_col, day_expr, p.amount_col, p.ts_col)
            USING p.pipeline_id;
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM churn_old)' INTO STRICT changed;
    ELSIF TG_OP = 'UPDATE' THEN
        -- only a change of customer, day or amount matters
        EXECUTE format('SELECT EXISTS (SELECT %1$I::text, %2$s, %3$I::float8 FROM churn_old '
                       'EXCEPT ALL SELECT %1$I::text, %2$s, %3$I::float8 FROM churn_new)',
                       p.customer_col, day_expr, p.amount_col)
            INTO STRICT changed;
    ELSE
        changed := true;
    END IF;
    IF changed THEN
        INSERT INTO churn.pipeline_queue (pipeline_id, rebuild) VALUES (p.pipeline_id, true);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION churn.pipeline_capture() IS
    'pipeline internal: statement trigger on a pipeline source that queues inserted purchases for the next refresh';

-- Arguments of create and alter, validated; returns the pipeline row to write.
CREATE FUNCTION churn.pipeline_apply_args(p churn.pipeline, args jsonb, caller oid) RETURNS churn.pipeline
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    k text;
    known text[] := ARRAY['name', 'source', 'customer_col', 'ts_col', 'amount_col', 'model', 'policy',
                          'horizon_days', 'window_days', 'schedule', 'time_zone', 'time_limit', 'max_failures',
                          'alert_zones', 'alert_max_idle_days', 'run_retention', 'start_at', 'owner'];
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
    IF p.schedule < interval '1 second' THEN
        RAISE EXCEPTION 'schedule must be at least 1 second, got %', p.schedule USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p.time_limit < interval '1 second' THEN
        RAISE EXCEPTION 'time_limit must be at least 1 second, got %', p.time_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p.max_failures < 1 THEN
        RAISE EXCEPTION 'max_failures must be at least 1, got %', p.max_failures USING ERRCODE = 'invalid_parameter_value';
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
    PERFORM churn.pipeline_check_model(p.model);
    PERFORM churn.warning_tier(0.5, 0, p.policy);     -- an unknown policy fails here
    p.capture := CASE WHEN (SELECT c.relkind FROM pg_class c WHERE c.oid = p.source) = 'r'
                           AND has_table_privilege(p.owner, p.source, 'TRIGGER')
                      THEN 'trigger' ELSE 'full' END;
    IF args ? 'start_at' THEN
        p.anchor_at := (args->>'start_at')::timestamptz;
        p.next_run_at := p.anchor_at;
    END IF;
    RETURN p;
END
$$;

-- ---------------------------------------------------------------------------
-- Operations (run as the extension owner by churn.pipeline_dispatch).

CREATE FUNCTION churn.pipeline_create_internal(p_name text, args jsonb, caller oid) RETURNS jsonb
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
    p.model := 'bgnbd';
    p.policy := 'default';
    p.horizon_days := 90;
    p.window_days := 90;
    p.schedule := interval '1 day';
    p.time_zone := current_setting('TimeZone');
    p.time_limit := interval '1 hour';
    p.max_failures := 5;
    p.alert_zones := ARRAY['red', 'yellow'];
    p.alert_max_idle_days := 365;
    p.run_retention := interval '90 days';
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
                                next_run_at, consecutive_failures)
    VALUES (p.name, p.owner, p.source, p.customer_col, p.ts_col, p.amount_col, p.ts_kind, p.capture, p.model,
            p.policy, p.horizon_days, p.window_days, p.schedule, p.time_zone, p.time_limit, p.max_failures,
            p.alert_zones, p.alert_max_idle_days, p.run_retention, p.state, p.created_at, p.anchor_at,
            p.next_run_at, 0)
    RETURNING * INTO p;
    PERFORM churn.pipeline_triggers(p, true);
    PERFORM churn.worker_wake();
    RETURN jsonb_build_object('pipeline', p.name, 'capture', p.capture, 'next_run_at', p.next_run_at);
END
$$;

CREATE FUNCTION churn.pipeline_alter_internal(p_name text, args jsonb, caller oid) RETURNS jsonb
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
    IF (p.source, p.customer_col, p.ts_col, p.amount_col, p.time_zone, p.ts_kind, p.capture)
       IS DISTINCT FROM (old.source, old.customer_col, old.ts_col, old.amount_col, old.time_zone, old.ts_kind,
                         old.capture) THEN
        p.base_snapshot := NULL;       -- re-read the source on the next refresh
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
        scored_model = p.scored_model
    WHERE pipeline_id = old.pipeline_id
    RETURNING * INTO p;
    IF p.base_snapshot IS NULL THEN
        DELETE FROM churn.pipeline_queue WHERE pipeline_id = p.pipeline_id;
    END IF;
    PERFORM churn.pipeline_triggers(p, true);
    PERFORM churn.worker_wake();
    RETURN jsonb_build_object('pipeline', p.name, 'capture', p.capture, 'next_run_at', p.next_run_at);
END
$$;

CREATE FUNCTION churn.pipeline_pause_internal(p_name text, args jsonb, caller oid) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    UPDATE churn.pipeline SET state = 'paused', paused_reason = format('paused by %s', caller::regrole)
    WHERE name = p_name;
    RETURN jsonb_build_object('pipeline', p_name, 'state', 'paused');
END
$$;

CREATE FUNCTION churn.pipeline_resume_internal(p_name text, args jsonb, caller oid) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    p churn.pipeline;
BEGIN
    UPDATE churn.pipeline
    SET state = 'active', paused_reason = NULL, consecutive_failures = 0,
        -- a pipeline that missed runs while paused runs once, right away
        next_run_at = least(next_run_at, churn.pipeline_next_slot(anchor_at, schedule, time_zone,
                                                                  coalesce(last_success_at, now() - schedule)))
    WHERE name = p_name
    RETURNING * INTO p;
    PERFORM churn.worker_wake();
    RETURN jsonb_build_object('pipeline', p_name, 'state', 'active', 'next_run_at', p.next_run_at);
END
$$;

CREATE FUNCTION churn.pipeline_drop_internal(p_name text, args jsonb, caller oid) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    p churn.pipeline;
BEGIN
    SELECT * INTO p FROM churn.pipeline WHERE name = p_name FOR UPDATE;
    PERFORM churn.pipeline_triggers(p, false);
    DELETE FROM churn.pipeline_queue WHERE pipeline_id = p.pipeline_id;
    DELETE FROM churn.pipeline_customer WHERE pipeline_id = p.pipeline_id;
    DELETE FROM churn.pipeline_warning WHERE pipeline_id = p.pipeline_id;
    DELETE FROM churn.pipeline_tier_change WHERE pipeline_id = p.pipeline_id;
    DELETE FROM churn.pipeline_run WHERE pipeline_id = p.pipeline_id;
    DELETE FROM churn.pipeline WHERE pipeline_id = p.pipeline_id;
    RETURN jsonb_build_object('pipeline', p_name, 'dropped', true);
END
$$;

CREATE FUNCTION churn.pipeline_refresh_internal(p_name text, args jsonb, caller oid) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    id int;
    run bigint;
BEGIN
    SELECT pipeline_id INTO id FROM churn.pipeline WHERE name = p_name;
    run := churn.pipeline_execute(id, NULL);
    RETURN jsonb_build_object('run_id', run);
END
$$;

-- ---------------------------------------------------------------------------
-- Alerts of one refresh, set-based: what churn.raise_alert does for one
-- customer (open, or escalate the active alert to a more urgent code, with
-- the audit event and NOTIFY churn_alert), for all of them in a few
-- statements.  Returns the number of alerts opened or escalated.
CREATE TYPE churn.pipeline_alert_candidate AS (
    customer_id text, code text, value_segment text, p_churn float8, annual_value float8, drivers text[]
);

CREATE FUNCTION churn.pipeline_raise_alerts(pipeline text, cands churn.pipeline_alert_candidate[]) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET enable_nestloop = off SET jit = off AS
$$
DECLARE
    n bigint;
BEGIN
    IF cardinality(cands) IS NULL THEN
        RETURN 0;
    END IF;
    WITH c AS (
        SELECT u.*, pb.zone, pb.level, pb.action, pb.channel, pb.sla_hours
        FROM unnest(cands) u JOIN churn.playbook_effective pb ON pb.code = u.code
    ), cur AS MATERIALIZED (
        SELECT a.alert_id, a.customer_id, a.code, a.status
        FROM churn.alert a
        WHERE a.pipeline = pipeline_raise_alerts.pipeline AND a.status IN ('open', 'contacted')
          AND a.customer_id IN (SELECT c.customer_id FROM c)
        FOR UPDATE OF a
    ), esc AS (
        UPDATE churn.alert a
        SET code = c.code, zone = c.zone, level = c.level, value_segment = c.value_segment, p_churn = c.p_churn,
            annual_value = c.annual_value, drivers = coalesce(c.drivers, '{}'), action = c.action,
            channel = c.channel, sla_hours = c.sla_hours, status = 'open',
            due_at = now() + make_interval(hours => c.sla_hours), contacted_at = NULL,
            escalations = a.escalations + 1, last_changed_at = now()
        FROM c JOIN cur ON cur.customer_id = c.customer_id
        WHERE a.alert_id = cur.alert_id AND churn.alert_urgency(c.code) > churn.alert_urgency(cur.code)
        RETURNING a AS alert, cur.status AS from_status, cur.code AS from_code
    ), ins AS (
        INSERT INTO churn.alert AS a (pipeline, customer_id, code, zone, level, value_segment, p_churn,
                                      annual_value, drivers, action, channel, sla_hours, status, opened_at,
                                      due_at, last_changed_at)
        SELECT pipeline_raise_alerts.pipeline, c.customer_id, c.code, c.zone, c.level, c.value_segment, c.p_churn,
               c.annual_value, coalesce(c.drivers, '{}'), c.action, c.channel, c.sla_hours, 'open', now(),
               now() + make_interval(hours => c.sla_hours), now()
        FROM c WHERE NOT EXISTS (SELECT 1 FROM cur WHERE cur.customer_id = c.customer_id)
        ON CONFLICT DO NOTHING
        RETURNING a AS alert
    ), ev AS (
        INSERT INTO churn.alert_event (alert_id, at, event, from_status, to_status, from_code, to_code, actor, note)
        SELECT (e.alert).alert_id, now(), 'escalated', e.from_status, 'open', e.from_code, (e.alert).code,
               pipeline_raise_alerts.pipeline, format('p_churn %s', (e.alert).p_churn)
        FROM esc e
        UNION ALL
        SELECT (i.alert).alert_id, now(), 'opened', NULL, 'open', NULL, (i.alert).code,
               pipeline_raise_alerts.pipeline, format('p_churn %s', (i.alert).p_churn)
        FROM ins i
        RETURNING 1
    ), nt AS (
        SELECT pg_notify('churn_alert', churn.alert_payload(e.alert, 'escalated')) FROM esc e
        UNION ALL
        SELECT pg_notify('churn_alert', churn.alert_payload(i.alert, 'opened')) FROM ins i
    )
    SELECT (SELECT count(*) FROM ev) + 0 * (SELECT count(*) FROM nt) INTO n;
    RETURN n;
END
$$;
COMMENT ON FUNCTION churn.pipeline_raise_alerts(text, churn.pipeline_alert_candidate[]) IS
    'pipeline internal: opens or escalates the alerts of one refresh, as churn.raise_alert does one by one';

-- ---------------------------------------------------------------------------
-- One refresh, in the caller's transaction: the code path of churn.refresh
-- and of the worker.  run_id is the worker's committed 'running' row, or
-- NULL (manual: the run row is written in this transaction).  Returns the
-- run id.
--
-- Nested loops are off: the planner's row estimates for a pipeline's slice
-- of the shared tables can be off by five orders of magnitude (statistics
-- taken before its first refresh), and a nested loop over such a slice is
-- quadratic; hash joins cost at worst a scan of the tables.  (With nested
-- loops off every plan costs more than jit_above_cost, and compiling these
-- statements would take longer than running them: JIT is off too.)
CREATE FUNCTION churn.pipeline_execute(p_pipeline_id int, p_run_id bigint) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET enable_nestloop = off SET jit = off AS
$$
DECLARE
    p          churn.pipeline;
    reg        churn.model;
    run        bigint := p_run_id;
    t0         timestamptz := clock_timestamp();
    t1         timestamptz;
    t2         timestamptz;
    today      date;
    full_read  boolean;
    rescore    boolean;
    key        text := churn.pipeline_state_key();
    snap       pg_snapshot;
    n_new      bigint := 0;
    n_merged   bigint := 0;
    n_total    bigint;
    n_scored   bigint;
    n_written  bigint;
    n_changes  bigint;
    n_alerts   bigint;
    bg         churn.bgnbd;
    cands      churn.pipeline_alert_candidate[];
    rule_idx   int[];
    rule_op    text[];
    rule_thr   float8[];
    rule_w     float8[];
    remap      boolean;                 -- model features in another order than churn.feature_names()
BEGIN
    SELECT * INTO p FROM churn.pipeline WHERE pipeline_id = p_pipeline_id FOR NO KEY UPDATE NOWAIT;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pipeline % does not exist', p_pipeline_id USING ERRCODE = 'undefined_object';
    END IF;
    IF run IS NULL THEN
        INSERT INTO churn.pipeline_run (pipeline_id, pipeline, trigger, status, started_at, pid, attempt)
        VALUES (p.pipeline_id, p.name, 'manual', 'running', t0, pg_backend_pid(), 1)
        RETURNING run_id INTO run;
    ELSIF NOT EXISTS (SELECT 1 FROM churn.pipeline_run r
                      WHERE r.run_id = run AND r.pipeline_id = p.pipeline_id AND r.status = 'running') THEN
        RAISE EXCEPTION 'run % of pipeline "%" is not running', run, p.name
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE oid = p.owner) THEN
        RAISE EXCEPTION 'the role that owned pipeline "%" no longer exists', p.name
            USING ERRCODE = 'undefined_object',
                  HINT = 'A superuser can give the pipeline to another role with churn.alter_pipeline(name, owner => ...).';
    END IF;
    today := (now() AT TIME ZONE p.time_zone)::date;
    full_read := p.capture = 'full' OR p.base_snapshot IS NULL OR p.state_key IS DISTINCT FROM key
                 OR EXISTS (SELECT 1 FROM churn.pipeline_queue q WHERE q.pipeline_id = p.pipeline_id AND q.rebuild)
                 -- the unlogged histories were emptied by crash recovery
                 OR NOT EXISTS (SELECT 1 FROM churn.pipeline_customer c WHERE c.pipeline_id = p.pipeline_id);

    -- 1. new purchases into the stored histories
    IF full_read THEN
        -- the whole source, read with the owner's rights; captured rows
        -- that the read already saw are dropped from the queue
        WITH r AS MATERIALIZED (
            SELECT * FROM churn.pipeline_read(p.pipeline_id)
        ), s AS (
            SELECT r.snapshot FROM r WHERE r.customer_id IS NULL
        ), dq AS (
            DELETE FROM churn.pipeline_queue q
            WHERE q.pipeline_id = p.pipeline_id
              AND (q.rebuild OR pg_visible_in_snapshot(q.xid, (SELECT s.snapshot FROM s)))
            RETURNING 1
        ), dc AS (
            DELETE FROM churn.pipeline_customer c
            WHERE c.pipeline_id = p.pipeline_id
              AND NOT EXISTS (SELECT 1 FROM r WHERE r.customer_id = c.customer_id)
            RETURNING 1
        ), dw AS (
            DELETE FROM churn.pipeline_warning w
            WHERE w.pipeline_id = p.pipeline_id
              AND NOT EXISTS (SELECT 1 FROM r WHERE r.customer_id = w.customer_id)
            RETURNING 1
        ), ins AS (
            -- plain INSERT and UPDATE rather than ON CONFLICT (twice as
            -- fast): no one else writes a pipeline's rows while it is locked
            INSERT INTO churn.pipeline_customer (pipeline_id, customer_id, history, touched_run)
            SELECT p.pipeline_id, r.customer_id, r.history, run FROM r
            WHERE r.customer_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM churn.pipeline_customer c
                              WHERE c.pipeline_id = p.pipeline_id AND c.customer_id = r.customer_id)
            RETURNING 1
        ), upd AS (
            UPDATE churn.pipeline_customer c SET history = r.history, touched_run = run
            FROM r
            WHERE c.pipeline_id = p.pipeline_id AND c.customer_id = r.customer_id
              AND c.history::text <> r.history::text
            RETURNING 1
        )
        SELECT (SELECT s.snapshot FROM s), NULL,
               (SELECT count(*) FROM ins) + (SELECT count(*) FROM upd) + (SELECT count(*) FROM dc)
               + 0 * (SELECT count(*) FROM dq) + 0 * (SELECT count(*) FROM dw)
        INTO snap, n_new, n_merged;
        UPDATE churn.pipeline SET base_snapshot = snap, state_key = key WHERE pipeline_id = p.pipeline_id;
    ELSE
        -- the captured purchases (those of transactions that committed
        -- after the last full read; late timestamps included)
        WITH q AS (
            DELETE FROM churn.pipeline_queue q WHERE q.pipeline_id = p.pipeline_id
            RETURNING q.customer_id, q.day, q.amount, q.xid
        ), n AS (
            SELECT * FROM q WHERE NOT pg_visible_in_snapshot(q.xid, p.base_snapshot)
        ), d AS (
            SELECT n.customer_id, churn.history_agg(n.day, n.amount) AS h FROM n GROUP BY n.customer_id
        ), mi AS (
            INSERT INTO churn.pipeline_customer (pipeline_id, customer_id, history, touched_run)
            SELECT p.pipeline_id, d.customer_id, d.h, run FROM d
            WHERE d.h IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM churn.pipeline_customer c
                              WHERE c.pipeline_id = p.pipeline_id AND c.customer_id = d.customer_id)
            RETURNING customer_id
        ), mu AS (
            UPDATE churn.pipeline_customer c SET history = churn.merge(c.history, d.h), touched_run = run
            FROM d
            WHERE c.pipeline_id = p.pipeline_id AND c.customer_id = d.customer_id AND d.h IS NOT NULL
            RETURNING c.customer_id
        )
        SELECT (SELECT count(*) FROM n), (SELECT count(*) FROM mi) + (SELECT count(*) FROM mu)
        INTO n_new, n_merged;
    END IF;
    t1 := clock_timestamp();

    -- 2. the model.  BG/NBD is refitted on the pipeline's customers once a
    -- day (it gives p_alive and expected purchases whatever the model).
    rescore := full_read OR p.as_of IS DISTINCT FROM today OR p.scored_model IS DISTINCT FROM p.model;
    bg := p.bgnbd;
    IF rescore THEN
        BEGIN
            bg := (SELECT churn.bgnbd_fit(f.x, f.t_x / 7, f.t / 7)
                   FROM churn.pipeline_customer c
                   CROSS JOIN LATERAL churn.features(c.history, today, p.window_days) f
                   WHERE c.pipeline_id = p.pipeline_id AND f.first_purchase IS NOT NULL);
        EXCEPTION WHEN OTHERS THEN
            IF p.model = 'bgnbd' THEN
                RAISE EXCEPTION 'BG/NBD cannot be fitted on the customers of pipeline "%": %', p.name, SQLERRM
                    USING ERRCODE = SQLSTATE;
            END IF;
            bg := NULL;
        END;
    END IF;
    IF p.model <> 'bgnbd' THEN
        reg := churn.model_get(p.model);
    END IF;
    remap := reg.feature_names IS DISTINCT FROM churn.feature_names();
    IF reg.kind = 'rules' THEN
        -- the ruleset, once: scored below set-based with the noisy-OR of
        -- churn.rule_score (one SQL function call per customer costs 20x more)
        SELECT array_agg(array_position(churn.feature_names(), r.feature)), array_agg(r.op),
               array_agg(r.threshold), array_agg(r.weight)
        INTO rule_idx, rule_op, rule_thr, rule_w
        FROM churn.rules r WHERE r.ruleset = reg.ruleset;
        IF rule_idx IS NULL THEN
            RAISE EXCEPTION 'ruleset "%" does not exist', reg.ruleset USING ERRCODE = 'undefined_object';
        END IF;
    END IF;

    -- 3. score (every customer on a new day, else those with new
    -- purchases), write the rows that changed, record tier changes, and
    -- raise alerts for customers who moved into a more urgent code of an
    -- alerting zone and bought within alert_max_idle_days
    WITH s AS (
        SELECT c.customer_id, f, CASE WHEN reg.kind IN ('logit', 'xgb', 'rules') THEN churn.feature_vector(f) END AS fv,
               greatest(0, churn.history_spend(c.history, today, 365)) AS spend_365
        FROM churn.pipeline_customer c
        CROSS JOIN LATERAL churn.features(c.history, today, p.window_days) f
        WHERE c.pipeline_id = p.pipeline_id AND (rescore OR c.touched_run = run)
          AND f.first_purchase IS NOT NULL
    ), x AS MATERIALIZED (
        -- the model's input vector, once per customer (CTEs referenced
        -- once are inlined, and each reference would recompute it)
        SELECT s.*,
               CASE WHEN reg.kind IN ('logit', 'xgb', 'rules') AND NOT remap
                    THEN CASE WHEN reg.kind = 'logit'
                              THEN ARRAY(SELECT coalesce(e, 0) FROM unnest(s.fv) WITH ORDINALITY u(e, i) ORDER BY u.i)
                              ELSE s.fv END
                    WHEN reg.kind IN ('logit', 'xgb', 'rules')
                    THEN ARRAY(SELECT coalesce(s.fv[array_position(churn.feature_names(), fn.n)],
                                               CASE WHEN reg.kind = 'logit' THEN 0 END)
                               FROM unnest(reg.feature_names) WITH ORDINALITY fn(n, i) ORDER BY fn.i)
               END AS mx
        FROM s
    ), sc AS MATERIALIZED (
        SELECT x.customer_id, x.f, x.mx, x.spend_365,
               CASE WHEN p.model = 'bgnbd'
                    THEN churn.bgnbd_p_churn(bg, p.horizon_days / 7.0, (x.f).x, (x.f).t_x / 7, (x.f).t / 7)
                    WHEN reg.kind = 'bgnbd'
                    THEN churn.bgnbd_p_churn(reg.bgnbd, p.horizon_days / reg.time_unit_days, (x.f).x,
                                             (x.f).t_x / reg.time_unit_days, (x.f).t / reg.time_unit_days)
                    WHEN reg.kind = 'pnbd'
                    THEN churn.pnbd_p_churn(reg.pnbd, p.horizon_days / reg.time_unit_days, (x.f).x,
                                            (x.f).t_x / reg.time_unit_days, (x.f).t / reg.time_unit_days)
                    WHEN reg.kind = 'logit' THEN churn.logit_predict(reg.logit, x.mx)
                    WHEN reg.kind = 'xgb' THEN churn.xgb_predict(reg.xgb, x.mx)
                    ELSE (SELECT 1 - coalesce(exp(sum(ln(greatest(1 - u.w, 1e-300)))), 1)
                          FROM unnest(rule_idx, rule_op, rule_thr, rule_w) u(i, op, thr, w)
                          WHERE CASE u.op WHEN '<' THEN x.mx[u.i] < u.thr WHEN '<=' THEN x.mx[u.i] <= u.thr
                                          WHEN '>' THEN x.mx[u.i] > u.thr WHEN '>=' THEN x.mx[u.i] >= u.thr
                                          WHEN '=' THEN x.mx[u.i] = u.thr ELSE x.mx[u.i] <> u.thr END)
               END AS p_churn,
               churn.bgnbd_p_alive(bg, (x.f).x, (x.f).t_x / 7, (x.f).t / 7) AS p_alive,
               churn.bgnbd_expected(bg, p.horizon_days / 7.0, (x.f).x, (x.f).t_x / 7, (x.f).t / 7) AS expected,
               churn.bgnbd_expected(bg, 365 / 7.0, (x.f).x, (x.f).t_x / 7, (x.f).t / 7)
                   * greatest(0, coalesce((x.f).repeat_avg_spend, (x.f).avg_spend, 0)) AS predicted_value
        FROM x
    ), t0 AS (
        SELECT sc.*, tt.zone, tt.level, tt.code, tt.value_segment, tt.lead_days,
               w.code AS prev_code, w.customer_id IS NULL AS is_new,
               w.customer_id IS NULL
               OR (w.features, w.p_churn, w.p_alive, w.expected_purchases, w.predicted_value, w.annual_value,
                   w.code, w.value_segment)
                  IS DISTINCT FROM (sc.f, sc.p_churn, sc.p_alive, sc.expected, sc.predicted_value, sc.spend_365,
                                    tt.code, tt.value_segment) AS changed
        FROM sc
        LEFT JOIN churn.pipeline_warning w ON w.pipeline_id = p.pipeline_id AND w.customer_id = sc.customer_id
        CROSS JOIN LATERAL churn.warning_tier(sc.p_churn, sc.spend_365, p.policy, w.code) tt
        WHERE tt.code IS NOT NULL           -- no score, no tier (p_churn NULL)
    ), t AS (
        -- an alert for a code more urgent than before in an alerting zone,
        -- unless the customer has been gone too long; its top drivers
        SELECT t0.*, a.alert,
               CASE WHEN a.alert AND t0.mx IS NOT NULL THEN churn.top_drivers(p.model, t0.mx, 3) END AS drivers
        FROM t0
        CROSS JOIN LATERAL (
            SELECT t0.code <> coalesce(t0.prev_code, 'N0') AND t0.zone = ANY (p.alert_zones)
                   AND churn.alert_urgency(t0.code) > churn.alert_urgency(coalesce(t0.prev_code, 'N0'))
                   AND (p.alert_max_idle_days IS NULL OR (t0.f).recency_days <= p.alert_max_idle_days) AS alert
        ) a
    ), ui AS (
        INSERT INTO churn.pipeline_warning
            (pipeline_id, customer_id, features, p_churn, p_alive, expected_purchases, predicted_value,
             annual_value, zone, level, code, value_segment, lead_days, drivers, previous_code, changed_at, run_id)
        SELECT p.pipeline_id, t.customer_id, t.f, t.p_churn, t.p_alive, t.expected, t.predicted_value,
               t.spend_365, t.zone, t.level, t.code, t.value_segment, t.lead_days, coalesce(t.drivers, '{}'),
               NULL, now(), run
        FROM t WHERE t.is_new
        RETURNING 1
    ), uu AS (
        UPDATE churn.pipeline_warning w
        SET features = t.f, p_churn = t.p_churn, p_alive = t.p_alive, expected_purchases = t.expected,
            predicted_value = t.predicted_value, annual_value = t.spend_365, zone = t.zone, level = t.level,
            code = t.code, value_segment = t.value_segment, lead_days = t.lead_days,
            drivers = CASE WHEN t.code = w.code THEN w.drivers ELSE coalesce(t.drivers, '{}') END,
            previous_code = CASE WHEN t.code <> w.code THEN w.code ELSE w.previous_code END,
            changed_at = CASE WHEN t.code <> w.code THEN now() ELSE w.changed_at END,
            run_id = run
        FROM t
        WHERE t.changed AND NOT t.is_new AND w.pipeline_id = p.pipeline_id AND w.customer_id = t.customer_id
        RETURNING 1
    ), tc AS (
        INSERT INTO churn.pipeline_tier_change (pipeline_id, run_id, customer_id, at, as_of, from_code, to_code,
                                                p_churn)
        SELECT p.pipeline_id, run, t.customer_id, now(), today, coalesce(t.prev_code, 'N0'), t.code, t.p_churn
        FROM t WHERE t.code <> coalesce(t.prev_code, 'N0')
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM ui) + (SELECT count(*) FROM uu), (SELECT count(*) FROM tc),
           (SELECT array_agg(ROW(t.customer_id, t.code, t.value_segment, t.p_churn, t.spend_365,
                                 t.drivers)::churn.pipeline_alert_candidate)
            FROM t WHERE t.alert)
    INTO n_scored, n_written, n_changes, cands;
    n_alerts := churn.pipeline_raise_alerts(p.name, cands);
    t2 := clock_timestamp();

    SELECT count(*) INTO n_total FROM churn.pipeline_customer c WHERE c.pipeline_id = p.pipeline_id;

    -- 4. the run and the schedule
    UPDATE churn.pipeline
    SET as_of = today, scored_model = p.model, bgnbd = bg, consecutive_failures = 0, last_success_at = now(),
        next_run_at = churn.pipeline_next_slot(p.anchor_at, p.schedule, p.time_zone, now())
    WHERE pipeline_id = p.pipeline_id;
    UPDATE churn.pipeline_run
    SET status = 'succeeded', finished_at = clock_timestamp(), as_of = today,
        mode = CASE WHEN full_read THEN 'full' ELSE 'incremental' END,
        new_purchase_rows = n_new, customers_merged = n_merged, customers_total = n_total,
        customers_scored = n_scored, snapshot_rows_written = n_written, tier_changes = n_changes,
        alerts_raised = n_alerts,
        merge_ms = 1000 * extract(epoch FROM t1 - t0), score_ms = 1000 * extract(epoch FROM t2 - t1),
        finish_ms = 1000 * extract(epoch FROM clock_timestamp() - t2)
    WHERE run_id = run;
    -- retention: runs and tier changes older than run_retention go (the
    -- last 10 runs always stay)
    DELETE FROM churn.pipeline_run r
    WHERE r.pipeline_id = p.pipeline_id AND r.finished_at < now() - p.run_retention
      AND r.run_id < (SELECT min(k.run_id) FROM (SELECT r2.run_id FROM churn.pipeline_run r2
                                                  WHERE r2.pipeline_id = p.pipeline_id
                                                  ORDER BY r2.run_id DESC LIMIT 10) k);
    DELETE FROM churn.pipeline_tier_change tc
    WHERE tc.pipeline_id = p.pipeline_id AND tc.at < now() - p.run_retention;
    PERFORM pg_notify('churn_refresh', json_build_object('pipeline', p.name, 'run_id', run, 'as_of', today,
                                                         'tier_changes', n_changes, 'alerts', n_alerts)::text);
    RETURN run;
END
$$;

-- ---------------------------------------------------------------------------
-- The worker's side (part 910 calls these as the bootstrap superuser).

-- Mark runs left 'running' by a process that is gone (a crash, a restart,
-- a terminated worker) as interrupted.
CREATE FUNCTION churn.pipeline_worker_start() RETURNS int
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    n int;
BEGIN
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

CREATE FUNCTION churn.pipeline_due() RETURNS TABLE (pipeline_id int, name text, time_limit_ms bigint)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT p.pipeline_id, p.name, (1000 * extract(epoch FROM p.time_limit))::bigint
    FROM churn.pipeline p
    WHERE p.state = 'active' AND p.next_run_at <= now()
    ORDER BY p.next_run_at, p.pipeline_id
$$;

CREATE FUNCTION churn.pipeline_next_due() RETURNS timestamptz
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT min(p.next_run_at) FROM churn.pipeline p WHERE p.state = 'active'
$$;

-- Claim a due pipeline for a scheduled run; NULL when it is being
-- refreshed already, paused or no longer due.
CREATE FUNCTION churn.pipeline_run_start(p_pipeline_id int) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    p churn.pipeline;
    run bigint;
BEGIN
    SELECT * INTO p FROM churn.pipeline
    WHERE pipeline_id = p_pipeline_id AND state = 'active' AND next_run_at <= now()
    FOR NO KEY UPDATE SKIP LOCKED;
    IF NOT FOUND OR EXISTS (SELECT 1 FROM churn.pipeline_run r
                            WHERE r.pipeline_id = p_pipeline_id AND r.status = 'running'
                              AND EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.pid)) THEN
        RETURN NULL;
    END IF;
    INSERT INTO churn.pipeline_run (pipeline_id, pipeline, trigger, status, started_at, pid, attempt)
    VALUES (p.pipeline_id, p.name, 'schedule', 'running', clock_timestamp(), pg_backend_pid(),
            p.consecutive_failures + 1)
    RETURNING run_id INTO run;
    RETURN run;
END
$$;

-- Record a failed scheduled run: retry with capped exponential backoff and
-- jitter, pause the pipeline (and say so) after max_failures in a row.
CREATE FUNCTION churn.pipeline_run_failed(p_run_id bigint, sqlstate text, message text, detail text)
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
    SELECT * INTO r FROM churn.pipeline_run WHERE run_id = p_run_id FOR UPDATE;
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
    SET status = CASE WHEN sqlstate = '57014' AND message LIKE '%statement timeout%' THEN 'timed_out'
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
        PERFORM pg_notify('churn_pipeline', json_build_object('pipeline', p.name, 'event', 'paused',
                                                              'failures', fails, 'error', message)::text);
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
END
$$;

-- ---------------------------------------------------------------------------
-- Views.  Everyone may query them; a role sees the pipelines it owns (or
-- is a member of the owner of), and churn_reader sees all.

CREATE FUNCTION churn.pipeline_visible(owner oid) RETURNS boolean
    LANGUAGE sql STABLE AS
$$
    SELECT CASE WHEN pg_catalog.pg_has_role('churn_reader', 'USAGE') THEN true
                WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = $1) THEN false
                ELSE pg_catalog.pg_has_role($1, 'USAGE') END
$$;
COMMENT ON FUNCTION churn.pipeline_visible(oid) IS
    'pipeline internal: may the current role see the pipelines of this owner (member of it, or of churn_reader)';

CREATE VIEW churn.pipeline_status WITH (security_barrier) AS
SELECT p.name AS pipeline, p.state, lr.started_at AS last_run_at, lr.status AS last_status,
       lr.error_message AS last_error,
       CASE WHEN p.state = 'active' THEN p.next_run_at END AS next_run_at,
       p.consecutive_failures, p.owner::text AS owner, p.source::text AS source, p.model, p.policy,
       p.schedule, p.time_zone, p.capture, p.as_of,
       (SELECT r.customers_total FROM churn.pipeline_run r
        WHERE r.pipeline_id = p.pipeline_id AND r.status = 'succeeded' ORDER BY r.run_id DESC LIMIT 1) AS customers,
       lr.finished_at - lr.started_at AS last_duration, p.last_success_at, p.paused_reason
FROM churn.pipeline p
LEFT JOIN LATERAL (SELECT r.* FROM churn.pipeline_run r WHERE r.pipeline_id = p.pipeline_id
                   ORDER BY r.run_id DESC LIMIT 1) lr ON true
WHERE churn.pipeline_visible(p.owner);
COMMENT ON VIEW churn.pipeline_status IS
    'one row per pipeline: state, the last run and its error, the next scheduled run, failures in a row';
COMMENT ON COLUMN churn.pipeline_status.pipeline IS 'pipeline name';
COMMENT ON COLUMN churn.pipeline_status.state IS 'active or paused';
COMMENT ON COLUMN churn.pipeline_status.last_run_at IS 'start of the most recent run (any status)';
COMMENT ON COLUMN churn.pipeline_status.last_status IS 'running, succeeded, failed, timed_out, interrupted or skipped';
COMMENT ON COLUMN churn.pipeline_status.last_error IS 'error message of the most recent run; NULL when it succeeded';
COMMENT ON COLUMN churn.pipeline_status.next_run_at IS 'when the worker runs it next (a retry after a failure); NULL while paused';
COMMENT ON COLUMN churn.pipeline_status.consecutive_failures IS 'scheduled runs that failed in a row (0 after a success)';
COMMENT ON COLUMN churn.pipeline_status.capture IS 'trigger (new purchases captured on INSERT) or full (the source is re-read on every refresh)';
COMMENT ON COLUMN churn.pipeline_status.as_of IS 'the date (in the pipeline''s time zone) of the current snapshot';
COMMENT ON COLUMN churn.pipeline_status.customers IS 'customers with a history after the most recent successful run';

CREATE VIEW churn.pipeline_runs WITH (security_barrier) AS
SELECT r.run_id, p.name AS pipeline, r.trigger, r.status, r.started_at, r.finished_at,
       r.finished_at - r.started_at AS duration, r.attempt, r.as_of, r.mode, r.new_purchase_rows,
       r.customers_merged, r.customers_total, r.customers_scored, r.snapshot_rows_written, r.tier_changes,
       r.alerts_raised, r.merge_ms, r.score_ms, r.finish_ms, r.error_code, r.error_message, r.error_detail
FROM churn.pipeline_run r JOIN churn.pipeline p ON p.pipeline_id = r.pipeline_id
WHERE churn.pipeline_visible(p.owner);
COMMENT ON VIEW churn.pipeline_runs IS
    'the run history of every pipeline: status, timings, row counts, tier changes and the error (kept for run_retention)';

CREATE VIEW churn.current_warnings WITH (security_barrier) AS
SELECT p.name AS pipeline, w.customer_id, p.as_of, w.p_churn, w.zone, w.level, w.code, w.value_segment,
       w.lead_days, w.p_alive, w.expected_purchases, w.predicted_value, w.annual_value, w.drivers,
       w.previous_code, w.changed_at, (w.features).last_purchase, (w.features).recency_days, w.features
FROM churn.pipeline_warning w JOIN churn.pipeline p ON p.pipeline_id = w.pipeline_id
WHERE churn.pipeline_visible(p.owner);
COMMENT ON VIEW churn.current_warnings IS
    'the warning snapshot of every pipeline: one row per customer as of the last refresh (zone none included)';
COMMENT ON COLUMN churn.current_warnings.as_of IS 'date the scores refer to, in the pipeline''s time zone';
COMMENT ON COLUMN churn.current_warnings.p_churn IS 'churn probability over the pipeline''s horizon, from its model';
COMMENT ON COLUMN churn.current_warnings.p_alive IS 'BG/NBD probability that the customer is still active; NULL when BG/NBD cannot be fitted';
COMMENT ON COLUMN churn.current_warnings.expected_purchases IS 'BG/NBD expected purchase days over the horizon';
COMMENT ON COLUMN churn.current_warnings.predicted_value IS 'BG/NBD expected purchase days in the next 365 days times the customer''s average spend';
COMMENT ON COLUMN churn.current_warnings.annual_value IS 'net spend in the 365 days up to as_of (at least 0): the value the tier is based on';
COMMENT ON COLUMN churn.current_warnings.drivers IS 'top drivers when the code last changed (logit, xgb and rule models; empty for BG/NBD)';
COMMENT ON COLUMN churn.current_warnings.previous_code IS 'code before the last change; NULL for a customer''s first code';
COMMENT ON COLUMN churn.current_warnings.changed_at IS 'when the code last changed (or was first set)';

CREATE VIEW churn.tier_changes WITH (security_barrier) AS
SELECT p.name AS pipeline, tc.customer_id, tc.at, tc.as_of, tc.from_code, tc.to_code, tc.p_churn,
       tc.run_id
FROM churn.pipeline_tier_change tc JOIN churn.pipeline p ON p.pipeline_id = tc.pipeline_id
WHERE churn.pipeline_visible(p.owner);
COMMENT ON VIEW churn.tier_changes IS
    'every change of a customer''s tier code by a pipeline refresh (N0 = no warning), kept for run_retention';


-- Everyone may query the views, which show a role its own
-- pipelines and churn_reader all of them (the tables behind them are the
-- extension's own).
GRANT SELECT ON churn.pipeline_status, churn.pipeline_runs, churn.current_warnings, churn.tier_changes
    TO PUBLIC;

-- ---------------------------------------------------------------------------
-- The user's functions.

CREATE FUNCTION churn.create_pipeline(name text, source regclass, customer_col name DEFAULT 'customer_id',
                                      ts_col name DEFAULT 'ts', amount_col name DEFAULT 'amount',
                                      model text DEFAULT 'bgnbd', policy text DEFAULT 'default',
                                      horizon_days int DEFAULT 90, schedule interval DEFAULT '1 day',
                                      time_zone text DEFAULT NULL, window_days int DEFAULT 90,
                                      time_limit interval DEFAULT '1 hour', max_failures int DEFAULT 5,
                                      start_at timestamptz DEFAULT NULL,
                                      alert_zones text[] DEFAULT '{red,yellow}',
                                      alert_max_idle_days int DEFAULT 365,
                                      run_retention interval DEFAULT '90 days') RETURNS churn.pipeline_status
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.pipeline_dispatch('create', $1, jsonb_build_object(
        'source', $2::oid, 'customer_col', $3, 'ts_col', $4, 'amount_col', $5, 'model', $6, 'policy', $7,
        'horizon_days', $8, 'schedule', $9, 'time_zone', $10, 'window_days', $11, 'time_limit', $12,
        'max_failures', $13, 'start_at', $14, 'alert_zones', to_jsonb($15), 'alert_max_idle_days', $16,
        'run_retention', $17));
    SELECT * FROM churn.pipeline_status s WHERE s.pipeline = $1;
$$;

CREATE FUNCTION churn.alter_pipeline(name text, new_name text DEFAULT NULL, source regclass DEFAULT NULL,
                                     customer_col name DEFAULT NULL, ts_col name DEFAULT NULL,
                                     amount_col name DEFAULT NULL, model text DEFAULT NULL,
                                     policy text DEFAULT NULL, horizon_days int DEFAULT NULL,
                                     schedule interval DEFAULT NULL, time_zone text DEFAULT NULL,
                                     window_days int DEFAULT NULL, time_limit interval DEFAULT NULL,
                                     max_failures int DEFAULT NULL, start_at timestamptz DEFAULT NULL,
                                     alert_zones text[] DEFAULT NULL, alert_max_idle_days int DEFAULT NULL,
                                     run_retention interval DEFAULT NULL, owner regrole DEFAULT NULL)
    RETURNS churn.pipeline_status
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.pipeline_dispatch('alter', $1, jsonb_build_object(
        'name', $2, 'source', $3::oid, 'customer_col', $4, 'ts_col', $5, 'amount_col', $6, 'model', $7,
        'policy', $8, 'horizon_days', $9, 'schedule', $10, 'time_zone', $11, 'window_days', $12,
        'time_limit', $13, 'max_failures', $14, 'start_at', $15, 'alert_zones', to_jsonb($16),
        'alert_max_idle_days', $17, 'run_retention', $18, 'owner', $19::oid));
    SELECT * FROM churn.pipeline_status s WHERE s.pipeline = coalesce($2, $1);
$$;

CREATE FUNCTION churn.pause_pipeline(name text) RETURNS churn.pipeline_status
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.pipeline_dispatch('pause', $1, NULL);
    SELECT * FROM churn.pipeline_status s WHERE s.pipeline = $1;
$$;

CREATE FUNCTION churn.resume_pipeline(name text) RETURNS churn.pipeline_status
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.pipeline_dispatch('resume', $1, NULL);
    SELECT * FROM churn.pipeline_status s WHERE s.pipeline = $1;
$$;

CREATE FUNCTION churn.drop_pipeline(name text) RETURNS boolean
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT (churn.pipeline_dispatch('drop', $1, NULL) ->> 'dropped')::boolean
$$;

CREATE FUNCTION churn.refresh(name text) RETURNS churn.pipeline_runs
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    d jsonb := churn.pipeline_dispatch('refresh', name, NULL);
    r churn.pipeline_runs;
BEGIN
    SELECT * INTO r FROM churn.pipeline_runs v WHERE v.run_id = (d ->> 'run_id')::bigint;
    RETURN r;
END
$$;

-- Only the functions above are for users; the rest is reached through them.
REVOKE EXECUTE ON FUNCTION churn.pipeline_read(int), churn.worker_wake(),
    churn.pipeline_state_key(), churn.pipeline_next_slot(timestamptz, interval, text, timestamptz),
    churn.pipeline_check_source(regclass, name, name, name, oid), churn.pipeline_check_model(text),
    churn.pipeline_triggers(churn.pipeline, boolean), churn.pipeline_apply_args(churn.pipeline, jsonb, oid),
    churn.pipeline_create_internal(text, jsonb, oid), churn.pipeline_alter_internal(text, jsonb, oid),
    churn.pipeline_pause_internal(text, jsonb, oid), churn.pipeline_resume_internal(text, jsonb, oid),
    churn.pipeline_drop_internal(text, jsonb, oid), churn.pipeline_refresh_internal(text, jsonb, oid),
    churn.pipeline_execute(int, bigint), churn.pipeline_raise_alerts(text, churn.pipeline_alert_candidate[]),
    churn.pipeline_worker_start(), churn.pipeline_due(),
    churn.pipeline_next_due(), churn.pipeline_run_start(int), churn.pipeline_run_failed(bigint, text, text, text)
    FROM PUBLIC;
