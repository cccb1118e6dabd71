#!/usr/bin/env bash
# Benchmark: refreshes of a pipeline with model auto (the default) against a
# pipeline with model bgnbd on the same source and events, measured side by
# side in one psql session on a throwaway cluster.  Data: the demo
# generator's purchases and events (churn.demo_purchases / churn.demo_events,
# seed 42) of BENCH_CUSTOMERS customers over the last 730 days, ending today
# (about 16.5 purchases and 45 events per customer).  Both pipelines read the
# events relation.  After their first refreshes (untimed for the ratios: a
# full read each, and the auto pipeline trains its first champion), per
# repetition:
#   daily    BENCH_NEW_SHARE of the purchases and the same share of the
#            events (today, existing customers) are inserted, the stored
#            as_of of both pipelines is set back one day (the first refresh
#            of a new day: every customer rescored, BG/NBD refitted), and
#            both pipelines are refreshed, alternating which goes first.
#            The auto pipeline does not train: its champion is fresh
#            (auto_trained_on within retrain_days), it only scores
#   retrain  the same insert and new day once more; the bgnbd pipeline is
#            refreshed (bgnbd_daily2, to keep both queues alike) and the auto
#            pipeline's auto_trained_on is set back retrain_days, so its
#            refresh trains a challenger (churn.auto_train) and compares it
#            with the champion out of time (in the first BENCH_RETRAINS
#            repetitions, default all: a retrain of 200k customers takes
#            minutes)
# Each refresh runs in its own transaction with track_functions = 'pl', so
# pg_stat_xact_user_functions gives the time spent in each PL/pgSQL function
# of the extension (churn.auto_train, churn.auto_fit, churn.pipeline_score,
# ...).  Prints every measurement, medians, the per-phase timings and
# model_used / model_note of every run, the function breakdown, and the
# ratios
#   auto daily / bgnbd daily (goal <= 2), retrain seconds (goal <= 60), the
#   share of the retrain spent in churn.auto_train
# Then (BENCH_PROFILE=1) one extra, untimed daily refresh of each pipeline
# and one retrain under auto_explain (log_analyze, nested statements): the
# statements over BENCH_PROFILE_MS, longest first, and their plans.
#
#   BENCH_CUSTOMERS=200000 BENCH_REPEAT=3 BENCH_RETRAINS=3 BENCH_NEW_SHARE=0.01 BENCH_PROFILE=1 \
#   bench/pipeline_auto.sh
#
# At 200,000 customers each training (the first refresh, every retrain, the
# profile's retrain) took 15-19 minutes on 2 shared cores (2026-11-30): the
# whole run 1 h 35 min; BENCH_RETRAINS=1 BENCH_PROFILE=0 saves about 50 minutes.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

customers=${BENCH_CUSTOMERS:-200000}
repeat=${BENCH_REPEAT:-3}
retrains=${BENCH_RETRAINS:-$repeat}
new_share=${BENCH_NEW_SHARE:-0.01}
profile=${BENCH_PROFILE:-1}
profile_ms=${BENCH_PROFILE_MS:-500}
timeout=${BENCH_TIMEOUT:-3600}

# the worker is preloaded (as in production) but has nothing due: both
# pipelines are created with a start_at a day ahead
cw_bench_cluster "track_functions = 'pl'"

# --- data ---------------------------------------------------------------------
# customer_id is text (the pipeline's own key type); column batch (0 here)
# tags the rows each repetition adds.
cw_log "generating purchases and events for $customers customers"
cw_psql -v customers="$customers" -v new_share="$new_share" <<'SQL'
SET work_mem = '1GB';
CREATE FUNCTION public.u(k bigint, seed bigint) RETURNS float8
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ((hashint8extended(k, seed) >> 11) + 4503599627370496)::float8 / 9007199254740992 $$;
CREATE TABLE purchases (customer_id text NOT NULL, ts timestamptz NOT NULL, amount numeric(12,2),
                        batch int NOT NULL DEFAULT 0);
CREATE TABLE events (customer_id text NOT NULL, ts timestamptz NOT NULL, kind text, rating int,
                     batch int NOT NULL DEFAULT 0);
