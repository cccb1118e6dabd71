#!/usr/bin/env bash
# Benchmark of the demo data generator: time to generate about a million
# purchases (churn.demo_purchases) and to load a demo schema
# (churn.demo_load), side by side with a plain SQL baseline that produces
# the same number of purchase-shaped rows from generate_series/random().
#
# Usage: bench/demo_gen.sh [customers]   (default 60000, ~1M purchases)
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

customers=${1:-60000}
cw_bench_cluster

# Best of three runs of a query, in milliseconds.
best_ms() {
	local sql=$1 best= t
	for _ in 1 2 3; do
		t=$(cw_psql -At -c '\timing on' -c "$sql" | sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' | tail -1)
		if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$t; fi
	done
	printf '%s\n' "$best"
}

rows=$(cw_psql -At -c "SELECT count(*) FROM churn.demo_purchases($customers)")
events=$(cw_psql -At -c "SELECT count(*) FROM churn.demo_events($customers)")
gen_ms=$(best_ms "SELECT count(*) FROM churn.demo_purchases($customers)")
ev_ms=$(best_ms "SELECT count(*) FROM churn.demo_events($customers)")
cust_ms=$(best_ms "SELECT count(*) FROM churn.demo_customers($customers)")
base_ms=$(best_ms "SELECT count(*) FROM (SELECT g / 17 AS customer_id, 1 + (g % 10) AS store_id,
    timestamptz '2023-01-01' + random() * interval '730 days' AS ts,
    round((random() * 500)::numeric, 2)::numeric(12,2) AS amount FROM generate_series(1, $rows) g) s")
load_ms=$(cw_psql -At -c '\timing on' -c "SELECT * FROM churn.demo_load('churn_bench_demo', $customers)" |
	sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' | tail -1)

echo
echo "demo generator, $customers customers"
printf '  %-44s %10s rows %10.1f ms  %6.2f M rows/s\n' \
	"churn.demo_purchases" "$rows" "$gen_ms" "$(awk -v r="$rows" -v t="$gen_ms" 'BEGIN{print r/t/1000}')" \
	"baseline: generate_series + random()" "$rows" "$base_ms" "$(awk -v r="$rows" -v t="$base_ms" 'BEGIN{print r/t/1000}')" \
	"churn.demo_events" "$events" "$ev_ms" "$(awk -v r="$events" -v t="$ev_ms" 'BEGIN{print r/t/1000}')" \
	"churn.demo_customers" "$customers" "$cust_ms" "$(awk -v r="$customers" -v t="$cust_ms" 'BEGIN{print r/t/1000}')"
printf '  ratio demo_purchases / baseline: %.2f\n' "$(awk -v a="$gen_ms" -v b="$base_ms" 'BEGIN{print a/b}')"
printf '  churn.demo_load (tables, keys, indexes, ANALYZE): %.1f ms\n' "$load_ms"
cw_stop_cluster
