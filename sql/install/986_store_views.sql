-- churn_warning install script, part 986 (0.3.0): the views with customer
-- rows show store staff the stores granted to them (part 985).
--
-- Each view keeps the check it had (churn.pipeline_visible: the pipeline's
-- owner and churn_reader see every row) and also shows the rows whose
-- (pipeline, store) is in churn.store_access.  The pipeline check is made
-- once per pipeline (churn.pipeline_scope, which OFFSET 0 keeps from being
-- flattened into the row-level condition), and the store check, an
-- IN (subquery) hashed once per query, only for rows of pipelines the
-- first check refuses.  open_alerts and overdue_alerts were readable by
-- churn_reader without a check; they now check too (alerts raised by hand
-- without a pipeline: churn_reader only) and are security_barrier views.

-- Internal: every pipeline with whether the current role sees it whole.
CREATE VIEW churn.pipeline_scope AS
SELECT q.pipeline_id, q.name, q.owner, q.as_of, churn.pipeline_visible(q.owner) AS whole
FROM churn.pipeline q
OFFSET 0;
COMMENT ON VIEW churn.pipeline_scope IS
    'store access internal: every pipeline, whole = may the current role see all its rows (owner or churn_reader); OFFSET 0 makes the check once per pipeline in the views that join it';

CREATE OR REPLACE VIEW churn.current_warnings WITH (security_barrier) AS
SELECT p.name AS pipeline, w.customer_id, p.as_of, w.p_churn, w.zone, w.level, w.code, w.value_segment,
       w.lead_days, w.p_alive, w.expected_purchases, w.predicted_value, w.annual_value, w.drivers,
       w.previous_code, w.changed_at, (w.features).last_purchase, (w.features).recency_days, w.features,
       w.lifecycle, w.engagement, w.store, w.reason
FROM churn.pipeline_warning w JOIN churn.pipeline_scope p ON p.pipeline_id = w.pipeline_id
WHERE p.whole
   OR (w.pipeline_id, w.store) IN (SELECT s.pipeline_id, s.store FROM churn.store_access s);

-- A tier change is of the store of the customer's current warning.
CREATE OR REPLACE VIEW churn.tier_changes WITH (security_barrier) AS
SELECT p.name AS pipeline, tc.customer_id, tc.at, tc.as_of, tc.from_code, tc.to_code, tc.p_churn,
       tc.run_id
FROM churn.pipeline_tier_change tc JOIN churn.pipeline_scope p ON p.pipeline_id = tc.pipeline_id
WHERE p.whole
   OR (tc.pipeline_id, (SELECT w.store FROM churn.pipeline_warning w
                        WHERE w.pipeline_id = tc.pipeline_id AND w.customer_id = tc.customer_id))
      IN (SELECT s.pipeline_id, s.store FROM churn.store_access s);

CREATE OR REPLACE VIEW churn.open_alerts WITH (security_barrier) AS
SELECT a.alert_id::bigint AS alert_id, a.pipeline::text AS pipeline, a.customer_id::text AS customer_id,
       a.status::text AS status, a.zone::text AS zone, a.level::int AS level, a.code::text AS code,
       churn.alert_urgency(a.code)::int AS urgency, a.value_segment::text AS value_segment,
       a.p_churn::float8 AS p_churn, a.annual_value::float8 AS annual_value, a.drivers::text[] AS drivers,
       a.action::text AS action, a.channel::text AS channel, a.sla_hours::int AS sla_hours,
       a.assigned_to::text AS assigned_to, a.escalations::int AS escalations,
       a.opened_at::timestamptz AS opened_at, a.due_at::timestamptz AS due_at,
       a.contacted_at::timestamptz AS contacted_at,
       (CASE WHEN a.status = 'open' THEN extract(epoch FROM a.due_at - now()) / 3600 END)::float8 AS hours_left,
       (a.status = 'open' AND a.due_at < now())::boolean AS overdue
FROM churn.alert a LEFT JOIN churn.pipeline_scope p ON p.pipeline_id = a.pipeline_id
WHERE a.status IN ('open', 'contacted') AND a.arm = 'treatment'
  AND (coalesce(p.whole, pg_catalog.pg_has_role('churn_reader', 'USAGE'))
       OR (a.pipeline_id, a.store) IN (SELECT s.pipeline_id, s.store FROM churn.store_access s))
ORDER BY churn.alert_urgency(a.code) DESC, a.due_at, a.alert_id;

CREATE OR REPLACE VIEW churn.overdue_alerts WITH (security_barrier) AS
SELECT a.alert_id::bigint AS alert_id, a.pipeline::text AS pipeline, a.customer_id::text AS customer_id,
       a.zone::text AS zone, a.level::int AS level, a.code::text AS code,
       churn.alert_urgency(a.code)::int AS urgency,
       a.action::text AS action, a.channel::text AS channel, a.sla_hours::int AS sla_hours,
       a.assigned_to::text AS assigned_to, a.escalations::int AS escalations,
       a.opened_at::timestamptz AS opened_at, a.due_at::timestamptz AS due_at,
       (extract(epoch FROM now() - a.due_at) / 3600)::float8 AS hours_overdue
