-- churn_warning install script, part 935 (0.3.0): retention that can be
-- measured.  Alerts close themselves from the purchase data (retained when
-- the customer buys within outcome_days of the alert, churned when that
-- time passes), and a deterministic random share of new alerts per
-- pipeline is held out as a control group, so churn.retention_effect can
-- say whether the retention work kept anyone who would otherwise have left.

ALTER TABLE churn.pipeline
    ADD COLUMN control_share float8 NOT NULL DEFAULT 0 CHECK (control_share >= 0 AND control_share < 1),
    ADD COLUMN outcome_days int CHECK (outcome_days > 0),
    ADD COLUMN control_zones jsonb;
COMMENT ON COLUMN churn.pipeline.control_share IS
    'share of new alerts held out as a control group (recorded, not handed to staff), drawn per customer; 0 = none';
COMMENT ON COLUMN churn.pipeline.control_zones IS
    'control share per zone, overriding control_share for the zones it names, e.g. {"red": 0.1, "yellow": 0.3}; NULL = control_share everywhere';
COMMENT ON COLUMN churn.pipeline.outcome_days IS
    'days after an alert within which a purchase closes it as retained; after them it closes as churned (NULL: horizon_days)';

ALTER TABLE churn.pipeline_run ADD COLUMN alerts_closed bigint;
COMMENT ON COLUMN churn.pipeline_run.alerts_closed IS 'alerts the run closed from the purchase data (retained or churned)';

ALTER TABLE churn.alert ADD COLUMN arm text NOT NULL DEFAULT 'treatment' CHECK (arm IN ('treatment', 'control'));
COMMENT ON COLUMN churn.alert.arm IS
    'treatment (handed to staff with the playbook action) or control (held out: no action, not in the open-alert views)';

-- The arm of a customer's alerts in a pipeline: control for a
-- deterministic pseudo-random share of customers (the same on every run,
-- independent of the order alerts are raised in).
CREATE FUNCTION churn.alert_arm(pipeline_id int, customer_id text, control_share float8) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN control_share > 0
                 AND (hashtextextended(pipeline_id::text || ':' || customer_id, 8725)
                      & 9007199254740991)::float8 / 9007199254740992 < control_share
                THEN 'control' ELSE 'treatment' END
$$;
COMMENT ON FUNCTION churn.alert_arm(int, text, float8) IS
    'treatment or control: control for a deterministic pseudo-random share control_share of a pipeline''s customers';

-- A control_zones value: an object of zone -> share, each zone red, yellow
-- or blue, each share a number in [0, 1).
CREATE FUNCTION churn.control_zones_check(zones jsonb) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    z record;
BEGIN
    IF zones IS NULL THEN
        RETURN;
    END IF;
    IF jsonb_typeof(zones) <> 'object' THEN
        RAISE EXCEPTION 'control_zones must be a JSON object of zone -> share, got %', zones
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example {"red": 0.1, "yellow": 0.3}.';
    END IF;
    FOR z IN SELECT key, value FROM jsonb_each(zones) LOOP
        IF z.key NOT IN ('red', 'yellow', 'blue') THEN
            RAISE EXCEPTION 'control_zones: unknown zone "%"', z.key
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Alerts are raised in the zones red, yellow and blue.';
        END IF;
        IF jsonb_typeof(z.value) <> 'number' OR (z.value)::float8 < 0 OR (z.value)::float8 >= 1 THEN
            RAISE EXCEPTION 'control_zones: the share of zone "%" must be a number in [0, 1), got %', z.key, z.value
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION churn.control_zones_check(jsonb) IS
    'checks a pipeline''s control_zones: zone (red, yellow, blue) -> share in [0, 1); raises 22023 otherwise';

