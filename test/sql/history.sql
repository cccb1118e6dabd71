-- churn.history: text and binary I/O, the aggregate, merge, churned.
CREATE SCHEMA test_history;
SET search_path = test_history;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

-- text form is canonical: days ascending, same-day entries folded,
-- purchase count shown only when it is not the default (1, or 0 for a return)
SELECT '{2024-01-05:12.5, 2024-01-01:3,2024-01-05:7.25}'::churn.history;
SELECT '{}'::churn.history, '{ 2024-02-01 : -4.5 }'::churn.history, '{2024-02-01:0:3}'::churn.history;
SELECT '{2024-01-01:0.1}'::churn.history::text::churn.history::text;   -- shortest exact float
SET datestyle = 'SQL, DMY';   -- output does not follow DateStyle
SELECT '{2024-03-04:1}'::churn.history;
SET datestyle = 'ISO, YMD';
SELECT '{0044-03-15 BC:1}'::churn.history;

-- corrupt text input: clear errors
SELECT '2024-01-01:1'::churn.history;
SELECT '{2024-01-01}'::churn.history;
SELECT '{2024-13-01:1}'::churn.history;
SELECT '{infinity:1}'::churn.history;
SELECT '{2024-01-01:abc}'::churn.history;
SELECT '{2024-01-01:NaN}'::churn.history;
SELECT '{2024-01-01:Infinity}'::churn.history;
SELECT '{2024-01-01:1e999}'::churn.history;
SELECT '{2024-01-01:1:-2}'::churn.history;
SELECT '{2024-01-01:1,}'::churn.history;
SELECT '{2024-01-01:1} x'::churn.history;

-- the aggregate: timestamptz/date x float8/numeric give the same history
CREATE TABLE p (cid int, ts timestamptz, amount numeric);
INSERT INTO p VALUES
  (1, '2024-01-01 09:00+00', 10), (1, '2024-01-01 18:00+00', 5.5),
  (1, '2024-01-20 12:00+00', 0),  (1, '2024-02-03 12:00+00', -3),
  (1, '2024-02-10 12:00+00', 20), (1, '2024-02-10 13:00+00', NULL),
  (1, NULL, 99),
  (2, '2024-03-01 02:00+00', 7), (2, '2024-03-01 23:30+00', 8);
SELECT cid, churn.history_agg(ts, amount) AS h_num,
       churn.history_agg(ts, amount::float8)::text = churn.history_agg(ts, amount)::text AS float8_same,
       churn.history_agg(ts::date, amount)::text = churn.history_agg(ts, amount)::text AS date_same
FROM p GROUP BY cid ORDER BY cid;
-- numeric amounts become exactly what numeric::float8 gives (an exact fast
-- path up to 16 digits and 10^22, the text round trip beyond): 20,000
-- amounts of 1 to 20 digits, scales 0 to 39, both signs, plus edge cases
SELECT count(*) AS amounts,
       count(*) FILTER (WHERE x.a::text IS DISTINCT FROM x.b::text) AS differ
