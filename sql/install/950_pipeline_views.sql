-- churn_warning install script, part 950 (0.3.0): the visibility check of
-- the pipeline views with a fixed search_path.
--
-- In 0.2.0 churn.pipeline_visible had no SET search_path and was inlined
-- into the caller's query, where an = operator of the caller's schema
-- could be chosen.  Every function a view uses now fixes its search_path.

CREATE OR REPLACE FUNCTION churn.pipeline_visible(owner oid) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN pg_catalog.pg_has_role('churn_reader', 'USAGE') THEN true
                WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) $1) THEN false
                ELSE pg_catalog.pg_has_role($1, 'USAGE') END
$$;

-- 0.3.0: the events relation of each pipeline (part 910).
CREATE OR REPLACE VIEW churn.pipeline_status WITH (security_barrier) AS
SELECT p.name AS pipeline, p.state, lr.started_at AS last_run_at, lr.status AS last_status,
       lr.error_message AS last_error,
       CASE WHEN p.state = 'active' THEN p.next_run_at END AS next_run_at,
       p.consecutive_failures, p.owner::text AS owner, p.source::text AS source, p.model, p.policy,
       p.schedule, p.time_zone, p.capture, p.as_of,
       (SELECT r.customers_total FROM churn.pipeline_run r
        WHERE r.pipeline_id = p.pipeline_id AND r.status = 'succeeded' ORDER BY r.run_id DESC LIMIT 1) AS customers,
       lr.finished_at - lr.started_at AS last_duration, p.last_success_at, p.paused_reason,
       p.events::text AS events, p.event_capture
FROM churn.pipeline p
LEFT JOIN LATERAL (SELECT r.* FROM churn.pipeline_run r WHERE r.pipeline_id = p.pipeline_id
                   ORDER BY r.run_id DESC LIMIT 1) lr ON true
WHERE churn.pipeline_visible(p.owner);
COMMENT ON COLUMN churn.pipeline_status.events IS 'the relation of non-purchase events the pipeline reads; NULL: none';
COMMENT ON COLUMN churn.pipeline_status.event_capture IS
    'trigger (new events captured on INSERT) or full (the events relation is re-read on every refresh); NULL without events';

CREATE OR REPLACE VIEW churn.pipeline_runs WITH (security_barrier) AS
SELECT r.run_id, p.name AS pipeline, r.trigger, r.status, r.started_at, r.finished_at,
       r.finished_at - r.started_at AS duration, r.attempt, r.as_of, r.mode, r.new_purchase_rows,
       r.customers_merged, r.customers_total, r.customers_scored, r.snapshot_rows_written, r.tier_changes,
       r.alerts_raised, r.merge_ms, r.score_ms, r.finish_ms, r.error_code, r.error_message, r.error_detail,
       r.event_mode, r.new_event_rows, r.late_event_rows, r.skipped_event_rows, r.model_used, r.model_note,
       r.alerts_closed
FROM churn.pipeline_run r JOIN churn.pipeline p ON p.pipeline_id = r.pipeline_id
WHERE churn.pipeline_visible(p.owner);
COMMENT ON COLUMN churn.pipeline_runs.event_mode IS
    'full (the events relation was read whole) or incremental (captured events merged); NULL without events';
COMMENT ON COLUMN churn.pipeline_runs.new_event_rows IS 'captured events merged; NULL on a full read of the events';
COMMENT ON COLUMN churn.pipeline_runs.late_event_rows IS
    'of the new events, those dated before the as_of of the previous refresh; NULL on a full read of the events';
COMMENT ON COLUMN churn.pipeline_runs.skipped_event_rows IS
    'event rows skipped and counted: no or unknown kind, a rating outside 1-5 or on a kind other than review, a day no timestamp holds';

CREATE OR REPLACE VIEW churn.current_warnings WITH (security_barrier) AS
SELECT p.name AS pipeline, w.customer_id, p.as_of, w.p_churn, w.zone, w.level, w.code, w.value_segment,
       w.lead_days, w.p_alive, w.expected_purchases, w.predicted_value, w.annual_value, w.drivers,
       w.previous_code, w.changed_at, (w.features).last_purchase, (w.features).recency_days, w.features,
       w.lifecycle, w.engagement, w.store, w.reason
FROM churn.pipeline_warning w JOIN churn.pipeline p ON p.pipeline_id = w.pipeline_id
WHERE churn.pipeline_visible(p.owner);
-- 0.3.0: the lifecycle stage (part 816) and the engagement features of each customer.
COMMENT ON COLUMN churn.current_warnings.engagement IS
    'engagement features the customer was scored with (over the pipeline''s window_days); NULL without events';
COMMENT ON COLUMN churn.current_warnings.lifecycle IS
    'new, active, lapsing or lost as of the refresh (churn.lifecycle); a lost customer is never red or yellow';
COMMENT ON COLUMN churn.pipeline_runs.model_used IS 'the model that scored the run (0.3.0)';
COMMENT ON COLUMN churn.pipeline_runs.model_note IS 'why that model scored: for model auto the champion kept, replaced or not trainable (0.3.0)';
COMMENT ON COLUMN churn.pipeline_runs.alerts_closed IS 'alerts the run closed from the purchase data: retained or churned (0.3.0)';
COMMENT ON COLUMN churn.current_warnings.store IS 'the store of most of the customer''s purchase rows (store_col); NULL without one';
COMMENT ON COLUMN churn.current_warnings.reason IS 'why the customer is at risk: service, price, silence, frequency or lost (churn.reason); NULL when no rule fires';
