-- churn_warning install script, part 922 (0.3.0): every run on record.
--
-- A run cut short by pg_cancel_backend (or a client's cancel) is
-- 'cancelled', no longer 'failed'; one over its time limit stays
-- 'timed_out'.  A manual refresh that fails rolls back in the caller's
-- transaction, run row included: src/runlog.c hands the failure to a short
-- background worker, which records it with churn.pipeline_run_record in a
-- transaction of its own.

ALTER TABLE churn.pipeline_run DROP CONSTRAINT pipeline_run_status_check;
ALTER TABLE churn.pipeline_run ADD CONSTRAINT pipeline_run_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'timed_out', 'interrupted', 'skipped', 'cancelled'));

-- A manual refresh that failed (status failed, cancelled, timed_out or
-- skipped: another refresh held the pipeline),
-- recorded after its transaction rolled back; returns the run id, NULL
-- when the pipeline is gone.  Manual runs do not count as failures of the
-- schedule (no backoff, no pause).
CREATE FUNCTION churn.pipeline_run_record(p_pipeline_id int, status text, started_at timestamptz, sqlstate text,
                                          message text) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    run bigint;
BEGIN
    -- a pipeline dropped meanwhile gets no run (its runs went with it)
    PERFORM FROM churn.pipeline p WHERE p.pipeline_id = p_pipeline_id FOR KEY SHARE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO churn.pipeline_run (pipeline_id, pipeline, trigger, status, started_at, finished_at, attempt,
                                    error_code, error_message)
    SELECT p.pipeline_id, p.name, 'manual', status, started_at, clock_timestamp(), 1, sqlstate, message
    FROM churn.pipeline p WHERE p.pipeline_id = p_pipeline_id
    RETURNING run_id INTO run;
    IF run IS NOT NULL THEN
        PERFORM churn.pipeline_prune(p_pipeline_id);
    END IF;
    RETURN run;
END
$$;
COMMENT ON FUNCTION churn.pipeline_run_record(int, text, timestamptz, text, text) IS
    'pipeline internal: record a manual refresh that failed, was cancelled or timed out, after its transaction rolled back (called by the run recorder)';
REVOKE EXECUTE ON FUNCTION churn.pipeline_run_record(int, text, timestamptz, text, text) FROM PUBLIC;
