#!/usr/bin/env bash
# Benchmark: the purchase-feature engine (churn.history_agg + churn.features)
# against the floor (a bare GROUP BY count) and against the plain-SQL
# formulation in bench/features_plain.sql, measured side by side in one psql
# session on a throwaway cluster.  Prints median seconds and the ratios
# extension / floor (goal <= 1.5) and plain / extension (goal >= 5), for each
# work_mem in BENCH_WORK_MEMS, then the plans and the stored size per customer.
#
#   BENCH_CUSTOMERS=1000000 BENCH_ROWS=10000000 BENCH_REPEAT=3 \
#   BENCH_WORK_MEMS="64MB 1GB" bench/features.sh
#
# Every measured query is wrapped as SELECT count(s) FROM (<query>) s: the
# whole-row reference keeps the planner from dropping unused output columns
# (a bare count(*) over the subquery would let it skip churn.features and the
# aggregates entirely) and nothing but one row goes to the client.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

customers=${BENCH_CUSTOMERS:-1000000}
rows=${BENCH_ROWS:-10000000}
repeat=${BENCH_REPEAT:-3}
timeout=${BENCH_TIMEOUT:-120}
work_mems=${BENCH_WORK_MEMS:-64MB 1GB}
as_of=2025-01-01
win=90

cw_bench_cluster

# --- data ---------------------------------------------------------------------
# Deterministic (hash of the row key, no random()).  Per customer: a number of
# rows drawn from an exponential law (mean about rows / customers), a start
# day in the first 700 days of 2023-01-01 .. 2025-01-01 and an end day
# (customers drift away), rows spread over that span; one row in five falls on
# the day of the customer's previous row (several rows per day), 2% are
# returns (negative amount); amounts numeric(10,2), lognormal-ish.  Stored in
# time order, as an append-only purchase log is.
cw_log "generating about $rows purchases for $customers customers"
cw_psql -v customers="$customers" -v rows="$rows" <<'SQL'
SET work_mem = '1GB';
SET max_parallel_workers_per_gather = 2;
-- uniform [0, 1) from a 64-bit hash of (key, seed)
CREATE FUNCTION pg_temp.u(k bigint, seed bigint) RETURNS float8
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ((hashint8extended(k, seed) >> 11) + 4503599627370496)::float8 / 9007199254740992 $$;
CREATE TABLE purchases (customer_id int NOT NULL, ts timestamptz NOT NULL, amount numeric(10,2));
INSERT INTO purchases
WITH c AS (
  SELECT c,
         least(500, 1 + floor(-ln(1 - pg_temp.u(c, 1)) * (:rows::float8 / :customers - 0.5)))::int AS n,
         floor(pg_temp.u(c, 2) * 700)::int AS s,
         pg_temp.u(c, 3) AS life
  FROM generate_series(1, :customers) c),
r AS (
  SELECT c, g, s + floor(pg_temp.u(c::bigint * 1024 + dk, 4) * (730 - s) * (0.2 + 0.8 * life))::int AS d,
         pg_temp.u(c::bigint * 1024 + g, 6) AS v
  FROM c, generate_series(1, c.n) g,
       LATERAL (SELECT CASE WHEN g > 1 AND pg_temp.u(c::bigint * 1024 + g, 5) < 0.2
                            THEN g - 1 ELSE g END AS dk) k)
SELECT c, '2023-01-01 00:00+00'::timestamptz + d * interval '1 day'
          + (8 * 3600 + floor(pg_temp.u(c::bigint * 1024 + g, 7) * 14 * 3600)) * interval '1 second',
       (CASE WHEN v < 0.02 THEN -1 ELSE 1 END * round(exp(1.5 + 3 * pg_temp.u(c::bigint * 1024 + g, 8))::numeric, 2))
FROM r
ORDER BY 2;
VACUUM ANALYZE purchases;
SELECT count(*) AS purchases, count(DISTINCT customer_id) AS customers,
       count(*) FILTER (WHERE amount < 0) AS returns,
       min(ts)::date AS first_day, max(ts)::date AS last_day,
       pg_size_pretty(pg_relation_size('purchases')) AS table_size
FROM purchases;
SELECT round(avg(n), 2) AS rows_per_customer, round(avg(d), 2) AS days_per_customer,
       round(avg((n > d)::int), 3) AS share_with_multirow_days
FROM (SELECT customer_id, count(*) n, count(DISTINCT ts::date) d FROM purchases GROUP BY 1) s;
-- the stored histories, for the "features from a stored table" variant, built
-- with a sort-based aggregate (hash aggregation of churn.history_agg over 1M
-- groups is quadratic: see docs/reference/performance-features.md)
SET enable_hashagg = off;
\timing on
CREATE TABLE hist AS SELECT customer_id, churn.history_agg(ts, amount) AS h FROM purchases GROUP BY customer_id;
\timing off
RESET enable_hashagg;
VACUUM ANALYZE hist;
SQL

