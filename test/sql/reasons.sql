-- Reasons (part 917): why a customer is at risk, from the rules that fire
-- on their features, and the action that fits the reason.
SET datestyle = 'ISO, YMD';
-- a customer buying every 10 days who stopped 25 days ago (overdue: frequency)
WITH h AS (SELECT churn.history_agg(d, 10) AS h FROM generate_series('2024-01-01'::date, '2024-06-01', '10 days') d)
SELECT churn.reason(churn.features(h, '2024-06-26')) AS overdue,
       churn.reason(churn.features(h, '2024-06-26'), NULL, 'lost') AS lost,
       -- no rule fires 4 days after a purchase: the nearest is overdue_2x (0.4 / 2)
       churn.reason(churn.features(h, '2024-06-05')) AS nearest
FROM h;
-- no rule fires, and a visit 12 days ago is nearer to no_visit_15 (0.8) than the purchase to overdue_2x
WITH h AS (SELECT churn.history_agg(d, 10) AS h FROM generate_series('2024-01-01'::date, '2024-06-01', '10 days') d),
e AS (SELECT churn.engagement_agg(t, k) AS e
      FROM (VALUES ('2024-05-24'::timestamptz, 'visit'), ('2024-06-04', 'login'), ('2024-06-04', 'interaction')) v(t, k))
SELECT (churn.engagement_features(e.e, '2024-06-05')).days_since_visit,
       churn.reason(churn.features(h, '2024-06-05'), churn.engagement_features(e.e, '2024-06-05')) AS nearest
FROM h, e;
-- events: a complaint (service) wins over silence and frequency; silence over frequency
WITH h AS (SELECT churn.history_agg(d, 10) AS h FROM generate_series('2024-01-01'::date, '2024-06-01', '10 days') d),
e AS (SELECT churn.engagement_agg(t, k, r) AS e
      FROM (VALUES ('2024-06-20'::timestamptz, 'complaint', NULL::float8), ('2024-03-01', 'visit', NULL)) v(t, k, r)),
q AS (SELECT churn.engagement_agg(t, k) AS e FROM (VALUES ('2024-03-01'::timestamptz, 'visit')) v(t, k))
SELECT churn.reason(churn.features(h, '2024-06-26'), churn.engagement_features(e.e, '2024-06-26')) AS complaint,
       churn.reason(churn.features(h, '2024-06-26'), churn.engagement_features(q.e, '2024-06-26')) AS silent
FROM h, e, q;
-- spend falling: price (order value down 15%+ against the prior window, still buying on time)
WITH h AS (SELECT churn.history_agg(d, CASE WHEN d < '2024-04-01' THEN 100 ELSE 50 END) AS h
           FROM generate_series('2024-01-01'::date, '2024-06-25', '10 days') d)
SELECT churn.reason(churn.features(h, '2024-06-26')) AS price FROM h;
-- NULL handling; an unknown ruleset
SELECT churn.reason(NULL) IS NULL AS null_features, churn.reason(NULL, NULL, 'lost') AS lost_without_features;
SELECT churn.reason(churn.features('{2024-06-01:50}', '2024-06-10'), NULL, NULL, 'nope');
-- a copied ruleset keeps the reasons; rules without a reason give none
SELECT churn.rules_copy('default', 'reasons_copy');
SELECT count(*) FILTER (WHERE reason IS NOT NULL) AS with_reason FROM churn.rules WHERE ruleset = 'reasons_copy';
UPDATE churn.rules SET reason = NULL WHERE ruleset = 'reasons_copy';
WITH h AS (SELECT churn.history_agg(d, 10) AS h FROM generate_series('2024-01-01'::date, '2024-06-01', '10 days') d)
SELECT churn.reason(churn.features(h, '2024-06-26'), NULL, NULL, 'reasons_copy') IS NULL AS no_reason_said FROM h;
DELETE FROM churn.rules WHERE ruleset = 'reasons_copy';
-- the actions per zone and reason; built-in rows are read-only
SELECT zone, reason, action, cost, uplift_prior FROM churn.playbook_reason_effective ORDER BY zone, reason;
UPDATE churn.playbook_reason SET cost = 1 WHERE builtin;
