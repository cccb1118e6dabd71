-- Warning tiers: churn.warning_tier, churn.tier_policy, churn.tier_codes.
CREATE SCHEMA test_tiers;
SET search_path = test_tiers;
SET extra_float_digits = 0;
\set SHOW_CONTEXT never

-- the built-in policy
SELECT policy, value_segment, min_annual_value, lead_days, b2, b1, y4, y3, y2, y1, r3, r2, r1,
       hysteresis_margin, builtin
FROM churn.tier_policy WHERE policy = 'default' ORDER BY min_annual_value DESC;
SELECT value_segment, code, zone, level, urgency, min_p, max_p, lead_days
FROM churn.tier_codes WHERE policy = 'default' ORDER BY min_annual_value DESC, urgency;

-- every p from 0 to 1 in steps of 0.01 in every segment of the default policy
CREATE TABLE grid AS
SELECT s.annual_value, (i / 100.0)::float8 AS p, (churn.warning_tier((i / 100.0)::float8, s.annual_value)).*
FROM (VALUES (250000::float8), (100000), (99999.99), (10000), (9999.99), (0)) s(annual_value),
     generate_series(0, 100) i;
CREATE TABLE urgency AS
SELECT DISTINCT code, urgency, zone FROM churn.tier_codes;

-- the segment of each annual value (exactly 100000 is high, exactly 10000 medium)
SELECT annual_value, value_segment, lead_days, count(*) FROM grid GROUP BY 1, 2, 3 ORDER BY 1 DESC;

-- all nine warning codes (and N0) reachable in every segment: the p range of each code
SELECT value_segment, code, zone, level, min(p) AS from_p, max(p) AS to_p, count(*) AS steps
FROM grid WHERE annual_value IN (100000, 10000, 0)
GROUP BY 1, 2, 3, 4 ORDER BY 1, min(p);
SELECT value_segment, count(DISTINCT code) AS codes, count(DISTINCT code) FILTER (WHERE zone <> 'none') AS warning_codes
FROM grid GROUP BY 1 ORDER BY 1;

-- urgency and zone never fall as p rises, in every segment
SELECT value_segment, count(*) FILTER (WHERE u < prev_u) AS urgency_drops,
       count(*) FILTER (WHERE z < prev_z) AS zone_drops
FROM (SELECT g.value_segment, u.urgency AS u,
             array_position(ARRAY['none', 'blue', 'yellow', 'red'], g.zone) AS z,
             lag(u.urgency) OVER w AS prev_u,
             lag(array_position(ARRAY['none', 'blue', 'yellow', 'red'], g.zone)) OVER w AS prev_z
      FROM grid g JOIN urgency u USING (code)
      WINDOW w AS (PARTITION BY g.annual_value ORDER BY g.p)) s
GROUP BY 1 ORDER BY 1;

-- high-value customers are warned at a lower p than medium, medium lower than low, for every code
SELECT code,
       min(p) FILTER (WHERE value_segment = 'high') AS high_from,
       min(p) FILTER (WHERE value_segment = 'medium') AS medium_from,
       min(p) FILTER (WHERE value_segment = 'low') AS low_from,
       min(p) FILTER (WHERE value_segment = 'high') < min(p) FILTER (WHERE value_segment = 'medium')
       AND min(p) FILTER (WHERE value_segment = 'medium') < min(p) FILTER (WHERE value_segment = 'low') AS earlier
FROM grid JOIN urgency USING (code, zone) WHERE code <> 'N0'
GROUP BY code, urgency ORDER BY urgency;

-- boundaries: p exactly at a cut point is the more urgent code, just below it the less urgent one
SELECT c.value_segment, c.code,
       (churn.warning_tier(c.min_p, c.min_annual_value)).code AS at_cut,
       (churn.warning_tier(c.min_p - 1e-12, c.min_annual_value)).code AS just_below
FROM churn.tier_codes c
WHERE c.policy = 'default' AND c.code <> 'N0'
ORDER BY c.min_annual_value DESC, c.urgency;
SELECT churn.warning_tier(0, 0) AS p0, churn.warning_tier(1, 0) AS p1,
       churn.warning_tier(1, 1e12) AS p1_rich, churn.warning_tier(0.7, 100000) AS high_r1,
       churn.warning_tier(0.7, 99999.99) AS medium_y1;

-- NULL in, NULL out (the 2- and 3-argument forms are strict)
SELECT churn.warning_tier(NULL, 1) IS NULL AS null_p, churn.warning_tier(0.5, NULL) IS NULL AS null_value,
       churn.warning_tier(0.5, 1, NULL) IS NULL AS null_policy,
       churn.warning_tier(NULL, 1, 'default', 'R1') IS NULL AS null_p_hysteresis,
       churn.warning_tier(0.5, 1, NULL, 'R1') IS NULL AS null_policy_hysteresis;

