-- churn_warning install script, part 955 (0.3.0): the rejected rows of
-- part 921 in the views, after the run columns of parts 925-950.

-- Rejected rows per run, for the roles that see the pipeline.
CREATE VIEW churn.pipeline_rejects WITH (security_barrier) AS
SELECT p.name AS pipeline, j.run_id, r.started_at AS run_at, j.relation, j.customer_id, j.day, j.amount, j.kind,
       j.rating, j.reason
FROM churn.pipeline_reject j
JOIN churn.pipeline_run r ON r.run_id = j.run_id
JOIN churn.pipeline p ON p.pipeline_id = j.pipeline_id
WHERE churn.pipeline_visible(p.owner);
COMMENT ON VIEW churn.pipeline_rejects IS
    'rows of pipeline sources and events relations that runs rejected, with the reason; customer data: visible to the pipeline owner (and churn_reader)';
GRANT SELECT ON churn.pipeline_rejects TO PUBLIC;

-- The runs with the rows they rejected.
CREATE OR REPLACE VIEW churn.pipeline_runs WITH (security_barrier) AS
SELECT r.run_id, p.name AS pipeline, r.trigger, r.status, r.started_at, r.finished_at,
       r.finished_at - r.started_at AS duration, r.attempt, r.as_of, r.mode, r.new_purchase_rows,
       r.customers_merged, r.customers_total, r.customers_scored, r.snapshot_rows_written, r.tier_changes,
       r.alerts_raised, r.merge_ms, r.score_ms, r.finish_ms, r.error_code, r.error_message, r.error_detail,
       r.event_mode, r.new_event_rows, r.late_event_rows, r.skipped_event_rows, r.model_used, r.model_note,
       r.alerts_closed, r.rejected_rows
FROM churn.pipeline_run r JOIN churn.pipeline p ON p.pipeline_id = r.pipeline_id
WHERE churn.pipeline_visible(p.owner);
COMMENT ON COLUMN churn.pipeline_runs.rejected_rows IS
    'rows of the source and the events relation the run rejected (churn.pipeline_rejects); NULL for runs that did not finish';
