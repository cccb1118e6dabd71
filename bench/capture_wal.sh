#!/usr/bin/env bash
# Benchmark: the WAL a pipeline's capture adds to each single-row INSERT
# transaction of its source.  On a throwaway cluster: a plain table and a
# pipeline source (capture 'trigger'), BENCH_TX one-row INSERT transactions
# into each, and the WAL inserted per transaction (pg_current_wal_insert_lsn
# before and after); then the same into the source with the capture queue
# made logged again (as before part 933), for the comparison.  Prints bytes
# per transaction and the ratios piped / plain.
#
#   BENCH_TX=2000 bench/capture_wal.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

tx=${BENCH_TX:-2000}
cw_bench_cluster

cw_psql -q <<'SQL'
CREATE EXTENSION IF NOT EXISTS churn_warning;
CREATE TABLE plain (customer_id text, ts timestamptz, amount numeric);
CREATE TABLE piped (customer_id text, ts timestamptz, amount numeric);
SELECT pipeline FROM churn.create_pipeline('p', 'piped', model => 'bgnbd', start_at => '2100-01-01');
CREATE TABLE wal_per_tx (name text, queue text, bytes float8);
SQL

# one INSERT per transaction (psql autocommit), WAL per transaction
measure() {
	local table=$1 name=$2 lsn
	lsn=$(cw_psql -At -c "SELECT pg_current_wal_insert_lsn()")
	for i in $(seq 1 "$tx"); do echo "INSERT INTO $table VALUES ('c$i', now(), 10);"; done | cw_psql -q
	cw_psql -q -c "INSERT INTO wal_per_tx SELECT '$name',
	    (SELECT CASE relpersistence WHEN 'u' THEN 'unlogged' ELSE 'logged' END FROM pg_class
	     WHERE oid = 'churn.pipeline_queue'::regclass),
	    (pg_current_wal_insert_lsn() - '$lsn'::pg_lsn) / $tx.0"
}
cw_log "$tx single-row transactions into each table"
measure plain plain
measure piped piped
cw_psql -q -c "ALTER TABLE churn.pipeline_queue SET LOGGED"
measure piped piped_logged_queue
cw_psql <<'SQL'
\pset footer off
SELECT name, queue, round(bytes) AS wal_bytes_per_tx,
       round((bytes / (SELECT bytes FROM wal_per_tx WHERE name = 'plain'))::numeric, 2) AS ratio_to_plain
FROM wal_per_tx ORDER BY bytes;
SQL