FROM churn.alert a LEFT JOIN churn.pipeline_scope p ON p.pipeline_id = a.pipeline_id
WHERE a.status = 'open' AND a.due_at < now() AND a.arm = 'treatment'
  AND (coalesce(p.whole, pg_catalog.pg_has_role('churn_reader', 'USAGE'))
       OR (a.pipeline_id, a.store) IN (SELECT s.pipeline_id, s.store FROM churn.store_access s))
ORDER BY churn.alert_urgency(a.code) DESC, a.due_at, a.alert_id;

-- The BI views of part 945, over the alerts the role may see.
CREATE OR REPLACE VIEW churn.retention_effect WITH (security_barrier) AS
WITH s AS (
    SELECT p.name AS pipeline, a.zone, a.arm, count(*) AS alerts,
           count(*) FILTER (WHERE a.status IN ('retained', 'churned')) AS closed,
           count(*) FILTER (WHERE a.status = 'retained') AS retained,
           sum(a.annual_value) FILTER (WHERE a.status IN ('retained', 'churned')) AS closed_value
    FROM churn.alert a JOIN churn.pipeline_scope p ON p.pipeline_id = a.pipeline_id
    WHERE p.whole
       OR (a.pipeline_id, a.store) IN (SELECT sa.pipeline_id, sa.store FROM churn.store_access sa)
    GROUP BY 1, 2, 3
)
SELECT t.pipeline::text AS pipeline, t.zone::text AS zone, t.arm::text AS arm, t.alerts::bigint AS alerts,
       t.closed::bigint AS closed, t.retained::bigint AS retained,
       (t.retained::float8 / nullif(t.closed, 0))::float8 AS retention_rate,
       CASE WHEN t.arm = 'treatment' THEN t.retained::float8 / nullif(t.closed, 0)
                                          - c.retained::float8 / nullif(c.closed, 0) END::float8 AS uplift,
       CASE WHEN t.arm = 'treatment' THEN (churn.newcombe_interval(t.retained, t.closed, c.retained, c.closed)).low
       END::float8 AS uplift_low,
       CASE WHEN t.arm = 'treatment' THEN (churn.newcombe_interval(t.retained, t.closed, c.retained, c.closed)).high
       END::float8 AS uplift_high,
       CASE WHEN t.arm = 'treatment'
            THEN (t.retained::float8 / nullif(t.closed, 0) - c.retained::float8 / nullif(c.closed, 0))
                 * t.closed_value END::float8 AS value_kept
FROM s t LEFT JOIN s c ON c.pipeline = t.pipeline AND c.zone = t.zone AND c.arm = 'control';

CREATE OR REPLACE VIEW churn.alerts_by_store WITH (security_barrier) AS
SELECT p.name::text AS pipeline, a.store::text AS store, a.zone::text AS zone, a.arm::text AS arm,
       count(*)::bigint AS alerts,
       count(*) FILTER (WHERE a.status = 'open')::bigint AS open,
       count(*) FILTER (WHERE a.status = 'contacted')::bigint AS contacted,
       count(*) FILTER (WHERE a.status = 'retained')::bigint AS retained,
       count(*) FILTER (WHERE a.status = 'churned')::bigint AS churned,
       count(*) FILTER (WHERE a.status = 'dismissed')::bigint AS dismissed,
       count(*) FILTER (WHERE a.status = 'open' AND a.due_at < now())::bigint AS overdue,
       coalesce(sum(a.annual_value), 0)::float8 AS annual_value
FROM churn.alert a JOIN churn.pipeline_scope p ON p.pipeline_id = a.pipeline_id
WHERE p.whole
   OR (a.pipeline_id, a.store) IN (SELECT s.pipeline_id, s.store FROM churn.store_access s)
GROUP BY 1, 2, 3, 4;

CREATE OR REPLACE VIEW churn.outcome_funnel WITH (security_barrier) AS
SELECT p.name::text AS pipeline, a.zone::text AS zone,
       count(*)::bigint AS raised,
       count(*) FILTER (WHERE a.contacted_at IS NOT NULL)::bigint AS contacted,
       count(*) FILTER (WHERE a.status = 'retained')::bigint AS retained,
       count(*) FILTER (WHERE a.status = 'churned')::bigint AS churned,
       count(*) FILTER (WHERE a.status = 'dismissed')::bigint AS dismissed,
       count(*) FILTER (WHERE a.status IN ('open', 'contacted'))::bigint AS still_open
