-- churn_warning demo report: run by scripts/demo.sh against a fresh cluster.
\set ON_ERROR_STOP 1
\set QUIET on
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS churn_warning;

\echo
\echo '== 1. Demo data: a pet-supply chain (churn.demo_load, seed 42) =='
SELECT * FROM churn.demo_load('churn_demo', 10000, 42, '2023-01-01', '2024-12-31', replace => true);
\set as_of '''2024-12-31'''

\echo
\echo '== 2. Purchase histories and features as of 2024-12-31 =='
CREATE TABLE churn_demo.histories AS
SELECT p.customer_id, churn.history_agg(p.ts, p.amount) AS history
FROM churn_demo.purchases p GROUP BY p.customer_id;
CREATE TABLE churn_demo.engagement AS
SELECT e.customer_id, churn.engagement_agg(e.ts, e.kind, e.rating) AS engagement
FROM churn_demo.events e GROUP BY e.customer_id;
CREATE TABLE churn_demo.features AS
SELECT h.customer_id, c.segment AS pet, c.value_tier, c.will_churn, c.churn_date,
       (churn.features(h.history, :as_of)).*,
       (churn.engagement_features(e.engagement, :as_of, 30)).*
FROM churn_demo.histories h
JOIN churn_demo.customers c USING (customer_id)
LEFT JOIN churn_demo.engagement e USING (customer_id);
SELECT count(*) AS customers,
       sum(purchase_days) AS purchase_days,
       round(avg(x), 2) AS avg_repeat_days,
       round(avg(recency_days)::numeric, 1) AS avg_recency_days,
       round(avg(avg_spend)::numeric, 2) AS avg_order_value,
       round(sum(total_spend)::numeric, 0) AS total_spend,
       pg_size_pretty(sum(pg_column_size(history))) AS stored_histories
FROM churn_demo.features JOIN churn_demo.histories USING (customer_id);

\echo
\echo '== 3. RFM segments (quintiles; recency scored lower-is-better) =='
WITH cuts AS (
  SELECT churn.rfm_cuts(recency_days, 5) AS r, churn.rfm_cuts(purchase_days, 5) AS f,
         churn.rfm_cuts(total_spend, 5) AS m
  FROM churn_demo.features),
scored AS (
  SELECT churn.rfm_segment(churn.rfm_bin(recency_days, cuts.r, false),
                           churn.rfm_bin(purchase_days, cuts.f),
                           churn.rfm_bin(total_spend, cuts.m)) AS segment,
         f.will_churn, f.total_spend
  FROM churn_demo.features f, cuts)
SELECT segment, count(*) AS customers,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct,
       round(avg(total_spend)::numeric, 0) AS avg_spend,
       round(100.0 * avg(will_churn::int), 1) AS pct_churners_truth
FROM scored GROUP BY segment ORDER BY customers DESC;

\echo
\echo '== 4. Customers whose behaviour changed most (still buying, but slowing down) =='
SELECT customer_id AS customer, pet, value_tier AS value,
       last_purchase, recency_days::int AS recency,
       round(frequency_change::numeric, 2) AS freq_change,
       round(spend_change::numeric, 2) AS spend_change,
       aov_decline_months AS aov_down_months,
       days_since_visit::int AS no_visit_days,
       negative_recent AS complaints_bad_reviews,
       CASE WHEN will_churn THEN 'churns ' || churn_date ELSE 'stays' END AS truth
FROM churn_demo.features
WHERE recency_days <= 90 AND frequency_change IS NOT NULL
ORDER BY frequency_change + coalesce(spend_change, 0) - 0.2 * aov_decline_months
         - 0.01 * coalesce(days_since_visit, 0) - 0.3 * coalesce(negative_recent, 0), customer_id
LIMIT 12;

\echo
\echo '== 5. Do the warning signs point at the churners? (ground truth recorded by the generator) =='
SELECT sign,
       count(*) AS customers,
       round(100.0 * avg(will_churn::int), 1) AS pct_churn_truth
FROM (
  SELECT 'all customers' AS sign, will_churn FROM churn_demo.features
  UNION ALL SELECT 'purchase frequency down 30%+', will_churn FROM churn_demo.features WHERE frequency_change <= -0.3
  UNION ALL SELECT 'order value down 15%+ (90 days)', will_churn FROM churn_demo.features WHERE spend_change <= -0.15
  UNION ALL SELECT 'no visit/login for 30+ days', will_churn FROM churn_demo.features
            WHERE least(coalesce(days_since_visit, 1e9), coalesce(days_since_login, 1e9)) >= 30
  UNION ALL SELECT 'complaint or bad review (30 days)', will_churn FROM churn_demo.features WHERE negative_recent > 0
  UNION ALL SELECT 'overdue: recency > 2 x usual gap', will_churn FROM churn_demo.features WHERE overdue_ratio > 2
) s GROUP BY sign ORDER BY sign = 'all customers' DESC, pct_churn_truth DESC;

\echo
\echo '== 6. Churn probabilities: fit at 2024-06-30, check against the next 180 days =='
CREATE TABLE churn_demo.backtest AS
SELECT h.customer_id, churn.features(h.history, '2024-06-30') AS f,
       churn.engagement_features(e.engagement, '2024-06-30', 30) AS ef,
       churn.churned(h.history, '2024-06-30', 180) AS churned
FROM churn_demo.histories h LEFT JOIN churn_demo.engagement e USING (customer_id)
WHERE (churn.features(h.history, '2024-06-30')).first_purchase IS NOT NULL;
CREATE TABLE churn_demo.bgnbd AS
SELECT churn.bgnbd_fit((f).x, (f).t_x / 7, (f).t / 7) AS m FROM churn_demo.backtest;
SELECT round((m).r::numeric, 4) AS r, round((m).alpha::numeric, 4) AS alpha, round((m).a::numeric, 4) AS a,
       round((m).b::numeric, 4) AS b, round((m).loglik::numeric, 1) AS loglik, (m).iterations, (m).converged
FROM churn_demo.bgnbd;
SELECT model, round(auc::numeric, 3) AS auc, round(brier::numeric, 4) AS brier FROM (
  SELECT 'BG/NBD P(no purchase in 26 weeks)' AS model,
         churn.auc(churn.bgnbd_p_churn(b.m, 180 / 7.0, (f).x, (f).t_x / 7, (f).t / 7), churned) AS auc,
         churn.brier(churn.bgnbd_p_churn(b.m, 180 / 7.0, (f).x, (f).t_x / 7, (f).t / 7), churned) AS brier
  FROM churn_demo.backtest, churn_demo.bgnbd b
  UNION ALL
  SELECT '1 - P(alive) (the wrong score, for comparison)',
         churn.auc(1 - churn.bgnbd_p_alive(b.m, (f).x, (f).t_x / 7, (f).t / 7), churned),
         churn.brier(1 - churn.bgnbd_p_alive(b.m, (f).x, (f).t_x / 7, (f).t / 7), churned)
  FROM churn_demo.backtest, churn_demo.bgnbd b
  UNION ALL
  SELECT 'rule model (no training)',
         churn.auc((churn.rule_score(f, ef)).score, churned), churn.brier((churn.rule_score(f, ef)).score, churned)
  FROM churn_demo.backtest
) s;
SELECT count(*) AS customers, round(100.0 * avg(churned::int), 1) AS pct_churned_next_180_days
FROM churn_demo.backtest;
