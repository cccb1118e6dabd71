-- churn_warning install script, part 816 (0.3.0): the lifecycle of a
-- customer (new, active, lapsing, lost), judged against the customer's own
-- rhythm, with bounds in the tier policy.  Warnings, tiers and alerts are
-- for customers who can still be kept: a lost customer is never in the red
-- or yellow zone (reactivation, blue B1, instead) and raises no alert.

ALTER TABLE churn.tier_policy
    ADD COLUMN new_days int NOT NULL DEFAULT 30 CHECK (new_days >= 0),
    ADD COLUMN lapsing_gaps float8 NOT NULL DEFAULT 1.5 CHECK (lapsing_gaps > 0 AND lapsing_gaps < 'Infinity'),
    ADD COLUMN lost_gaps float8 NOT NULL DEFAULT 4 CHECK (lost_gaps < 'Infinity'),
    ADD COLUMN lost_min_days int NOT NULL DEFAULT 60 CHECK (lost_min_days >= 0),
    ADD COLUMN lost_max_days int NOT NULL DEFAULT 180 CHECK (lost_max_days > 0),
    ADD COLUMN default_gap_days float8 NOT NULL DEFAULT 60 CHECK (default_gap_days > 0 AND default_gap_days < 'Infinity'),
    ADD CONSTRAINT tier_policy_lifecycle_check CHECK (lost_gaps >= lapsing_gaps AND lost_max_days >= lost_min_days);
COMMENT ON COLUMN churn.tier_policy.new_days IS 'lifecycle: a customer whose first purchase is fewer days ago is new (unless lost)';
COMMENT ON COLUMN churn.tier_policy.lapsing_gaps IS 'lifecycle: lapsing when days since the last purchase exceed this many usual gaps';
COMMENT ON COLUMN churn.tier_policy.lost_gaps IS 'lifecycle: lost when days since the last purchase exceed this many usual gaps (and lost_min_days)';
COMMENT ON COLUMN churn.tier_policy.lost_min_days IS 'lifecycle: never lost with fewer days since the last purchase than this';
COMMENT ON COLUMN churn.tier_policy.lost_max_days IS 'lifecycle: always lost from this many days since the last purchase';
COMMENT ON COLUMN churn.tier_policy.default_gap_days IS 'lifecycle: the usual gap of a customer who bought on one day only';

-- A copy takes the lifecycle bounds too.
CREATE OR REPLACE FUNCTION churn.tier_policy_copy(source text, target text) RETURNS int
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
                                   b2, b1, y4, y3, y2, y1, r3, r2, r1, hysteresis_margin, description,
                                   new_days, lapsing_gaps, lost_gaps, lost_min_days, lost_max_days, default_gap_days)
    SELECT target, value_segment, min_annual_value, lead_days,
           b2, b1, y4, y3, y2, y1, r3, r2, r1, hysteresis_margin, description,
           new_days, lapsing_gaps, lost_gaps, lost_min_days, lost_max_days, default_gap_days
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

CREATE FUNCTION churn.lifecycle(f churn.features, annual_value float8 DEFAULT 0, policy text DEFAULT 'default')
    RETURNS text
    AS 'MODULE_PATHNAME', 'lifecycle' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.lifecycle(churn.features, float8, text) IS
    'new, active, lapsing or lost against the customer''s usual gap and the bounds of the policy''s value segment; NULL without purchases';

-- The tier of a customer in a lifecycle stage: a lost customer is not
-- called (red) or targeted (yellow) but reactivated (blue B1).
CREATE FUNCTION churn.lifecycle_tier(t churn.tier, lifecycle text) RETURNS churn.tier
    AS 'MODULE_PATHNAME', 'lifecycle_tier' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION churn.lifecycle_tier(churn.tier, text) IS
    'the tier for a lifecycle stage: red and yellow become blue B1 (reactivation) for a lost customer';

-- The early-warning label: gone by the end of the horizon.
CREATE FUNCTION churn.gone_by(h churn.history, as_of date, horizon_days int, gone_days int DEFAULT NULL)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT churn.churned(h, as_of + horizon_days, coalesce(gone_days, horizon_days))
$$;
COMMENT ON FUNCTION churn.gone_by(churn.history, date, int, int) IS
    'true when the customer makes no purchase in the gone_days (default horizon_days) after as_of + horizon_days: gone by the end of the horizon';
