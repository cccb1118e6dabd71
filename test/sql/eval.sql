-- churn.auc, churn.log_loss, churn.brier, churn.lift, churn.calibration
SET extra_float_digits = 0;

-- AUC: 3 of 4 (positive, negative) pairs ordered correctly
SELECT churn.auc(s, l) FROM (VALUES (0.1, false), (0.4, false), (0.35, true), (0.8, true)) v(s, l);
-- ties count half: pairs (0.5+, 0.5-) = 0.5, (0.9+, 0.5-) = 1 -> 0.75
SELECT churn.auc(s, l) FROM (VALUES (0.5, false), (0.5, true), (0.9, true)) v(s, l);
-- all scores equal -> 0.5; perfect and reversed ranking; infinities are ordinary scores
SELECT churn.auc(1, l) FROM (VALUES (false), (true), (true)) v(l);
SELECT churn.auc(s, s > 2) FROM generate_series(1, 5) s;
SELECT churn.auc(-s, s > 2) FROM generate_series(1, 5) s;
SELECT churn.auc(s, l) FROM (VALUES ('-Infinity'::float8, false), ('Infinity', true), (0, true), (0, false)) v(s, l);
-- rows with NULL score or label are skipped
SELECT churn.auc(s, l) FROM (VALUES (0.1, false), (NULL, true), (0.9, NULL), (0.8, true)) v(s, l);
-- one class only, or no rows -> NULL
SELECT churn.auc(s, true) IS NULL AS one_class FROM generate_series(1, 3) s;
SELECT churn.auc(s, s > 1) IS NULL AS no_rows FROM generate_series(1, 3) s WHERE s > 5;
-- NaN score -> error
SELECT churn.auc(s, true) FROM (VALUES (0.5::float8), ('NaN')) v(s);
-- per group, and as a window over a growing frame
SELECT g, churn.auc(s, l) FROM (VALUES (1, 0.2, false), (1, 0.7, true), (2, 0.7, false), (2, 0.2, true)) v(g, s, l)
GROUP BY g ORDER BY g;
SELECT i, churn.auc(s, l) OVER (ORDER BY i)
FROM (VALUES (1, 0.2, false), (2, 0.7, true), (3, 0.5, true), (4, 0.9, false)) v(i, s, l) ORDER BY i;

-- log loss and Brier score; p is clipped to [1e-15, 1 - 1e-15] for log loss
SELECT round(churn.log_loss(p, l)::numeric, 12) AS log_loss, round(churn.brier(p, l)::numeric, 12) AS brier
FROM (VALUES (0.1, false), (0.4, false), (0.35, true), (0.8, true)) v(p, l);
SELECT round(churn.log_loss(0, true)::numeric, 9) AS clipped_0, round(churn.log_loss(1, false)::numeric, 9) AS clipped_1,
       churn.brier(0, true) AS worst, churn.brier(1, true) AS best;
SELECT churn.log_loss(p, l) IS NULL AS ll_null, churn.brier(p, l) IS NULL AS brier_null
FROM (VALUES (NULL::float8, true), (0.5, NULL)) v(p, l);
SELECT churn.log_loss(1.5, true);
SELECT churn.brier(-0.1, false);
SELECT churn.log_loss('NaN', true);

-- lift: quantile bins by score descending; tie groups stay together in the
-- bin where the group starts
CREATE TABLE eval_small (s float8, l boolean);
INSERT INTO eval_small VALUES (0.9, true), (0.8, true), (0.8, false), (0.7, false), (0.6, true),
  (0.5, false), (0.4, false), (0.3, false), (0.2, false), (0.1, false), (NULL, true);
SELECT * FROM unnest((SELECT churn.lift(s, l, 4) FROM eval_small));
SELECT bin, n, positives, mean_score, rate, cum_capture FROM unnest((SELECT churn.lift(s, l) FROM eval_small));
-- calibration: equal-width bins on [0, 1], bin b = [(b-1)/bins, b/bins), 1 in the last bin
SELECT * FROM unnest((SELECT churn.calibration(s, l, 5) FROM eval_small));
SELECT (churn.calibration(p, true, 2))[2].n AS ones_in_last_bin FROM (VALUES (1.0), (0.5), (0.49)) v(p);
-- no rows -> NULL; bad bins -> errors
SELECT churn.lift(s, l) IS NULL AS lift_null, churn.calibration(s, l) IS NULL AS cal_null FROM eval_small WHERE false;
SELECT churn.lift(s, l, 0) FROM eval_small;
SELECT churn.lift(s, l, NULL) FROM eval_small;
SELECT churn.calibration(s, l, 1001) FROM eval_small;
SELECT churn.lift(s, l, (s * 10)::int) FROM eval_small;
SELECT churn.calibration(s * 2, l) FROM eval_small;

