-- churn_warning install script, part 910 (0.3.0): capture without the
-- extension's rights.
--
-- In 0.2.0 the capture trigger was a SECURITY DEFINER PL/pgSQL function that
-- converted the source's columns with ::text and ::float8.  Casts are found
-- by type, not by search_path, so a user-defined cast on the source's
-- column type ran with the extension owner's rights.  Now the trigger is C
-- (src/capture.c): it converts only built-in types, with built-in
-- functions, and writes the queue as the extension's owner with plain
-- values.  The same column check guards create, alter and every refresh.

CREATE FUNCTION churn.pipeline_check_columns(source regclass, customer_col name, ts_col name, amount_col name,
                                             ts_kind text) RETURNS text
    AS 'MODULE_PATHNAME', 'pipeline_check_columns' LANGUAGE C STABLE;
COMMENT ON FUNCTION churn.pipeline_check_columns(regclass, name, name, name, text) IS
    'pipeline internal: the kind of the time column (date, timestamp, timestamptz) when the three columns have types a pipeline accepts, else an error; with ts_kind, also an error when the kind changed';

-- Validate the source relation and its columns for a pipeline owner;
-- returns the kind of the timestamp column.  Warns when the source
-- belongs to a role whose code the owner would run on every refresh.
CREATE OR REPLACE FUNCTION churn.pipeline_check_source(source regclass, customer_col name, ts_col name,
                                                       amount_col name, owner oid) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    rel pg_class;
    col name;
BEGIN
    SELECT * INTO rel FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) source;
    IF NOT FOUND OR rel.relkind NOT IN ('r', 'p', 'v', 'm', 'f') THEN
        RAISE EXCEPTION '% is not a table, view, materialized view or foreign table', source
            USING ERRCODE = 'wrong_object_type';
    END IF;
    FOREACH col IN ARRAY ARRAY[customer_col, ts_col, amount_col] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) source
                           AND a.attname OPERATOR(pg_catalog.=) col AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'column "%" does not exist in %', col, source
                USING ERRCODE = 'undefined_column',
                      HINT = 'Name the columns with customer_col, ts_col and amount_col.';
        END IF;
        IF NOT has_column_privilege(owner, source, col::text, 'SELECT') THEN
            RAISE EXCEPTION 'permission denied to read column "%" of %', col, source
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'A pipeline reads its source with its owner''s rights.';
        END IF;
    END LOOP;
    IF NOT pg_has_role(owner, rel.relowner, 'USAGE') THEN
        RAISE WARNING 'pipeline source % belongs to role %', source, rel.relowner::regrole
            USING DETAIL = format('Every refresh reads it with the rights of %s, so functions, policies or views '
                                  'that %s defines on it run with those rights.', owner::regrole,
                                  rel.relowner::regrole),
                  HINT = 'Use a source your role owns, or trust its owner (see the security model in the docs).';
    END IF;
    RETURN churn.pipeline_check_columns(source, customer_col, ts_col, amount_col, NULL);
END
$$;

-- The capture trigger, now in C and without SECURITY DEFINER.
CREATE OR REPLACE FUNCTION churn.pipeline_capture() RETURNS trigger
    AS 'MODULE_PATHNAME', 'pipeline_capture' LANGUAGE C;
COMMENT ON FUNCTION churn.pipeline_capture() IS
    'pipeline internal: statement trigger on a pipeline source that queues inserted purchases for the next refresh (C, built-in conversions only)';

REVOKE EXECUTE ON FUNCTION churn.pipeline_capture(),
    churn.pipeline_check_columns(regclass, name, name, name, text) FROM PUBLIC;
