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

-- 0.3.0: the lifecycle stage of each customer (part 816).
CREATE OR REPLACE VIEW churn.current_warnings WITH (security_barrier) AS
SELECT p.name AS pipeline, w.customer_id, p.as_of, w.p_churn, w.zone, w.level, w.code, w.value_segment,
       w.lead_days, w.p_alive, w.expected_purchases, w.predicted_value, w.annual_value, w.drivers,
       w.previous_code, w.changed_at, (w.features).last_purchase, (w.features).recency_days, w.features,
       w.lifecycle
FROM churn.pipeline_warning w JOIN churn.pipeline p ON p.pipeline_id = w.pipeline_id
WHERE churn.pipeline_visible(p.owner);
COMMENT ON COLUMN churn.current_warnings.lifecycle IS
    'new, active, lapsing or lost as of the refresh (churn.lifecycle); a lost customer is never red or yellow';
