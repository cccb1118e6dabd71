-- churn_warning install script, part 985 (0.3.0): per-store access for
-- store staff.
--
-- A pipeline's owner grants a role the stores it serves
-- (churn.grant_store); members of that role then see those stores' rows of
-- the warning and alert views, and move those stores' alerts, and nothing
-- else.  Analysts and BI tools (churn_reader) and the pipeline's owner keep
-- seeing everything, as before.
--
--   - churn.store_grant: (role, pipeline, store), written only by the
--     extension's owner through churn.grant_store / churn.revoke_store (C
--     functions without SECURITY DEFINER that pass their caller, as the
--     alert functions do); the caller must own the pipeline.
--   - churn.store_access: what the current role may see, one row per
--     pipeline it sees whole (store NULL) or per store granted to it.
--   - every view with customer rows keeps its pipeline check and also shows
--     the rows of the stores in churn.store_access (security_barrier views:
--     they read the tables as the view owner, while pg_has_role inside them
--     tests the role that queries).
--   - the tables with customer data get row-level security with the same
--     rule, for a role somebody grants SELECT on them directly (their owner,
--     the extension's owner, and superusers bypass it; nobody else has a
--     privilege on them by default, so direct access is a permission error).
--   - role churn_store (store staff): SELECT on the alert views and EXECUTE
--     on the functions that move alerts; alert_check_owner lets a role move
--     the alerts of the stores granted to it and refuses other alerts.

CREATE TABLE churn.store_grant (
    role        oid NOT NULL,
    pipeline_id int NOT NULL REFERENCES churn.pipeline (pipeline_id) ON DELETE CASCADE,
    store       text NOT NULL CHECK (store <> ''),
    granted_at  timestamptz NOT NULL DEFAULT now(),
    granted_by  text NOT NULL,
    PRIMARY KEY (role, pipeline_id, store)
);
COMMENT ON TABLE churn.store_grant IS
    'stores of a pipeline granted to a role (churn.grant_store): its members see those stores'' warnings and alerts and move those alerts; kept by pg_dump';
SELECT pg_catalog.pg_extension_config_dump('churn.store_grant', '');

-- Is the current role a member (with the role's privileges) of this role,
-- which must still exist?
CREATE FUNCTION churn.store_role_held(role oid) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) $1)
           AND pg_catalog.pg_has_role($1, 'USAGE')
$$;
COMMENT ON FUNCTION churn.store_role_held(oid) IS
    'store access internal: is the current role a member of this (existing) role';

-- What the current role may see: whole pipelines (owner or churn_reader)
-- and the stores granted to it.
CREATE VIEW churn.store_access WITH (security_barrier) AS
SELECT p.pipeline_id::int AS pipeline_id, p.name::text AS pipeline, NULL::text AS store,
       CASE WHEN pg_catalog.pg_has_role('churn_reader', 'USAGE') THEN 'churn_reader' ELSE 'owner' END::text AS via
FROM churn.pipeline p
WHERE churn.pipeline_visible(p.owner)
UNION ALL
SELECT g.pipeline_id, p.name, g.store, g.role::regrole::text
FROM churn.store_grant g JOIN churn.pipeline p ON p.pipeline_id = g.pipeline_id
WHERE churn.store_role_held(g.role);
COMMENT ON VIEW churn.store_access IS
    'the pipelines and stores the current role may see: store NULL = the whole pipeline (its owner, or churn_reader), else a store granted to a role it is a member of';
COMMENT ON COLUMN churn.store_access.store IS 'a granted store; NULL when the role sees every store of the pipeline';
COMMENT ON COLUMN churn.store_access.via IS 'churn_reader, owner, or the role the store is granted to';
GRANT SELECT ON churn.store_access TO PUBLIC;

-- May the current role see a row of this pipeline and store (the policy of
-- the tables with customer data)?
CREATE FUNCTION churn.store_row_visible(pipeline_id int, store text) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN $1 IS NULL THEN pg_catalog.pg_has_role('churn_reader', 'USAGE')
                ELSE EXISTS (SELECT 1 FROM churn.store_access s
                             WHERE s.pipeline_id OPERATOR(pg_catalog.=) $1
                               AND (s.store IS NULL OR s.store OPERATOR(pg_catalog.=) $2)) END
$$;
COMMENT ON FUNCTION churn.store_row_visible(int, text) IS
    'store access internal: may the current role see a row of this pipeline and store (row-level security of the tables); pipeline NULL (alerts raised by hand): churn_reader only';

-- Is a role store staff (a member of churn_store, not a superuser)?
CREATE FUNCTION churn.store_staff(role oid) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.pg_has_role($1, 'churn_store', 'USAGE')
           AND NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) $1), false)
$$;
COMMENT ON FUNCTION churn.store_staff(oid) IS
    'store access internal: is the role a member of churn_store (store staff) and not a superuser';

