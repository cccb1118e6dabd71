#!/usr/bin/python3
"""Regenerate the logistic regression and XGBoost fixtures of churn_warning.

Run with the Debian python (statsmodels, sklearn, xgboost 1.7.x):

    /usr/bin/python3 test/reference/make_fixtures_ml.py [outdir]

Everything is seeded, so a rerun with the same library versions rewrites the
same files.  Written to test/reference/fixtures/ (or outdir):

  logit_data.csv     id, churned, x1..x5            (3000 rows)
  logit_ref.csv      what, idx, value: statsmodels Logit coef / bse / llf / n,
                     and the l2 = 2 penalised fit (coef_l2, se_l2, llf_l2)
  xgb_data.csv       id, label, f1..f8 (empty field = missing, about 10 %)
  xgb_model.json     XGBoost binary:logistic, 40 trees, max_depth 5, as
                     written by Booster.save_model (one line)
  xgb_ref.csv        id, pred, margin, c1..c9: predict(), output_margin and
                     pred_contribs(approx_contribs=True), bias last

check_logit and check_xgb import this module to build their live data the
same way (with other seeds and sizes).
"""
import csv
import json
import os
import sys

import numpy as np


def logit_data(n, seed):
    """Correlated features on different scales and labels from a known logit."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 5))
    x = np.empty((n, 5))
    x[:, 0] = z[:, 0]
    x[:, 1] = 0.6 * z[:, 0] + 0.8 * z[:, 1]          # correlated with x1
    x[:, 2] = rng.exponential(30.0, size=n)           # days, skewed
    x[:, 3] = rng.integers(0, 12, size=n)             # counts
    x[:, 4] = 100.0 * z[:, 4] + 500.0                 # money, large scale
    eta = -0.4 + 0.8 * x[:, 0] - 0.5 * x[:, 1] + 0.02 * x[:, 2] - 0.1 * x[:, 3] + 0.001 * (x[:, 4] - 500)
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-eta))
    return x, y.astype(int)


def statsmodels_logit(x, y):
    """Unpenalised maximum likelihood fit with statsmodels (coef, bse, llf)."""
    import statsmodels.api as sm
    res = sm.Logit(y, sm.add_constant(x, has_constant='add')).fit(disp=0, tol=1e-12, maxiter=100)
    return np.asarray(res.params), np.asarray(res.bse), float(res.llf)


def penalised_logit(x, y, l2):
    """max loglik - l2/2 |beta[1:]|^2 via sklearn newton-cg (intercept unpenalised);
    standard errors from the penalised negative Hessian."""
    from sklearn.linear_model import LogisticRegression
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        m = LogisticRegression(C=1.0 / l2, solver='newton-cg', tol=1e-10, max_iter=10000).fit(x, y)
    beta = np.concatenate([m.intercept_, m.coef_.ravel()])
    X = np.column_stack([np.ones(len(y)), x])
    k = X.shape[1]
    # newton-cg stops at about 1e-9 relative; polish with exact Newton steps
    for _ in range(4):
        eta = X @ beta
        p = 1.0 / (1.0 + np.exp(-eta))
        g = X.T @ (y - p)
        g[1:] -= l2 * beta[1:]
        H = X.T @ (X * (p * (1 - p))[:, None])
        H[np.arange(1, k), np.arange(1, k)] += l2
        beta = beta + np.linalg.solve(H, g)
    eta = X @ beta
    p = 1.0 / (1.0 + np.exp(-eta))
    H = X.T @ (X * (p * (1 - p))[:, None])
    H[np.arange(1, k), np.arange(1, k)] += l2
    se = np.sqrt(np.diag(np.linalg.inv(H)))
    llf = float(np.sum(y * eta - np.logaddexp(0, eta)))
    return beta, se, llf


def xgb_data(n, seed, nfeat=8, missing=0.1):
    """Features with missing values (NaN) and labels from a nonlinear rule."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, nfeat))
    x[:, 1] = np.round(x[:, 1] * 3)                   # ties at split points
    x[:, 2] = rng.exponential(20.0, size=n)
    eta = 0.9 * x[:, 0] - 0.7 * (x[:, 1] > 0) + 0.04 * np.minimum(x[:, 2], 60) - 1.2 + 0.5 * x[:, 3] * x[:, 4]
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(int)
    x[rng.random(size=x.shape) < missing] = np.nan
    return x, y


