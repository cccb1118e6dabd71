-- churn_warning install script, part 945 (0.3.0): the views of measurable
-- retention (part 935), after the alerts carry their pipeline (part 940).

-- Active alerts for staff: the control group is held out.
CREATE OR REPLACE VIEW churn.open_alerts AS
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
FROM churn.alert a
WHERE a.status IN ('open', 'contacted') AND a.arm = 'treatment'
ORDER BY churn.alert_urgency(a.code) DESC, a.due_at, a.alert_id;
CREATE OR REPLACE VIEW churn.overdue_alerts AS
SELECT a.alert_id::bigint AS alert_id, a.pipeline::text AS pipeline, a.customer_id::text AS customer_id,
       a.zone::text AS zone, a.level::int AS level, a.code::text AS code,
       churn.alert_urgency(a.code)::int AS urgency,
       a.action::text AS action, a.channel::text AS channel, a.sla_hours::int AS sla_hours,
       a.assigned_to::text AS assigned_to, a.escalations::int AS escalations,
       a.opened_at::timestamptz AS opened_at, a.due_at::timestamptz AS due_at,
       (extract(epoch FROM now() - a.due_at) / 3600)::float8 AS hours_overdue
FROM churn.alert a
WHERE a.status = 'open' AND a.due_at < now() AND a.arm = 'treatment'
ORDER BY churn.alert_urgency(a.code) DESC, a.due_at, a.alert_id;

-- Did the retention work keep anyone?  Per pipeline, zone and arm: alerts,
-- closed, retained and the retention rate; on the treatment rows the
-- uplift over the control group with its 95% Newcombe interval and the
-- value kept (uplift x the annual value of the closed treatment alerts).
CREATE VIEW churn.retention_effect WITH (security_barrier) AS
WITH s AS (
    SELECT p.name AS pipeline, a.zone, a.arm, count(*) AS alerts,
           count(*) FILTER (WHERE a.status IN ('retained', 'churned')) AS closed,
           count(*) FILTER (WHERE a.status = 'retained') AS retained,
           sum(a.annual_value) FILTER (WHERE a.status IN ('retained', 'churned')) AS closed_value
    FROM churn.alert a JOIN churn.pipeline p ON p.pipeline_id = a.pipeline_id
    WHERE churn.pipeline_visible(p.owner)
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
COMMENT ON VIEW churn.retention_effect IS
    'per pipeline, zone and arm: alerts, closed, retained, retention rate; on treatment rows the uplift over control with its 95% Newcombe interval and the value kept';
COMMENT ON COLUMN churn.retention_effect.arm IS 'treatment (handled by staff) or control (held out)';
COMMENT ON COLUMN churn.retention_effect.closed IS 'alerts closed as retained or churned (dismissed ones are left out)';
COMMENT ON COLUMN churn.retention_effect.retention_rate IS 'retained / closed; NULL while none is closed';
COMMENT ON COLUMN churn.retention_effect.uplift IS 'treatment retention rate minus control retention rate; NULL on control rows or without closed alerts in both arms';
COMMENT ON COLUMN churn.retention_effect.uplift_low IS 'lower end of the 95% Newcombe interval of the uplift';
COMMENT ON COLUMN churn.retention_effect.uplift_high IS 'upper end of the 95% Newcombe interval of the uplift';
COMMENT ON COLUMN churn.retention_effect.value_kept IS 'uplift times the annual value of the closed treatment alerts (currency-neutral)';
GRANT SELECT ON churn.retention_effect TO churn_reader;

-- The views BI tools chart: alerts by store, the outcome funnel, SLA
-- breaches per store and the retention effect per month.  Each shows the
-- alerts of the pipelines the caller may see.

CREATE VIEW churn.alerts_by_store WITH (security_barrier) AS
SELECT p.name::text AS pipeline, a.store::text AS store, a.zone::text AS zone, a.arm::text AS arm,
       count(*)::bigint AS alerts,
       count(*) FILTER (WHERE a.status = 'open')::bigint AS open,
       count(*) FILTER (WHERE a.status = 'contacted')::bigint AS contacted,
       count(*) FILTER (WHERE a.status = 'retained')::bigint AS retained,
       count(*) FILTER (WHERE a.status = 'churned')::bigint AS churned,
       count(*) FILTER (WHERE a.status = 'dismissed')::bigint AS dismissed,
       count(*) FILTER (WHERE a.status = 'open' AND a.due_at < now())::bigint AS overdue,
       coalesce(sum(a.annual_value), 0)::float8 AS annual_value
FROM churn.alert a JOIN churn.pipeline p ON p.pipeline_id = a.pipeline_id
WHERE churn.pipeline_visible(p.owner)
GROUP BY 1, 2, 3, 4;
COMMENT ON VIEW churn.alerts_by_store IS
    'alerts per pipeline, store, zone and arm by status, with the overdue ones and their annual value (store NULL: unknown or no store_col)';

CREATE VIEW churn.outcome_funnel WITH (security_barrier) AS
SELECT p.name::text AS pipeline, a.zone::text AS zone,
       count(*)::bigint AS raised,
       count(*) FILTER (WHERE a.contacted_at IS NOT NULL)::bigint AS contacted,
       count(*) FILTER (WHERE a.status = 'retained')::bigint AS retained,
       count(*) FILTER (WHERE a.status = 'churned')::bigint AS churned,
       count(*) FILTER (WHERE a.status = 'dismissed')::bigint AS dismissed,
       count(*) FILTER (WHERE a.status IN ('open', 'contacted'))::bigint AS still_open
FROM churn.alert a JOIN churn.pipeline p ON p.pipeline_id = a.pipeline_id
WHERE churn.pipeline_visible(p.owner) AND a.arm = 'treatment'
GROUP BY 1, 2;
COMMENT ON VIEW churn.outcome_funnel IS
    'treatment alerts per pipeline and zone: raised -> contacted -> retained / churned / dismissed, and those still open';

CREATE VIEW churn.sla_breaches WITH (security_barrier) AS
SELECT p.name::text AS pipeline, a.store::text AS store,
       count(*) FILTER (WHERE a.status = 'open' AND a.due_at < now())::bigint AS overdue_now,
       count(*) FILTER (WHERE a.contacted_at > a.due_at)::bigint AS contacted_late,
       count(*) FILTER (WHERE a.contacted_at <= a.due_at)::bigint AS contacted_in_time,
       (percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.contacted_at - a.opened_at) / 3600)
           FILTER (WHERE a.contacted_at IS NOT NULL))::float8 AS median_hours_to_contact
