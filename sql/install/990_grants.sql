-- churn_warning install script, part 990: what roles may use.
--
-- Every role may call the pure functions (history, features, models,
-- evaluation). Functions that read configuration (RFM segment schemes,
-- rulesets, tier policies, the playbook, registered models) need SELECT on
-- it: grant the role churn_user to analysts. churn_reader (part 810) reads
-- the BI views and nothing else. Changing configuration and moving alerts
-- need explicit grants.
GRANT USAGE ON SCHEMA churn TO PUBLIC;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'churn_user') THEN
        CREATE ROLE churn_user NOLOGIN;
    END IF;
END
$$;
GRANT SELECT ON churn.rfm_segments, churn.rules, churn.tier_policy, churn.playbook, churn.model
    TO churn_user;