FROM churn.alert a JOIN churn.pipeline_scope p ON p.pipeline_id = a.pipeline_id
WHERE (p.whole
       OR (a.pipeline_id, a.store) IN (SELECT s.pipeline_id, s.store FROM churn.store_access s))
  AND a.arm = 'treatment'
GROUP BY 1, 2;

CREATE OR REPLACE VIEW churn.sla_breaches WITH (security_barrier) AS
SELECT p.name::text AS pipeline, a.store::text AS store,
       count(*) FILTER (WHERE a.status = 'open' AND a.due_at < now())::bigint AS overdue_now,
       count(*) FILTER (WHERE a.contacted_at > a.due_at)::bigint AS contacted_late,
       count(*) FILTER (WHERE a.contacted_at <= a.due_at)::bigint AS contacted_in_time,
       (percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.contacted_at - a.opened_at) / 3600)
           FILTER (WHERE a.contacted_at IS NOT NULL))::float8 AS median_hours_to_contact
FROM churn.alert a JOIN churn.pipeline_scope p ON p.pipeline_id = a.pipeline_id
WHERE (p.whole
       OR (a.pipeline_id, a.store) IN (SELECT s.pipeline_id, s.store FROM churn.store_access s))
  AND a.arm = 'treatment'
GROUP BY 1, 2;

CREATE OR REPLACE VIEW churn.retention_effect_monthly WITH (security_barrier) AS
SELECT p.name::text AS pipeline, date_trunc('month', a.opened_at)::date AS month, a.arm::text AS arm,
       count(*) FILTER (WHERE a.status IN ('retained', 'churned'))::bigint AS closed,
       count(*) FILTER (WHERE a.status = 'retained')::bigint AS retained,
       (count(*) FILTER (WHERE a.status = 'retained')::float8
        / nullif(count(*) FILTER (WHERE a.status IN ('retained', 'churned')), 0))::float8 AS retention_rate
FROM churn.alert a JOIN churn.pipeline_scope p ON p.pipeline_id = a.pipeline_id
WHERE p.whole
   OR (a.pipeline_id, a.store) IN (SELECT s.pipeline_id, s.store FROM churn.store_access s)
GROUP BY 1, 2, 3;

-- Row-level security of the tables with customer data, for a role granted
-- SELECT on them directly (nobody is by default; their owner bypasses it).
-- Alerts and warnings by store; histories, queues and tier changes only
-- for roles that see the whole pipeline.
ALTER TABLE churn.alert ENABLE ROW LEVEL SECURITY;
CREATE POLICY store_access ON churn.alert USING (churn.store_row_visible(pipeline_id, store));
ALTER TABLE churn.alert_event ENABLE ROW LEVEL SECURITY;
CREATE POLICY store_access ON churn.alert_event
    USING (EXISTS (SELECT 1 FROM churn.alert a WHERE a.alert_id = alert_event.alert_id));
ALTER TABLE churn.pipeline_warning ENABLE ROW LEVEL SECURITY;
CREATE POLICY store_access ON churn.pipeline_warning USING (churn.store_row_visible(pipeline_id, store));
ALTER TABLE churn.pipeline_customer ENABLE ROW LEVEL SECURITY;
CREATE POLICY store_access ON churn.pipeline_customer USING (churn.store_row_visible(pipeline_id, NULL));
ALTER TABLE churn.pipeline_tier_change ENABLE ROW LEVEL SECURITY;
CREATE POLICY store_access ON churn.pipeline_tier_change USING (churn.store_row_visible(pipeline_id, NULL));
ALTER TABLE churn.pipeline_queue ENABLE ROW LEVEL SECURITY;
CREATE POLICY store_access ON churn.pipeline_queue USING (churn.store_row_visible(pipeline_id, NULL));
ALTER TABLE churn.pipeline_event_queue ENABLE ROW LEVEL SECURITY;
CREATE POLICY store_access ON churn.pipeline_event_queue USING (churn.store_row_visible(pipeline_id, NULL));
ALTER TABLE churn.store_grant ENABLE ROW LEVEL SECURITY;
CREATE POLICY store_access ON churn.store_grant USING (churn.store_row_visible(pipeline_id, NULL));

-- Store staff read the alert views and move the alerts of their stores
-- (current_warnings and tier_changes are PUBLIC already).
GRANT SELECT ON churn.open_alerts, churn.overdue_alerts, churn.alerts_by_store, churn.outcome_funnel,
    churn.sla_breaches, churn.retention_effect, churn.retention_effect_monthly, churn.playbook_effective,
    churn.tier_codes TO churn_store;
GRANT EXECUTE ON FUNCTION churn.alert_move(bigint, text, text, text, timestamptz),
    churn.alert_contact(bigint, text, text, timestamptz),
    churn.alert_close(bigint, text, text, text, timestamptz),
    churn.alert_assign(bigint, text, text, text, timestamptz)
    TO churn_store;
