#!/usr/bin/env bash
# Benchmark: what the planner figures of the day-log aggregates (part 974:
# SSPACE of history_agg, COST of history_combine) do to PostgreSQL's default
# plan of a GROUP BY over many customers, at several work_mem settings.
# On the growth data (bench/growth_data.sql: demo purchases of BENCH_CUSTOMERS
# customers thinned to 10 each, random row order), per work_mem in
# BENCH_WORK_MEMS, round robin BENCH_REPEAT times:
#   floor    SELECT customer_id, count(*) FROM purchases GROUP BY 1
#   <s>:<c>  SELECT customer_id, churn.features(churn.history_agg(ts, amount),
#            current_date) ... GROUP BY 1 with SSPACE s and combine COST c
#            (set in the throwaway cluster's catalog), for each pair in
#            BENCH_FIGURES; 256:1 is 0.2.0, 8192:100 is 0.3.0
# Prints each run's seconds, the ratio of the medians to the floor's (goal
# <= 1.5; with 2 runs the lower one) and the plan the planner chose.
#
#   BENCH_CUSTOMERS=1000000 BENCH_REPEAT=2 bench/agg_batches.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

customers=${BENCH_CUSTOMERS:-1000000}
repeat=${BENCH_REPEAT:-2}
work_mems=${BENCH_WORK_MEMS:-4MB 16MB 64MB 256MB}
figures=${BENCH_FIGURES:-256:1 2048:100 8192:100 16384:100}

cw_bench_cluster
cw_log "generating about $((customers * 10)) purchases of $customers customers"
cw_psql -v customers="$customers" -v per=10 -f "$CW_ROOT/bench/growth_data.sql"
cw_psql <<'SQL'
CREATE TABLE timing (work_mem text, name text, rep int, seconds float8, plan text);
SQL

floor="SELECT customer_id, count(*) FROM purchases GROUP BY 1"
bare="SELECT customer_id, churn.features(churn.history_agg(ts, amount), current_date) AS f FROM purchases GROUP BY 1"
# one timed run: EXPLAIN ANALYZE without per-node timing (args: work_mem name rep query)
timed() {
	cat <<SQL
SET work_mem = '$1';
SELECT string_agg(line, ' ') AS plan FROM (SELECT substring(p FROM '((Partial |Finalize )?(Hash|Group)Aggregate)') AS line
  FROM pg_temp.plan('$4') p) x WHERE line IS NOT NULL \\gset
SELECT p::float8 / 1000 AS secs FROM pg_temp.plan('SELECT count(s) FROM ($4) s', true) p \\gset
INSERT INTO timing VALUES ('$1', '$2', $3, :secs, :'plan');
SQL
}
script=$(mktemp)
{
	# EXPLAIN lines of a query, or when timed its execution time in ms as the only element
	cat <<'SQL'
CREATE FUNCTION pg_temp.plan(q text, timed bool DEFAULT false) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    l text;
BEGIN
    IF timed THEN
        FOR l IN EXECUTE 'EXPLAIN (ANALYZE, TIMING OFF) ' || q LOOP
            IF l LIKE 'Execution Time:%' THEN
                RETURN NEXT substring(l FROM '([0-9.]+) ms');
            END IF;
        END LOOP;
    ELSE
        RETURN QUERY EXECUTE 'EXPLAIN ' || q;
    END IF;
END $$;
SQL
	echo "SELECT count(s) FROM ($bare) s \\gset warm_"
	for wm in $work_mems; do
		for rep in $(seq 1 "$repeat"); do
			timed "$wm" floor "$rep" "$floor"
			for fig in $figures; do
				echo "UPDATE pg_aggregate SET aggtransspace = ${fig%%:*} WHERE aggfnoid::regproc::text = 'churn.history_agg';"
				echo "ALTER FUNCTION churn.history_combine(churn.history, churn.history) COST ${fig##*:};"
				timed "$wm" "$fig" "$rep" "$bare"
			done
		done
	done
} >"$script"
cw_log "timing the floor and ${figures// /, } at work_mem ${work_mems// /, } (${repeat}x)"
cw_psql -f "$script" >/dev/null
rm -f "$script"

cw_psql <<'SQL'
\pset footer off
\echo
\echo '== default plan against the floor (median seconds; SSPACE:combine COST; 256:1 = 0.2.0, 8192:100 = 0.3.0)'
WITH m AS (
    SELECT work_mem, name, percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds) AS s,
           string_agg(round(seconds::numeric, 2)::text, ' ' ORDER BY rep) AS runs, max(plan) AS plan
    FROM timing GROUP BY 1, 2)
SELECT m.work_mem, m.name AS figures, m.runs, round((m.s / f.s)::numeric, 2) AS "ratio to floor (<=1.5)", m.plan
FROM m JOIN m f ON f.work_mem = m.work_mem AND f.name = 'floor'
ORDER BY pg_size_bytes(m.work_mem), m.name <> 'floor', nullif(split_part(m.name, ':', 1), 'floor')::int;
SQL
