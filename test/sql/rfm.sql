-- RFM: quantile cut points, bins and named segments.
CREATE SCHEMA test_rfm;
SET search_path = test_rfm;
SET extra_float_digits = 0;
CREATE TABLE v AS SELECT g::float8 AS x, (g % 7)::float8 AS y FROM generate_series(1, 1000) g;
INSERT INTO v VALUES (NULL, NULL);
-- cut points equal percentile_cont at i/bins
SELECT churn.rfm_cuts(x, 5) AS cuts,
       percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY x) AS percentile_cont
FROM v;
SELECT churn.rfm_cuts(y, 4) = percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY y) AS same FROM v;
SELECT churn.rfm_cuts(x, 5) IS NULL AS empty FROM v WHERE false;
SELECT churn.rfm_cuts(x, 1) FROM v;
SELECT churn.rfm_cuts(x, 101) FROM v;
SELECT churn.rfm_cuts('NaN', 5);
SELECT churn.rfm_cuts(x, (x::int % 2) + 3) FROM v;

-- bins: 1 + number of cut points strictly below; reversed for recency
SELECT x, churn.rfm_bin(x, '{2,4,6,8}') AS higher_better, churn.rfm_bin(x, '{2,4,6,8}', false) AS lower_better
FROM (VALUES (1), (2), (2.5), (8), (9)) t(x);
SELECT churn.rfm_bin(1, '{}');
SELECT churn.rfm_bin(1, '{3,2}');
SELECT churn.rfm_bin(1, '{1,NULL}');
SELECT churn.rfm_bin('NaN', '{1,2}');
SELECT churn.rfm_bin(NULL, '{1,2}') IS NULL AS strict;

-- parallel plan and equal result
CREATE TABLE big AS SELECT ((g * 7919) % 100003)::float8 AS x FROM generate_series(1, 200000) g;
ANALYZE big;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT churn.rfm_cuts(x, 5) FROM big;
CREATE TEMP TABLE par AS SELECT churn.rfm_cuts(x, 10) AS c FROM big;
SET max_parallel_workers_per_gather = 0;
SELECT (SELECT c FROM par) = churn.rfm_cuts(x, 10) AS parallel_equals_serial FROM big;
RESET max_parallel_workers_per_gather; RESET parallel_setup_cost; RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;

-- segments: the default scheme covers every cell of the 5 x 5 grid
SELECT count(*) AS uncovered FROM churn.rfm_uncovered();
SELECT r, string_agg(churn.rfm_segment(r, fm, fm), ' | ' ORDER BY fm) AS fm_1_to_5
FROM generate_series(1, 5) r, generate_series(1, 5) fm GROUP BY r ORDER BY r DESC;
SELECT churn.rfm_segment(5, 5, 3), churn.rfm_segment(5, 4, 3), churn.rfm_segment(9, 9, 9) IS NULL AS outside;
-- the built-in scheme is read-only; copies are editable
UPDATE churn.rfm_segments SET r_min = 4 WHERE scheme = 'default' AND segment = 'Champions';
DELETE FROM churn.rfm_segments WHERE scheme = 'default';
SELECT churn.rfm_copy_scheme('default', 'strict_champions');
UPDATE churn.rfm_segments SET fm_min = 5 WHERE scheme = 'strict_champions' AND segment = 'Champions';
SELECT churn.rfm_segment(5, 4, 4, 'strict_champions') IS NULL AS gap_now,
       (SELECT array_agg(r || ':' || fm) FROM churn.rfm_uncovered('strict_champions')) AS uncovered;
SELECT churn.rfm_copy_scheme('nope', 'x');
INSERT INTO churn.rfm_segments VALUES ('x', 'bad', 3, 2, 1, 1, 1, NULL, true);
-- user rows are never flagged built-in (pg_dump keeps them)
INSERT INTO churn.rfm_segments VALUES ('x', 'ok', 1, 5, 1, 5, 1, NULL, true);
SELECT scheme, segment, builtin FROM churn.rfm_segments WHERE scheme = 'x';
SELECT c.cond FROM pg_extension e, unnest(e.extconfig, e.extcondition) c(tab, cond)
WHERE e.extname = 'churn_warning' AND c.tab = 'churn.rfm_segments'::regclass;
-- only NULL values: NULL cuts (this crashed the server before 0.3.0)
SELECT churn.rfm_cuts(NULL::float8, 5) IS NULL AS only_nulls FROM generate_series(1, 3);
