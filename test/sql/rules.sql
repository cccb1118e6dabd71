-- Rule model, feature vectors and training rows.
CREATE SCHEMA test_rules;
SET search_path = test_rules;
SET extra_float_digits = 0;
SET datestyle = 'ISO, YMD';
SELECT cardinality(churn.feature_names()) AS n_features;
-- feature vector: NULL for undefined values unless a fill is given
SELECT churn.feature_vector(churn.features('{2024-01-01:10}', '2024-02-01'));
SELECT churn.feature_vector(churn.features('{2024-01-01:10}', '2024-02-01'), NULL, 0);
SELECT churn.feature_vector(NULL::churn.features) IS NULL AS null_in_null_out;

-- a slowing customer: frequency down, overdue, a complaint, silent for 60+ days
SELECT (churn.rule_score(
          churn.features('{2024-01-01:50,2024-01-15:50,2024-02-01:50,2024-02-15:50,2024-03-01:40,2024-04-20:30}', '2024-07-01', 60),
          churn.engagement_features('{2024-03-01:visit:1,2024-04-20:complaint:1}', '2024-07-01', 90))).*;
-- a steady customer fires nothing
SELECT (churn.rule_score(churn.features('{2024-06-01:50,2024-06-15:50,2024-06-29:50}', '2024-07-01', 60))).*;
SELECT churn.rule_score(NULL::churn.features) IS NULL AS null_features;
SELECT churn.rule_score(churn.features('{2024-06-01:50}', '2024-07-01'), NULL, 'nope');
SELECT churn.rule_score(ARRAY[1, 2]::float8[]);

-- rulesets: the default is read-only; copies are editable and validated
UPDATE churn.rules SET weight = 0.9 WHERE ruleset = 'default' AND rule = 'overdue_2x';
SELECT churn.rules_copy('default', 'strict');
UPDATE churn.rules SET weight = 0.9 WHERE ruleset = 'strict' AND rule = 'overdue_2x';
INSERT INTO churn.rules (ruleset, rule, feature, op, threshold, weight) VALUES ('strict', 'typo', 'recencyy', '>', 1, 0.1);
INSERT INTO churn.rules (ruleset, rule, feature, op, threshold, weight) VALUES ('strict', 'heavy', 'recency_days', '>', 1, 1.5);
INSERT INTO churn.rules (ruleset, rule, feature, op, threshold, weight) VALUES ('strict', 'certain', 'recency_days', '>=', 365, 1);
SELECT (churn.rule_score(churn.features('{2023-01-01:5,2023-02-01:5}', '2024-07-01'), NULL, 'strict')).*;

-- training rows: one per date with a purchase before it, label from after it
SELECT as_of_date, (features).x, (features).recency_days, churned
FROM churn.training_rows('{2024-01-01:10,2024-02-01:10,2024-06-01:10}',
                         ARRAY['2023-12-01', '2024-01-15', '2024-02-15', '2024-05-15', NULL]::date[], 60);
SELECT * FROM churn.training_rows('{2024-01-01:10}', ARRAY['2024-06-01']::date[], 90, 90, '2024-07-01');
