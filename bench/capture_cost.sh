#!/usr/bin/env bash
# Benchmark: what a pipeline's capture costs the writers of its source.
# Two identical sales tables (id bigserial primary key, customer_id text,
# ts timestamptz, amount numeric(12,2), each with its own sequence) on a
# throwaway cluster; one of them
# is the source of a pipeline (capture 'trigger', nothing due: start_at a
# day ahead), the other has none.  Three workloads, each run on both tables
# in BENCH_ROUNDS alternating rounds (plain first in odd rounds, piped first
# in even ones), both tables and the queue emptied before every run:
#   single  pgbench, BENCH_CLIENTS clients, BENCH_SECONDS s: one INSERT of
#           one row per transaction (a checkout)
#   multi   the same with BEGIN, 100 one-row INSERTs, COMMIT per transaction
#   bulk    one client, BENCH_BULK_TX transactions of one
#           INSERT ... SELECT of BENCH_BULK_ROWS rows (a nightly load)
# Prints every run, the medians and the ratios side by side:
#   single, multi: plain tps / piped tps   (goal <= 1.15)
#   bulk:          piped ms / plain ms     (goal <= 1.5)
# and, beside them, the same ratio of the server's CPU time per transaction
# (every process of the cluster: backends, WAL writer, autovacuum; from
# /proc, clock ticks), which other load on a shared machine disturbs much
# less than throughput.  Checks after each piped run that the queue holds
# exactly the rows inserted (no purchase lost or doubled).
#
#   BENCH_CLIENTS=4 BENCH_SECONDS=10 BENCH_ROUNDS=3 BENCH_BULK_ROWS=20000 BENCH_BULK_TX=10 \
#   BENCH_WORKLOADS="single multi bulk" bench/capture_cost.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

clients=${BENCH_CLIENTS:-4}
seconds=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-3}
bulk_rows=${BENCH_BULK_ROWS:-20000}
bulk_tx=${BENCH_BULK_TX:-10}
workloads=${BENCH_WORKLOADS:-single multi bulk}

cw_bench_cluster

cw_psql <<'SQL'
CREATE TABLE plain (id bigserial PRIMARY KEY, customer_id text NOT NULL, ts timestamptz NOT NULL,
                    amount numeric(12,2));
CREATE TABLE piped (id bigserial PRIMARY KEY, customer_id text NOT NULL, ts timestamptz NOT NULL,
                    amount numeric(12,2));
SELECT 1 AS created FROM churn.create_pipeline('cap', 'piped', start_at => now() + interval '1 day') \gset
SQL

work=$(cw_tempdir bench)
trap 'rm -rf "$work"; cw_cleanup' EXIT
cat >"$work/single.sql" <<'EOF'
\set c random(1, 100000)
INSERT INTO :tbl (customer_id, ts, amount) VALUES ('c' || :c, now(), round((random() * 100)::numeric, 2));
EOF
{
	echo 'BEGIN;'
	for _ in $(seq 100); do
		echo '\set c random(1, 100000)'
		echo "INSERT INTO :tbl (customer_id, ts, amount) VALUES ('c' || :c, now(), round((random() * 100)::numeric, 2));"
	done
	echo 'COMMIT;'
} >"$work/multi.sql"
cat >"$work/bulk.sql" <<EOF
INSERT INTO :tbl (customer_id, ts, amount)
SELECT 'c' || (1 + (random() * 99999)::int), now() - random() * interval '700 days',
       round((random() * 100)::numeric, 2)
FROM generate_series(1, $bulk_rows);
EOF
chmod -R a+r "$work"

# Empty both tables and the queue, untimed.
reset_tables() {
	cw_psql -c 'TRUNCATE plain, piped' -c 'DELETE FROM churn.pipeline_queue' -c 'VACUUM plain, piped, churn.pipeline_queue' \
		-c 'CHECKPOINT' >/dev/null
}