-- bad input
SELECT churn.warning_tier(-0.1, 1000);
SELECT churn.warning_tier(1.1, 1000);
SELECT churn.warning_tier(1.0000000000000002, 1000);
SELECT churn.warning_tier('NaN', 1000);
SELECT churn.warning_tier('Infinity', 1000);
SELECT churn.warning_tier(0.5, -1);
SELECT churn.warning_tier(0.5, 'NaN');
SELECT churn.warning_tier(0.5, 'Infinity');
BEGIN;
DELETE FROM churn.tier_policy WHERE NOT builtin;  -- policies other tests may have left
SELECT churn.warning_tier(0.5, 1000, 'nope');
ROLLBACK;
SELECT churn.warning_tier(0.5, 1000, 'Default');
SELECT churn.warning_tier(0.5, 1000, 'default', 'X9');
SELECT churn.warning_tier(0.5, 1000, 'default', 'B1', -0.01);
SELECT churn.warning_tier(0.5, 1000, 'default', 'B1', 'NaN');
SELECT churn.warning_tier(0.5, 1000, 'default', 'B1', 1);

-- the built-in policy is read-only
UPDATE churn.tier_policy SET r1 = 0.95 WHERE policy = 'default' AND value_segment = 'low';
DELETE FROM churn.tier_policy WHERE policy = 'default';
SELECT extcondition[array_position(extconfig, 'churn.tier_policy'::regclass)] AS dump_condition
FROM pg_extension WHERE extname = 'churn_warning';

-- a copy is editable and changes results; the default does not change
SELECT churn.tier_policy_copy('default', 'tiers_mine');
SELECT churn.tier_policy_copy('default', 'tiers_mine');
SELECT churn.tier_policy_copy('tiers_none', 'tiers_x');
SELECT count(*), bool_or(builtin) AS any_builtin FROM churn.tier_policy WHERE policy = 'tiers_mine';
UPDATE churn.tier_policy SET r1 = 0.95, r2 = 0.92 WHERE policy = 'tiers_mine' AND value_segment = 'low';
UPDATE churn.tier_policy SET lead_days = 21 WHERE policy = 'tiers_mine' AND value_segment = 'high';
SELECT churn.warning_tier(0.93, 500, 'tiers_mine') AS mine, churn.warning_tier(0.93, 500) AS dflt,
       churn.warning_tier(0.5, 500000, 'tiers_mine') AS mine_high;
-- one call site, a policy per row
SELECT pol, p, churn.warning_tier(p, 500, pol)
FROM (VALUES ('default', 0.91::float8), ('tiers_mine', 0.91), ('default', 0.96), ('tiers_mine', 0.96)) v(pol, p);
-- a user can mark nothing built-in
INSERT INTO churn.tier_policy (policy, value_segment, min_annual_value, lead_days, b2, b1, y4, y3, y2, y1, r3, r2, r1, builtin)
VALUES ('tiers_flat', 'all', 0, 45, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, true);
SELECT policy, value_segment, builtin, churn.warning_tier(0.85, 1e9, policy) FROM churn.tier_policy WHERE policy = 'tiers_flat';
DELETE FROM churn.tier_policy WHERE policy = 'tiers_flat';

