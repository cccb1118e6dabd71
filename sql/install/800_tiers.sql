-- churn_warning install script, part 800: warning tiers.
--
-- A churn probability and an annual value become a tier: a zone (red, yellow,
-- blue, none), a level inside the zone (1 = most urgent), a code (R1..R3,
-- Y1..Y4, B1..B2, N0), the value segment and the lead time the segment aims
-- for.  The cut points live in churn.tier_policy, one row per (policy, value
-- segment); the built-in policy 'default' is read-only, edit a copy made with
-- churn.tier_policy_copy().

CREATE TYPE churn.tier AS (
    zone          text,
    level         int,
    code          text,
    value_segment text,
    lead_days     int
);
COMMENT ON TYPE churn.tier IS
    'a warning tier: zone red/yellow/blue/none, level (1 = most urgent in the zone, 0 for none), code R1..R3/Y1..Y4/B1..B2/N0, value segment and its lead time in days';

CREATE TABLE churn.tier_policy (
    policy            text    NOT NULL,
    value_segment     text    NOT NULL,
    min_annual_value  float8  NOT NULL,
    lead_days         int     NOT NULL,
    b2                float8  NOT NULL,
    b1                float8  NOT NULL,
    y4                float8  NOT NULL,
    y3                float8  NOT NULL,
    y2                float8  NOT NULL,
    y1                float8  NOT NULL,
    r3                float8  NOT NULL,
    r2                float8  NOT NULL,
    r1                float8  NOT NULL,
    hysteresis_margin float8  NOT NULL DEFAULT 0,
    description       text,
    builtin           boolean NOT NULL DEFAULT false,
    PRIMARY KEY (policy, value_segment)
);
COMMENT ON TABLE churn.tier_policy IS
    'warning tier policies: one row per (policy, value segment); a customer is in the segment with the largest min_annual_value <= annual value and gets the most urgent code whose cut point is <= p_churn';
COMMENT ON COLUMN churn.tier_policy.policy IS 'policy name, the third argument of churn.warning_tier';
COMMENT ON COLUMN churn.tier_policy.value_segment IS 'value segment name returned in churn.tier.value_segment';
COMMENT ON COLUMN churn.tier_policy.min_annual_value IS 'lowest annual value in the segment (inclusive, currency-neutral); the lowest segment of a policy starts at 0';
COMMENT ON COLUMN churn.tier_policy.lead_days IS 'days ahead of the expected churn that warnings in this segment aim for (> 0)';
COMMENT ON COLUMN churn.tier_policy.b2 IS 'lowest p_churn of code B2 (below it: N0)';
COMMENT ON COLUMN churn.tier_policy.b1 IS 'lowest p_churn of code B1';
COMMENT ON COLUMN churn.tier_policy.y4 IS 'lowest p_churn of code Y4';
COMMENT ON COLUMN churn.tier_policy.y3 IS 'lowest p_churn of code Y3';
COMMENT ON COLUMN churn.tier_policy.y2 IS 'lowest p_churn of code Y2';
COMMENT ON COLUMN churn.tier_policy.y1 IS 'lowest p_churn of code Y1';
COMMENT ON COLUMN churn.tier_policy.r3 IS 'lowest p_churn of code R3';
COMMENT ON COLUMN churn.tier_policy.r2 IS 'lowest p_churn of code R2';
COMMENT ON COLUMN churn.tier_policy.r1 IS 'lowest p_churn of code R1 (the most urgent; up to and including 1)';
COMMENT ON COLUMN churn.tier_policy.hysteresis_margin IS 'margin used by churn.warning_tier(p, value, policy, previous_code) when no margin is given';
COMMENT ON COLUMN churn.tier_policy.builtin IS 'true for the read-only rows installed with the extension';

