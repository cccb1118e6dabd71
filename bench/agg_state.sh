#!/usr/bin/env bash
# Benchmark: the aggregates with their 0.3.0 state type churn.agg_state
# (part 972, src/aggstate.c) against the same aggregates declared the 0.2.0
# way (STYPE = internal with serialize / deserialize, built here from the
# internal-state support functions, which the extension still has), side by
# side in one run, on a throwaway cluster.
#
#   bench/agg_state.sh                 # N=1000000 rows, REPS=3
#   N=2000000 REPS=5 bench/agg_state.sh
#
# Data (synthetic, deterministic): N rows of (x, t_x, t) in whole weeks for
# bgnbd_fit, a spend for rfm_cuts, a label and 5 features for logit_fit, a
# score and label for auc and log_loss.  Timings: best of REPS runs of each
# aggregate over the table (scan included), the two declarations run
# alternately after one warm-up run each, serial (no parallel workers) and
# parallel (2 workers forced), inside the server.  Prints the seconds
# and the ratio agg_state / internal (above 1 = the new state is slower),
# and checks that both declarations give the same result.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

N=${N:-1000000}
REPS=${REPS:-3}

cw_bench_cluster
cw_psql <<SQL
CREATE TABLE d AS
SELECT (i % 11) AS x,
       CASE WHEN i % 11 = 0 THEN 0 ELSE 1 + (i * 7 % 30) END::float8 AS t_x,
       (31 + i % 9)::float8 AS t,
       (i::int8 * 2654435761 % 100000) / 100.0::float8 AS spend,
       (i::int8 * 40503 % 1000) / 1000.0::float8 AS p,
       (i::int8 * 2654435761 % 7) < 3 AS y,
       ARRAY[(i % 13)::float8, (i % 17) / 3.0, (i * 31 % 101) / 50.0, (i % 5)::float8, (i * 7 % 23) / 11.0] AS xs
FROM generate_series(1, $N) i;
VACUUM ANALYZE d;

-- the 0.2.0 declarations: internal state, serialize / deserialize
CREATE SCHEMA old;
CREATE AGGREGATE old.bgnbd_fit(int, float8, float8) (
    SFUNC = churn.rft_fit_trans, STYPE = internal, FINALFUNC = churn.bgnbd_fit_final,
    COMBINEFUNC = churn.prob_fit_combine, SERIALFUNC = churn.prob_fit_serialize,
    DESERIALFUNC = churn.prob_fit_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE old.rfm_cuts(float8, int) (
    SFUNC = churn.rfm_cuts_trans, STYPE = internal, FINALFUNC = churn.rfm_cuts_final,
    FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = churn.rfm_cuts_combine,
    SERIALFUNC = churn.rfm_cuts_serialize, DESERIALFUNC = churn.rfm_cuts_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE old.logit_fit(boolean, float8[]) (
    SFUNC = churn.logit_fit_trans, STYPE = internal, FINALFUNC = churn.logit_fit_final,
    COMBINEFUNC = churn.logit_fit_combine, SERIALFUNC = churn.logit_fit_serialize,
    DESERIALFUNC = churn.logit_fit_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE old.auc(float8, boolean) (
    SFUNC = churn.eval_rank_trans, STYPE = internal, FINALFUNC = churn.eval_auc_final,
    COMBINEFUNC = churn.eval_rank_combine, SERIALFUNC = churn.eval_rank_serialize,
    DESERIALFUNC = churn.eval_rank_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE old.log_loss(float8, boolean) (
    SFUNC = churn.eval_logloss_trans, STYPE = internal, FINALFUNC = churn.eval_mean_final,
    COMBINEFUNC = churn.eval_mean_combine, SERIALFUNC = churn.eval_mean_serialize,
    DESERIALFUNC = churn.eval_mean_deserialize, PARALLEL = SAFE);

-- best-of-reps wall times of two queries, run alternately (so that load
-- from elsewhere hits both alike), with parallel workers on or off
CREATE FUNCTION best_times(q1 text, q2 text, reps int, workers int, OUT t1 float8, OUT t2 float8)
LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz;
BEGIN
    t1 := 'infinity'; t2 := 'infinity';
    PERFORM set_config('max_parallel_workers_per_gather', workers::text, true);
    PERFORM set_config('parallel_setup_cost', CASE WHEN workers > 0 THEN '0' ELSE '1000' END, true);
    PERFORM set_config('parallel_tuple_cost', CASE WHEN workers > 0 THEN '0' ELSE '0.1' END, true);
    PERFORM set_config('min_parallel_table_scan_size', '0', true);
    EXECUTE q1;
    EXECUTE q2;
    FOR i IN 1..reps LOOP
        t0 := clock_timestamp();
        EXECUTE q1;
        t1 := least(t1, extract(epoch FROM clock_timestamp() - t0));
        t0 := clock_timestamp();
        EXECUTE q2;
        t2 := least(t2, extract(epoch FROM clock_timestamp() - t0));
    END LOOP;
END \$\$;
SQL

echo "rows $N, best of $REPS"
printf '%-10s %-8s %10s %10s %8s  %s\n' aggregate plan internal agg_state ratio same_result
for agg in 'bgnbd_fit(x, t_x, t)' 'rfm_cuts(spend, 5)' 'logit_fit(y, xs)' 'auc(p, y)' 'log_loss(p, y)'; do
	name=${agg%%(*}
	for workers in 0 2; do
		plan=$([ "$workers" = 0 ] && echo serial || echo parallel)
		line=$(cw_psql -At -F ' ' <<SQL
SELECT round(t1::numeric, 4), round(t2::numeric, 4),
       (SELECT old.$agg::text FROM d) = (SELECT churn.$agg::text FROM d)
FROM best_times('SELECT old.$agg FROM d', 'SELECT churn.$agg FROM d', $REPS, $workers);
SQL
)
		read -r t_old t_new same <<<"$line"
		awk -v n="$name" -v p="$plan" -v a="$t_old" -v b="$t_new" -v s="$same" \
			'BEGIN { printf "%-10s %-8s %10.4f %10.4f %7.2fx  %s\n", n, p, a, b, b / a, s }'
	done
done
