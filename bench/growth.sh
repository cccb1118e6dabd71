#!/usr/bin/env bash
# Benchmark: how a pipeline's refreshes grow with the number of customers.
# For each size in BENCH_SIZES (customers), in a fresh database of one
# throwaway cluster: the demo generator's purchases of that many customers
# over the last 730 days, thinned to BENCH_PER_CUSTOMER rows per customer and
# stored in random order; then, one after the other:
#   bare     BENCH_REPEAT times, round robin with the floor: the bare feature
#            aggregate over the source (default plan),
#            SELECT customer_id, churn.features(churn.history_agg(ts, amount), current_date) ... GROUP BY 1
#   floor    SELECT customer_id, count(*) ... GROUP BY 1 (default plan)
#            and both again over a copy of the source in time order
#   full     the first churn.refresh of a new pipeline (model bgnbd): the
#            whole source read
#   incr     BENCH_REPEAT times: BENCH_NEW_SHARE of the rows inserted (today,
#            existing customers), then a refresh the same day (only the
#            touched customers rescored)
#   newday   BENCH_REPEAT times, alternating with incr: the same insert and
#            the stored as_of set back one day (every customer rescored, the
#            daily refresh of a scheduled pipeline)
#   auto     (BENCH_AUTO=1) the first refresh of a pipeline with model auto
#            on the same source: it trains the champion; the time spent in
#            churn.auto_train is the retraining time
# and, per size: the peak private memory (RssAnon, sampled every 50 ms) of
# the backend that runs the first refresh, per customer; the bytes of the
# stored histories (churn.pipeline_customer) and of the snapshot
# (churn.pipeline_warning), table, TOAST and indexes, per customer.
# Prints the growth table and, for consecutive sizes, the ratios of each
# time to the size ratio (linear growth: time ratio = size ratio).
# BENCH_PROFILE=1 adds one untimed +1% refresh per size under auto_explain
# and prints the statements that took longer than BENCH_PROFILE_MS.
#
#   BENCH_SIZES="200000 1000000 5000000" BENCH_REPEAT=3 bench/growth.sh
#   BENCH_SIZES="200000 1000000" BENCH_AUTO=0 bench/growth.sh     # quick
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

sizes=${BENCH_SIZES:-200000 1000000 5000000}
per_customer=${BENCH_PER_CUSTOMER:-10}
repeat=${BENCH_REPEAT:-3}
new_share=${BENCH_NEW_SHARE:-0.01}
auto=${BENCH_AUTO:-1}
profile=${BENCH_PROFILE:-0}
profile_ms=${BENCH_PROFILE_MS:-200}

# the worker is preloaded (as in production) but has nothing due: every
# pipeline is created with a start_at a day ahead
cw_bench_cluster "track_functions = 'pl'"
cw_psql -d postgres -c "CREATE TABLE growth (size int, name text, rep int, seconds float8, value float8)"

# time one psql script in its own session: the backend's pid goes to a file
# first, and a sampler records the backend's peak RssAnon while it runs
# (args: database, file with the script; prints the peak in kB)
peak_rss() {
	local db=$1 sql=$2 pidf peak=0 pid rss
	pidf=$(mktemp)
	rm -f "$pidf"
	{ echo "\\o $pidf"; echo "SELECT pg_backend_pid() \\g (tuples_only format=unaligned)"; echo "\\o"; cat "$sql"; } >"$sql.run"
	cw_psql -d "$db" -f "$sql.run" >/dev/null &
	local job=$!
	while kill -0 "$job" 2>/dev/null; do
		if [ -s "$pidf" ]; then
			pid=$(cat "$pidf")
			rss=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
			[ -n "$rss" ] && [ "$rss" -gt "$peak" ] && peak=$rss
		fi
		sleep 0.05
	done
	wait "$job" || cw_die "refresh failed"
	rm -f "$pidf" "$sql.run"
	echo "$peak"
}

for n in $sizes; do
	db=growth_$n
	cw_log "size $n: generating about $((n * per_customer)) purchases"
	cw_psql -d postgres -c "CREATE DATABASE $db"
	cw_psql -d "$db" -c 'CREATE EXTENSION churn_warning'
	cw_psql -d "$db" -v customers="$n" -v per="$per_customer" -f "$CW_ROOT/bench/growth_data.sql"
	cw_psql -d "$db" -v customers="$n" -v new_share="$new_share" <<'SQL'
SET work_mem = '1GB';
-- the rows one insert adds: new_share of the purchases, spread over
-- existing customers, timestamps today (before now)
CREATE TABLE new_rows AS
SELECT (1 + floor(u(g, 11) * :customers)::int)::text AS customer_id,
       date_trunc('day', now()) + u(g, 12) * (now() - date_trunc('day', now())) AS ts,
       round(exp(1.5 + 3 * u(g, 13))::numeric, 2)::numeric(10,2) AS amount
