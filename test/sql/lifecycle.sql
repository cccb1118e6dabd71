-- Lifecycle stages against the customer's own rhythm, the tier of a lost
-- customer, and the early-warning label (part 816).
-- A customer buying every 10 days, last on 2024-06-01, seen at growing distances:
-- gap 10 -> lapsing after 15 days, lost after max(60, 40) = 60 days (and always from 180).
WITH h AS (SELECT churn.history_agg(d, 10) AS h
           FROM generate_series('2024-01-01'::date, '2024-06-01', '10 days') g(d))
SELECT a.as_of, (churn.features(h.h, a.as_of)).recency_days, churn.lifecycle(churn.features(h.h, a.as_of))
FROM h, (VALUES ('2024-06-05'::date), ('2024-06-20'), ('2024-07-30'), ('2024-08-01'), ('2025-06-01')) a(as_of)
ORDER BY a.as_of;
-- new: first purchase fewer than 30 days ago; one purchase uses default_gap_days (60)
SELECT churn.lifecycle(churn.features('{2024-06-01:50}', '2024-06-10')) AS new_one,
       churn.lifecycle(churn.features('{2024-06-01:50}', '2024-07-15')) AS one_purchase_44_days,
       churn.lifecycle(churn.features('{2024-06-01:50}', '2024-08-15')) AS one_purchase_75_days;
-- a customer gone for 365 days is lost whatever the rhythm
SELECT churn.lifecycle(churn.features('{2020-01-01:50,2022-01-01:50}', '2023-01-01')) AS yearly_buyer_365;
-- NULL handling: no purchases, NULL features, NULL policy
SELECT churn.lifecycle(NULL) IS NULL AS null_features,
       churn.lifecycle(churn.features('{2024-06-01:50}', '2024-05-01')) IS NULL AS before_first_purchase,
       churn.lifecycle(churn.features('{2024-06-01:50}', '2024-06-10'), 0, NULL) IS NULL AS null_policy;
-- bounds are per policy and value segment, editable in a copy
SELECT churn.tier_policy_copy('default', 'patient');
UPDATE churn.tier_policy SET lost_gaps = 20, lost_min_days = 200, lost_max_days = 365 WHERE policy = 'patient';
WITH h AS (SELECT churn.history_agg(d, 10) AS h
           FROM generate_series('2024-01-01'::date, '2024-06-01', '10 days') g(d))
SELECT churn.lifecycle(churn.features(h.h, '2024-08-01')) AS default_policy,
       churn.lifecycle(churn.features(h.h, '2024-08-01'), 0, 'patient') AS patient_policy
FROM h;
-- bad bounds and unknown policies
UPDATE churn.tier_policy SET lost_gaps = 1 WHERE policy = 'patient';
UPDATE churn.tier_policy SET default_gap_days = 0 WHERE policy = 'patient';
SELECT churn.lifecycle(churn.features('{2024-06-01:50}', '2024-06-10'), 0, 'nope');
SELECT churn.lifecycle(churn.features('{2024-06-01:50}', '2024-06-10'), -1);
DELETE FROM churn.tier_policy WHERE policy = 'patient';
-- a lost customer is reactivated (blue B1), never red or yellow
SELECT (churn.lifecycle_tier(churn.warning_tier(0.99, 500000), 'lost')).*;
SELECT (churn.lifecycle_tier(churn.warning_tier(0.99, 500000), 'lapsing')).code AS lapsing,
       (churn.lifecycle_tier(churn.warning_tier(0.01, 0), 'lost')).code AS lost_low_risk;
-- the early-warning label: gone by as_of + horizon = no purchase in the W days after it
SELECT churn.gone_by('{2024-01-01:10,2024-03-01:10}', '2024-01-15', 30) AS bought_after_window,
       churn.gone_by('{2024-01-01:10,2024-02-01:10}', '2024-01-15', 30) AS last_purchase_inside_horizon,
       churn.gone_by('{2024-01-01:10,2024-02-20:10}', '2024-01-15', 30, 60) AS longer_w,
       churn.gone_by('{2024-01-01:10}', '2023-12-01', 30) IS NULL AS before_first_purchase;
