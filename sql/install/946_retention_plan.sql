-- churn_warning install script, part 946 (0.3.0): a retention plan within
-- a budget.  Each playbook action has a cost and an expected uplift (the
-- share of customers it keeps who would otherwise leave): measured by
-- churn.retention_effect once both arms of a zone have enough closed
-- alerts, else the playbook's prior.  The plan buys the alerts with the
-- most expected value kept per unit of cost until the budget is spent.

ALTER TABLE churn.playbook
    ADD COLUMN cost float8 CHECK (cost >= 0 AND cost < 'Infinity'),
    ADD COLUMN uplift_prior float8 CHECK (uplift_prior >= 0 AND uplift_prior <= 1);
COMMENT ON COLUMN churn.playbook.cost IS 'cost of the action per customer (currency-neutral, as annual values); NULL: unknown, which a retention plan refuses';
COMMENT ON COLUMN churn.playbook.uplift_prior IS 'expected share of customers the action keeps who would otherwise leave, until churn.retention_effect measures it';

-- Built-in costs and priors: a call with a gift is costly and keeps most, a
-- promotion is cheap, a reminder almost free.  Round figures to edit, not
-- measured ones: the retention effect replaces the prior once measured.
ALTER TABLE churn.playbook DISABLE TRIGGER builtin_guard;
UPDATE churn.playbook SET cost = v.cost, uplift_prior = v.uplift
FROM (VALUES ('R1', 60, 0.20), ('R2', 40, 0.18), ('R3', 25, 0.15), ('Y1', 8, 0.10), ('Y2', 8, 0.10),
             ('Y3', 3, 0.06), ('Y4', 3, 0.06), ('B1', 1, 0.03), ('B2', 0.2, 0.02)) v(code, cost, uplift)
WHERE playbook.code = v.code AND playbook.builtin;
ALTER TABLE churn.playbook ENABLE TRIGGER builtin_guard;

CREATE OR REPLACE VIEW churn.playbook_effective AS
SELECT DISTINCT ON (p.code)
       p.code::text AS code, p.zone::text AS zone, p.level::int AS level,
       churn.alert_urgency(p.code)::int AS urgency,
       p.action::text AS action, p.channel::text AS channel, p.sla_hours::int AS sla_hours,
       p.description::text AS description, (NOT p.builtin)::boolean AS overridden,
       p.cost::float8 AS cost, p.uplift_prior::float8 AS uplift_prior
FROM churn.playbook p
ORDER BY p.code, p.builtin;
COMMENT ON COLUMN churn.playbook_effective.cost IS 'cost of the action per customer; NULL when unknown';
COMMENT ON COLUMN churn.playbook_effective.uplift_prior IS 'expected uplift of the action until measured';

-- The arguments of a plan or its candidates: min_closed positive, the
-- pipeline visible, and a cost and prior for the action of every alert.
CREATE FUNCTION churn.retention_check(pipeline text, min_closed int) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    missing text;
BEGIN
    IF min_closed IS NULL OR min_closed < 1 THEN
        RAISE EXCEPTION 'min_closed must be positive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM churn.pipeline_status s WHERE s.pipeline = retention_check.pipeline) THEN
        RAISE EXCEPTION 'pipeline "%" does not exist', retention_check.pipeline
            USING ERRCODE = 'undefined_object', HINT = 'Pipelines are listed in churn.pipeline_status.';
    END IF;
    SELECT string_agg(DISTINCT pb.code, ', ') INTO missing
    FROM churn.alert a JOIN churn.pipeline p ON p.pipeline_id = a.pipeline_id
    JOIN churn.playbook_effective pb ON pb.code = a.code
    WHERE p.name = retention_check.pipeline AND a.status IN ('open', 'contacted') AND a.arm = 'treatment'
      AND (pb.cost IS NULL OR pb.uplift_prior IS NULL);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'the playbook has no cost or no uplift prior for %', missing
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Set cost and uplift_prior of the user rows of churn.playbook (UPDATE churn.playbook SET cost = ..., uplift_prior = ... WHERE code = ... AND NOT builtin).';
    END IF;
END
$$;
COMMENT ON FUNCTION churn.retention_check(text, int) IS
    'retention plan internal: checks min_closed, the pipeline and the playbook costs and priors of its open treatment alerts';