-- The pipeline a store grant names, checked to be the caller's.
CREATE FUNCTION churn.store_grant_pipeline(p_pipeline text, caller oid) RETURNS int
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    p churn.pipeline;
BEGIN
    IF p_pipeline IS NULL THEN
        RAISE EXCEPTION 'pipeline must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO p FROM churn.pipeline q WHERE q.name = p_pipeline;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pipeline "%" does not exist', p_pipeline
            USING ERRCODE = 'undefined_object', HINT = 'Pipelines are listed in churn.pipeline_status.';
    END IF;
    IF NOT pg_has_role(caller, p.owner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of pipeline "%"', p.name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Only the role that owns a pipeline (or a member of it) may grant or revoke its stores.';
    END IF;
    RETURN p.pipeline_id;
END
$$;
COMMENT ON FUNCTION churn.store_grant_pipeline(text, oid) IS
    'store access internal: the id of the pipeline of this name; an error unless it exists and the caller owns it';

CREATE FUNCTION churn.grant_store_internal(role regrole, pipeline text, store text, caller oid) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    pid int := churn.store_grant_pipeline(pipeline, caller);
    n bigint;
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF store IS NULL OR store = '' THEN
        RAISE EXCEPTION 'store must not be NULL or empty' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Stores are the values of the pipeline''s store column, as text (churn.current_warnings.store).';
    END IF;
    INSERT INTO churn.store_grant AS g (role, pipeline_id, store, granted_by)
    VALUES (role, pid, store, caller::regrole::text)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n > 0;
END
$$;

CREATE FUNCTION churn.revoke_store_internal(role regrole, pipeline text, store text, caller oid) RETURNS bigint
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
    WITH d AS (
        DELETE FROM churn.store_grant g
        WHERE g.pipeline_id = churn.store_grant_pipeline($2, $4) AND g.role = $1::oid
          AND ($3 IS NULL OR g.store = $3)
        RETURNING 1)
    SELECT count(*) FROM d
$$;

-- The functions users call: C, acting for their caller (src/store_access.c).
CREATE FUNCTION churn.grant_store(role regrole, pipeline text, store text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'grant_store' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION churn.grant_store(regrole, text, text) IS
    'let a role (its members) see one store''s warnings and alerts of a pipeline and move those alerts; true when newly granted; the caller must own the pipeline';
CREATE FUNCTION churn.revoke_store(role regrole, pipeline text, store text DEFAULT NULL) RETURNS bigint
    AS 'MODULE_PATHNAME', 'revoke_store' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION churn.revoke_store(regrole, text, text) IS
    'take back a store (NULL: every store) of a pipeline from a role; returns the grants removed; the caller must own the pipeline';

-- Who may move an alert: its pipeline's owner, a role granted the alert's
-- store, or (alerts raised by hand without a pipeline) any role with
-- EXECUTE that is not store staff.
CREATE OR REPLACE FUNCTION churn.alert_check_owner(p_alert_id bigint, caller oid) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    a churn.alert;
    p churn.pipeline;
BEGIN
    SELECT * INTO a FROM churn.alert x WHERE x.alert_id = p_alert_id;
    IF NOT FOUND THEN
        RETURN;                     -- alert_transition says so
    END IF;
    IF a.pipeline_id IS NULL THEN
        IF churn.store_staff(caller) THEN
            RAISE EXCEPTION 'alert % has no store', p_alert_id
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'Store staff (members of churn_store) move the alerts of the stores granted to them only.';
        END IF;
        RETURN;
    END IF;
    SELECT * INTO p FROM churn.pipeline q WHERE q.pipeline_id = a.pipeline_id;
    IF FOUND AND pg_has_role(caller, p.owner, 'USAGE') THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM churn.store_grant g JOIN pg_catalog.pg_roles r ON r.oid = g.role
               WHERE g.pipeline_id = a.pipeline_id AND g.store = a.store AND pg_has_role(caller, g.role, 'USAGE')) THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM churn.store_grant g JOIN pg_catalog.pg_roles r ON r.oid = g.role
               WHERE g.pipeline_id = a.pipeline_id AND pg_has_role(caller, g.role, 'USAGE')) THEN
        RAISE EXCEPTION 'alert % is not of a store granted to role %', p_alert_id, caller::regrole
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Store staff move the alerts of the stores granted to them (churn.grant_store) only.';
    END IF;
    RAISE EXCEPTION 'must be owner of the pipeline of alert %', p_alert_id
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'Only the role that owns a pipeline (or a member of it) may raise or move its alerts.';
END
$$;

REVOKE EXECUTE ON FUNCTION
    churn.store_grant_pipeline(text, oid),
    churn.grant_store_internal(regrole, text, text, oid),
    churn.revoke_store_internal(regrole, text, text, oid),
    churn.store_staff(oid)
    FROM PUBLIC;

-- Store staff.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'churn_store') THEN
        CREATE ROLE churn_store NOLOGIN;
    END IF;
END
$$;
COMMENT ON ROLE churn_store IS
    'store staff: read the warning and alert views and move alerts, limited to the stores granted with churn.grant_store';
