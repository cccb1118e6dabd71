-- churn_warning install script, part 973 (0.3.0): pipelines on Citus.
--
-- Citus refuses triggers on its distributed and reference tables, and the
-- capture triggers would only see the coordinator anyway, so a pipeline
-- whose source or events relation is a Citus table reads it whole on every
-- refresh (capture 'full'); the reading query then runs on the workers.
-- churn.pipeline_apply_args and churn.pipeline_apply_event_args (part 930)
-- ask this function.  Without Citus (no pg_catalog.pg_dist_partition)
-- nothing changes.

CREATE FUNCTION churn.pipeline_capture_mode(rel regclass, owner oid) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    citus_table boolean := false;
BEGIN
    IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = rel) IS DISTINCT FROM 'r'
       OR NOT pg_catalog.has_table_privilege(owner, rel, 'TRIGGER') THEN
        RETURN 'full';
    END IF;
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1)'
            INTO citus_table USING rel;
    END IF;
    RETURN CASE WHEN citus_table THEN 'full' ELSE 'trigger' END;
END
$$;
COMMENT ON FUNCTION churn.pipeline_capture_mode(regclass, oid) IS
    'capture mode of a pipeline relation: trigger for a plain table whose owner has TRIGGER on it and that is not a Citus table, else full';
