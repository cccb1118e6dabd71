#!/usr/bin/python3
"""Benchmark helper for bench/logit_fit.sh: churn.logit_fit vs scikit-learn.

Generates N rows x P features (seeded), loads them into table bench_logit
through psql \\copy, then times in one run, alternating:
  * sklearn LogisticRegression(penalty=None).fit  vs  churn.logit_fit(y, x)
  * sklearn LogisticRegression(C=1).fit           vs  churn.logit_fit(y, x, 1.0)
  (sklearn gets the data already in memory as a float64 numpy array;
   the SQL call includes the table scan), once with the planner's default
   plan and once with a forced parallel plan (Partial Aggregate in workers)
and prints the ratios (SQL time / sklearn time) and coefficient differences.
Needs PGHOST/PGPORT/PGUSER/PGDATABASE of a database with churn_warning.
"""
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression

N = int(os.environ.get('BENCH_ROWS', 1000000))
P = int(os.environ.get('BENCH_FEATURES', 20))
REPEAT = int(os.environ.get('BENCH_REPEAT', 3))


def psql(sql, capture=True):
    r = subprocess.run(['psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql],
                       check=True, capture_output=capture, text=True)
    return r.stdout.strip() if capture else None


def make_data():
    rng = np.random.default_rng(12345)
    z = rng.normal(size=(N, P))
    x = z.copy()
    x[:, 1:] += 0.3 * z[:, :-1]                       # neighbour correlation
    beta = rng.normal(scale=0.3, size=P)
    eta = -1.0 + x @ beta
    y = rng.random(N) < 1.0 / (1.0 + np.exp(-eta))
    return x, y


def load(x, y):
    psql('DROP TABLE IF EXISTS bench_logit; '
         'CREATE TABLE bench_logit (churned boolean, x float8[])')
    with tempfile.NamedTemporaryFile('w', suffix='.tsv', delete=False) as f:
        for i in range(N):
            f.write('t' if y[i] else 'f')
            f.write('\t{')
            f.write(','.join(map(repr, x[i].tolist())))
            f.write('}\n')
        path = f.name
    try:
        psql("\\copy bench_logit FROM '%s'" % path, capture=False)
    finally:
        os.unlink(path)
    psql('VACUUM ANALYZE bench_logit')


def time_sql(sql):
    t0 = time.perf_counter()
    out = psql(sql)
    return time.perf_counter() - t0, out


def time_sklearn(x, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        t0 = time.perf_counter()
        m = LogisticRegression(max_iter=1000, **kw).fit(x, y)
        dt = time.perf_counter() - t0
    return dt, np.concatenate([m.intercept_, m.coef_.ravel()])


def parse_coef(out):
    return np.array([float(v) for v in out.strip('{}').split(',')])


def main():
    print('generating %d rows x %d features' % (N, P), flush=True)
    x, y = make_data()
    t0 = time.perf_counter()
    if os.environ.get('BENCH_REUSE') and psql("SELECT to_regclass('bench_logit') IS NOT NULL") == 't' \
            and int(psql('SELECT count(*) FROM bench_logit')) == N:
        pass                                           # same seed, same rows
    else:
        load(x, y)
    print('loaded into bench_logit in %.1f s (table %s)' % (
        time.perf_counter() - t0, psql("SELECT pg_size_pretty(pg_table_size('bench_logit'))")), flush=True)
    cases = [
        ('l2 = 0 ', dict(penalty=None), 'churn.logit_fit(churned, x)'),
        ('l2 = 1 ', dict(C=1.0), 'churn.logit_fit(churned, x, 1.0)'),
    ]
    modes = [
        ('default plan', 'SET max_parallel_workers_per_gather = 2; '),
        # 0.3.0: combining churn.agg_state partial states carries the cost
        ('forced parallel', 'BEGIN; ALTER FUNCTION churn.logit_fit_combine(churn.agg_state, churn.agg_state) COST 1; '
                            'SET parallel_setup_cost = 0; SET max_parallel_workers_per_gather = 2; '),
    ]
    worst = 0.0
    for label, skw, agg in cases:
        for mode, settings in modes:
            plan = psql(settings + 'EXPLAIN (COSTS OFF) SELECT %s FROM bench_logit' % agg)
            kind = 'parallel' if 'Partial Aggregate' in plan else 'serial'
            sql_t, sk_t = [], []
            for _ in range(REPEAT):
                dt, coef = time_sklearn(x, y, **skw)
                sk_t.append(dt)
                dt, out = time_sql(settings + 'SELECT (m).coef, (m).iterations FROM (SELECT %s AS m FROM bench_logit) s'
                                   % agg)
                sql_t.append(dt)
            ours = parse_coef(out.split('|')[0])
            ratio = min(sql_t) / min(sk_t)
            if mode == 'default plan':
                worst = max(worst, ratio)
            print('%s %-15s (%s plan)  SQL %.3f s (Newton steps %s)  sklearn lbfgs %.3f s  ratio %.2f  '
                  'max |coef diff| %.2e' % (label, mode, kind, min(sql_t), out.split('|')[1],
                                            min(sk_t), ratio, np.max(np.abs(ours - coef))), flush=True)
    print('worst ratio with the default plan: %.2f (target <= 1.5)' % worst)

    # accuracy at this size against statsmodels (not timed)
    import statsmodels.api as sm
    ref = sm.Logit(y.astype(float), sm.add_constant(x, has_constant='add')).fit(disp=0, tol=1e-10)
    out = psql('SELECT (m).coef, (m).std_err, (m).loglik FROM (SELECT churn.logit_fit(churned, x) AS m '
               'FROM bench_logit) s').split('|')
    coef, se = parse_coef(out[0]), parse_coef(out[1])
    print('vs statsmodels Logit on the same %d rows: max relative difference coef %.2e, std_err %.2e, '
          'loglik %.2e' % (N, np.max(np.abs(coef - ref.params) / np.abs(ref.params)),
                           np.max(np.abs(se - ref.bse) / np.abs(ref.bse)),
                           abs(float(out[2]) - ref.llf) / abs(ref.llf)))


if __name__ == '__main__':
    sys.exit(main())
