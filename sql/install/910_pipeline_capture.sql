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
--
-- Also 0.3.0: an optional relation of non-purchase events (visits, logins,
-- reviews, complaints, member interactions) per pipeline, captured by the
-- same trigger into churn.pipeline_event_queue and kept per customer as a
-- churn.engagement beside the purchase history (part 920 merges them).

CREATE FUNCTION churn.pipeline_check_columns(source regclass, customer_col name, ts_col name, amount_col name,
                                             ts_kind text) RETURNS text
    AS 'MODULE_PATHNAME', 'pipeline_check_columns' LANGUAGE C STABLE;
COMMENT ON FUNCTION churn.pipeline_check_columns(regclass, name, name, name, text) IS
    'pipeline internal: the kind of the time column (date, timestamp, timestamptz) when the three columns have types a pipeline accepts, else an error; with ts_kind, also an error when the kind changed';

-- ---------------------------------------------------------------------------
-- The events relation of a pipeline (0.3.0).

ALTER TABLE churn.pipeline
    ADD COLUMN events regclass,
    ADD COLUMN event_customer_col name NOT NULL DEFAULT 'customer_id',
    ADD COLUMN event_ts_col name NOT NULL DEFAULT 'ts',
    ADD COLUMN event_kind_col name NOT NULL DEFAULT 'kind',
    ADD COLUMN event_rating_col name NOT NULL DEFAULT 'rating',
    ADD COLUMN event_ts_kind text CHECK (event_ts_kind IN ('date', 'timestamp', 'timestamptz')),
    ADD COLUMN event_capture text CHECK (event_capture IN ('trigger', 'full')),
    ADD COLUMN event_snapshot pg_snapshot,
    ADD CONSTRAINT pipeline_events_set CHECK (events IS NULL OR (event_ts_kind IS NOT NULL AND event_capture IS NOT NULL));
COMMENT ON COLUMN churn.pipeline.events IS
    'relation of non-purchase events (visit, login, review, complaint, interaction) of the same customers; NULL: none';
COMMENT ON COLUMN churn.pipeline.event_capture IS
    'trigger (new events captured on INSERT) or full (the events relation is re-read on every refresh); NULL without events';
COMMENT ON COLUMN churn.pipeline.event_snapshot IS
    'the snapshot of the last full read of the events relation: captured events it saw are not merged again';

-- A customer's row may hold events before their first purchase.
ALTER TABLE churn.pipeline_customer
    ALTER COLUMN history DROP NOT NULL,
    ADD COLUMN engagement churn.engagement,
    ADD CONSTRAINT pipeline_customer_has_data CHECK (history IS NOT NULL OR engagement IS NOT NULL);
COMMENT ON COLUMN churn.pipeline_customer.history IS 'the merged purchases; NULL for a customer with events only';
COMMENT ON COLUMN churn.pipeline_customer.engagement IS
    'the merged events of the pipeline''s events relation (0.3.0); NULL without events';

-- Events captured since the last refresh, as they came (the refresh skips
-- and counts the ones churn.pipeline_event_check refuses).
CREATE TABLE churn.pipeline_event_queue (
    pipeline_id int NOT NULL,
    xid         xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    customer_id text,
    day         date,
    kind        text,
    rating      float8,
    rebuild     boolean NOT NULL DEFAULT false
);
CREATE INDEX pipeline_event_queue_pipeline ON churn.pipeline_event_queue (pipeline_id);
COMMENT ON TABLE churn.pipeline_event_queue IS
    'pipeline internal: events inserted into pipeline events relations since their last refresh (rebuild = the relation was updated, deleted from or truncated)';

CREATE FUNCTION churn.pipeline_check_event_columns(events regclass, customer_col name, ts_col name, kind_col name,
                                                   rating_col name, ts_kind text) RETURNS text
    AS 'MODULE_PATHNAME', 'pipeline_check_event_columns' LANGUAGE C STABLE;
COMMENT ON FUNCTION churn.pipeline_check_event_columns(regclass, name, name, name, name, text) IS
    'pipeline internal: the kind of the events relation''s time column when its four columns have types a pipeline accepts, else an error; with ts_kind, also an error when the kind changed';

CREATE FUNCTION churn.pipeline_event_check(day date, kind text, rating float8) RETURNS text
    AS 'MODULE_PATHNAME', 'pipeline_event_check' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.pipeline_event_check(date, text, float8) IS
    'pipeline internal: the kind of an event a pipeline keeps, NULL for one it skips and counts (no or unknown kind, a rating outside 1-5 or on a kind other than review, a day no timestamp holds)';

-- Check a relation a pipeline reads and the owner's right to read its
-- columns; warn when it belongs to a role whose code the owner would run on
-- every refresh.  what names it in messages ('source', 'events relation').
CREATE FUNCTION churn.pipeline_check_relation(rel regclass, cols name[], owner oid, what text, col_hint text)
    RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    r pg_class;
    col name;
