#!/usr/bin/env bash
# Benchmark: churn.xgb_predict over 1M rows with a 100-tree depth-6 model
# against XGBoost's own predict_proba with 2 threads on the same data in
# memory, measured side by side in one run on a throwaway cluster.
#   BENCH_ROWS=1000000 BENCH_FEATURES=20 BENCH_TREES=100 BENCH_DEPTH=6 bench/xgb_predict.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

cw_bench_cluster
"$CW_PYTHON" "$CW_ROOT/bench/xgb_predict.py"