-- a 100k-row table (deterministic data with many ties)
CREATE TABLE eval_t AS
SELECT g AS id,
       ((g * 7919) % 1000) / 1000.0::float8 AS score,
       (((g * 7919) % 1000) + ((g * 104729) % 997)) > 1150 AS label
FROM generate_series(1::bigint, 100000) g;
ANALYZE eval_t;

-- lift without ties in the top group agrees with ntile() in plain SQL, and
-- calibration bins agree with width_bucket()
WITH r AS (SELECT id, score, label, ntile(10) OVER (ORDER BY score DESC, id) AS bin FROM eval_t WHERE id <= 1000 AND score <> 0.5),
     sql AS (SELECT bin, count(*) AS n, count(*) FILTER (WHERE label) AS positives FROM r GROUP BY bin),
     tb AS (SELECT min(score) AS lo, max(score) AS hi, bin FROM r GROUP BY bin)
SELECT count(*) FILTER (WHERE t.n = s.n AND t.positives = s.positives) AS same_bins,
       bool_and(NOT EXISTS (SELECT 1 FROM tb a, tb b WHERE a.bin < b.bin AND a.lo <= b.hi)) AS bins_disjoint
FROM unnest((SELECT churn.lift(score, label) FROM eval_t WHERE id <= 1000 AND score <> 0.5)) t
JOIN sql s USING (bin);
WITH sql AS (SELECT least(width_bucket(score, 0, 1, 10), 10) AS bin, count(*) AS n,
                    count(*) FILTER (WHERE label) AS positives, avg(score) AS mean_score FROM eval_t GROUP BY 1)
SELECT count(*) FILTER (WHERE t.n = s.n AND t.positives = s.positives AND abs(t.mean_score - s.mean_score) < 1e-12) AS same_bins
FROM unnest((SELECT churn.calibration(score, label) FROM eval_t)) t JOIN sql s USING (bin);

-- AUC equals the Mann-Whitney U computed in plain SQL from ranks
WITH r AS (SELECT label, rank() OVER (ORDER BY score) + (count(*) OVER (PARTITION BY score) - 1) / 2.0 AS midrank FROM eval_t),
     c AS (SELECT sum(midrank) FILTER (WHERE label) AS rsum, count(*) FILTER (WHERE label) AS np,
                  count(*) FILTER (WHERE NOT label) AS nn FROM r)
SELECT round(((rsum - np * (np + 1) / 2.0) / (np * nn))::numeric, 12) AS auc_sql,
       round((SELECT churn.auc(score, label) FROM eval_t)::numeric, 12) AS auc
FROM c;

-- serial results
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE serial_result AS
SELECT churn.auc(score, label) AS auc, churn.log_loss(score, label) AS ll, churn.brier(score, label) AS brier,
       churn.lift(score, label) AS lift, churn.calibration(score, label, 20) AS cal
FROM eval_t;
SELECT round(auc::numeric, 12) AS auc, round(ll::numeric, 12) AS log_loss, round(brier::numeric, 12) AS brier
FROM serial_result;
SELECT b.bin, b.n, b.positives, round(b.mean_score::numeric, 6) AS mean_score, round(b.rate::numeric, 6) AS rate,
       round(b.lift::numeric, 6) AS lift, round(b.cum_lift::numeric, 6) AS cum_lift, b.cum_n,
       round(b.cum_capture::numeric, 6) AS cum_capture
FROM serial_result s, unnest(s.lift) b;

-- forced parallelism: partial aggregates in the workers, combined in the leader
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT churn.auc(score, label), churn.log_loss(score, label), churn.brier(score, label),
       churn.lift(score, label), churn.calibration(score, label, 20)
FROM eval_t;
-- bit-for-bit the serial results
SELECT s.auc = p.auc AS auc_equal, s.ll = p.ll AS log_loss_equal, s.brier = p.brier AS brier_equal,
       s.lift::text = p.lift::text AS lift_equal, s.cal::text = p.cal::text AS calibration_equal
FROM serial_result s,
     (SELECT churn.auc(score, label) AS auc, churn.log_loss(score, label) AS ll, churn.brier(score, label) AS brier,
             churn.lift(score, label) AS lift, churn.calibration(score, label, 20) AS cal
      FROM eval_t) p;
-- grouped, under the same settings
SELECT g, round(auc::numeric, 12) AS auc FROM (SELECT id % 3 AS g, churn.auc(score, label) AS auc FROM eval_t GROUP BY 1) s ORDER BY g;
RESET ALL;

DROP TABLE eval_t, eval_small;
