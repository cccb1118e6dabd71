#!/usr/bin/env bash
# Benchmark: pipeline refreshes (churn.refresh) against the bare feature
# aggregate over the same source, measured side by side in one psql session
# on a throwaway cluster.  Per repetition, on BENCH_ROWS purchases of
# BENCH_CUSTOMERS customers (timestamps ending today):
#   bare      SELECT customer_id, churn.features(churn.history_agg(ts, amount), current_date)
#             FROM purchases GROUP BY 1  -- default plan, enable_hashagg = off,
#             and serial (max_parallel_workers_per_gather = 0: the read of a
#             pipeline runs as an SPI cursor, which never runs in parallel)
#   full      churn.refresh on a fresh pipeline (model bgnbd): whole source read
#   incr      after inserting BENCH_NEW_SHARE of the rows (today, existing
#             customers): same day, only the touched customers are rescored
#   newday    the same after another insert, with the stored as_of set back
#             one day (what the first refresh of a new day does: every
#             customer rescored, BG/NBD refitted)
#   rules     churn.refresh on a fresh pipeline with model 'rules'
#             (churn.register_rules('rules')); BENCH_RULES=0 skips it
# and the capture cost of the insert (the same rows into a table without the
# trigger).  Prints every measurement, medians, the ratios
#   full / bare (goal <= 2), incr / full (goal <= 0.25), newday / full
# and the per-phase timings of the runs (merge_ms, score_ms, finish_ms of
# churn.pipeline_runs).  Then one extra, untimed pass under auto_explain
# (log_analyze, nested statements) prints the plans of the statements inside
# churn.pipeline_execute that took longer than BENCH_PROFILE_MS.
#
#   BENCH_CUSTOMERS=200000 BENCH_ROWS=2000000 BENCH_REPEAT=3 BENCH_NEW_SHARE=0.01 \
#   BENCH_PROFILE=1 bench/pipeline_refresh.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

customers=${BENCH_CUSTOMERS:-200000}
rows=${BENCH_ROWS:-2000000}
repeat=${BENCH_REPEAT:-3}
new_share=${BENCH_NEW_SHARE:-0.01}
rules=${BENCH_RULES:-1}
profile=${BENCH_PROFILE:-1}
profile_ms=${BENCH_PROFILE_MS:-100}
timeout=${BENCH_TIMEOUT:-600}

# the worker is preloaded (as in production) but has nothing due: every
# pipeline here is created with a start_at a day ahead
cw_bench_cluster

# --- data ---------------------------------------------------------------------
# The demo generator (churn.demo_purchases: sales, add-ons, returns and
# zero-amount rows; about 16.5 rows per customer over two years) for
# BENCH_CUSTOMERS customers over the last 730 days, thinned to about
# BENCH_ROWS rows by a deterministic hash sample.  customer_id is text (the
# pipeline's own key type); column batch (0 here) tags the rows each
# repetition adds, so that they can be removed again.
# (A synthetic generator with uniform purchase spans, as in
# bench/features.sh, makes the BG/NBD fit degenerate -- a and b in the
# millions; churn.bgnbd_expected then takes its a, b -> infinity limit.)
cw_log "generating about $rows purchases for $customers customers"
cw_psql -v customers="$customers" -v rows="$rows" -v new_share="$new_share" <<'SQL'
SET work_mem = '1GB';
CREATE FUNCTION public.u(k bigint, seed bigint) RETURNS float8
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ((hashint8extended(k, seed) >> 11) + 4503599627370496)::float8 / 9007199254740992 $$;
CREATE TABLE purchases (customer_id text NOT NULL, ts timestamptz NOT NULL, amount numeric(12,2),
                        batch int NOT NULL DEFAULT 0);
-- about 16.5 rows per customer before thinning
INSERT INTO purchases (customer_id, ts, amount)
SELECT customer_id::text, ts, amount
FROM churn.demo_purchases(:customers, 42, current_date - 729, current_date) d
WHERE u(hashtext(d.customer_id::text || d.ts::text || d.amount::text), 21)
      < least(1, :rows::float8 / (16.5 * :customers))
ORDER BY ts;
VACUUM ANALYZE purchases;
-- the rows one repetition inserts: new_share of the purchases, spread over
-- existing customers, timestamps today (before now)
CREATE TABLE new_rows AS
SELECT (1 + floor(u(g, 11) * :customers)::int)::text AS customer_id,
       date_trunc('day', now()) + u(g, 12) * (now() - date_trunc('day', now())) AS ts,
       round(exp(1.5 + 3 * u(g, 13))::numeric, 2)::numeric(10,2) AS amount
FROM generate_series(1, round(:rows * :new_share::float8)::int) g;
CREATE TABLE purchases_no_trigger (LIKE purchases INCLUDING DEFAULTS);
SELECT count(*) AS purchases, count(DISTINCT customer_id) AS customers,
       count(*) FILTER (WHERE amount < 0) AS returns, min(ts)::date AS first_day, max(ts)::date AS last_day,
       pg_size_pretty(pg_relation_size('purchases')) AS table_size,
       (SELECT count(*) FROM new_rows) AS new_rows_per_insert,
       (SELECT count(DISTINCT customer_id) FROM new_rows) AS customers_touched
