-- churn_warning install script, part 050: read-only built-in rows.
--
-- Several configuration tables (RFM segment schemes, rulesets, tier
-- policies, the playbook) ship built-in rows marked builtin = true.  Those
-- rows are read-only, and every row a user writes is marked builtin = false,
-- so that pg_dump can keep the user rows apart ('WHERE NOT builtin') and a
-- restore never collides with the rows CREATE EXTENSION installs.
--
-- Trigger arguments: the key column named in messages, the error message
-- and the hint, both format() strings taking the key value as %s / %L.
CREATE FUNCTION churn.builtin_guard() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    key text;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.builtin THEN
        key := to_jsonb(OLD) ->> TG_ARGV[0];
        RAISE EXCEPTION '%', format(TG_ARGV[1], key)
            USING ERRCODE = 'insufficient_privilege', HINT = format(TG_ARGV[2], key);
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    NEW.builtin := false;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION churn.builtin_guard() IS
    'trigger: built-in configuration rows are read-only; rows users write are never built-in';