-- a policy is validated when written
UPDATE churn.tier_policy SET y3 = 0.45 WHERE policy = 'tiers_mine' AND value_segment = 'low';
UPDATE churn.tier_policy SET b2 = 0.40 WHERE policy = 'tiers_mine' AND value_segment = 'low';
UPDATE churn.tier_policy SET r1 = 1.5 WHERE policy = 'tiers_mine' AND value_segment = 'low';
UPDATE churn.tier_policy SET b2 = -0.1 WHERE policy = 'tiers_mine' AND value_segment = 'low';
UPDATE churn.tier_policy SET r1 = 'NaN' WHERE policy = 'tiers_mine' AND value_segment = 'low';
UPDATE churn.tier_policy SET min_annual_value = 500 WHERE policy = 'tiers_mine' AND value_segment = 'low';
DELETE FROM churn.tier_policy WHERE policy = 'tiers_mine' AND value_segment = 'low';
UPDATE churn.tier_policy SET min_annual_value = 100000 WHERE policy = 'tiers_mine' AND value_segment = 'medium';
UPDATE churn.tier_policy SET min_annual_value = -1 WHERE policy = 'tiers_mine' AND value_segment = 'low';
UPDATE churn.tier_policy SET min_annual_value = 'Infinity' WHERE policy = 'tiers_mine' AND value_segment = 'high';
UPDATE churn.tier_policy SET lead_days = 0 WHERE policy = 'tiers_mine' AND value_segment = 'high';
UPDATE churn.tier_policy SET hysteresis_margin = -0.01 WHERE policy = 'tiers_mine' AND value_segment = 'high';
UPDATE churn.tier_policy SET value_segment = '' WHERE policy = 'tiers_mine' AND value_segment = 'high';
INSERT INTO churn.tier_policy (policy, value_segment, min_annual_value, lead_days, b2, b1, y4, y3, y2, y1, r3, r2, r1)
VALUES ('tiers_gap', 'big', 1000, 30, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9);
-- valid edits in one statement pass: swap the bounds of two segments
UPDATE churn.tier_policy SET min_annual_value = CASE value_segment WHEN 'high' THEN 50000 ELSE 5000 END
WHERE policy = 'tiers_mine' AND value_segment IN ('high', 'medium');
SELECT value_segment, min_annual_value FROM churn.tier_policy WHERE policy = 'tiers_mine' ORDER BY 2 DESC;
SELECT (churn.warning_tier(0.5, 60000, 'tiers_mine')).value_segment AS v60000,
       (churn.warning_tier(0.5, 6000, 'tiers_mine')).value_segment AS v6000;
-- building a policy over several statements: defer the check to commit
BEGIN;
SET CONSTRAINTS churn.tier_policy_valid DEFERRED;
INSERT INTO churn.tier_policy (policy, value_segment, min_annual_value, lead_days, b2, b1, y4, y3, y2, y1, r3, r2, r1)
VALUES ('tiers_two', 'vip', 50000, 14, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45);
INSERT INTO churn.tier_policy (policy, value_segment, min_annual_value, lead_days, b2, b1, y4, y3, y2, y1, r3, r2, r1)
VALUES ('tiers_two', 'rest', 0, 60, 0.3, 0.4, 0.5, 0.55, 0.6, 0.7, 0.8, 0.85, 0.9);
COMMIT;
SELECT churn.warning_tier(0.4, 60000, 'tiers_two') AS vip, churn.warning_tier(0.4, 100, 'tiers_two') AS rest;
BEGIN;
SET CONSTRAINTS churn.tier_policy_valid DEFERRED;
INSERT INTO churn.tier_policy (policy, value_segment, min_annual_value, lead_days, b2, b1, y4, y3, y2, y1, r3, r2, r1)
VALUES ('tiers_half', 'vip', 50000, 14, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45);
COMMIT;
SELECT count(*) AS half_built FROM churn.tier_policy WHERE policy = 'tiers_half';
SELECT churn.tier_policy_validate('tiers_mine'), churn.tier_policy_validate('tiers_none');

-- an edit is seen by the next statement, also inside one PL/pgSQL transaction
CREATE FUNCTION edit_and_tier() RETURNS text LANGUAGE plpgsql AS
$$
DECLARE
    before text;
    after text;
BEGIN
    before := (churn.warning_tier(0.85, 500, 'tiers_mine')).code;
    UPDATE churn.tier_policy SET r3 = 0.86, r2 = 0.9, r1 = 0.91 WHERE policy = 'tiers_mine' AND value_segment = 'low';
    after := (churn.warning_tier(0.85, 500, 'tiers_mine')).code;
    RETURN before || ' -> ' || after;
END
$$;
SELECT edit_and_tier();

-- hysteresis: p wanders around the Y4 cut (0.50) of the low segment
CREATE TABLE walk (step int, p float8);
INSERT INTO walk VALUES (1, 0.45), (2, 0.49), (3, 0.51), (4, 0.495), (5, 0.505), (6, 0.49),
    (7, 0.515), (8, 0.485), (9, 0.53), (10, 0.51), (11, 0.49), (12, 0.475), (13, 0.51), (14, 0.50);
