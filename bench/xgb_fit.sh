#!/usr/bin/env bash
# Benchmark: churn.xgb_fit on 1M rows x 30 features (about 10 % missing)
# against python-xgboost's xgboost.train with the same parameters and thread
# count on the same data in memory, measured side by side in one run on a
# throwaway cluster.  The SQL time includes reading the rows from the table
# into the aggregate; the python time includes building the DMatrix from the
# numpy array.  Prints SQL time / python time ratios.
#   BENCH_ROWS=1000000 BENCH_FEATURES=30 BENCH_ROUNDS=10 BENCH_THREADS=2 \
#   BENCH_METHOD=hist BENCH_REPEAT=3 bench/xgb_fit.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

cw_bench_cluster
"$CW_PYTHON" "$CW_ROOT/bench/xgb_fit.py"
