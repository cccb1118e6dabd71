-- churn_warning install script, part 815 (0.3.0): the tier codes in one
-- place.  The list of codes with their zone, level and urgency is TierCodes
-- in src/tiers.c; the view, the alert urgency, the playbook's zone filling
-- and the code checks of the playbook and alert tables all read it.

CREATE FUNCTION churn.tier_code_list(OUT code text, OUT zone text, OUT level int, OUT urgency int)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'tier_code_list' LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION churn.tier_code_list() IS
    'every tier code (N0, B2, B1, Y4 .. Y1, R3, R2, R1) with its zone, level and urgency 0 .. 9';

CREATE OR REPLACE FUNCTION churn.alert_urgency(code text) RETURNS int
    AS 'MODULE_PATHNAME', 'alert_urgency' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.alert_urgency(text) IS
    'urgency of a tier code: R1 = 9 (most urgent) .. B2 = 1, N0 = 0, NULL for anything else (same scale as churn.tier_codes.urgency)';
CREATE FUNCTION churn.tier_code_zone(code text) RETURNS text
    AS 'MODULE_PATHNAME', 'tier_code_zone' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.tier_code_zone(text) IS 'zone of a tier code (none, blue, yellow, red); NULL for anything else';
CREATE FUNCTION churn.tier_code_level(code text) RETURNS int
    AS 'MODULE_PATHNAME', 'tier_code_level' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.tier_code_level(text) IS 'level of a tier code inside its zone (1 = most urgent, 0 for N0); NULL for anything else';

CREATE OR REPLACE VIEW churn.tier_codes AS
SELECT t.policy, t.value_segment, t.min_annual_value, c.code, c.zone, c.level, c.urgency,
       b.cuts[c.urgency + 1] AS min_p, b.cuts[c.urgency + 2] AS max_p, t.lead_days, t.builtin
FROM churn.tier_policy t
CROSS JOIN LATERAL (SELECT ARRAY[0, t.b2, t.b1, t.y4, t.y3, t.y2, t.y1, t.r3, t.r2, t.r1, 1]::float8[] AS cuts) b
CROSS JOIN churn.tier_code_list() c;

-- A user entry for a tier code gets the code's zone and level by default.
CREATE OR REPLACE FUNCTION churn.playbook_fill_zone() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    NEW.zone := coalesce(NEW.zone, churn.tier_code_zone(NEW.code));
    NEW.level := coalesce(NEW.level, churn.tier_code_level(NEW.code));
    RETURN NEW;
END
$$;

-- Alerting codes are the codes of urgency 1 .. 9 (every code but N0).
ALTER TABLE churn.playbook DROP CONSTRAINT playbook_code_check,
    ADD CONSTRAINT playbook_code_check CHECK (churn.alert_urgency(code) >= 1),
    DROP CONSTRAINT playbook_check,
    ADD CONSTRAINT playbook_check CHECK (zone = churn.tier_code_zone(code) AND level = churn.tier_code_level(code));
ALTER TABLE churn.alert DROP CONSTRAINT alert_code_check,
    ADD CONSTRAINT alert_code_check CHECK (churn.alert_urgency(code) >= 1);
ALTER TABLE churn.alert DROP CONSTRAINT alert_check,
    ADD CONSTRAINT alert_check CHECK (zone = churn.tier_code_zone(code) AND level = churn.tier_code_level(code));