FROM purchases;
SELECT churn.register_rules('rules');
SQL

# --- the measured statements ----------------------------------------------------
bare="SELECT customer_id, churn.features(churn.history_agg(ts, amount), current_date) AS f FROM purchases GROUP BY 1"
script=$(mktemp)
{
	echo "CREATE TEMP TABLE bench_times (rep int, name text, seconds float8);"
	echo "CREATE TEMP TABLE bench_runs AS SELECT 0 AS rep, ''::text AS name, r.* FROM churn.pipeline_runs r WHERE false;"
	echo "SET statement_timeout = '${timeout}s';"
	# warm-up: the table into the OS cache and shared_buffers
	echo "SELECT count(s) FROM ($bare) s \\gset warm_"
	t0="SELECT clock_timestamp() AS t0 \\gset"
	rec() { echo "INSERT INTO bench_times VALUES ($1, '$2', extract(epoch FROM clock_timestamp() - :'t0'::timestamptz));"; }
	run() { # rep name pipeline
		echo "$t0"
		echo "INSERT INTO bench_runs SELECT $1, '$2', r.* FROM churn.refresh('$3') r;"
		rec "$1" "$2"
	}
	for rep in $(seq 1 "$repeat"); do
		p="p_$rep"
		echo "\\echo rep $rep"
		# bare aggregate, three plans (round robin with the refreshes)
		echo "$t0"; echo "SELECT count(s) FROM ($bare) s \\gset res_"; rec "$rep" bare
		echo "SET enable_hashagg = off;"
		echo "$t0"; echo "SELECT count(s) FROM ($bare) s \\gset res_"; rec "$rep" bare_sorted
		echo "RESET enable_hashagg;"
		echo "SET max_parallel_workers_per_gather = 0;"
		echo "$t0"; echo "SELECT count(s) FROM ($bare) s \\gset res_"; rec "$rep" bare_serial
		echo "RESET max_parallel_workers_per_gather;"
		# (b) first refresh of a fresh pipeline
		echo "SELECT 1 AS created FROM churn.create_pipeline('$p', 'purchases', start_at => now() + interval '1 day') \\gset"
		run "$rep" full "$p"
		# (c) 1% new purchases, same day; the capture cost of the insert too
		echo "$t0"; echo "INSERT INTO purchases_no_trigger (customer_id, ts, amount, batch) SELECT *, $rep FROM new_rows;"
		rec "$rep" insert_plain
		echo "TRUNCATE purchases_no_trigger;"
		echo "$t0"; echo "INSERT INTO purchases (customer_id, ts, amount, batch) SELECT *, $rep FROM new_rows;"
		rec "$rep" insert_captured
		run "$rep" incr "$p"
		# (d) the same on a new day
		echo "INSERT INTO purchases (customer_id, ts, amount, batch) SELECT *, $rep FROM new_rows;"
		echo "UPDATE churn.pipeline SET as_of = as_of - 1 WHERE name = '$p';"
		run "$rep" newday "$p"
		echo "SELECT churn.drop_pipeline('$p') \\gset"
		# (e) model rules, first refresh
		if [ "$rules" = 1 ]; then
			echo "SELECT 1 AS created FROM churn.create_pipeline('r_$rep', 'purchases', model => 'rules', start_at => now() + interval '1 day') \\gset"
			run "$rep" rules_full "r_$rep"
			echo "SELECT churn.drop_pipeline('r_$rep') \\gset"
		fi
		# back to the same data and tidy tables for the next repetition
		echo "DELETE FROM purchases WHERE batch > 0;"
		echo "VACUUM ANALYZE purchases;"
		echo "VACUUM ANALYZE churn.pipeline_customer, churn.pipeline_warning, churn.pipeline_queue, churn.pipeline_run, churn.pipeline_tier_change, churn.pipeline;"
	done
	cat <<'SQL'
RESET statement_timeout;
\pset footer off
\echo
\echo '== per measurement (seconds)'
SELECT name, string_agg(round(seconds::numeric, 2)::text, '  ' ORDER BY rep) AS runs
FROM bench_times GROUP BY 1 ORDER BY min(rep), min(ctid);
CREATE TEMP TABLE med AS
SELECT name, percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds) AS s FROM bench_times GROUP BY 1;
CREATE FUNCTION pg_temp.m(n text) RETURNS float8 LANGUAGE sql STABLE AS $$ SELECT s FROM med WHERE name = n $$;
\echo '== medians (seconds)'
SELECT round(pg_temp.m('bare')::numeric, 2) AS bare, round(pg_temp.m('bare_sorted')::numeric, 2) AS bare_sorted,
       round(pg_temp.m('bare_serial')::numeric, 2) AS bare_serial, round(pg_temp.m('full')::numeric, 2) AS "full",
       round(pg_temp.m('incr')::numeric, 2) AS incr, round(pg_temp.m('newday')::numeric, 2) AS newday,
       round(pg_temp.m('rules_full')::numeric, 2) AS rules_full,
       round(pg_temp.m('insert_plain')::numeric, 3) AS insert_plain,
       round(pg_temp.m('insert_captured')::numeric, 3) AS insert_captured;
