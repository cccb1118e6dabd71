#!/usr/bin/env bash
# Benchmark: churn.logit_fit on 1M rows x 20 features against scikit-learn's
# LogisticRegression fit on the same data in memory, measured side by side in
# one run on a throwaway cluster.  Prints SQL time / sklearn time ratios.
#   BENCH_ROWS=1000000 BENCH_FEATURES=20 BENCH_REPEAT=3 bench/logit_fit.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

cw_bench_cluster
"$CW_PYTHON" "$CW_ROOT/bench/logit_fit.py"