INSERT INTO purchases (customer_id, ts, amount)
SELECT customer_id::text, ts, amount
FROM churn.demo_purchases(:customers, 42, current_date - 729, current_date) ORDER BY ts;
INSERT INTO events (customer_id, ts, kind, rating)
SELECT customer_id::text, ts, kind, rating
FROM churn.demo_events(:customers, 42, current_date - 729, current_date) ORDER BY ts;
VACUUM ANALYZE purchases, events;
-- the rows one insert adds: new_share of the purchases and of the events,
-- spread over existing customers, timestamps today (before now); the events
-- keep the kinds and ratings of a sample of the existing ones
CREATE TABLE new_rows AS
SELECT (1 + floor(u(g, 11) * :customers)::int)::text AS customer_id,
       date_trunc('day', now()) + u(g, 12) * (now() - date_trunc('day', now())) AS ts,
       round(exp(1.5 + 3 * u(g, 13))::numeric, 2)::numeric(12,2) AS amount
FROM generate_series(1, (SELECT round(count(*) * :new_share::float8)::int FROM purchases)) g;
CREATE TABLE new_events AS
SELECT (1 + floor(u(n, 21) * :customers)::int)::text AS customer_id,
       date_trunc('day', now()) + u(n, 22) * (now() - date_trunc('day', now())) AS ts, kind, rating
FROM (SELECT kind, rating, row_number() OVER () AS n
      FROM events TABLESAMPLE BERNOULLI (100 * :new_share::float8) REPEATABLE (7)) s;
SELECT (SELECT count(*) FROM purchases) AS purchases, (SELECT count(DISTINCT customer_id) FROM purchases) AS customers,
       (SELECT count(*) FROM events) AS events, (SELECT count(DISTINCT customer_id) FROM events) AS customers_with_events,
       (SELECT min(ts)::date FROM purchases) AS first_day, (SELECT max(ts)::date FROM purchases) AS last_day,
       pg_size_pretty(pg_relation_size('purchases')) AS purchases_size, pg_size_pretty(pg_relation_size('events')) AS events_size,
       (SELECT count(*) FROM new_rows) AS new_rows_per_insert, (SELECT count(*) FROM new_events) AS new_events_per_insert;
SQL

# --- the measured statements ----------------------------------------------------
script=$(mktemp)
{
	echo "CREATE TEMP TABLE bench_times (rep int, name text, seconds float8);"
	echo "CREATE TEMP TABLE bench_runs AS SELECT 0 AS rep, ''::text AS name, r.* FROM churn.pipeline_runs r WHERE false;"
	echo "CREATE TEMP TABLE bench_fn (rep int, name text, funcname text, calls bigint, total_ms float8, self_ms float8);"
	echo "SET statement_timeout = '${timeout}s';"
	# one refresh in its own transaction; the function times of that transaction
	# (pg_stat_xact_user_functions reads the backend's pending counts, which
	# may hold earlier transactions' until flushed: flushed first)
	run() { # rep name pipeline
		echo "SELECT pg_stat_force_next_flush() \\gset"
		echo "BEGIN;"
		echo "SELECT clock_timestamp() AS t0 \\gset"
		echo "INSERT INTO bench_runs SELECT $1, '$2', r.* FROM churn.refresh('$3') r;"
		echo "INSERT INTO bench_fn SELECT $1, '$2', funcname, calls, total_time, self_time FROM pg_stat_xact_user_functions WHERE schemaname = 'churn';"
		echo "COMMIT;"
		echo "INSERT INTO bench_times VALUES ($1, '$2', extract(epoch FROM clock_timestamp() - :'t0'::timestamptz));"
	}
	# 1% new purchases and events for both pipelines, then a new day for both
	newday() { # rep
		echo "INSERT INTO purchases (customer_id, ts, amount, batch) SELECT *, $1 FROM new_rows;"
		echo "INSERT INTO events (customer_id, ts, kind, rating, batch) SELECT *, $1 FROM new_events;"
		echo "UPDATE churn.pipeline SET as_of = as_of - 1 WHERE name IN ('p_auto', 'p_bgnbd');"
	}
	echo "SELECT 1 AS created FROM churn.create_pipeline('p_auto', 'purchases', events => 'events', start_at => now() + interval '1 day') \\gset"
	echo "SELECT 1 AS created FROM churn.create_pipeline('p_bgnbd', 'purchases', model => 'bgnbd', events => 'events', start_at => now() + interval '1 day') \\gset"
	echo "SELECT name, model, retrain_days FROM churn.pipeline ORDER BY name;"
	echo "\\echo first refreshes (full reads; the auto pipeline trains its first champion)"
	run 0 first_bgnbd p_bgnbd
	run 0 first_auto p_auto
	echo "VACUUM ANALYZE churn.pipeline_customer, churn.pipeline_warning, churn.pipeline_queue, churn.pipeline_event_queue, churn.pipeline_run, churn.pipeline_tier_change, churn.pipeline;"
	for rep in $(seq 1 "$repeat"); do
		echo "\\echo rep $rep"
		# (1) the daily refresh of each, alternating which goes first
		newday "$rep"
		if [ $((rep % 2)) = 1 ]; then
			run "$rep" auto_daily p_auto
			run "$rep" bgnbd_daily p_bgnbd
		else
			run "$rep" bgnbd_daily p_bgnbd
			run "$rep" auto_daily p_auto
		fi
		# (2) the next day the champion is due for retraining
		if [ "$rep" -le "$retrains" ]; then
			newday "$rep"
			run "$rep" bgnbd_daily2 p_bgnbd
			echo "UPDATE churn.pipeline SET auto_trained_on = auto_trained_on - retrain_days WHERE name = 'p_auto';"
			run "$rep" auto_retrain p_auto
		fi
		echo "VACUUM ANALYZE purchases, events;"
		echo "VACUUM ANALYZE churn.pipeline_customer, churn.pipeline_warning, churn.pipeline_queue, churn.pipeline_event_queue, churn.pipeline_run, churn.pipeline_tier_change, churn.pipeline;"
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
-- the share of a run spent in a function: median over the repetitions
CREATE FUNCTION pg_temp.share(n text, fn text) RETURNS float8 LANGUAGE sql STABLE AS $$
    SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY coalesce(f.total_ms, 0) / 1000 / t.seconds)
    FROM bench_times t LEFT JOIN bench_fn f ON f.rep = t.rep AND f.name = t.name AND f.funcname = fn
    WHERE t.name = n $$;