BEGIN
    SELECT * INTO r FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) rel;
    IF NOT FOUND OR r.relkind NOT IN ('r', 'p', 'v', 'm', 'f') THEN
        RAISE EXCEPTION '% is not a table, view, materialized view or foreign table', rel
            USING ERRCODE = 'wrong_object_type';
    END IF;
    FOREACH col IN ARRAY cols LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) rel
                           AND a.attname OPERATOR(pg_catalog.=) col AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'column "%" does not exist in %', col, rel
                USING ERRCODE = 'undefined_column', HINT = col_hint;
        END IF;
        IF NOT has_column_privilege(owner, rel, col::text, 'SELECT') THEN
            RAISE EXCEPTION 'permission denied to read column "%" of %', col, rel
                USING ERRCODE = 'insufficient_privilege',
                      HINT = format('A pipeline reads its %s with its owner''s rights.', what);
        END IF;
    END LOOP;
    IF NOT pg_has_role(owner, r.relowner, 'USAGE') THEN
        RAISE WARNING 'pipeline % % belongs to role %', what, rel, r.relowner::regrole
            USING DETAIL = format('Every refresh reads it with the rights of %s, so functions, policies or views '
                                  'that %s defines on it run with those rights.', owner::regrole,
                                  r.relowner::regrole),
                  HINT = 'Use a relation your role owns, or trust its owner (see the security model in the docs).';
    END IF;
END
$$;

-- Validate the source relation and its columns for a pipeline owner;
-- returns the kind of the timestamp column.  Warns when the source
-- belongs to a role whose code the owner would run on every refresh.
CREATE OR REPLACE FUNCTION churn.pipeline_check_source(source regclass, customer_col name, ts_col name,
                                                       amount_col name, owner oid) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    PERFORM churn.pipeline_check_relation(source, ARRAY[customer_col, ts_col, amount_col], owner, 'source',
                                          'Name the columns with customer_col, ts_col and amount_col.');
    RETURN churn.pipeline_check_columns(source, customer_col, ts_col, amount_col, NULL);
END
$$;

-- The same for the events relation (0.3.0): the owner must be able to
-- read its four columns, which must have accepted types.
CREATE FUNCTION churn.pipeline_check_events(events regclass, customer_col name, ts_col name, kind_col name,
                                            rating_col name, owner oid) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    PERFORM churn.pipeline_check_relation(events, ARRAY[customer_col, ts_col, kind_col, rating_col], owner,
                                          'events relation',
                                          'Name the columns with event_customer_col, event_ts_col, event_kind_col and event_rating_col.');
    RETURN churn.pipeline_check_event_columns(events, customer_col, ts_col, kind_col, rating_col, NULL);
END
$$;

-- Install (or only remove) the four capture triggers prefix || ins, upd,
-- del, trunc of one relation; args are the trigger's arguments, quoted.
CREATE FUNCTION churn.pipeline_relation_triggers(rel regclass, prefix text, args text, install boolean)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    ev text;
BEGIN
    FOREACH ev IN ARRAY ARRAY['ins', 'upd', 'del', 'trunc'] LOOP
        IF EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = rel AND t.tgname = prefix || ev) THEN
            EXECUTE format('DROP TRIGGER %I ON %s', prefix || ev, rel);
        END IF;
    END LOOP;
    IF NOT install THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS churn_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION churn.pipeline_capture(%s)', prefix || 'ins', rel, args);
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %s REFERENCING OLD TABLE AS churn_old NEW TABLE AS churn_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION churn.pipeline_capture(%s)', prefix || 'upd', rel, args);
    EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %s REFERENCING OLD TABLE AS churn_old '
                   'FOR EACH STATEMENT EXECUTE FUNCTION churn.pipeline_capture(%s)', prefix || 'del', rel, args);
    EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION churn.pipeline_capture(%s)', prefix || 'trunc', rel, args);
END
$$;

-- Install or remove the capture triggers of a pipeline: churn_pipeline_<id>_*
-- on its source, and (0.3.0) churn_pipeline_<id>_ev_* on its events relation.
CREATE OR REPLACE FUNCTION churn.pipeline_triggers(p churn.pipeline, install boolean) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    PERFORM churn.pipeline_relation_triggers(p.source, format('churn_pipeline_%s_', p.pipeline_id),
                                             format('%L', p.pipeline_id), install AND p.capture = 'trigger');
    IF p.events IS NOT NULL THEN
        PERFORM churn.pipeline_relation_triggers(p.events, format('churn_pipeline_%s_ev_', p.pipeline_id),
                                                 format('%L, %L', p.pipeline_id, 'events'),
                                                 install AND p.event_capture = 'trigger');
    END IF;
END
$$;

-- The capture trigger, now in C and without SECURITY DEFINER.
CREATE OR REPLACE FUNCTION churn.pipeline_capture() RETURNS trigger
    AS 'MODULE_PATHNAME', 'pipeline_capture' LANGUAGE C;
COMMENT ON FUNCTION churn.pipeline_capture() IS
    'pipeline internal: statement trigger on a pipeline source (or events relation) that queues inserted purchases (or events) for the next refresh (C, built-in conversions only)';

-- churn.pipeline_event_check stays executable by everyone: the full read of
-- an events relation calls it with the pipeline owner's rights (it is pure).
REVOKE EXECUTE ON FUNCTION churn.pipeline_capture(),
    churn.pipeline_check_columns(regclass, name, name, name, text),
    churn.pipeline_check_event_columns(regclass, name, name, name, name, text),
    churn.pipeline_check_relation(regclass, name[], oid, text, text),
    churn.pipeline_check_events(regclass, name, name, name, name, oid),
    churn.pipeline_relation_triggers(regclass, text, text, boolean) FROM PUBLIC;
