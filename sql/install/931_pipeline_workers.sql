-- churn_warning install script, part 931 (0.3.0): several workers per
-- database (churn_warning.max_workers_per_database).  A database worker
-- claims the pipeline it refreshes in shared memory; when the next look at
-- its database is due, it leaves out the pipelines other workers of the
-- database hold, so that the launcher starts another worker only for a
-- pipeline nobody refreshes yet.

-- When the next active pipeline that is not one of busy falls due.
CREATE FUNCTION churn.pipeline_next_due(busy int[]) RETURNS timestamptz
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT min(p.next_run_at) FROM churn.pipeline p
    WHERE p.state = 'active' AND p.pipeline_id <> ALL (coalesce(busy, '{}'))
$$;
COMMENT ON FUNCTION churn.pipeline_next_due(int[]) IS
    'worker internal: when the next active pipeline not in busy (those other database workers refresh) falls due; NULL when none';
REVOKE EXECUTE ON FUNCTION churn.pipeline_next_due(int[]) FROM PUBLIC;