FROM generate_series(1, round((SELECT count(*) FROM purchases) * :new_share::float8)::int) g;
SQL
	rows=$(cw_psql -d "$db" -At -c "SELECT count(*) FROM purchases")
	cw_psql -d postgres -c "INSERT INTO growth VALUES ($n, 'rows', 0, NULL, $rows)"

	script=$(mktemp)
	# time a statement in $db and record it in growth (args: name rep sql)
	timed() {
		cat <<SQL
SELECT clock_timestamp() AS t0 \\gset
$3
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) AS secs \\gset
\\c postgres
INSERT INTO growth VALUES ($n, '$1', $2, :secs, NULL);
\\c $db
SQL
	}
	# the bare aggregate and the floor (a grouped count), default plans, on
	# the source (random order) and on a copy in time order, round robin
	bare="SELECT customer_id, churn.features(churn.history_agg(ts, amount), current_date) AS f FROM purchases GROUP BY 1"
	floor="SELECT customer_id, count(*) FROM purchases GROUP BY 1"
	cw_log "size $n: bare aggregate, floor (${repeat}x, random and time order) and first refresh"
	{
		echo "CREATE TABLE purchases_by_time AS SELECT * FROM purchases ORDER BY ts;"
		echo "VACUUM ANALYZE purchases_by_time;"
		echo "SELECT count(s) FROM ($bare) s \\gset warm_"
		for rep in $(seq 1 "$repeat"); do
			timed bare "$rep" "SELECT count(s) FROM ($bare) s \\gset res_"
			timed floor "$rep" "SELECT count(s) FROM ($floor) s \\gset res_"
			timed bare_time "$rep" "SELECT count(s) FROM (${bare/purchases/purchases_by_time}) s \\gset res_"
			timed floor_time "$rep" "SELECT count(s) FROM (${floor/purchases/purchases_by_time}) s \\gset res_"
		done
		echo "DROP TABLE purchases_by_time;"
	} >"$script"
	cw_psql -d "$db" -f "$script" >/dev/null
	{
		echo "SELECT 1 AS created FROM churn.create_pipeline('g', 'purchases', model => 'bgnbd', start_at => now() + interval '1 day') \\gset"
		timed full 1 "SELECT 1 AS done FROM churn.refresh('g') \\gset"
	} >"$script"
	peak=$(peak_rss "$db" "$script")
	cw_psql -d "$db" -At <<SQL
\\c postgres
INSERT INTO growth VALUES ($n, 'full_rss_kb', 1, NULL, $peak);
SQL
	cw_psql -d "$db" -At >"$script.sizes" <<'SQL'
SELECT (SELECT count(*) FROM churn.pipeline_customer) || ' ' ||
       pg_total_relation_size('churn.pipeline_customer') || ' ' || pg_total_relation_size('churn.pipeline_warning');
SQL
	read -r ncust hbytes wbytes <"$script.sizes"
	cw_psql -d postgres -c "INSERT INTO growth VALUES ($n, 'customers', 0, NULL, $ncust), ($n, 'history_bytes', 0, NULL, $hbytes), ($n, 'snapshot_bytes', 0, NULL, $wbytes)"

	cw_log "size $n: ${repeat}x (+${new_share} same day, +${new_share} new day)"
	{
		echo "VACUUM ANALYZE churn.pipeline_customer, churn.pipeline_warning, churn.pipeline_queue, churn.pipeline;"
		for rep in $(seq 1 "$repeat"); do
			echo "INSERT INTO purchases SELECT * FROM new_rows;"
			timed incr "$rep" "SELECT 1 AS done FROM churn.refresh('g') \\gset"
			echo "INSERT INTO purchases SELECT * FROM new_rows;"
			echo "UPDATE churn.pipeline SET as_of = as_of - 1 WHERE name = 'g';"
			timed newday "$rep" "SELECT 1 AS done FROM churn.refresh('g') \\gset"
		done
	} >"$script"
	cw_psql -d "$db" -f "$script" >/dev/null

	if [ "$profile" = 1 ]; then
		cw_log "size $n: profile of a +${new_share} same-day refresh (statements over ${profile_ms} ms)"
		cw_psql -d "$db" -v ms="$profile_ms" 2>&1 <<'SQL' | grep -E 'duration:|Query Text|^ *->|^ *(Hash|Seq|Index|Sort|Merge|Update|Insert|Delete|Aggregate|Gather|Nested|Subquery|CTE|Function|Result)' | cut -c1-200 || true
