#!/usr/bin/python3
"""Reference side of bench/bgnbd_fit.sh (needs Debian python3 with numpy/scipy).

  bgnbd_fit_scipy.py simulate N SEED OUT.csv   write N synthetic BG/NBD customers
  bgnbd_fit_scipy.py fit IN.csv                time a scipy maximum-likelihood fit

The simulation is an exact BG/NBD process (lambda ~ Gamma(r, alpha), p ~ Beta(a, b),
exponential inter-purchase times, drop out with probability p after each repeat
purchase) with the CDNOW estimates as truth, in weeks, births spread over 12 weeks
and a 39-week calibration period like CDNOW; times are rounded to whole days
(/7) as real purchase data are, so (x, t_x, t) has repeated values.

The scipy fit mirrors how lifetimes' BetaGeoFitter fits: the vectorised
negative mean log-likelihood on log parameters, minimised by
scipy.optimize.minimize (BFGS) with an exact analytic gradient (lifetimes gets
its gradient from autograd), on the rows as they are ("raw") and on the rows
compressed to distinct (x, t_x, t) with counts ("compressed").  Only the fit is
timed, with the data already in memory.
"""
import sys
import time

import numpy as np
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

TRUTH = (0.2426, 4.4136, 0.7929, 2.4259)


def simulate(n, seed, out):
    rng = np.random.default_rng(seed)
    r, alpha, a, b = TRUTH
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    birth_day = rng.integers(0, 84, n)
    T = (273 - birth_day) / 7.0
    x = np.zeros(n, dtype=np.int64)
    tx = np.zeros(n)
    t = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        idx = np.nonzero(alive)[0]
        t[idx] += rng.exponential(1.0, idx.size) / lam[idx]
        inside = t[idx] <= T[idx]
        bought = idx[inside]
        x[bought] += 1
        tx[bought] = t[bought]
        alive[idx[~inside]] = False
        died = bought[rng.random(bought.size) < p[bought]]
        alive[died] = False
    # whole days: round the last purchase time to a day, keep it in (0, T]
    txd = np.round(tx * 7.0)
    txd = np.where(x > 0, np.clip(txd, 1, np.round(T * 7.0)), 0)
    with open(out, "w") as f:
        f.write("x,t_x,t\n")
        for xi, txi, Ti in zip(x, txd, np.round(T * 7.0)):
            f.write("%d,%d,%d\n" % (xi, txi, Ti))


def negll(logp, x, tx, T, w, wsum):
    """Negative mean log-likelihood and its gradient in log parameters."""
    r, alpha, a, b = np.exp(logp)
    xp = x > 0
    lT = np.log(alpha + T)
    ltx = np.log(alpha + tx)
    rx = r + x
    bx1 = np.where(xp, b + x - 1, 1.0)
    lodds = np.where(xp, np.log(a) - np.log(bx1) + rx * (lT - ltx), -np.inf)
    lse = np.logaddexp(0.0, lodds)
    pd = np.exp(lodds - lse)
    ll = (gammaln(rx) - gammaln(r) + r * np.log(alpha) - rx * lT
          + np.where(xp, gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x), 0.0)
          + lse)
    dr = digamma(rx) - digamma(r) + np.log(alpha) - (1 - pd) * lT - pd * ltx
    dal = r / alpha - rx * ((1 - pd) / (alpha + T) + pd / (alpha + tx))
    da = np.where(xp, digamma(a + b) - digamma(a + b + x), 0.0) + pd / a
    db = np.where(xp, digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x), 0.0) - pd / bx1
    g = -np.array([w @ dr * r, w @ dal * alpha, w @ da * a, w @ db * b]) / wsum
    return -(w @ ll) / wsum, g


def fit(x, tx, T, w):
    wsum = w.sum()
    x0 = np.log([1.0, (w @ T) / (w @ x), 1.0, 1.0])
    res = minimize(negll, x0, args=(x, tx, T, w, wsum), jac=True, method="BFGS",
                   tol=1e-7, options={"maxiter": 1000})
    return np.exp(res.x), -res.fun * wsum, res


def main():
    if sys.argv[1] == "simulate":
        simulate(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        return
    data = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1)
    x = data[:, 0]
    tx = data[:, 1] / 7.0
    T = data[:, 2] / 7.0
    ones = np.ones_like(x)
    best = {}
    for label in ("raw", "compressed"):
        times = []
        for _ in range(int(sys.argv[3]) if len(sys.argv) > 3 else 3):
            t0 = time.perf_counter()
            if label == "raw":
                params, ll, res = fit(x, tx, T, ones)
            else:
                # compression is part of the timed work, as it is in SQL
                keys, counts = np.unique(np.stack([x, tx, T], axis=1), axis=0, return_counts=True)
                params, ll, res = fit(keys[:, 0], keys[:, 1], keys[:, 2], counts.astype(float))
            times.append(time.perf_counter() - t0)
        best[label] = min(times)
        print("scipy_%s_seconds %.4f" % (label, best[label]))
        print("scipy_%s_fit r=%.6f alpha=%.6f a=%.6f b=%.6f loglik=%.4f nit=%d nfev=%d success=%s"
              % (label, *params, ll, res.nit, res.nfev, res.success))


if __name__ == "__main__":
    main()