CREATE FUNCTION pg_temp.fn_s(n text, fn text) RETURNS float8 LANGUAGE sql STABLE AS $$
    SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY coalesce(f.total_ms, 0) / 1000)
    FROM bench_times t LEFT JOIN bench_fn f ON f.rep = t.rep AND f.name = t.name AND f.funcname = fn
    WHERE t.name = n $$;
\echo '== medians (seconds)'
SELECT round(pg_temp.m('auto_daily')::numeric, 2) AS auto_daily, round(pg_temp.m('bgnbd_daily')::numeric, 2) AS bgnbd_daily,
       round(pg_temp.m('bgnbd_daily2')::numeric, 2) AS bgnbd_daily2, round(pg_temp.m('auto_retrain')::numeric, 2) AS auto_retrain,
       round(pg_temp.fn_s('auto_retrain', 'auto_train')::numeric, 2) AS "of it auto_train",
       round(pg_temp.m('first_auto')::numeric, 2) AS first_auto, round(pg_temp.m('first_bgnbd')::numeric, 2) AS first_bgnbd,
       round(pg_temp.fn_s('first_auto', 'auto_train')::numeric, 2) AS "first_auto: auto_train";
\echo '== phases and models of the runs (ms)'
SELECT rep, name, mode, event_mode, round(merge_ms::numeric) AS merge_ms, round(score_ms::numeric) AS score_ms,
       round(finish_ms::numeric) AS finish_ms, round((1000 * extract(epoch FROM duration))::numeric) AS run_ms,
       new_purchase_rows AS new_rows, new_event_rows AS new_events, customers_merged AS merged, customers_scored AS scored,
       snapshot_rows_written AS written, tier_changes, alerts_raised AS alerts, model_used
FROM bench_runs ORDER BY run_id;
\echo '== model notes'
SELECT rep, name, model_note FROM bench_runs ORDER BY run_id;
\echo '== champions registered'
SELECT name, kind, metrics ->> 'champion' AS champion, metrics -> 'validation_auc' AS validation_auc,
       metrics ->> 'training_rows' AS training_rows, metrics -> 'skipped' AS skipped, metrics ->> 'replaced' AS replaced,
       pg_column_size(xgb) AS xgb_bytes_stored
FROM churn.model WHERE name LIKE 'p\_auto\_auto\_v%' ORDER BY trained_at;
\echo '== time in the extension''s PL/pgSQL functions (median ms over the repetitions; total includes callees)'
SELECT f.name, f.funcname, max(f.calls) AS calls, round(percentile_disc(0.5) WITHIN GROUP (ORDER BY f.total_ms)::numeric) AS total_ms,
       round(percentile_disc(0.5) WITHIN GROUP (ORDER BY f.self_ms)::numeric) AS self_ms,
       round((100 * percentile_disc(0.5) WITHIN GROUP (ORDER BY f.total_ms / 1000 / t.seconds))::numeric, 1) AS "% of run"
