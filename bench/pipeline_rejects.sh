#!/usr/bin/env bash
# Benchmark: what quarantining bad rows (0.3.0, part 921) costs a refresh of
# a clean source.  Side by side in one psql session on a throwaway cluster,
# per repetition, on BENCH_ROWS purchases of BENCH_CUSTOMERS customers (no
# bad row):
#   read_plain    SELECT count(*) FROM churn.pipeline_read(id)
#                 -- the 0.2.0 full read: one history per customer
#   read_checked  SELECT count(*) FROM churn.pipeline_read_purchases(id)
#                 -- the 0.3.0 full read of a refresh: the same, each row
#                 -- checked (churn.pipeline_purchase_reject) and split
#   queue_plain   history_agg over BENCH_QUEUE_ROWS captured rows, grouped
#   queue_checked the same with the reject check and split of
#                 churn.pipeline_merge_queue
# Prints every measurement, the medians and the ratios checked / plain.
#
#   BENCH_CUSTOMERS=200000 BENCH_ROWS=2000000 BENCH_QUEUE_ROWS=200000 BENCH_REPEAT=5 bench/pipeline_rejects.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

customers=${BENCH_CUSTOMERS:-200000}
rows=${BENCH_ROWS:-2000000}
queue_rows=${BENCH_QUEUE_ROWS:-200000}
repeat=${BENCH_REPEAT:-5}

cw_bench_cluster

cw_log "generating $rows purchases for $customers customers"
cw_psql -v customers="$customers" -v rows="$rows" -v queue_rows="$queue_rows" <<'SQL'
SET work_mem = '1GB';
CREATE TABLE purchases AS
SELECT (1 + (g::bigint * 7919) % :customers)::text AS customer_id,
       now() - ((g::bigint * 104729) % 730) * interval '1 day' AS ts,
       round((5 + (g % 97))::numeric, 2) AS amount
FROM generate_series(1, :rows) g;
VACUUM ANALYZE purchases;
CREATE TABLE queued AS
SELECT customer_id, (ts AT TIME ZONE 'UTC')::date AS day, amount::float8 AS amount
FROM purchases LIMIT :queue_rows;
VACUUM ANALYZE queued;
SELECT 1 AS created FROM churn.create_pipeline('bench', 'purchases', time_zone => 'UTC',
                                               start_at => now() + interval '1 day') \gset
SQL

cw_log "timing ($repeat x each, alternating)"
{
	echo "SET work_mem = '1GB';"
	echo "SET max_parallel_workers_per_gather = 0;"
	echo "CREATE TEMP TABLE t (name text, rep int, s float8);"
	echo "SELECT pipeline_id AS id FROM churn.pipeline WHERE name = 'bench' \\gset"
	for ((r = 1; r <= repeat; r++)); do
		for what in plain checked; do
			if [ $what = plain ]; then
				read="SELECT count(*) FROM churn.pipeline_read(:id)"
				queue="SELECT count(*) FROM (SELECT q.customer_id, churn.history_agg(q.day, q.amount) FROM queued q GROUP BY 1) d"
			else
				read="SELECT count(*) FROM churn.pipeline_read_purchases(:id)"
				queue="SELECT count(*) FROM (SELECT n.customer_id, churn.history_agg(n.day, n.amount) FROM (SELECT q.*, churn.pipeline_purchase_reject(q.customer_id, q.day, q.amount) AS w FROM queued q) n WHERE n.w IS NULL GROUP BY 1) d"
			fi
			echo "SELECT clock_timestamp() AS t0 \\gset"
			echo "$read \\g /dev/null"
			echo "INSERT INTO t SELECT 'read_$what', $r, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz);"
			echo "SELECT clock_timestamp() AS t0 \\gset"
			echo "$queue \\g /dev/null"
			echo "INSERT INTO t SELECT 'queue_$what', $r, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz);"
		done
	done
	echo "\\echo == per measurement (seconds)"
	echo "SELECT name, string_agg(round(s::numeric, 3)::text, '  ' ORDER BY rep) AS runs FROM t GROUP BY 1 ORDER BY 1;"
	echo "\\echo == medians (seconds) and ratios checked / plain"
	echo "WITH m AS (SELECT name, percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS s FROM t GROUP BY 1)
SELECT round((SELECT s FROM m WHERE name = 'read_plain')::numeric, 3) AS read_plain,
       round((SELECT s FROM m WHERE name = 'read_checked')::numeric, 3) AS read_checked,
       round(((SELECT s FROM m WHERE name = 'read_checked') / (SELECT s FROM m WHERE name = 'read_plain'))::numeric, 3) AS read_ratio,
       round((SELECT s FROM m WHERE name = 'queue_plain')::numeric, 3) AS queue_plain,
       round((SELECT s FROM m WHERE name = 'queue_checked')::numeric, 3) AS queue_checked,
       round(((SELECT s FROM m WHERE name = 'queue_checked') / (SELECT s FROM m WHERE name = 'queue_plain'))::numeric, 3) AS queue_ratio;"
} | cw_psql -q
