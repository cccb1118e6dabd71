#!/usr/bin/env bash
# churn_warning demo, end to end: installs what is missing, builds and
# installs the extension, starts a throwaway cluster with the worker
# preloaded, loads the demo pet-supply chain, computes features for every
# customer, prints a report, and lets a pipeline refresh the warnings. Leaves nothing running, unless --keep.
#
# Usage: scripts/demo.sh [--keep]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

keep=0
[ "${1:-}" = --keep ] && keep=1

cw_need_packages "${CW_BUILD_PACKAGES[@]}"
cw_build_install
cw_start_cluster
cw_psql -d postgres -c 'CREATE DATABASE churn_demo' >/dev/null
PGDATABASE=churn_demo psql -X -v ON_ERROR_STOP=1 -f "$CW_ROOT/scripts/demo.sql"
PGDATABASE=churn_demo psql -X -v ON_ERROR_STOP=1 -f "$CW_ROOT/scripts/demo_warnings.sql"
PGDATABASE=churn_demo psql -X -v ON_ERROR_STOP=1 -f "$CW_ROOT/scripts/demo_pipeline.sql"

# The warning board of the demo pipeline: one HTML file that opens offline (docs/board.md).
echo
echo '== The warning board: what a store manager opens in the morning'
PGDATABASE=churn_demo "$CW_ROOT/scripts/board.sh" --pipeline pet_chain --out "${CW_BOARD_OUT:-$PWD/board.html}"
echo 'Open it in any browser; scripts/board.sh --backtest adds the model checks (about a minute more).'

if [ "$keep" = 1 ]; then
	trap - EXIT
	pg_ctl_cmd="$CW_PGBIN/pg_ctl -D $CW_CLUSTER_DIR/data stop"
	cw_is_root && pg_ctl_cmd="runuser -u postgres -- $pg_ctl_cmd"
	cat <<MSG

The cluster keeps running for you to explore:
  connect:  psql -h $PGHOST -p $PGPORT -U postgres churn_demo
  stop:     $pg_ctl_cmd && rm -rf $CW_CLUSTER_DIR
MSG
fi
