#!/usr/bin/env bash
# Backtests of the rule model, BG/NBD and the logistic model on the demo
# chain (against its recorded ground truth), the CDNOW sample and UCI Online
# Retail, on a throwaway cluster; prints the summary table that
# docs/reference/backtest.md quotes.
#
# Usage: scripts/backtests.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cw_need_packages "${CW_BUILD_PACKAGES[@]}"
cw_build_install
cw_start_cluster
cw_psql -d postgres -c 'CREATE DATABASE churn_backtests' >/dev/null
PGDATABASE=churn_backtests psql -X -v ON_ERROR_STOP=1 -v datadir="$CW_DATA_DIR" -f "$CW_ROOT/scripts/backtests.sql"
