#!/usr/bin/python3
"""Benchmark helper for bench/xgb_predict.sh: churn.xgb_predict vs XGBoost.

Trains a binary:logistic XGBClassifier (100 trees, max_depth 6) on 100000
rows, generates N rows x P features (about 10 % missing), loads them into
table bench_xgb through psql \\copy and the model into bench_xgb_model, then
times in one run, alternating:
  * XGBClassifier(n_jobs=2).predict_proba(X) on the data in memory
  * SELECT sum(churn.xgb_predict(m, x)) FROM bench_xgb  (model from a table)
and prints the ratios (SQL time / XGBoost time) and the largest difference
between the two sets of predictions.
Needs PGHOST/PGPORT/PGUSER/PGDATABASE of a database with churn_warning.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import xgboost as xgb

N = int(os.environ.get('BENCH_ROWS', 1000000))
P = int(os.environ.get('BENCH_FEATURES', 20))
TREES = int(os.environ.get('BENCH_TREES', 100))
DEPTH = int(os.environ.get('BENCH_DEPTH', 6))
REPEAT = int(os.environ.get('BENCH_REPEAT', 3))


def psql(sql, capture=True):
    r = subprocess.run(['psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql],
                       check=True, capture_output=capture, text=True)
    return r.stdout.strip() if capture else None


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, P))
    eta = 0.8 * x[:, 0] - 0.6 * (x[:, 1] > 0.3) + 0.5 * x[:, 2] * x[:, 3] - 0.3 * np.abs(x[:, 4]) - 0.5
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(int)
    x[rng.random(size=x.shape) < 0.1] = np.nan
    return x, y


def main():
    xt, yt = make_data(100000, 1)
    clf = xgb.XGBClassifier(n_estimators=TREES, max_depth=DEPTH, learning_rate=0.1,
                            random_state=0, n_jobs=2, tree_method='hist')
    clf.fit(xt, yt)
    x, _ = make_data(N, 2)
    print('model: %d trees, max_depth %d; data: %d rows x %d features' % (TREES, DEPTH, N, P), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        mpath = os.path.join(tmp, 'model.json')
        clf.save_model(mpath)
        with open(mpath) as f:
            doc = json.dumps(json.load(f))
        with open(mpath, 'w') as f:
            f.write(doc + '\n')
        psql('DROP TABLE IF EXISTS bench_xgb_model; CREATE TABLE bench_xgb_model (doc text, m churn.xgb)')
        psql("\\copy bench_xgb_model (doc) FROM '%s' (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')" % mpath,
             capture=False)
        psql('UPDATE bench_xgb_model SET m = churn.xgb_load(doc::jsonb)')
        if not (os.environ.get('BENCH_REUSE') and psql("SELECT to_regclass('bench_xgb') IS NOT NULL") == 't'
                and int(psql('SELECT count(*) FROM bench_xgb')) == N):
            t0 = time.perf_counter()
            psql('DROP TABLE IF EXISTS bench_xgb; CREATE TABLE bench_xgb (id int, x float8[])')
            dpath = os.path.join(tmp, 'data.tsv')
            with open(dpath, 'w') as f:
                for i in range(N):
                    f.write('%d\t{%s}\n' % (i + 1, ','.join('NULL' if v != v else repr(v) for v in x[i].tolist())))
            psql("\\copy bench_xgb FROM '%s'" % dpath, capture=False)
            psql('VACUUM ANALYZE bench_xgb')
            print('loaded into bench_xgb in %.1f s (table %s)' % (
                time.perf_counter() - t0, psql("SELECT pg_size_pretty(pg_table_size('bench_xgb'))")), flush=True)

    # agreement on the first 100000 rows
    ours = np.array([float(v) for v in psql(
        'SELECT string_agg(churn.xgb_predict(m.m, x)::text, \',\' ORDER BY id) '
        'FROM bench_xgb, bench_xgb_model m WHERE id <= 100000').split(',')])
    ref = clf.predict_proba(x[:100000])[:, 1]
    print('max |SQL - XGBoost| over 100000 rows: %.3g' % np.max(np.abs(ours - ref)), flush=True)

    query = ('SET max_parallel_workers_per_gather = %d; '
             'SELECT sum(churn.xgb_predict((SELECT m FROM bench_xgb_model), x)) FROM bench_xgb')
    worst = 0.0
    for parallel in (2, 0):
        sql_t, py_t = [], []
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            p = clf.predict_proba(x)[:, 1]
            py_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            s = float(psql(query % parallel))
            sql_t.append(time.perf_counter() - t0)
        ratio = min(sql_t) / min(py_t)
        if parallel:
            worst = ratio
        print('workers=%d  SQL %.3f s  XGBoost predict_proba (2 threads) %.3f s  ratio %.2f  '
              '(sum of probabilities: SQL %.6f, XGBoost %.6f)'
              % (parallel, min(sql_t), min(py_t), ratio, s, float(np.sum(p, dtype=np.float64))), flush=True)
    print('ratio with parallel workers (the default plan): %.2f (target <= 1.5)' % worst)


if __name__ == '__main__':
    sys.exit(main())
