#!/usr/bin/env bash
# Benchmark: churn.bgnbd_fit in SQL vs a scipy maximum-likelihood fit of the
# same data, side by side in one run, on a throwaway cluster.
#
#   bench/bgnbd_fit.sh            # 500,000 synthetic customers
#   N=2000000 REPS=5 bench/bgnbd_fit.sh
#
# Data: exact BG/NBD simulation (bench/bgnbd_fit_scipy.py simulate, CDNOW
# estimates as truth, 39-week calibration, whole days), loaded into a table.
# SQL timings: best of REPS runs of the aggregate over the table (scan
# included; parallel workers as the planner chooses), and of the weighted
# aggregate over the table compressed to (x, t_x, t, count).  scipy timings:
# best of REPS fits with the data already in numpy arrays (raw rows, and
# rows compressed with np.unique, the compression timed too).
# Prints both sets of estimates (they must agree) and the ratios.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

N=${N:-500000}
REPS=${REPS:-3}
SEED=${SEED:-20240601}

cw_need_packages "${CW_BUILD_PACKAGES[@]}" python3-numpy python3-scipy
cw_build_install
cw_start_cluster

work=$(cw_tempdir bench)
trap 'cw_stop_cluster; rm -rf "$work"' EXIT
cw_log "simulating $N customers"
"$CW_PYTHON" "$CW_ROOT/bench/bgnbd_fit_scipy.py" simulate "$N" "$SEED" "$work/sim.csv"
chmod 644 "$work/sim.csv"

cw_psql -d postgres -c 'CREATE DATABASE churn_bench'
export PGDATABASE=churn_bench
cw_psql <<SQL
CREATE EXTENSION churn_warning;
CREATE TABLE sim_days (x int, t_x_days int, t_days int);
COPY sim_days FROM '$work/sim.csv' (FORMAT csv, HEADER);
-- the model is fit in weeks, unrounded (days / 7)
CREATE TABLE sim AS SELECT x, t_x_days / 7.0::float8 AS t_x, t_days / 7.0::float8 AS t FROM sim_days;
CREATE TABLE sim_compressed AS
    SELECT x, t_x, t, count(*)::float8 AS n FROM sim GROUP BY x, t_x, t;
VACUUM ANALYZE sim;
VACUUM ANALYZE sim_compressed;
SQL

# best-of-REPS wall time of a query, measured inside the server
sql_time() {
	cw_psql -At <<SQL
CREATE OR REPLACE FUNCTION pg_temp.best_time(q text, reps int) RETURNS float8
LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; best float8 := 'infinity'; i int;
BEGIN
    FOR i IN 1..reps LOOP
        t0 := clock_timestamp();
        EXECUTE q;
        best := least(best, extract(epoch FROM clock_timestamp() - t0));
    END LOOP;
    RETURN best;
END \$\$;
SELECT pg_temp.best_time('$1', $REPS);
SQL
}

cw_log "timing churn.bgnbd_fit"
sql_raw=$(sql_time 'SELECT churn.bgnbd_fit(x, t_x, t) FROM sim')
sql_cmp=$(sql_time 'SELECT churn.bgnbd_fit(x, t_x, t, n) FROM sim_compressed')
cw_log "timing scipy"
scipy_out=$("$CW_PYTHON" "$CW_ROOT/bench/bgnbd_fit_scipy.py" fit "$work/sim.csv" "$REPS")

echo "customers            $N"
cw_psql -At -c "SELECT 'distinct (x,t_x,t)   ' || count(*) FROM sim_compressed"
cw_psql -At -c "EXPLAIN SELECT churn.bgnbd_fit(x, t_x, t) FROM sim" |
	grep -o 'Workers Planned: [0-9]*' || echo 'Workers Planned: 0'
cw_psql -At -F ' ' -c "SELECT 'sql_fit', 'r=' || round(r::numeric, 6), 'alpha=' || round(alpha::numeric, 6),
    'a=' || round(a::numeric, 6), 'b=' || round(b::numeric, 6), 'loglik=' || round(loglik::numeric, 4),
    'iterations=' || iterations, 'converged=' || converged
    FROM (SELECT (churn.bgnbd_fit(x, t_x, t)).* FROM sim) f"
echo "$scipy_out" | grep _fit
printf 'sql_raw_seconds      %.4f\n' "$sql_raw"
printf 'sql_compressed_sec   %.4f\n' "$sql_cmp"
echo "$scipy_out" | grep _seconds
scipy_raw=$(echo "$scipy_out" | sed -n 's/^scipy_raw_seconds //p')
scipy_cmp=$(echo "$scipy_out" | sed -n 's/^scipy_compressed_seconds //p')
awk -v a="$scipy_raw" -v b="$sql_raw" 'BEGIN { printf "ratio scipy_raw / sql_raw               %.1fx\n", a / b }'
awk -v a="$scipy_cmp" -v b="$sql_raw" 'BEGIN { printf "ratio scipy_compressed / sql_raw        %.1fx\n", a / b }'
awk -v a="$scipy_cmp" -v b="$sql_cmp" 'BEGIN { printf "ratio scipy_compressed / sql_compressed %.1fx\n", a / b }'