INSERT INTO purchases SELECT * FROM new_rows;
LOAD 'auto_explain';
SET auto_explain.log_min_duration = :ms;
SET auto_explain.log_analyze = on;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = 'warning';
SET client_min_messages = 'warning';
SELECT mode, merge_ms, score_ms, finish_ms FROM churn.refresh('g');
SQL
	fi

	if [ "$auto" = 1 ]; then
		cw_log "size $n: first refresh of an auto pipeline (trains the champion)"
		{
			echo "SELECT 1 AS created FROM churn.create_pipeline('a', 'purchases', start_at => now() + interval '1 day') \\gset"
			echo "BEGIN;"
			echo "SELECT clock_timestamp() AS t0 \\gset"
			echo "SELECT 1 AS done FROM churn.refresh('a') \\gset"
			echo "SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) AS secs \\gset"
			echo "SELECT coalesce(sum(total_time) / 1000, 0) AS train FROM pg_stat_xact_user_functions WHERE schemaname = 'churn' AND funcname = 'auto_train' \\gset"
			echo "COMMIT;"
			echo "\\c postgres"
			echo "INSERT INTO growth VALUES ($n, 'auto_first', 1, :secs, NULL), ($n, 'auto_train', 1, :train, NULL);"
		} >"$script"
		cw_psql -d "$db" -f "$script" >/dev/null
	fi
	rm -f "$script" "$script.sizes"
	cw_psql -d postgres -c "DROP DATABASE $db"
done

cw_psql -d postgres <<'SQL'
\pset footer off
\echo
\echo '== per measurement (seconds)'
SELECT size, name, string_agg(round(seconds::numeric, 2)::text, '  ' ORDER BY rep) AS runs
FROM growth WHERE seconds IS NOT NULL GROUP BY 1, 2 ORDER BY 1, min(ctid);
CREATE TEMP TABLE g AS
SELECT size,
       max(value) FILTER (WHERE name = 'rows') AS rows,
       max(value) FILTER (WHERE name = 'customers') AS customers,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds) FILTER (WHERE name = 'bare') AS bare,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds) FILTER (WHERE name = 'floor') AS floor,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds) FILTER (WHERE name = 'bare_time') AS bare_time,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds) FILTER (WHERE name = 'floor_time') AS floor_time,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds) FILTER (WHERE name = 'full') AS "full",
       percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds) FILTER (WHERE name = 'incr') AS incr,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds) FILTER (WHERE name = 'newday') AS newday,
       max(seconds) FILTER (WHERE name = 'auto_first') AS auto_first,
       max(seconds) FILTER (WHERE name = 'auto_train') AS auto_train,
       max(value) FILTER (WHERE name = 'full_rss_kb') AS rss_kb,
       max(value) FILTER (WHERE name = 'history_bytes') AS hist_bytes,
       max(value) FILTER (WHERE name = 'snapshot_bytes') AS snap_bytes
FROM growth GROUP BY 1;
\echo '== growth table (medians, seconds; memory and bytes per customer)'
SELECT size AS customers_generated, customers::bigint AS customers, rows::bigint AS purchases,
       round(bare::numeric, 2) AS bare, round("full"::numeric, 2) AS first_refresh,
       round(incr::numeric, 2) AS plus1_same_day, round(newday::numeric, 2) AS plus1_new_day,
       round(auto_first::numeric, 1) AS auto_first_refresh, round(auto_train::numeric, 1) AS retraining,
       round((rss_kb * 1024 / customers)::numeric, 0) AS peak_mem_b_per_cust,
       round((hist_bytes / customers)::numeric, 0) AS hist_b_per_cust,
       round((snap_bytes / customers)::numeric, 0) AS snap_b_per_cust,
       round(("full" / bare)::numeric, 2) AS "full/bare",
       round((incr / "full")::numeric, 3) AS "incr/full", round((newday / "full")::numeric, 3) AS "newday/full"
FROM g ORDER BY size;
\echo '== the feature aggregate against the floor, default plans (medians, seconds)'
SELECT size AS customers_generated, round(floor::numeric, 2) AS floor, round(bare::numeric, 2) AS bare,
       round((bare / floor)::numeric, 2) AS "bare/floor random order (<=1.5)",
       round(floor_time::numeric, 2) AS floor_time, round(bare_time::numeric, 2) AS bare_time,
       round((bare_time / floor_time)::numeric, 2) AS "bare/floor time order (<=1.5)",
       round(("full" / bare)::numeric, 2) AS "first refresh/bare (<=2)"
FROM g ORDER BY size;
\echo '== growth between consecutive sizes: time ratio against size ratio (linear: equal)'
SELECT prev || ' -> ' || size AS sizes, round((customers / prev_customers)::numeric, 2) AS size_ratio,
       round(("full" / prev_full)::numeric, 2) AS first_refresh, round((incr / prev_incr)::numeric, 2) AS plus1_same_day,
       round((newday / prev_newday)::numeric, 2) AS plus1_new_day, round((auto_train / prev_train)::numeric, 2) AS retraining
FROM (SELECT *, lag(size) OVER w AS prev, lag(customers) OVER w AS prev_customers, lag("full") OVER w AS prev_full,
             lag(incr) OVER w AS prev_incr, lag(newday) OVER w AS prev_newday, lag(auto_train) OVER w AS prev_train
      FROM g WINDOW w AS (ORDER BY size)) s
WHERE prev IS NOT NULL ORDER BY size;
SQL
