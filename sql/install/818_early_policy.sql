-- churn_warning install script, part 818 (0.3.0): the built-in tier policy
-- "early", for the probability an auto model gives: P(gone by as_of +
-- horizon) of a customer who is not lost.  That probability is of leaving
-- within one horizon (a quarter by default) among customers still buying,
-- so the same urgency sits at a lower p than in "default", whose cut points
-- are set for "no purchase in the next horizon", which every customer
-- already gone meets.  Why these numbers (docs/alerts.md): a fifth to a
-- third of customers are lost in a year, 5-10 % in a quarter; blue starts
-- at 0.15 for low-value customers (above that quarterly rate), yellow at
-- 0.30 (three times it), red at 0.60 (more likely than not, with margin);
-- medium- and high-value customers 0.05 and 0.10 earlier, as in "default".

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM churn.tier_policy WHERE policy = 'early') THEN
        RAISE EXCEPTION 'a tier policy named "early" already exists'
            USING ERRCODE = 'duplicate_object',
                  DETAIL = '0.3.0 installs a built-in policy of that name.',
                  HINT = 'Rename yours (UPDATE churn.tier_policy SET policy = ''my_early'' WHERE policy = ''early''; and the pipelines using it), then update again.';
    END IF;
END
$$;
-- built-in rows are written with the guard off (it marks user rows)
ALTER TABLE churn.tier_policy DISABLE TRIGGER builtin_guard;
INSERT INTO churn.tier_policy (policy, value_segment, min_annual_value, lead_days,
                               b2, b1, y4, y3, y2, y1, r3, r2, r1, hysteresis_margin, description, builtin) VALUES
    ('early', 'high',   100000, 30, 0.05, 0.10, 0.20, 0.23, 0.26, 0.30, 0.50, 0.55, 0.60, 0.02,
     'early warning, annual value >= 100000: warned 0.10 earlier than low, 30-day lead', true),
    ('early', 'medium',  10000, 40, 0.10, 0.15, 0.25, 0.28, 0.31, 0.35, 0.55, 0.60, 0.65, 0.02,
     'early warning, annual value >= 10000: warned 0.05 earlier than low, 40-day lead', true),
    ('early', 'low',         0, 50, 0.15, 0.20, 0.30, 0.33, 0.36, 0.40, 0.60, 0.65, 0.70, 0.02,
     'early warning, annual value < 10000: 50-day lead', true);
ALTER TABLE churn.tier_policy ENABLE TRIGGER builtin_guard;

-- The tier policy a pipeline or backtest uses when none is given: "early"
-- for model auto (its probability is of the early-warning label), "default"
-- for the others.
CREATE FUNCTION churn.tier_policy_for(model text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN model = 'auto' THEN 'early' ELSE 'default' END
$$;
COMMENT ON FUNCTION churn.tier_policy_for(text) IS
    'the tier policy used when none is given: early for model auto, default for the others';
