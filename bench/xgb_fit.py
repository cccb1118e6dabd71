#!/usr/bin/python3
"""Benchmark helper for bench/xgb_fit.sh: churn.xgb_fit vs python-xgboost.

Generates N rows x P features (seeded, about 10 % missing), loads them into
table bench_xgb_fit through psql \\copy, then times in one run, alternating:
  * xgboost.train(params, DMatrix(x, label=y, missing=nan, nthread=T), R)
    on the float64 numpy array in memory (DMatrix construction timed)
  * SELECT churn.xgb_fit(label, x, params) FROM bench_xgb_fit
    with churn_warning.xgb_threads = T (table scan and row collection timed)
with the same parameters (binary:logistic, tree_method BENCH_METHOD,
max_depth 6, eta 0.3, R = BENCH_ROUNDS rounds, T = BENCH_THREADS threads)
and prints the ratio (SQL time / python time).  Then, untimed: the same fit
with ORDER BY id (rows in python's order) against python's model on the
first 100000 rows' predictions, and the memory estimate of the fit against
the backend's peak resident memory.
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
P = int(os.environ.get('BENCH_FEATURES', 30))
ROUNDS = int(os.environ.get('BENCH_ROUNDS', 10))
THREADS = int(os.environ.get('BENCH_THREADS', 2))
METHOD = os.environ.get('BENCH_METHOD', 'hist')
REPEAT = int(os.environ.get('BENCH_REPEAT', 3))
PARAMS = {'tree_method': METHOD, 'max_depth': 6, 'eta': 0.3}


def psql(sql, capture=True):
    r = subprocess.run(['psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql],
                       check=True, capture_output=capture, text=True)
    return r.stdout.strip() if capture else None


def make_data():
    rng = np.random.default_rng(20261130)
    x = rng.normal(size=(N, P))
    eta = (0.8 * x[:, 0] - 0.6 * (x[:, 1] > 0.3) + 0.5 * x[:, 2] * x[:, 3] - 0.3 * np.abs(x[:, 4])
           + 0.2 * x[:, 5:10].sum(axis=1) - 0.5)
    y = (rng.random(N) < 1.0 / (1.0 + np.exp(-eta))).astype(int)
    x[rng.random(size=x.shape) < 0.1] = np.nan
    return x, y


def load(x, y):
    psql('DROP TABLE IF EXISTS bench_xgb_fit; CREATE TABLE bench_xgb_fit (id int, label boolean, x float8[])')
    with tempfile.NamedTemporaryFile('w', suffix='.tsv', delete=False) as f:
        for i in range(N):
            f.write('%d\t%s\t{%s}\n' % (i + 1, 't' if y[i] else 'f',
                                         ','.join('NULL' if v != v else repr(v) for v in x[i].tolist())))
        path = f.name
    try:
        psql("\\copy bench_xgb_fit FROM '%s'" % path, capture=False)
    finally:
        os.unlink(path)
    psql('VACUUM ANALYZE bench_xgb_fit')


def train_python(x, y):
    t0 = time.perf_counter()
    d = xgb.DMatrix(x, label=y, missing=np.nan, nthread=THREADS)
    b = xgb.train(dict(PARAMS, objective='binary:logistic', nthread=THREADS), d, num_boost_round=ROUNDS)
    return time.perf_counter() - t0, b


def sql_params():
    return json.dumps(dict(PARAMS, num_boost_round=ROUNDS))


def train_sql(order_by=''):
    q = ("SET churn_warning.xgb_threads = %d; SELECT churn.xgb_info(churn.xgb_fit(label, x, '%s'%s))->>'trees' "
         "FROM bench_xgb_fit" % (THREADS, sql_params(), order_by))
    t0 = time.perf_counter()
    trees = psql(q)
    return time.perf_counter() - t0, trees


def main():
    print('generating %d rows x %d features' % (N, P), flush=True)
    x, y = make_data()
    t0 = time.perf_counter()
    if not (os.environ.get('BENCH_REUSE') and psql("SELECT to_regclass('bench_xgb_fit') IS NOT NULL") == 't'
            and int(psql('SELECT count(*) FROM bench_xgb_fit')) == N):
        load(x, y)
    print('loaded into bench_xgb_fit in %.1f s (table %s)' % (
        time.perf_counter() - t0, psql("SELECT pg_size_pretty(pg_table_size('bench_xgb_fit'))")), flush=True)
    plan = psql("EXPLAIN (COSTS OFF) SELECT churn.xgb_fit(label, x, '%s') FROM bench_xgb_fit" % sql_params())
    print('params %s, %d threads, %s plan' % (sql_params(), THREADS,
                                              'parallel' if 'Partial Aggregate' in plan else 'serial'), flush=True)

    sql_t, py_t = [], []
    for _ in range(REPEAT):
        dt, booster = train_python(x, y)
        py_t.append(dt)
        dt, trees = train_sql()
        sql_t.append(dt)
        print('  python %.2f s   SQL %.2f s (%s trees)' % (py_t[-1], sql_t[-1], trees), flush=True)
    ratio = min(sql_t) / min(py_t)
    print('xgb_fit %.2f s  python-xgboost %.2f s  ratio %.2f (target <= 1.5)' % (min(sql_t), min(py_t), ratio),
          flush=True)

    # untimed: rows in python's order give python's model
    psql("SET churn_warning.xgb_threads = %d; DROP TABLE IF EXISTS bench_xgb_fit_model; "
         "CREATE TABLE bench_xgb_fit_model AS SELECT churn.xgb_fit(label, x, '%s' ORDER BY id) AS m "
         "FROM bench_xgb_fit" % (THREADS, sql_params()))
    ours = np.array([float(v) for v in psql(
        'SELECT string_agg(churn.xgb_predict(m, x)::text, \',\' ORDER BY id) '
        'FROM bench_xgb_fit, bench_xgb_fit_model WHERE id <= 100000').split(',')])
    ref = booster.predict(xgb.DMatrix(x[:100000], missing=np.nan))
    print('ORDER BY id: max |xgb_fit - python| prediction over 100000 rows: %.3g' % np.max(np.abs(ours - ref)),
          flush=True)

    # memory: the estimate against the backend's peak resident set
    out = subprocess.run(['psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-c',
                          "SET client_min_messages = debug1; SET churn_warning.xgb_threads = %d; "
                          "SELECT churn.xgb_info(churn.xgb_fit(label, x, '%s'))->>'nodes' FROM bench_xgb_fit; "
                          "SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), "
                          "'VmHWM:\\s+(\\d+)'))[1]" % (THREADS, sql_params())],
                         check=True, capture_output=True, text=True)
    est = [l for l in out.stderr.splitlines() if 'estimated memory' in l]
    print('memory: %s; backend peak RSS %d MB' % (est[0].split('xgb_fit: ')[-1] if est else '?',
                                                  int(out.stdout.split()[-1]) // 1024))
    psql('DROP TABLE bench_xgb_fit_model')


if __name__ == '__main__':
    sys.exit(main())