# CPU time (clock ticks) the cluster's processes used so far: the
# postmaster, its live children and the children it has reaped.
cluster_cpu() {
	local pm total pid
	pm=$(head -1 "$CW_CLUSTER_DIR/data/postmaster.pid")
	total=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat")
	for pid in $(pgrep -P "$pm"); do
		total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
	done
	echo "$total"
}

# One run: prints tps (single, multi) or the average transaction latency in
# ms (bulk), and the cluster's CPU ms per transaction.
run() {
	local workload=$1 tbl=$2 out cpu0 cpu1 value
	cpu0=$(cluster_cpu)
	if [ "$workload" = bulk ]; then
		out=$(pgbench -n -c 1 -t "$bulk_tx" -D tbl="$tbl" -f "$work/bulk.sql" 2>&1) || { echo "$out" >&2; exit 1; }
		value=$(awk '/^latency average/ {print $4}' <<<"$out")
	else
		out=$(pgbench -n -c "$clients" -j "$clients" -T "$seconds" -D tbl="$tbl" -f "$work/$workload.sql" 2>&1) ||
			{ echo "$out" >&2; exit 1; }
		value=$(awk '/^tps = / {print $3}' <<<"$out")
	fi
	sleep 0.5	# the backends exit and are reaped
	cpu1=$(cluster_cpu)
	awk -v v="$value" -v c=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" \
		'/^number of transactions actually processed/ {printf "%s %.4f\n", v, c * 1000 / hz / $NF}' <<<"$out"
}

# Every piped row must be in the queue exactly once.
check_queue() {
	local bad
	# (0.3.0 writes batches: customer_ids holds the rows of one queue row; 0.2.0 has no such column)
	bad=$(cw_psql -At -c "SELECT (SELECT count(*) FROM piped)
	                             - (SELECT coalesce(sum(coalesce(jsonb_array_length(to_jsonb(q) -> 'customer_ids'), 1)), 0)
	                                FROM churn.pipeline_queue q WHERE NOT rebuild)")
	[ "$bad" = 0 ] || cw_die "queue and source differ by $bad rows"
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

declare -A results cpu
for workload in $workloads; do
	for round in $(seq "$rounds"); do
		if [ $((round % 2)) = 1 ]; then order="plain piped"; else order="piped plain"; fi
		for tbl in $order; do
			reset_tables
			read -r v c < <(run "$workload" "$tbl")
			[ "$tbl" = piped ] && check_queue
			results[$workload.$tbl]="${results[$workload.$tbl]:-} $v"
			cpu[$workload.$tbl]="${cpu[$workload.$tbl]:-} $c"
			printf '%-6s round %d %-5s %12s %s   cpu %s ms/tx\n' "$workload" "$round" "$tbl" "$v" \
				"$([ "$workload" = bulk ] && echo ms || echo tps)" "$c"
		done
	done
done

echo
printf '%-7s %14s %14s %7s %6s | %12s %12s %7s\n' workload plain piped ratio goal 'plain cpu/tx' 'piped cpu/tx' ratio
for workload in $workloads; do
	# shellcheck disable=SC2086
	p=$(median ${results[$workload.plain]})
	# shellcheck disable=SC2086
	q=$(median ${results[$workload.piped]})
	# shellcheck disable=SC2086
	pc=$(median ${cpu[$workload.plain]})
	# shellcheck disable=SC2086
	qc=$(median ${cpu[$workload.piped]})
	if [ "$workload" = bulk ]; then
		unit=ms; goal=1.5; ratio=$(awk -v p="$p" -v q="$q" 'BEGIN {printf "%.2f", q / p}')
	else
		unit=tps; goal=1.15; ratio=$(awk -v p="$p" -v q="$q" 'BEGIN {printf "%.2f", p / q}')
	fi
	cratio=$(awk -v p="$pc" -v q="$qc" 'BEGIN {printf "%.2f", q / p}')
	printf '%-7s %10.1f %-3s %10.1f %-3s %7s %6s | %9.4f ms %9.4f ms %7s\n' "$workload" "$p" "$unit" "$q" "$unit" \
		"$ratio" "$goal" "$pc" "$qc" "$cratio"
done