FROM (SELECT (CASE WHEN g % 3 = 0 THEN -1 ELSE 1 END
              * (g::numeric * 982451653 % (10::numeric ^ (1 + g % 20))) / 10::numeric ^ (g % 40)) AS v
      FROM generate_series(1, 20000) g
      UNION ALL
      SELECT unnest('{0, 0.1, -0.1, 123.45, 1e22, 1e23, 1e-22, 1e-23, 9007199254740992, 9007199254740993,
                     0.30000000000000004, 99999999.99, 1234567890123456, 12345678901234567, 5e-324, 1e308}'::numeric[])) s
CROSS JOIN LATERAL (SELECT (SELECT churn.history_agg('2024-01-01'::date, t.w) FROM (VALUES (s.v)) t(w)) AS a,
                           (SELECT churn.history_agg('2024-01-01'::date, t.w::float8) FROM (VALUES (s.v)) t(w)) AS b) x;
-- rows out of time order give the same result
SELECT churn.history_agg(ts, amount ORDER BY ts DESC)::text = churn.history_agg(ts, amount ORDER BY ts)::text
FROM p WHERE cid = 1;
-- no rows, or only NULL timestamps: NULL
SELECT churn.history_agg(ts, amount) IS NULL FROM p WHERE false;
SELECT churn.history_agg(NULL::timestamptz, 1.0::float8) IS NULL;

-- the calendar day follows the session TimeZone, like ts::date
SET timezone = 'America/New_York';
SELECT churn.history_agg(ts, amount) FROM p WHERE cid = 2;
SET timezone = 'Asia/Kolkata';
SELECT churn.history_agg(ts, amount) FROM p WHERE cid = 2;
SET timezone = 'UTC';

-- bad amounts and timestamps
SELECT churn.history_agg(now(), 'NaN'::float8);
SELECT churn.history_agg(now(), 'Infinity'::float8);
SELECT churn.history_agg(now(), '-Infinity'::float8);
SELECT churn.history_agg(now(), 'NaN'::numeric);
SELECT churn.history_agg('infinity'::timestamptz, 1::float8);
SELECT churn.history_agg('-infinity'::date, 1::float8);
SELECT churn.history_agg(d, 1e308::float8) FROM (VALUES ('2024-01-01'::date), ('2024-01-01')) v(d);
-- extreme but finite timestamps are fine
SELECT churn.history_agg(ts, 1::float8) FROM (VALUES ('4713-01-01 BC'::timestamptz), ('294276-12-31 23:00'::timestamptz)) v(ts);

-- merge: union, same-day spend and counts add, NULL acts as empty
SELECT churn.merge('{2024-01-01:1,2024-01-03:2}'::churn.history, '{2024-01-02:5,2024-01-03:-1}');
SELECT churn.merge(NULL, '{2024-01-01:1}'::churn.history), churn.merge('{2024-01-01:1}'::churn.history, NULL),
       churn.merge(NULL::churn.history, NULL) IS NULL;
-- incremental == full: merging per-month aggregates equals aggregating everything
SELECT churn.merge(
         (SELECT churn.history_agg(ts, amount) FROM p WHERE cid = 1 AND ts < '2024-02-01'),
         (SELECT churn.history_agg(ts, amount) FROM p WHERE cid = 1 AND ts >= '2024-02-01'))::text
     = (SELECT churn.history_agg(ts, amount) FROM p WHERE cid = 1)::text AS incremental_equals_full;

-- history_days
SELECT * FROM churn.history_days('{2024-01-01:1,2024-01-03:-2,2024-01-04:5:3}');

-- churned(h, as_of, horizon): no purchase day in (as_of, as_of + horizon]
SELECT as_of, churn.churned('{2024-01-01:1,2024-03-01:1,2024-03-10:-5}', as_of, 60)
FROM (VALUES ('2023-12-31'::date), ('2024-01-01'), ('2024-01-02'), ('2024-03-01'), ('2024-03-02')) v(as_of);
SELECT churn.churned('{2024-01-01:-1}', '2024-02-01', 30);   -- only a return: never bought
SELECT churn.churned('{2024-01-01:1}', '2024-02-01', 0);
SELECT churn.churned('{2024-01-01:1}', 'infinity', 10);

-- binary I/O round trip through COPY
CREATE TABLE hb (id int, h churn.history);
INSERT INTO hb SELECT cid, churn.history_agg(ts, amount) FROM p GROUP BY cid;
INSERT INTO hb VALUES (3, '{}'), (4, '{0044-03-15 BC:1.5:7}');
\copy hb TO 'test/results/history.bin' (FORMAT binary)
CREATE TABLE hb2 (LIKE hb);
\copy hb2 FROM 'test/results/history.bin' (FORMAT binary)
SELECT count(*) AS same FROM hb JOIN hb2 USING (id) WHERE hb.h::text = hb2.h::text;

-- parallel aggregation: partial states travel between processes as churn.history
CREATE TABLE big AS
SELECT (g % 5000) AS cid, (g % 5000) / 100 AS grp,
       '2023-01-01'::timestamptz + ((g * 7919) % 700) * interval '1 day' + (g % 3) * interval '5 hours' AS ts,
       ((g * 31) % 200 - 10)::float8 AS amount
FROM generate_series(1, 200000) g;
ANALYZE big;
SET parallel_setup_cost = 0;
SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
SET enable_hashagg = off;
-- few groups (50 of 4,000 rows): the partial aggregates reduce, so the
-- planner splits them across workers despite the combine's cost
EXPLAIN (COSTS OFF) SELECT grp, churn.history_agg(ts, amount) FROM big GROUP BY grp;
CREATE TABLE par AS SELECT grp, churn.history_agg(ts, amount)::text AS h FROM big GROUP BY grp;
-- many groups (5,000 of 40 rows): every worker would see almost every
-- customer, so the combine's cost (part 974) keeps the aggregate in one process
RESET enable_hashagg;
EXPLAIN (COSTS OFF) SELECT cid, churn.history_agg(ts, amount) FROM big GROUP BY cid;
RESET parallel_setup_cost; RESET min_parallel_table_scan_size;
SET max_parallel_workers_per_gather = 0; SET enable_hashagg = off;
CREATE TABLE ser AS SELECT grp, churn.history_agg(ts, amount)::text AS h FROM big GROUP BY grp;
CREATE TABLE ser_all AS SELECT cid, churn.history_agg(ts, amount)::text AS h FROM big GROUP BY cid;
RESET max_parallel_workers_per_gather; RESET enable_hashagg;
SELECT count(*) AS groups, count(*) FILTER (WHERE par.h = ser.h) AS equal
FROM par JOIN ser USING (grp);

-- a hash aggregate over many customers works in batches (SSPACE, part 974):
-- it plans partitions for history_agg where count(*) over the same groups
-- plans none, and its spilled batches give the sorted plan's histories
CREATE FUNCTION pg_temp.planned_partitions(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    p jsonb;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO p;
    RETURN coalesce((pg_catalog.jsonb_path_query_first(p, 'strict $.**."Planned Partitions"'))::int, 0);
END $$;
SET work_mem = '1MB';
SELECT pg_temp.planned_partitions('SELECT cid, count(*) FROM big GROUP BY cid') AS count_partitions,
       pg_temp.planned_partitions('SELECT cid, churn.history_agg(ts, amount) FROM big GROUP BY cid') > 0 AS history_partitions;
SET enable_sort = off;
CREATE TABLE batched AS SELECT cid, churn.history_agg(ts, amount)::text AS h FROM big GROUP BY cid;
RESET enable_sort; RESET work_mem;
SELECT count(*) AS customers, count(*) FILTER (WHERE b.h = s.h) AS equal
FROM batched b JOIN ser_all s USING (cid);

-- one customer with a million purchase rows on 3650 days
SELECT (f).purchase_days, (f).x, (f).total_spend, (f).mean_gap_days
FROM (SELECT churn.features(churn.history_agg('2015-01-01'::date + (g % 3650), 1.0::float8), '2030-01-01') f
      FROM generate_series(1, 1000000) g) s;