-- The retention arguments of create and alter (control_share, outcome_days,
-- store_col; alter_pipeline(store_col => '') drops the store column),
-- checked; returns the row to write.
CREATE FUNCTION churn.pipeline_apply_retention_args(p churn.pipeline, args jsonb) RETURNS churn.pipeline
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF args ? 'control_share' THEN p.control_share := (args->>'control_share')::float8; END IF;
    IF args ? 'outcome_days' THEN p.outcome_days := (args->>'outcome_days')::int; END IF;
    IF args ? 'control_zones' THEN
        -- '{}' (what alter_pipeline(control_zones => '{}') gives) = none
        p.control_zones := nullif(args->'control_zones', '{}'::jsonb);
        PERFORM churn.control_zones_check(p.control_zones);
    END IF;
    IF args ? 'store_col' THEN p.store_col := nullif(args->>'store_col', ''); END IF;
    IF p.store_col IS NOT NULL THEN
        PERFORM churn.pipeline_check_store_column(p.source, p.store_col);
    END IF;
    IF p.control_share IS NULL OR p.control_share = 'NaN' OR p.control_share < 0 OR p.control_share >= 1 THEN
        RAISE EXCEPTION 'control_share must be in [0, 1), got %', coalesce(p.control_share::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = '0.1 holds out one alert in ten; see docs/alerts.md for how big a control group must be.';
    END IF;
    IF p.outcome_days <= 0 THEN
        RAISE EXCEPTION 'outcome_days must be positive or NULL (the horizon), got %', p.outcome_days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN p;
END
$$;

-- Close the pipeline's open and contacted alerts whose outcome the data now
-- shows: retained when the customer bought on a day after the alert's day
-- and within outcome_days of it, churned when outcome_days have passed
-- without one.  A manual close wins: closed alerts are not touched, and an
-- alert staff are changing right now is left for the next refresh.
-- Returns the number closed.
CREATE FUNCTION churn.pipeline_close_outcomes(p churn.pipeline, today date) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET enable_nestloop = off SET jit = off AS
$$
DECLARE
    w int := coalesce(p.outcome_days, p.horizon_days);
    n bigint;
BEGIN
    WITH a AS MATERIALIZED (
        SELECT a.alert_id, a.customer_id, (a.opened_at AT TIME ZONE p.time_zone)::date AS day
        FROM churn.alert a
        WHERE a.pipeline_id = p.pipeline_id AND a.status IN ('open', 'contacted')
    ), o AS MATERIALIZED (
        SELECT a.*, b.day AS bought_on,
               CASE WHEN b.day IS NOT NULL THEN 'retained' WHEN a.day + w < today THEN 'churned' END AS outcome
        FROM a
        -- the alerted customer's history by key (a subquery, not a join: a
        -- hash join would read the pipeline's whole slice on every refresh)
        LEFT JOIN LATERAL (SELECT min(d.day) AS day
                           FROM churn.history_days((SELECT c.history FROM churn.pipeline_customer c
                                                    WHERE c.pipeline_id = p.pipeline_id
                                                      AND c.customer_id = a.customer_id)) d
                           WHERE d.purchases > 0 AND d.day > a.day AND d.day <= a.day + w) b ON true
    ), l AS MATERIALIZED (
        -- only the alerts that get an outcome are locked, in id order, and
        -- one that staff hold is left for the next refresh: a refresh never
        -- waits for staff, so it cannot deadlock with them
        SELECT x.alert_id, x.status, x.code FROM churn.alert x
        WHERE x.alert_id IN (SELECT o.alert_id FROM o WHERE o.outcome IS NOT NULL)
          AND x.status IN ('open', 'contacted')
        ORDER BY x.alert_id
        FOR UPDATE OF x SKIP LOCKED
    ), up AS (
        UPDATE churn.alert x SET status = o.outcome, closed_at = now(), last_changed_at = now()
        FROM o JOIN l USING (alert_id) WHERE x.alert_id = o.alert_id
        RETURNING o.alert_id, l.status AS from_status, o.outcome, l.code, o.bought_on
    ), ev AS (
        INSERT INTO churn.alert_event (alert_id, at, event, from_status, to_status, from_code, to_code, actor, note)
        SELECT up.alert_id, now(), 'moved', up.from_status, up.outcome, up.code, up.code, 'churn.outcome',
               CASE WHEN up.outcome = 'retained' THEN format('bought on %s, within %s days of the alert', up.bought_on, w)
                    ELSE format('no purchase within %s days of the alert', w) END
        FROM up
        RETURNING 1
    )
    SELECT count(*) INTO n FROM ev;
    RETURN n;
END
$$;
COMMENT ON FUNCTION churn.pipeline_close_outcomes(churn.pipeline, date) IS
    'refresh step: closes open alerts as retained (a purchase within outcome_days) or churned (none); actor churn.outcome';

REVOKE EXECUTE ON FUNCTION churn.pipeline_apply_retention_args(churn.pipeline, jsonb),
    churn.pipeline_close_outcomes(churn.pipeline, date) FROM PUBLIC;

-- A proportion's 95% Wilson score interval; the two-sample difference's
-- Newcombe (1998, method 10) hybrid interval from them, which holds for
-- small groups and for rates near 0 or 1.
CREATE FUNCTION churn.wilson_interval(x bigint, n bigint, OUT low float8, OUT high float8)
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN n > 0 THEN (c - h) END, CASE WHEN n > 0 THEN (c + h) END
    FROM (SELECT 1.959963984540054::float8 AS z) k,
         LATERAL (SELECT (x + k.z * k.z / 2) / (n + k.z * k.z) AS c,
                         k.z / (n + k.z * k.z) * sqrt(x::float8 * (n - x) / greatest(n, 1) + k.z * k.z / 4) AS h) w
$$;
COMMENT ON FUNCTION churn.wilson_interval(bigint, bigint) IS
    '95% Wilson score interval of x successes in n trials; NULL for n = 0';
CREATE FUNCTION churn.newcombe_interval(x1 bigint, n1 bigint, x2 bigint, n2 bigint, OUT low float8, OUT high float8)
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT d - sqrt((p1 - a.low) ^ 2 + (b.high - p2) ^ 2), d + sqrt((a.high - p1) ^ 2 + (p2 - b.low) ^ 2)
    FROM churn.wilson_interval(x1, n1) a, churn.wilson_interval(x2, n2) b,
         LATERAL (SELECT x1::float8 / nullif(n1, 0) AS p1, x2::float8 / nullif(n2, 0) AS p2) p,
         LATERAL (SELECT p.p1 - p.p2 AS d) dd
$$;
COMMENT ON FUNCTION churn.newcombe_interval(bigint, bigint, bigint, bigint) IS
    '95% Newcombe hybrid score interval of x1/n1 - x2/n2 (method 10); NULL when either n is 0';