# --- the measured queries -------------------------------------------------------
plain=$(sed -e '/^--/d' -e 's/;[[:space:]]*$//' "$CW_ROOT/bench/features_plain.sql")
declare -A q pre post
names=(floor ext ext_sorted ext_stored ext_rfm_sorted plain)
q[floor]="SELECT customer_id, count(*) FROM purchases GROUP BY customer_id"
q[ext]="SELECT customer_id, churn.features(churn.history_agg(ts, amount), :'as_of') AS f FROM purchases GROUP BY customer_id"
# the same query with hash aggregation disabled (sort + GroupAggregate)
q[ext_sorted]=${q[ext]}
pre[ext_sorted]="SET enable_hashagg = off;"
post[ext_sorted]="RESET enable_hashagg;"
q[ext_stored]="SELECT customer_id, churn.features(h, :'as_of') AS f FROM hist"
q[ext_rfm_sorted]="SELECT customer_id, f, ntile(5) OVER (ORDER BY (f).recency_days DESC) AS r_score,
       ntile(5) OVER (ORDER BY (f).purchase_days) AS f_score, ntile(5) OVER (ORDER BY (f).total_spend) AS m_score
FROM (SELECT customer_id, churn.features(churn.history_agg(ts, amount), :'as_of') AS f
      FROM purchases GROUP BY customer_id) e WHERE f IS DISTINCT FROM NULL"
pre[ext_rfm_sorted]=${pre[ext_sorted]}
post[ext_rfm_sorted]=${post[ext_sorted]}
q[plain]=$plain

script=$(mktemp)
{
	echo "\\set as_of '$as_of'"
	echo "\\set win $win"
	echo "CREATE TEMP TABLE bench_times (work_mem text, rep int, name text, seconds float8);"
	# a query over the time limit is recorded as NULL (timed out) and not repeated
	echo "\\set ON_ERROR_STOP 0"
	echo "SET statement_timeout = '${timeout}s';"
	for wm in $work_mems; do
		echo "SET work_mem = '$wm';"
		for n in "${names[@]}"; do echo "\\set skip_$n false"; done
		# warm-up (not timed): the table into the OS cache and shared_buffers
		echo "SELECT count(s) FROM (${q[floor]}) s \\gset warm_"
		for rep in $(seq 1 "$repeat"); do
			# round robin, so that a noisy minute hurts every query alike
			for n in "${names[@]}"; do
				echo "\\if :skip_$n"
				echo "\\else"
				echo "${pre[$n]:-}"
				echo "SELECT clock_timestamp() AS t0 \\gset"
				echo "SELECT count(s) FROM (${q[$n]}) s \\gset res_"
				echo "\\if :ERROR"
				echo "INSERT INTO bench_times VALUES ('$wm', $rep, '$n', NULL);"
				echo "\\set skip_$n true"
				echo "\\else"
				echo "INSERT INTO bench_times VALUES ('$wm', $rep, '$n', extract(epoch FROM clock_timestamp() - :'t0'::timestamptz));"
				echo "\\endif"
				echo "${post[$n]:-}"
				echo "\\endif"
			done
		done
	done
	echo "\\set timeout $timeout"
	cat <<'SQL'
RESET statement_timeout;
\pset footer off
\echo
\echo '== per measurement (seconds; "timeout" = over' :timeout 's, not repeated)'
SELECT work_mem, name,
       string_agg(coalesce(round(seconds::numeric, 2)::text, 'timeout'), '  ' ORDER BY rep) AS runs
FROM bench_times GROUP BY 1, 2 ORDER BY 1 DESC, min(rep), 2;
CREATE TEMP TABLE med AS
SELECT work_mem, name, percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds) AS s
FROM bench_times GROUP BY 1, 2;
CREATE FUNCTION pg_temp.fmt(v float8) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT coalesce(round(v::numeric, 2)::text, '-') $$;
\echo '== medians (seconds) and ratios ("-" = timed out)'
SELECT m.work_mem,
       pg_temp.fmt(max(s) FILTER (WHERE name = 'floor')) AS floor,
       pg_temp.fmt(max(s) FILTER (WHERE name = 'ext')) AS ext,
       pg_temp.fmt(max(s) FILTER (WHERE name = 'ext_sorted')) AS ext_sorted,
       pg_temp.fmt(max(s) FILTER (WHERE name = 'ext_stored')) AS ext_stored,
       pg_temp.fmt(max(s) FILTER (WHERE name = 'ext_rfm_sorted')) AS ext_rfm_sorted,
       pg_temp.fmt(max(s) FILTER (WHERE name = 'plain')) AS plain
FROM med m GROUP BY 1 ORDER BY 1 DESC;
SELECT m.work_mem,
       pg_temp.fmt(max(s) FILTER (WHERE name = 'ext') / max(s) FILTER (WHERE name = 'floor'))
         AS "ext/floor (<=1.5)",
       pg_temp.fmt(max(s) FILTER (WHERE name = 'ext_sorted') / max(s) FILTER (WHERE name = 'floor'))
         AS "ext_sorted/floor",
       pg_temp.fmt(max(s) FILTER (WHERE name = 'plain') / max(s) FILTER (WHERE name = 'ext'))
         AS "plain/ext (>=5)",
       pg_temp.fmt(max(s) FILTER (WHERE name = 'plain') / max(s) FILTER (WHERE name = 'ext_sorted'))
         AS "plain/ext_sorted",
       pg_temp.fmt(max(s) FILTER (WHERE name = 'plain') / max(s) FILTER (WHERE name = 'ext_rfm_sorted'))
         AS "plain/ext_rfm_sorted",
       pg_temp.fmt(max(s) FILTER (WHERE name = 'plain') / max(s) FILTER (WHERE name = 'ext_stored'))
         AS "plain/ext_stored"