def xgb_train(x, y, rounds=40, depth=5, objective='binary:logistic', seed=7):
    import xgboost as xgb
    d = xgb.DMatrix(x, label=y, missing=np.nan)
    params = {'objective': objective, 'max_depth': depth, 'eta': 0.3, 'subsample': 0.9,
              'colsample_bytree': 0.9, 'min_child_weight': 1, 'seed': seed, 'nthread': 1,
              'tree_method': 'exact'}
    return xgb.train(params, d, num_boost_round=rounds)


def xgb_reference(booster, x):
    """predict (probability), output_margin and approximate contributions."""
    import xgboost as xgb
    d = xgb.DMatrix(x, missing=np.nan)
    pred = booster.predict(d)
    margin = booster.predict(d, output_margin=True)
    contrib = booster.predict(d, pred_contribs=True, approx_contribs=True)
    return pred, margin, contrib


def fmt(v):
    """Shortest repr that round-trips a float64; empty for NaN (missing)."""
    return '' if np.isnan(v) else repr(float(v))


def write_logit(outdir):
    x, y = logit_data(3000, 20240601)
    with open(os.path.join(outdir, 'logit_data.csv'), 'w', newline='') as f:
        w = csv.writer(f, lineterminator='\n')
        w.writerow(['id', 'churned'] + ['x%d' % (j + 1) for j in range(x.shape[1])])
        for i in range(len(y)):
            w.writerow([i + 1, 't' if y[i] else 'f'] + [fmt(v) for v in x[i]])
    coef, bse, llf = statsmodels_logit(x, y)
    coef2, se2, llf2 = penalised_logit(x, y, 2.0)
    with open(os.path.join(outdir, 'logit_ref.csv'), 'w', newline='') as f:
        w = csv.writer(f, lineterminator='\n')
        w.writerow(['what', 'idx', 'value'])
        for j, v in enumerate(coef):
            w.writerow(['coef', j + 1, fmt(v)])
        for j, v in enumerate(bse):
            w.writerow(['std_err', j + 1, fmt(v)])
        w.writerow(['loglik', 0, fmt(llf)])
        w.writerow(['n', 0, len(y)])
        for j, v in enumerate(coef2):
            w.writerow(['coef_l2', j + 1, fmt(v)])
        for j, v in enumerate(se2):
            w.writerow(['std_err_l2', j + 1, fmt(v)])
        w.writerow(['loglik_l2', 0, fmt(llf2)])


def write_xgb(outdir):
    x, y = xgb_data(2000, 20240602)
    booster = xgb_train(x, y)
    model_path = os.path.join(outdir, 'xgb_model.json')
    booster.save_model(model_path)
    with open(model_path) as f:
        text = f.read()
    assert '\n' not in text.strip(), 'xgb_model.json must be one line for \\copy'
    json.loads(text)
    pred, margin, contrib = xgb_reference(booster, x)
    with open(os.path.join(outdir, 'xgb_data.csv'), 'w', newline='') as f:
        w = csv.writer(f, lineterminator='\n')
        w.writerow(['id', 'label'] + ['f%d' % (j + 1) for j in range(x.shape[1])])
        for i in range(len(y)):
            w.writerow([i + 1, y[i]] + [fmt(v) for v in x[i]])
    with open(os.path.join(outdir, 'xgb_ref.csv'), 'w', newline='') as f:
        w = csv.writer(f, lineterminator='\n')
        w.writerow(['id', 'pred', 'margin'] + ['c%d' % (j + 1) for j in range(contrib.shape[1])])
        for i in range(len(y)):
            w.writerow([i + 1, fmt(pred[i]), fmt(margin[i])] + [fmt(v) for v in contrib[i]])


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures')
    os.makedirs(outdir, exist_ok=True)
    write_logit(outdir)
    write_xgb(outdir)


if __name__ == '__main__':
    main()