WITH RECURSIVE w AS (
    SELECT step, p, (churn.warning_tier(p, 500)).code AS plain,
           (churn.warning_tier(p, 500, 'default', NULL)).code AS sticky
    FROM walk WHERE step = 1
  UNION ALL
    SELECT n.step, n.p, (churn.warning_tier(n.p, 500)).code,
           (churn.warning_tier(n.p, 500, 'default', w.sticky, 0.02)).code
    FROM w JOIN walk n ON n.step = w.step + 1
)
SELECT step, p, plain, sticky FROM w ORDER BY step;
WITH RECURSIVE w AS (
    SELECT step, (churn.warning_tier(p, 500)).code AS plain, (churn.warning_tier(p, 500)).code AS sticky
    FROM walk WHERE step = 1
  UNION ALL
    SELECT n.step, (churn.warning_tier(n.p, 500)).code,
           (churn.warning_tier(n.p, 500, 'default', w.sticky)).code   -- the policy's margin, 0.02
    FROM w JOIN walk n ON n.step = w.step + 1
)
SELECT count(*) FILTER (WHERE plain <> lag_plain) AS plain_changes,
       count(*) FILTER (WHERE sticky <> lag_sticky) AS sticky_changes
FROM (SELECT plain, sticky, lag(plain) OVER (ORDER BY step) AS lag_plain,
             lag(sticky) OVER (ORDER BY step) AS lag_sticky FROM w) s;
-- margin 0 or no previous code: the plain tier; a jump far enough moves at once
SELECT churn.warning_tier(0.51, 500, 'default', 'B1', 0) AS margin0,
       churn.warning_tier(0.51, 500, 'default', NULL) AS no_previous,
       churn.warning_tier(0.51, 500, 'default', 'B1') AS kept,
       churn.warning_tier(0.95, 500, 'default', 'B1') AS jump_up,
       churn.warning_tier(0.05, 500, 'default', 'R1') AS jump_down,
       churn.warning_tier(0.89, 500, 'default', ' r1 ') AS r1_kept,
       churn.warning_tier(0.31, 500, 'default', 'N0') AS n0_kept,
       churn.warning_tier(0.5, 500, 'default', 'B1', 0.2) AS wide_margin;

-- the function properties
SELECT p.oid::regprocedure, p.provolatile, p.proisstrict, p.proparallel
FROM pg_proc p WHERE p.proname = 'warning_tier' AND p.pronamespace = 'churn'::regnamespace ORDER BY p.pronargs;

-- legends of a user policy
SELECT value_segment, string_agg(code || '>=' || min_p, ' ' ORDER BY urgency) AS codes
FROM churn.tier_codes WHERE policy = 'tiers_mine' GROUP BY value_segment, min_annual_value ORDER BY min_annual_value DESC;

-- parallel query gives the same tiers as a serial one
CREATE TABLE many AS SELECT (g % 1001) / 1000.0::float8 AS p, ((g * 7919) % 200000)::float8 AS v
FROM generate_series(1, 100000) g;
ANALYZE many;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT sum((churn.warning_tier(p, v, 'tiers_mine')).level) AS level_sum,
       count(*) FILTER (WHERE (churn.warning_tier(p, v, 'tiers_mine')).zone = 'red') AS red,
       count(*) FILTER (WHERE (churn.warning_tier(p, v, 'tiers_mine')).code = 'N0') AS n0
FROM many;
SELECT sum((churn.warning_tier(p, v, 'tiers_mine')).level) AS level_sum,
       count(*) FILTER (WHERE (churn.warning_tier(p, v, 'tiers_mine')).zone = 'red') AS red,
       count(*) FILTER (WHERE (churn.warning_tier(p, v, 'tiers_mine')).code = 'N0') AS n0
FROM many;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
SET max_parallel_workers_per_gather = 0;
SELECT sum((churn.warning_tier(p, v, 'tiers_mine')).level) AS level_sum,
       count(*) FILTER (WHERE (churn.warning_tier(p, v, 'tiers_mine')).zone = 'red') AS red,
       count(*) FILTER (WHERE (churn.warning_tier(p, v, 'tiers_mine')).code = 'N0') AS n0
FROM many;
RESET max_parallel_workers_per_gather;

-- 0.3.0: the built-in policy early, the one model auto uses when none is given
SELECT churn.tier_policy_for('auto') AS auto, churn.tier_policy_for('bgnbd') AS bgnbd,
       churn.tier_policy_for('no such model') AS other, churn.tier_policy_for(NULL) IS NULL AS null_model;
SELECT (churn.warning_tier(0.35, 900, 'early')).code AS low_035, (churn.warning_tier(0.35, 20000, 'early')).code AS medium_035,
       (churn.warning_tier(0.35, 200000, 'early')).code AS high_035, (churn.warning_tier(0.1, 900, 'early')).code AS low_010;
\set SHOW_CONTEXT never
UPDATE churn.tier_policy SET r1 = 0.99 WHERE policy = 'early' AND value_segment = 'low';
\set SHOW_CONTEXT errors

DELETE FROM churn.tier_policy WHERE policy LIKE 'tiers\_%';
DROP SCHEMA test_tiers CASCADE;