FROM bench_fn f JOIN bench_times t USING (rep, name)
WHERE f.name IN ('auto_daily', 'bgnbd_daily', 'auto_retrain')
GROUP BY 1, 2 HAVING percentile_disc(0.5) WITHIN GROUP (ORDER BY f.total_ms / 1000 / t.seconds) >= 0.01
ORDER BY 1, 4 DESC;
\echo '== ratios (of medians)'
SELECT round((pg_temp.m('auto_daily') / pg_temp.m('bgnbd_daily'))::numeric, 2) AS "auto/bgnbd daily (<=2)",
       round(pg_temp.m('auto_retrain')::numeric, 1) AS "retrain s (<=60)",
       round((100 * pg_temp.share('auto_retrain', 'auto_train'))::numeric, 1) AS "% in auto_train",
       round((pg_temp.m('auto_retrain') / pg_temp.m('auto_daily'))::numeric, 2) AS "retrain/auto daily",
       round((pg_temp.m('auto_retrain') / pg_temp.m('bgnbd_daily2'))::numeric, 2) AS "retrain/bgnbd daily2",
       round((pg_temp.m('first_auto') / pg_temp.m('first_bgnbd'))::numeric, 2) AS "first auto/bgnbd";
SQL
} >"$script"

cw_log "timing (${repeat}x each)"
cw_psql -f "$script"
rm -f "$script"

# --- profile --------------------------------------------------------------------
# One more (untimed) daily refresh of each pipeline and one retrain with
# auto_explain on the nested statements; the plans come back as WARNINGs
# (auto_explain.log_level).  Durations of nested statements include those
# of the statements they call.
if [ "$profile" = 1 ]; then
	cw_log "profile: statements over ${profile_ms} ms"
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
INSERT INTO purchases (customer_id, ts, amount, batch) SELECT *, 99 FROM new_rows;
INSERT INTO events (customer_id, ts, kind, rating, batch) SELECT *, 99 FROM new_events;
UPDATE churn.pipeline SET as_of = as_of - 1 WHERE name IN ('p_auto', 'p_bgnbd');
\echo '######## auto_daily'
SELECT mode, merge_ms, score_ms, finish_ms, model_used FROM churn.refresh('p_auto');
\echo '######## bgnbd_daily'
SELECT mode, merge_ms, score_ms, finish_ms, model_used FROM churn.refresh('p_bgnbd');
INSERT INTO purchases (customer_id, ts, amount, batch) SELECT *, 99 FROM new_rows;
INSERT INTO events (customer_id, ts, kind, rating, batch) SELECT *, 99 FROM new_events;
UPDATE churn.pipeline SET as_of = as_of - 1 WHERE name IN ('p_auto', 'p_bgnbd');
UPDATE churn.pipeline SET auto_trained_on = auto_trained_on - retrain_days WHERE name = 'p_auto';
\echo '######## auto_retrain'
SELECT mode, merge_ms, score_ms, finish_ms, model_used, model_note FROM churn.refresh('p_auto');
SQL
	# the statements, longest first per refresh: duration and the first line
	# of the query text
	echo
	echo "== statements over ${profile_ms} ms (durations include nested statements)"
	awk '/^######## / {sec = $2; next}
	     /duration: [0-9.]+ ms/ {match($0, /duration: [0-9.]+/); d = substr($0, RSTART + 10, RLENGTH - 10); want = 1; next}
	     want && /Query Text:/ {q = $0; sub(/.*Query Text: */, "", q); if (q == "") {getline q}
	                            gsub(/^[ \t]+/, "", q); printf "%s\t%10.0f ms\t%.150s\n", sec, d, q; want = 0}' "$out" |
		sort -t$'\t' -k1,1 -k2,2nr
	echo
	echo "== plans"
	# query texts cut to their first 3 lines, CONTEXT lines dropped
	awk '/^CONTEXT:/ {ctx = 1; next}
	     ctx && /^(\t|  |PL\/pgSQL|SQL statement|SQL function)/ {next}
	     {ctx = 0}
	     /Query Text:/ {q = 1; n = 0; print; next}
	     q && /^(WARNING|[A-Z][A-Za-z ]+  \(cost|[A-Z][A-Za-z ]+  \(actual|[A-Z][A-Za-z ]+ on |CTE |InitPlan|  ->)/ {q = 0}
	     q {if (n++ < 3) print; next}
	     {print}' "$out"
	rm -f "$out"
fi