FROM med m GROUP BY 1 ORDER BY 1 DESC;
SQL
} >"$script"

cw_log "timing (${repeat}x each, work_mem: $work_mems)"
cw_psql -f "$script"

# --- plans ----------------------------------------------------------------------
cw_log "plans"
{
	echo "\\set as_of '$as_of'"
	echo "\\set win $win"
	for wm in $work_mems; do
		echo "SET work_mem = '$wm';"
		# the default extension plan is only EXPLAINed: with hash aggregation it
		# runs past the time limit (see the timing above)
		echo "\\echo '== EXPLAIN ext, work_mem $wm'"
		echo "EXPLAIN (COSTS OFF) SELECT count(s) FROM (${q[ext]}) s;"
		for n in floor ext_sorted ext_stored plain; do
			echo "\\echo '== EXPLAIN ANALYZE $n, work_mem $wm'"
			echo "${pre[$n]:-}"
			echo "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT count(s) FROM (${q[$n]}) s;"
			echo "${post[$n]:-}"
		done
	done
} >"$script"
cw_psql -f "$script"

# --- agreement and size ---------------------------------------------------------
# The plain formulation must compute what churn.features computes: compare on
# every 50th customer (search_path puts a filtered "purchases" view first).
cw_log "agreement of plain SQL and churn.features on every 50th customer"
{
	echo "\\set as_of '$as_of'"
	echo "\\set win $win"
	cat <<'SQL'
CREATE SCHEMA sample;
CREATE VIEW sample.purchases AS SELECT * FROM public.purchases WHERE customer_id % 50 = 0;
SET search_path = sample, public;
SET enable_hashagg = off;
CREATE TEMP TABLE e AS
SELECT customer_id, (f).* FROM (SELECT customer_id, churn.features(churn.history_agg(ts, amount), :'as_of', :win) f
                                FROM purchases GROUP BY customer_id) s WHERE f IS DISTINCT FROM NULL;
CREATE TEMP TABLE p AS
SQL
	sed -e '/^--/d' "$CW_ROOT/bench/features_plain.sql"
	cat <<'SQL'
CREATE FUNCTION pg_temp.close(a float8, b float8) RETURNS boolean LANGUAGE sql IMMUTABLE AS
$$ SELECT (a IS NULL AND b IS NULL) OR abs(a - b) <= 1e-9 * greatest(1, abs(a), abs(b)) $$;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE e.customer_id IS NULL OR p.customer_id IS NULL) AS missing,
       count(*) FILTER (WHERE (e.first_purchase, e.last_purchase, e.x, e.purchase_days, e.t_x, e.t,
                               e.recency_days, e.recent_days, e.prior_days, e.return_days)
                              IS DISTINCT FROM
                              (p.first_purchase, p.last_purchase, p.x, p.purchase_days, p.t_x, p.t,
                               p.recency_days, p.recent_days, p.prior_days, p.return_days)) AS bad_exact,
       count(*) FILTER (WHERE NOT (pg_temp.close(e.total_spend, p.total_spend)
                                   AND pg_temp.close(e.avg_spend, p.avg_spend)
                                   AND pg_temp.close(e.repeat_avg_spend, p.repeat_avg_spend)
                                   AND pg_temp.close(e.mean_gap_days, p.mean_gap_days)
                                   AND pg_temp.close(e.sd_gap_days, p.sd_gap_days)
                                   AND pg_temp.close(e.overdue_ratio, p.overdue_ratio)
                                   AND pg_temp.close(e.frequency_change, p.frequency_change)
                                   AND pg_temp.close(e.recent_avg_spend, p.recent_avg_spend)
                                   AND pg_temp.close(e.prior_avg_spend, p.prior_avg_spend)
                                   AND pg_temp.close(e.spend_change, p.spend_change))) AS bad_float
FROM e FULL JOIN p USING (customer_id);
RESET search_path;
\echo '== stored churn.history size'
SELECT count(*) AS customers,
       round(avg(pg_column_size(h)), 1) AS avg_bytes_per_customer,
       round(sum(pg_column_size(h))::numeric / sum(d), 2) AS bytes_per_purchase_day,
       round(sum(d)::numeric / count(*), 2) AS days_per_customer,
       max(pg_column_size(h)) AS max_bytes,
       pg_size_pretty(pg_total_relation_size('hist')) AS hist_table,
       pg_size_pretty(pg_total_relation_size('purchases')) AS purchases_table
FROM (SELECT h, (SELECT count(*) FROM churn.history_days(h)) AS d FROM hist) s;
SQL
} >"$script"
cw_psql -f "$script"
rm -f "$script"