\echo '== ratios (of medians)'
SELECT round((pg_temp.m('full') / pg_temp.m('bare'))::numeric, 2) AS "full/bare (<=2)",
       round((pg_temp.m('full') / pg_temp.m('bare_serial'))::numeric, 2) AS "full/bare_serial",
       round((pg_temp.m('incr') / pg_temp.m('full'))::numeric, 3) AS "incr/full (<=0.25)",
       round((pg_temp.m('newday') / pg_temp.m('full'))::numeric, 3) AS "newday/full",
       round((pg_temp.m('rules_full') / pg_temp.m('bare'))::numeric, 2) AS "rules_full/bare",
       round((pg_temp.m('insert_captured') / pg_temp.m('insert_plain'))::numeric, 2) AS "insert captured/plain";
\echo '== phases of the runs (median ms) and their row counts'
SELECT name, mode, round(percentile_disc(0.5) WITHIN GROUP (ORDER BY merge_ms)::numeric) AS merge_ms,
       round(percentile_disc(0.5) WITHIN GROUP (ORDER BY score_ms)::numeric) AS score_ms,
       round(percentile_disc(0.5) WITHIN GROUP (ORDER BY finish_ms)::numeric) AS finish_ms,
       round(percentile_disc(0.5) WITHIN GROUP (ORDER BY 1000 * extract(epoch FROM duration))::numeric) AS run_ms,
       max(new_purchase_rows) AS new_rows, max(customers_merged) AS merged, max(customers_total) AS customers,
       max(customers_scored) AS scored, max(snapshot_rows_written) AS written, max(tier_changes) AS tier_changes,
       max(alerts_raised) AS alerts
FROM bench_runs GROUP BY 1, 2 ORDER BY min(run_id);
SQL
} >"$script"

cw_log "timing (${repeat}x each)"
cw_psql -f "$script"

# --- plans ----------------------------------------------------------------------
cw_log "plans"
cw_psql <<SQL
\\echo '== the bare aggregate, default plan'
EXPLAIN (COSTS OFF) SELECT count(s) FROM ($bare) s;
\\echo '== the read of a pipeline (churn.pipeline_read opens it as an SPI cursor: no parallel plan)'
BEGIN;
SET LOCAL TimeZone = 'UTC';
EXPLAIN (COSTS OFF) DECLARE c NO SCROLL CURSOR FOR
SELECT (customer_id)::pg_catalog.text, churn.history_agg(ts, (amount)::pg_catalog.float8)
FROM public.purchases WHERE customer_id IS NOT NULL GROUP BY 1;
COMMIT;
SQL

# --- profile --------------------------------------------------------------------
# One more (untimed) full, incremental and new-day refresh with auto_explain
# on the statements nested in churn.pipeline_execute; the plans come back as
# WARNINGs (auto_explain.log_level) and are printed with their timings.
if [ "$profile" = 1 ]; then
	cw_log "profile: statements inside churn.pipeline_execute over ${profile_ms} ms"
	out=$(mktemp)
	cw_psql -v ms="$profile_ms" >"$out" 2>&1 <<'SQL' || true
LOAD 'auto_explain';
SET auto_explain.log_min_duration = :ms;
SET auto_explain.log_analyze = on;
SET auto_explain.log_timing = on;
SET auto_explain.log_buffers = off;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = 'warning';
SET client_min_messages = 'warning';
\echo '######## full refresh'
SELECT 1 AS created FROM churn.create_pipeline('prof', 'purchases', start_at => now() + interval '1 day') \gset
SELECT mode, merge_ms, score_ms, finish_ms FROM churn.refresh('prof');
INSERT INTO purchases (customer_id, ts, amount, batch) SELECT *, 99 FROM new_rows;
\echo '######## incremental refresh, same day'
SELECT mode, merge_ms, score_ms, finish_ms FROM churn.refresh('prof');
INSERT INTO purchases (customer_id, ts, amount, batch) SELECT *, 99 FROM new_rows;
UPDATE churn.pipeline SET as_of = as_of - 1 WHERE name = 'prof';
\echo '######## incremental refresh, new day'
SELECT mode, merge_ms, score_ms, finish_ms FROM churn.refresh('prof');
SQL
	# the plans: query texts cut to their first 3 lines, CONTEXT lines dropped
	awk '/^CONTEXT:/ {ctx = 1; next}
	     ctx && /^(\t|  |PL\/pgSQL|SQL statement)/ {next}
	     {ctx = 0}
	     /Query Text:/ {q = 1; n = 0; print; next}
	     q && /^(WARNING|[A-Z][A-Za-z ]+  \(cost|[A-Z][A-Za-z ]+ on |CTE |InitPlan|  ->)/ {q = 0}
	     q {if (n++ < 3) print; next}
	     {print}' "$out"
	rm -f "$out"
fi
rm -f "$script"
