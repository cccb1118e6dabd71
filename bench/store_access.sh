#!/usr/bin/env bash
# Benchmark: what per-store access (parts 985, 986) costs a query of the
# warning and alert views, measured side by side in one run on a throwaway
# cluster.  One pipeline of BENCH_CUSTOMERS customers in BENCH_STORES stores
# (three purchases each; a model that puts every customer in red, so every
# customer has an alert); each query runs BENCH_REPEAT times, interleaved,
# and the fastest execution time counts (EXPLAIN ANALYZE, timing off; the
# tables analyzed first):
#   SELECT * FROM churn.current_warnings / churn.open_alerts (part 986)
#   against copies of the views as they were before part 986 (parts 950 and
#   945, re-created from those files under schema bench)
# as a superuser (the pipeline's owner), as a member of churn_reader, and as
# a store role granted one store (the old views show it nothing, or
# everything for open_alerts, which had no check).  Prints every figure and
# the ratios new / old for the owner and the reader (goal <= 1.2).
#
#   BENCH_CUSTOMERS=100000 BENCH_STORES=20 BENCH_REPEAT=9 bench/store_access.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

customers=${BENCH_CUSTOMERS:-100000}
stores=${BENCH_STORES:-20}
repeat=${BENCH_REPEAT:-9}

cw_bench_cluster

cw_log "one pipeline of $customers customers in $stores stores"
cw_psql -v customers="$customers" -v stores="$stores" <<'SQL'
CREATE TABLE sales (customer_id text, ts timestamptz, amount numeric, shop text);
INSERT INTO sales SELECT 'c' || c, now() - interval '1 day' * (c % 300 + 10 * k), 10 + k, 's' || (c % :stores)
FROM generate_series(1, :customers) c, generate_series(1, 3) k;
SELECT churn.register_model('bench_red', ROW(ARRAY[10, 0]::float8[], NULL, NULL, NULL, NULL, NULL)::churn.logit,
                            ARRAY['x'], 90);
SELECT pipeline FROM churn.create_pipeline('bench', 'sales', model => 'bench_red', store_col => 'shop',
                                           start_at => now() + interval '1 day');
SELECT status FROM churn.refresh('bench');
CREATE ROLE bench_reader; GRANT churn_reader TO bench_reader;
CREATE ROLE bench_staff; GRANT churn_store TO bench_staff;
SELECT churn.grant_store('bench_staff', 'bench', 's1');
CREATE SCHEMA bench;
ANALYZE;
SQL
# the views before part 986, from the parts that defined them
python3 - "$CW_ROOT" <<'PY' | cw_psql
import sys
root = sys.argv[1]
for part, view in (("950_pipeline_views.sql", "current_warnings"), ("945_retention_views.sql", "open_alerts")):
    s = open(f"{root}/sql/install/{part}").read()
    d = s[s.index(f"CREATE OR REPLACE VIEW churn.{view}"):]
    print(d[:d.index(";") + 1].replace(f"churn.{view}", f"bench.{view}"))
print("GRANT USAGE ON SCHEMA bench TO PUBLIC; GRANT SELECT ON ALL TABLES IN SCHEMA bench TO PUBLIC;")
PY

views="churn.current_warnings bench.current_warnings churn.open_alerts bench.open_alerts"
declare -A best rows
for role in postgres bench_reader bench_staff; do
	for v in $views; do best[$role $v]=; done
	for ((i = 0; i < repeat; i++)); do
		for v in $views; do
			t=$(cw_psql -At -c "SET ROLE $role" \
				-c "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) SELECT * FROM $v" | sed -n 's/Execution Time: \([0-9.]*\) ms/\1/p')
			if [ -z "${best[$role $v]}" ] || awk -v a="$t" -v b="${best[$role $v]}" 'BEGIN { exit !(a < b) }'; then
				best[$role $v]=$t
			fi
		done
	done
	for v in $views; do
		rows[$role $v]=$(cw_psql -At -c "SET ROLE $role" -c "SELECT count(*) FROM $v")
		printf '%-13s %-24s %9.1f ms  %7d rows\n' "$role" "$v" "${best[$role $v]}" "${rows[$role $v]}"
	done
done
echo
for role in postgres bench_reader; do
	for v in current_warnings open_alerts; do
		awk -v r="$role" -v v="$v" -v n="${best[$role churn.$v]}" -v o="${best[$role bench.$v]}" \
			'BEGIN { printf "%-13s %-17s new / before part 986: %.2fx (goal <= 1.2)\n", r, v, n / o }'
	done
done
