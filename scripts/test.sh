#!/usr/bin/env bash
# Run the whole churn_warning test suite on a throwaway cluster:
#   pg_regress  test/sql/*.sql against test/expected/*.out (the SQL surface)
#   TAP         test/tap/*.pl with PostgreSQL::Test::Cluster (worker, restarts)
#   reference   test/reference/check_*  (outside references: CDNOW, statsmodels,
#               xgboost), each an executable that exits 0 when it agrees
# Installs missing packages, builds and installs the extension first.
# Ends with "N passed, M failed"; exits non-zero on any failure.
#
# Usage: scripts/test.sh [regress [TEST...] | tap [FILE...] | reference [FILE...]]
# (no argument: everything)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

what=${1:-all}
[ $# -gt 0 ] && shift
case $what in all | regress | tap | reference) ;; *) cw_die "usage: $0 [regress|tap|reference] [names...]" ;; esac

cw_need_packages "${CW_BUILD_PACKAGES[@]}" libipc-run-perl \
	python3 python3-psycopg2 python3-numpy python3-scipy python3-statsmodels python3-sklearn python3-xgboost \
	nodejs chromium faketime
cw_build_install
cw_stage_data_for_server
trap cw_cleanup EXIT

passed=0
failed=0
failures=()
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); failures+=("$1"); }

run_regress() {
	local tests=("$@") out
	cw_start_cluster
	cw_log "pg_regress"
	out=$(mktemp)
	# pg_regress writes results/ and regression.diffs into test/ (--outputdir=test).
	local rc=0 before=$((passed + failed))
	make -C "$CW_ROOT" -s installcheck PG_CONFIG="$CW_PGBIN/pg_config" \
		${tests[@]:+REGRESS="${tests[*]}"} >"$out" 2>&1 || rc=$?
	cat "$out"
	local name status
	while read -r name status; do
		if [ "$status" = ok ]; then pass; else fail "regress/$name"; fi
	done < <(sed -nE 's/^(test|     ) *([A-Za-z0-9_]+) +\.\.\. +(ok|FAILED|failed).*/\2 \3/p; s/^(ok|not ok) +[0-9]+ +[-+] +([A-Za-z0-9_]+) .*/\2 \1/p' "$out" |
		sed -E 's/ not$/ FAILED/; s/ not ok$/ FAILED/')
	# pg_regress that failed before running any test (say, CREATE EXTENSION failed)
	if [ "$rc" -ne 0 ] && [ $((passed + failed)) -eq "$before" ]; then fail "regress/setup"; fi
	if grep -q 'regression.diffs' "$out" && [ -f "$CW_ROOT/test/regression.diffs" ]; then
		head -200 "$CW_ROOT/test/regression.diffs"
	fi
	rm -f "$out"
	cw_stop_cluster
}

run_tap() {
	local files=("$@") f
	[ ${#files[@]} -gt 0 ] || mapfile -t files < <(ls "$CW_ROOT"/test/tap/*.pl 2>/dev/null || true)
	[ ${#files[@]} -gt 0 ] || return 0
	local perl5=/usr/lib/postgresql/$CW_PGVER/lib/pgxs/src/test/perl
	# the Citus test needs Citus in this server: build it once from the vendored source
	local citus=0 crc=0
	if printf '%s\n' "${files[@]}" | grep -q '050_citus'; then
		cw_build_citus || crc=$?
		if [ "$crc" -eq 0 ]; then citus=1; fi
	fi
	for f in "${files[@]}"; do
		if [ "$crc" -eq 2 ] && [ "$(basename "$f")" = 050_citus.pl ]; then
			fail "tap/050_citus.pl (Citus build)"
			continue
		fi
		[ -f "$f" ] || f=$CW_ROOT/test/tap/$f
		local tdir
		tdir=$(cw_tempdir tap)
		cw_log "TAP $(basename "$f")"
		# prove runs as the cluster user, which may not read the clone: give it a copy
		cp "$f" "$tdir/" && chmod a+r "$tdir/$(basename "$f")"
		if (cd "$tdir" && cw_as_pg env PATH="$PATH" PERL5LIB="$perl5" TESTDIR="$tdir" \
			PG_REGRESS=/usr/lib/postgresql/$CW_PGVER/lib/pgxs/src/test/regress/pg_regress \
			CHURN_DATA_DIR="$CW_DATA_DIR" CW_ROOT="$CW_ROOT" CW_CITUS=$citus PGHOST= PGPORT= PGUSER= \
			prove --verbose --timer "$tdir/$(basename "$f")"); then
			pass
			rm -rf "$tdir"
		else
			fail "tap/$(basename "$f")"
			find "$tdir" -name '*.log' -exec tail -n 40 {} + 2>/dev/null | tail -n 120 || true
			rm -rf "$tdir"
		fi
	done
}

run_reference() {
	local files=("$@") f
	[ ${#files[@]} -gt 0 ] || mapfile -t files < <(ls "$CW_ROOT"/test/reference/check_* 2>/dev/null || true)
	[ ${#files[@]} -gt 0 ] || return 0
	cw_start_cluster
	cw_psql -d postgres -c 'CREATE DATABASE churn_reference'
	for f in "${files[@]}"; do
		[ -f "$f" ] || f=$CW_ROOT/test/reference/$f
		cw_log "reference $(basename "$f")"
		if PGDATABASE=churn_reference CW_PYTHON=$CW_PYTHON "$f"; then pass; else fail "reference/$(basename "$f")"; fi
	done
	cw_stop_cluster
}

started=$(date +%s)
case $what in
regress) run_regress "$@" ;;
tap) run_tap "$@" ;;
reference) run_reference "$@" ;;
all)
	run_regress
	run_tap
	run_reference
	;;
esac

echo
echo "suite took $(($(date +%s) - started)) s"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