FROM churn.alert a JOIN churn.pipeline p ON p.pipeline_id = a.pipeline_id
WHERE churn.pipeline_visible(p.owner) AND a.arm = 'treatment'
GROUP BY 1, 2;
COMMENT ON VIEW churn.sla_breaches IS
    'per pipeline and store: open alerts past their contact deadline now, contacts made late and in time, median hours from raising to contact';

CREATE VIEW churn.retention_effect_monthly WITH (security_barrier) AS
SELECT p.name::text AS pipeline, date_trunc('month', a.opened_at)::date AS month, a.arm::text AS arm,
       count(*) FILTER (WHERE a.status IN ('retained', 'churned'))::bigint AS closed,
       count(*) FILTER (WHERE a.status = 'retained')::bigint AS retained,
       (count(*) FILTER (WHERE a.status = 'retained')::float8
        / nullif(count(*) FILTER (WHERE a.status IN ('retained', 'churned')), 0))::float8 AS retention_rate
FROM churn.alert a JOIN churn.pipeline p ON p.pipeline_id = a.pipeline_id
WHERE churn.pipeline_visible(p.owner)
GROUP BY 1, 2, 3;
COMMENT ON VIEW churn.retention_effect_monthly IS
    'retention rate per pipeline, month the alert was raised (server time zone) and arm: the retention effect over time';
GRANT SELECT ON churn.alerts_by_store, churn.outcome_funnel, churn.sla_breaches, churn.retention_effect_monthly
    TO churn_reader;
