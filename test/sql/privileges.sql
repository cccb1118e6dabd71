-- What an ordinary role can do: pure functions always; configuration-reading
-- functions with churn_user; nothing that changes alerts.
CREATE ROLE priv_analyst;
SET ROLE priv_analyst;
SELECT (churn.features('{2024-01-01:10,2024-02-01:20}', '2024-03-01')).x AS features_ok;
SELECT churn.warning_tier(0.9, 5000);
SELECT churn.rfm_segment(5, 5, 5);
RESET ROLE;
GRANT churn_user TO priv_analyst;
SET ROLE priv_analyst;
SELECT (churn.warning_tier(0.9, 5000)).code AS tier_ok, churn.rfm_segment(5, 5, 5) AS segment_ok;
SELECT (churn.rule_score(churn.features('{2024-01-01:10}', '2024-06-01'))).score > 0 AS rules_ok;
UPDATE churn.rules SET weight = 1 WHERE ruleset = 'default';
SELECT count(*) FROM churn.alert;
SELECT churn.raise_alert('x', churn.warning_tier(0.9, 5000), 0.9);
RESET ROLE;
DROP ROLE priv_analyst;