-- The default policy.  Low-value customers: blue from 0.30 (the top of the
-- business's annual churn base rate of a fifth to a third), yellow from 0.50
-- (churn more likely than not), red from 0.80.  Medium-value customers are
-- warned 0.10 earlier and high-value customers 0.20 earlier on every code, so
-- the bands have the same widths in every segment and all nine codes stay
-- reachable (the highest cut of any segment is 0.90 < 1).
INSERT INTO churn.tier_policy (policy, value_segment, min_annual_value, lead_days,
                               b2, b1, y4, y3, y2, y1, r3, r2, r1, hysteresis_margin, description, builtin) VALUES
    ('default', 'high',   100000, 30, 0.10, 0.20, 0.30, 0.35, 0.40, 0.50, 0.60, 0.65, 0.70, 0.02,
     'annual value >= 100000: warned 0.20 earlier than low, 30-day lead', true),
    ('default', 'medium',  10000, 40, 0.20, 0.30, 0.40, 0.45, 0.50, 0.60, 0.70, 0.75, 0.80, 0.02,
     'annual value >= 10000: warned 0.10 earlier than low, 40-day lead', true),
    ('default', 'low',         0, 50, 0.30, 0.40, 0.50, 0.55, 0.60, 0.70, 0.80, 0.85, 0.90, 0.02,
     'annual value < 10000: 50-day lead', true);

-- Check one policy; raises check_violation (23514) on the first problem.
CREATE FUNCTION churn.tier_policy_validate(policy text) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    r record;
    lowest float8;
    cuts float8[];
    names text[] := ARRAY['b2', 'b1', 'y4', 'y3', 'y2', 'y1', 'r3', 'r2', 'r1'];
    i int;
BEGIN
    IF policy IS NULL OR btrim(policy) = '' THEN
        RAISE EXCEPTION 'tier policy name must not be empty'
            USING ERRCODE = 'check_violation';
    END IF;
    FOR r IN SELECT * FROM churn.tier_policy t WHERE t.policy = tier_policy_validate.policy
             ORDER BY t.min_annual_value, t.value_segment LOOP
        IF btrim(r.value_segment) = '' THEN
            RAISE EXCEPTION 'tier policy "%": value segment name must not be empty', policy
                USING ERRCODE = 'check_violation';
        END IF;
        IF NOT (r.min_annual_value >= 0 AND r.min_annual_value < 'Infinity'::float8) THEN
            RAISE EXCEPTION 'tier policy "%", segment "%": min_annual_value % is not a finite number >= 0',
                policy, r.value_segment, r.min_annual_value
                USING ERRCODE = 'check_violation';
        END IF;
        IF r.lead_days <= 0 THEN
            RAISE EXCEPTION 'tier policy "%", segment "%": lead_days must be positive', policy, r.value_segment
                USING ERRCODE = 'check_violation',
                      DETAIL = format('lead_days was %s.', r.lead_days);
        END IF;
        IF NOT (r.hysteresis_margin >= 0 AND r.hysteresis_margin < 1) THEN
            RAISE EXCEPTION 'tier policy "%", segment "%": hysteresis_margin % is outside [0, 1)',
                policy, r.value_segment, r.hysteresis_margin
                USING ERRCODE = 'check_violation';
        END IF;
        cuts := ARRAY[r.b2, r.b1, r.y4, r.y3, r.y2, r.y1, r.r3, r.r2, r.r1];
        FOR i IN 1 .. 9 LOOP
            IF NOT (cuts[i] >= 0 AND cuts[i] <= 1) THEN
                RAISE EXCEPTION 'tier policy "%", segment "%": cut point % = % is outside [0, 1]',
                    policy, r.value_segment, names[i], cuts[i]
                    USING ERRCODE = 'check_violation',
                          HINT = 'Cut points are churn probabilities.';
            END IF;
            IF i > 1 AND NOT (cuts[i - 1] < cuts[i]) THEN
                RAISE EXCEPTION 'tier policy "%", segment "%": cut points are not strictly increasing',
                    policy, r.value_segment
                    USING ERRCODE = 'check_violation',
                          DETAIL = format('%s = %s is not below %s = %s.', names[i - 1], cuts[i - 1], names[i], cuts[i]),
                          HINT = 'Each code needs a larger p_churn than the less urgent one: b2 < b1 < y4 < y3 < y2 < y1 < r3 < r2 < r1.';
            END IF;
        END LOOP;
        IF lowest IS NULL THEN
            lowest := r.min_annual_value;
            IF lowest <> 0 THEN
                RAISE EXCEPTION 'tier policy "%" leaves annual values below % without a value segment', policy, lowest
                    USING ERRCODE = 'check_violation',
                          HINT = format('Set min_annual_value = 0 on the lowest segment ("%s").', r.value_segment);
            END IF;
        ELSIF r.min_annual_value = lowest THEN
            RAISE EXCEPTION 'tier policy "%": two value segments start at annual value %', policy, lowest
                USING ERRCODE = 'check_violation',
                      HINT = 'Segments of a policy must not overlap: give each a different min_annual_value.';
        ELSE
            lowest := r.min_annual_value;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION churn.tier_policy_validate(text) IS
    'check a tier policy (cut points strictly increasing in [0, 1], segments covering every annual value >= 0 without overlap, lead_days > 0); raises check_violation on the first problem';

-- The built-in rows are read-only; rows written by users are never built-in.
CREATE TRIGGER builtin_guard BEFORE INSERT OR UPDATE OR DELETE ON churn.tier_policy
    FOR EACH ROW EXECUTE FUNCTION churn.builtin_guard('policy',
        'the built-in tier policy "%s" cannot be changed',
        'Copy it and edit the copy: SELECT churn.tier_policy_copy(%L, ''mine'');');

-- Validate every policy a statement touched, at the end of the statement (or
-- at commit after SET CONSTRAINTS churn.tier_policy_valid DEFERRED, to build a
-- policy up over several statements).
CREATE FUNCTION churn.tier_policy_check() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM churn.tier_policy_validate(NEW.policy);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM churn.tier_policy_validate(OLD.policy);
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER tier_policy_valid AFTER INSERT OR UPDATE OR DELETE ON churn.tier_policy
    DEFERRABLE INITIALLY IMMEDIATE
    FOR EACH ROW EXECUTE FUNCTION churn.tier_policy_check();

SELECT pg_catalog.pg_extension_config_dump('churn.tier_policy', 'WHERE NOT builtin');

CREATE FUNCTION churn.tier_policy_copy(source text, target text) RETURNS int
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    n int;
BEGIN
    IF EXISTS (SELECT 1 FROM churn.tier_policy t WHERE t.policy = target) THEN
        RAISE EXCEPTION 'tier policy "%" already exists', target
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Choose another name, or delete the existing policy first.';
    END IF;
    INSERT INTO churn.tier_policy (policy, value_segment, min_annual_value, lead_days,
                                   b2, b1, y4, y3, y2, y1, r3, r2, r1, hysteresis_margin, description)
    SELECT target, value_segment, min_annual_value, lead_days,
           b2, b1, y4, y3, y2, y1, r3, r2, r1, hysteresis_margin, description
    FROM churn.tier_policy t WHERE t.policy = source;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'tier policy "%" does not exist', source
            USING ERRCODE = 'undefined_object',
                  HINT = format('Known policies: %s.',
                                (SELECT string_agg(DISTINCT t.policy, ', ' ORDER BY t.policy) FROM churn.tier_policy t));
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION churn.tier_policy_copy(text, text) IS
    'copy a tier policy under a new, editable name; returns the number of value segments copied';

CREATE FUNCTION churn.warning_tier(p_churn float8, annual_value float8) RETURNS churn.tier
    AS 'MODULE_PATHNAME', 'warning_tier' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.warning_tier(float8, float8) IS
    'warning tier of a churn probability and an annual value under the policy ''default''';

CREATE FUNCTION churn.warning_tier(p_churn float8, annual_value float8, policy text) RETURNS churn.tier
    AS 'MODULE_PATHNAME', 'warning_tier' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION churn.warning_tier(float8, float8, text) IS
    'warning tier of a churn probability and an annual value under a policy of churn.tier_policy';

CREATE FUNCTION churn.warning_tier(p_churn float8, annual_value float8, policy text,
                                   previous_code text, margin float8 DEFAULT NULL) RETURNS churn.tier
    AS 'MODULE_PATHNAME', 'warning_tier_hysteresis' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.warning_tier(float8, float8, text, text, float8) IS
    'warning tier with hysteresis: keeps previous_code while p_churn is within margin (default: the policy''s hysteresis_margin) of that code''s band';

-- Every code of every policy with its probability band, for legends.
CREATE VIEW churn.tier_codes AS
SELECT t.policy, t.value_segment, t.min_annual_value, c.code, c.zone, c.level, c.urgency,
       c.min_p, c.max_p, t.lead_days, t.builtin
FROM churn.tier_policy t
CROSS JOIN LATERAL (VALUES
    ('N0', 'none',   0, 0, 0::float8, t.b2),
    ('B2', 'blue',   2, 1, t.b2, t.b1),
    ('B1', 'blue',   1, 2, t.b1, t.y4),
    ('Y4', 'yellow', 4, 3, t.y4, t.y3),
    ('Y3', 'yellow', 3, 4, t.y3, t.y2),
    ('Y2', 'yellow', 2, 5, t.y2, t.y1),
    ('Y1', 'yellow', 1, 6, t.y1, t.r3),
    ('R3', 'red',    3, 7, t.r3, t.r2),
    ('R2', 'red',    2, 8, t.r2, t.r1),
    ('R1', 'red',    1, 9, t.r1, 1::float8)
) c(code, zone, level, urgency, min_p, max_p);
COMMENT ON VIEW churn.tier_codes IS
    'every code of every tier policy and value segment with its probability band [min_p, max_p) (R1 includes max_p = 1); sort by urgency';
COMMENT ON COLUMN churn.tier_codes.policy IS 'policy name';
COMMENT ON COLUMN churn.tier_codes.value_segment IS 'value segment name';
COMMENT ON COLUMN churn.tier_codes.min_annual_value IS 'lowest annual value of the segment (inclusive)';
COMMENT ON COLUMN churn.tier_codes.code IS 'tier code: N0, B2, B1, Y4, Y3, Y2, Y1, R3, R2, R1';
COMMENT ON COLUMN churn.tier_codes.zone IS 'none, blue, yellow or red';
COMMENT ON COLUMN churn.tier_codes.level IS 'level inside the zone, 1 = most urgent; 0 for none';
COMMENT ON COLUMN churn.tier_codes.urgency IS 'overall urgency 0 (N0) .. 9 (R1), for sorting';
COMMENT ON COLUMN churn.tier_codes.min_p IS 'lowest p_churn of the code (inclusive)';
COMMENT ON COLUMN churn.tier_codes.max_p IS 'p_churn at which the next more urgent code starts (exclusive); 1 (inclusive) for R1';
COMMENT ON COLUMN churn.tier_codes.lead_days IS 'lead time of the segment in days';
COMMENT ON COLUMN churn.tier_codes.builtin IS 'true for the read-only built-in policy';
