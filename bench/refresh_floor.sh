#!/usr/bin/env bash
# Benchmark: the first full refresh against the least any refresh must do.
# One throwaway cluster, the growth benches' source (bench/growth_data.sql:
# BENCH_CUSTOMERS customers, about BENCH_PER_CUSTOMER purchases each, random
# order); BENCH_REPEAT rounds, round robin:
#   bare   the bare feature aggregate, default plan:
#          SELECT customer_id, churn.features(churn.history_agg(ts, amount), current_date) ... GROUP BY 1
#   full   the first churn.refresh of a new pipeline (model bgnbd), then the
#          pipeline dropped (untimed)
#   floor  what part E of the spec leaves no refresh without, written as
#          plain SQL with nothing else (no reject check, no lifecycle, tier,
#          reasons, tier changes or alerts, no features kept), in three timed
#          statements:
#            hist  every customer's history into a table keyed like
#                  churn.pipeline_customer (unlogged, the key shared by all
#                  pipelines, so a refresh inserts into an index)
#            fit   the BG/NBD fit over those histories
#            snap  a snapshot row per customer, keyed like
#                  churn.pipeline_warning (WAL-logged, fillfactor 70), with
#                  p_churn scored from the features and a code
#          then both tables emptied (untimed); and, as a bound no shared
#          table allows, hist_ctas: the histories written by CREATE TABLE AS
#          (which PostgreSQL may run in parallel) and indexed afterwards
# The first refresh's phases (merge_ms, score_ms, finish_ms of
# churn.pipeline_runs) are printed too.
# Prints every measurement, the medians, each step / bare, floor / bare and
# full / bare (the goal of issue "Scale" is full / bare <= 2).
#
#   BENCH_CUSTOMERS=1000000 BENCH_REPEAT=2 bench/refresh_floor.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

customers=${BENCH_CUSTOMERS:-1000000}
per_customer=${BENCH_PER_CUSTOMER:-10}
repeat=${BENCH_REPEAT:-2}

cw_bench_cluster
cw_log "generating about $((customers * per_customer)) purchases of $customers customers"
cw_psql -v customers="$customers" -v per="$per_customer" -f "$CW_ROOT/bench/growth_data.sql"
cw_psql <<'SQL'
CREATE TABLE floor_run (name text, rep int, seconds float8);
CREATE UNLOGGED TABLE floor_hist (pipeline_id int, customer_id text, history churn.history,
                                  PRIMARY KEY (pipeline_id, customer_id));
CREATE TABLE floor_snap (pipeline_id int, customer_id text, p_churn float8, code text,
                         changed_at timestamptz, run_id bigint,
                         PRIMARY KEY (pipeline_id, customer_id)) WITH (fillfactor = 70);
CREATE TABLE floor_model (bgm churn.model);
SQL

script=$(mktemp)
# time one statement and record it (args: name rep sql)
timed() {
	cat <<SQL
SELECT clock_timestamp() AS t0 \\gset
$3
INSERT INTO floor_run SELECT '$1', $2, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz);
SQL
}
bare="SELECT customer_id, churn.features(churn.history_agg(ts, amount), current_date) AS f FROM purchases GROUP BY 1"
{
	# the pipeline's own window and horizon for the floor's features and model
	echo "SELECT 1 AS created FROM churn.create_pipeline('f', 'purchases', model => 'bgnbd', start_at => now() + interval '1 day') \\gset"
	echo "SELECT window_days AS win, horizon_days AS horizon FROM churn.pipeline WHERE name = 'f' \\gset"
	echo "SELECT churn.drop_pipeline('f') \\gset"
	echo "SELECT count(s) FROM ($bare) s \\gset warm_"
	for rep in $(seq 1 "$repeat"); do
		timed bare "$rep" "SELECT count(s) FROM ($bare) s \\gset res_"
		echo "SELECT 1 AS created FROM churn.create_pipeline('f', 'purchases', model => 'bgnbd', start_at => now() + interval '1 day') \\gset"
		timed full "$rep" "SELECT 1 AS done FROM churn.refresh('f') \\gset"
		echo "INSERT INTO floor_run SELECT 'full: ' || k, $rep, v / 1000 FROM churn.pipeline_runs r, LATERAL (VALUES ('merge', r.merge_ms), ('score', r.score_ms), ('finish', r.finish_ms)) x (k, v) WHERE r.pipeline = 'f';"
		echo "SELECT churn.drop_pipeline('f') \\gset"
		echo "CHECKPOINT;"
		timed hist "$rep" "INSERT INTO floor_hist SELECT 1, customer_id, churn.history_agg(ts, amount) FROM purchases GROUP BY customer_id;"
		timed fit "$rep" "INSERT INTO floor_model SELECT churn.model_adhoc('floor', (SELECT churn.bgnbd_fit(f.x, f.t_x / 7, f.t / 7) FROM floor_hist h CROSS JOIN LATERAL churn.features(h.history, current_date, :win) f WHERE f.first_purchase IS NOT NULL), :horizon);"
		timed snap "$rep" "INSERT INTO floor_snap SELECT 1, h.customer_id, churn.model_score(m.bgm, churn.features(h.history, current_date, :win), NULL), 'N0', now(), 1 FROM floor_hist h, floor_model m;"
		echo "TRUNCATE floor_hist, floor_snap, floor_model;"
		timed hist_ctas "$rep" "CREATE UNLOGGED TABLE floor_hist_ctas AS SELECT 1 AS pipeline_id, customer_id, churn.history_agg(ts, amount) AS history FROM purchases GROUP BY customer_id; ALTER TABLE floor_hist_ctas ADD PRIMARY KEY (pipeline_id, customer_id);"
		echo "DROP TABLE floor_hist_ctas;"
		echo "CHECKPOINT;"
	done
} >"$script"
cw_log "$repeat rounds: bare aggregate, first refresh, floor"
cw_psql -f "$script" >/dev/null
rm -f "$script"

cw_psql <<'SQL'
\pset footer off
\echo
\echo '== per measurement (seconds)'
SELECT name, string_agg(round(seconds::numeric, 2)::text, '  ' ORDER BY rep) AS runs
FROM floor_run GROUP BY 1 ORDER BY min(ctid);
\echo '== medians (seconds) and ratios to the bare aggregate'
WITH m AS (
    SELECT name, percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds) AS s FROM floor_run GROUP BY 1
), w AS (
    SELECT max(s) FILTER (WHERE name = 'bare') AS bare, max(s) FILTER (WHERE name = 'full') AS "full",
           max(s) FILTER (WHERE name = 'hist') AS hist, max(s) FILTER (WHERE name = 'fit') AS fit,
           max(s) FILTER (WHERE name = 'snap') AS snap, max(s) FILTER (WHERE name = 'hist_ctas') AS hist_ctas
    FROM m
)
SELECT round(bare::numeric, 2) AS bare, round("full"::numeric, 2) AS first_refresh,
       round((hist + fit + snap)::numeric, 2) AS floor,
       round((hist / bare)::numeric, 2) AS "hist/bare", round((fit / bare)::numeric, 2) AS "fit/bare",
       round((snap / bare)::numeric, 2) AS "snap/bare",
       round(((hist + fit + snap) / bare)::numeric, 2) AS "floor/bare",
       round(((hist_ctas + fit + snap) / bare)::numeric, 2) AS "floor with hist_ctas/bare",
       round(("full" / bare)::numeric, 2) AS "first refresh/bare (<=2)",
       round(("full" / (hist + fit + snap))::numeric, 2) AS "first refresh/floor"
FROM w;
SQL