-- What each open treatment alert of a pipeline would cost and keep:
-- expected_saved_value = p_churn x annual_value x uplift - cost; uplift is
-- the measured one of the zone (churn.retention_effect) when both arms have
-- at least min_closed closed alerts, else the playbook prior.  Unchecked:
-- churn.retention_candidates and churn.retention_plan check first.
CREATE FUNCTION churn.retention_priced(pipeline text, min_closed int)
    RETURNS TABLE (customer_id text, alert_id bigint, code text, action text, cost float8, p_churn float8,
                   annual_value float8, uplift float8, uplift_source text, expected_saved_value float8, store text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    WITH fx AS (
        SELECT e.zone, e.uplift FROM churn.retention_effect e
        JOIN churn.retention_effect c ON c.pipeline = e.pipeline AND c.zone = e.zone AND c.arm = 'control'
        WHERE e.pipeline = retention_priced.pipeline AND e.arm = 'treatment'
          AND e.closed >= min_closed AND c.closed >= min_closed
    ), c AS (
        SELECT a.customer_id, a.alert_id, a.code, a.action, coalesce(pr.cost, pb.cost) AS cost, a.p_churn,
               coalesce(a.annual_value, 0) AS value, a.store,
               coalesce(fx.uplift, pr.uplift_prior, pb.uplift_prior) AS uplift,
               CASE WHEN fx.uplift IS NOT NULL THEN 'measured' ELSE 'prior' END AS src
        FROM churn.alert a JOIN churn.pipeline p ON p.pipeline_id = a.pipeline_id
        JOIN churn.playbook_effective pb ON pb.code = a.code
        LEFT JOIN churn.playbook_reason_effective pr ON pr.zone = a.zone AND pr.reason = a.reason
                                                      AND pr.action = a.action
        LEFT JOIN fx ON fx.zone = a.zone
        WHERE p.name = retention_priced.pipeline AND a.status IN ('open', 'contacted') AND a.arm = 'treatment'
          AND churn.pipeline_visible(p.owner)
    )
    SELECT c.customer_id, c.alert_id, c.code, c.action, c.cost, c.p_churn, c.value, c.uplift, c.src,
           c.p_churn * c.value * greatest(c.uplift, 0) - c.cost, c.store
    FROM c
$$;
COMMENT ON FUNCTION churn.retention_priced(text, int) IS
    'retention plan internal: every open treatment alert of a pipeline priced (cost, uplift, expected value kept), without the checks';

-- The same, checked: the rows the plan chooses from, for a comparison
-- ("call the highest p first") that orders them another way.
CREATE FUNCTION churn.retention_candidates(pipeline text, min_closed int DEFAULT 100)
    RETURNS TABLE (customer_id text, alert_id bigint, code text, action text, cost float8, p_churn float8,
                   annual_value float8, uplift float8, uplift_source text, expected_saved_value float8, store text)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    PERFORM churn.retention_check(pipeline, min_closed);
    RETURN QUERY SELECT * FROM churn.retention_priced(pipeline, min_closed);
END
$$;
COMMENT ON FUNCTION churn.retention_candidates(text, int) IS
    'every open treatment alert of a pipeline with the cost, uplift and expected value kept of its action (the rows churn.retention_plan chooses from)';

-- The plan: the candidates worth acting on, best value per unit of cost
-- first, within the budget and each store's daily contacts.
CREATE FUNCTION churn.retention_plan(pipeline text, budget float8, min_closed int DEFAULT 100)
    RETURNS TABLE (customer_id text, alert_id bigint, code text, action text, cost float8, p_churn float8,
                   annual_value float8, uplift float8, uplift_source text, expected_saved_value float8,
                   cumulative_cost float8, why text, store text)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_column
BEGIN
    IF budget IS NULL OR budget = 'NaN' OR budget < 0 OR budget = 'Infinity' THEN
        RAISE EXCEPTION 'budget must be a finite number >= 0, got %', coalesce(budget::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM churn.retention_check(pipeline, min_closed);
    RETURN QUERY
    WITH cap AS (
        -- at most a store's daily contacts, its best rows first
        SELECT v.*, row_number() OVER (PARTITION BY v.store
                                       ORDER BY v.expected_saved_value / greatest(v.cost, 1e-9) DESC,
                                                v.expected_saved_value DESC, v.alert_id) AS rank_in_store
        FROM churn.retention_priced(retention_plan.pipeline, min_closed) v WHERE v.expected_saved_value > 0
    ), r AS (
        SELECT cap.*, sum(cap.cost) OVER (ORDER BY cap.expected_saved_value / greatest(cap.cost, 1e-9) DESC,
                                                   cap.expected_saved_value DESC, cap.alert_id) AS cum
        FROM cap LEFT JOIN churn.store_capacity sc ON sc.pipeline = retention_plan.pipeline AND sc.store = cap.store
        WHERE sc.daily_contacts IS NULL OR cap.rank_in_store <= sc.daily_contacts
    )
    SELECT r.customer_id, r.alert_id, r.code, r.action, r.cost, r.p_churn, r.annual_value, r.uplift,
           r.uplift_source, r.expected_saved_value, r.cum,
           format('p_churn %s x annual value %s x %s uplift %s - cost %s = %s',
                  round(r.p_churn::numeric, 3), round(r.annual_value::numeric, 2), r.uplift_source,
                  round(r.uplift::numeric, 3), round(r.cost::numeric, 2), round(r.expected_saved_value::numeric, 2)),
           r.store
    FROM r WHERE r.cum <= budget
    ORDER BY r.expected_saved_value / greatest(r.cost, 1e-9) DESC, r.expected_saved_value DESC, r.alert_id;
END
$$;
COMMENT ON FUNCTION churn.retention_plan(text, float8, int) IS
    'the open treatment alerts of a pipeline that a budget should buy, most expected value kept per unit of cost first; total cost <= budget, each store within its daily_contacts';

-- How many customers a store can contact per day, for the plan.
CREATE TABLE churn.store_capacity (
    pipeline      text NOT NULL CHECK (pipeline <> ''),
    store         text NOT NULL,
    daily_contacts int NOT NULL CHECK (daily_contacts >= 0),
    PRIMARY KEY (pipeline, store)
);
COMMENT ON TABLE churn.store_capacity IS
    'contacts per day a store of a pipeline can make; churn.retention_plan gives a store no more rows (stores not listed: no limit); kept by pg_dump';
SELECT pg_catalog.pg_extension_config_dump('churn.store_capacity', '');
