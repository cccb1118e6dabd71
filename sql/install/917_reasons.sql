-- churn_warning install script, part 917 (0.3.0): why a customer is at
-- risk, and the action that fits the reason.
--
-- Each rule of churn.rules stands for a reason: service (complaints, bad
-- reviews), price (spend and order value falling), silence (visits, logins
-- and interactions stopped) or frequency (gaps growing, purchases fewer).
-- A customer's reason is that of the rules that fire on their features, in
-- that order of precedence (churn.reason, C); a lost customer's reason is
-- lost (reactivation).  The playbook may pick an action per zone and reason
-- (churn.playbook_reason); the code's action otherwise.

ALTER TABLE churn.rules ADD COLUMN reason text CHECK (reason IN ('service', 'price', 'silence', 'frequency'));
COMMENT ON COLUMN churn.rules.reason IS 'the reason the rule stands for: service, price, silence or frequency; NULL: none';
ALTER TABLE churn.rules DISABLE TRIGGER builtin_guard;
UPDATE churn.rules SET reason = v.reason
FROM (VALUES ('frequency_down_30', 'frequency'), ('overdue_2x', 'frequency'), ('aov_down_3_months', 'price'),
             ('spend_down_15', 'price'), ('no_visit_15', 'silence'), ('no_login_20', 'silence'),
             ('no_interaction_30', 'silence'), ('silent_60', 'silence'), ('negative_feedback', 'service')) v(rule, reason)
WHERE rules.rule = v.rule AND rules.builtin;
ALTER TABLE churn.rules ENABLE TRIGGER builtin_guard;

-- A copy takes the reasons too.
CREATE OR REPLACE FUNCTION churn.rules_copy(source text, target text) RETURNS int
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    n int;
BEGIN
    INSERT INTO churn.rules (ruleset, rule, feature, op, threshold, weight, description, reason)
    SELECT target, rule, feature, op, threshold, weight, description, reason
    FROM churn.rules WHERE ruleset = source;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'ruleset "%" does not exist', source USING ERRCODE = 'undefined_object';
    END IF;
    RETURN n;
END
$$;

CREATE FUNCTION churn.reason(f churn.features, e churn.engagement_features DEFAULT NULL, lifecycle text DEFAULT NULL,
                             ruleset text DEFAULT 'default') RETURNS text
    AS 'MODULE_PATHNAME', 'rule_reason' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.reason(churn.features, churn.engagement_features, text, text) IS
    'why a customer is at risk: lost for a lost customer, else service, price, silence or frequency (the first of these whose rules fire in the ruleset; when none fires, the rule nearest to firing); NULL when no rule says anything';

ALTER TABLE churn.pipeline_warning ADD COLUMN reason text;
COMMENT ON COLUMN churn.pipeline_warning.reason IS 'why the customer is at risk (churn.reason)';
ALTER TABLE churn.alert ADD COLUMN reason text;
COMMENT ON COLUMN churn.alert.reason IS 'why the customer was at risk when the alert was raised or escalated; NULL when raised by hand';
ALTER TYPE churn.pipeline_alert_candidate ADD ATTRIBUTE reason text;

-- Actions per zone and reason; they override the code's playbook action.
CREATE TABLE churn.playbook_reason (
    zone         text NOT NULL CHECK (zone IN ('red', 'yellow', 'blue')),
    reason       text NOT NULL CHECK (reason IN ('service', 'price', 'silence', 'frequency', 'lost')),
    action       text NOT NULL CHECK (btrim(action) <> ''),
    channel      text NOT NULL CHECK (btrim(channel) <> ''),
    cost         float8 CHECK (cost >= 0 AND cost < 'Infinity'),
    uplift_prior float8 CHECK (uplift_prior >= 0 AND uplift_prior <= 1),
    builtin      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (zone, reason, builtin)
);
COMMENT ON TABLE churn.playbook_reason IS
    'the action for a zone and a reason, overriding the tier code''s playbook action; a user row (builtin = false) overrides the built-in one; user rows kept by pg_dump';
INSERT INTO churn.playbook_reason (zone, reason, action, channel, cost, uplift_prior, builtin) VALUES
    ('red',    'service', 'service recovery: store manager call, apology and a gift', 'phone', 50, 0.25, true),
    ('yellow', 'service', 'service recovery: apology and a voucher',                 'email',  6, 0.12, true),
    ('red',    'price',   'VIP price offer: a personal discount',                     'phone', 35, 0.18, true),
    ('yellow', 'price',   'targeted promotion: second item at half price',           'app',    8, 0.10, true),
    ('yellow', 'silence', 'win-back message on the customer''s usual channel',       'app',    2, 0.06, true),
    ('blue',   'lost',    'reactivation campaign',                                   'newsletter', 0.2, 0.02, true);
CREATE TRIGGER builtin_guard BEFORE INSERT OR UPDATE OR DELETE ON churn.playbook_reason
    FOR EACH ROW EXECUTE FUNCTION churn.builtin_guard('reason',
        'the built-in action for reason %s cannot be changed',
        'Add a user row for the zone and reason instead: INSERT INTO churn.playbook_reason (zone, reason, action, channel, cost, uplift_prior) VALUES (...);');
SELECT pg_catalog.pg_extension_config_dump('churn.playbook_reason', 'WHERE NOT builtin');

CREATE VIEW churn.playbook_reason_effective AS
SELECT DISTINCT ON (r.zone, r.reason) r.zone::text AS zone, r.reason::text AS reason, r.action::text AS action,
       r.channel::text AS channel, r.cost::float8 AS cost, r.uplift_prior::float8 AS uplift_prior,
       (NOT r.builtin)::boolean AS overridden
FROM churn.playbook_reason r
ORDER BY r.zone, r.reason, r.builtin;
COMMENT ON VIEW churn.playbook_reason_effective IS
    'the action per zone and reason in force: the user row when there is one, else the built-in one';
