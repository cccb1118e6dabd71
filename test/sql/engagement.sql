-- churn.engagement: visits, logins, reviews, complaints, member interactions.
CREATE SCHEMA test_engagement;
SET search_path = test_engagement;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
CREATE TABLE ev (cid int, ts timestamptz, kind text, rating float8);
INSERT INTO ev VALUES
  (1, '2024-01-01 10:00', 'visit', NULL), (1, '2024-01-01 11:00', 'visit', NULL),
  (1, '2024-01-15 10:00', 'login', NULL), (1, '2024-02-01 10:00', 'Review', 5),
  (1, '2024-03-01 10:00', 'review', 1), (1, '2024-03-02 10:00', 'complaint', NULL),
  (1, '2024-03-03 10:00', 'interaction', 4), (1, NULL, 'visit', NULL), (1, '2024-03-04', NULL, NULL),
  (2, '2024-03-20 10:00', 'visit', NULL);
SELECT cid, churn.engagement_agg(ts, kind, rating) FROM ev GROUP BY cid ORDER BY cid;
SELECT churn.engagement_agg(ts, kind) FROM ev WHERE cid = 1;
SELECT (churn.engagement_features(churn.engagement_agg(ts, kind, rating), '2024-03-31', 30)).*
FROM ev WHERE cid = 1;
SELECT churn.engagement_features(churn.engagement_agg(ts, kind, rating), '2023-12-31') IS NULL AS before_first
FROM ev WHERE cid = 1;
-- text and binary round trips, merge
SELECT '{2024-01-02:visit:2,2024-01-01:complaint:1,2024-01-02:VISIT:1}'::churn.engagement;
SELECT churn.merge('{2024-01-01:visit:1}'::churn.engagement, '{2024-01-01:visit:2,2024-01-05:review:1:1:1:2}');
CREATE TABLE eb AS SELECT cid, churn.engagement_agg(ts, kind, rating) e FROM ev GROUP BY cid;
\copy eb TO 'test/results/engagement.bin' (FORMAT binary)
CREATE TABLE eb2 (LIKE eb);
\copy eb2 FROM 'test/results/engagement.bin' (FORMAT binary)
SELECT count(*) AS same FROM eb JOIN eb2 USING (cid) WHERE eb.e::text = eb2.e::text;
-- bad input
SELECT churn.engagement_agg(now(), 'purchase');
SELECT churn.engagement_agg(now(), 'review', 6);
SELECT churn.engagement_agg(now(), 'review', 'NaN');
SELECT churn.engagement_agg('infinity', 'visit');
SELECT '{2024-01-01:visit:0}'::churn.engagement;
SELECT '{2024-01-01:visit:1:2:0:0}'::churn.engagement;
SELECT '{2024-01-01:walk:1}'::churn.engagement;
SELECT '{2024-01-01:review:1:0:1:9}'::churn.engagement;
SELECT churn.engagement_features('{2024-01-01:visit:1}', '2024-02-01', -1);
-- parallel aggregation equals serial
CREATE TABLE big AS
SELECT g % 2000 AS cid, g % 20 AS grp, '2024-01-01'::timestamptz + (g % 400) * interval '1 day' AS ts,
       (ARRAY['visit','login','review','complaint','interaction'])[1 + g % 5] AS kind,
       CASE WHEN g % 5 = 2 THEN 1 + g % 5 END::float8 AS rating
FROM generate_series(1, 100000) g;
ANALYZE big;
SET parallel_setup_cost = 0;
SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
-- 20 groups of 5,000 rows: partial aggregates that reduce (with one group
-- per customer the combine's cost, part 974, keeps it in one process)
EXPLAIN (COSTS OFF) SELECT grp, churn.engagement_agg(ts, kind, rating) FROM big GROUP BY grp;
CREATE TABLE par AS SELECT grp, churn.engagement_agg(ts, kind, rating)::text e FROM big GROUP BY grp;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE ser AS SELECT grp, churn.engagement_agg(ts, kind, rating)::text e FROM big GROUP BY grp;
SELECT count(*) AS groups, count(*) FILTER (WHERE par.e = ser.e) AS equal FROM par JOIN ser USING (grp);
