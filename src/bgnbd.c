/*-------------------------------------------------------------------------
 *
 * bgnbd.c
 *	  BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the
 *	  easy way"): maximum likelihood fit as a parallel aggregate, and the
 *	  per-customer quantities P(alive), conditional expectation,
 *	  probability of no purchase in a horizon and log-likelihood.
 *
 * Notation: x repeat purchases, t_x time of the last one (from the first
 * purchase), t (the literature's T) the length of observation.  Purchases
 * arrive at rate lambda ~ Gamma(r, alpha) while alive; after each purchase
 * the customer drops out with probability p ~ Beta(a, b).
 *
 *-------------------------------------------------------------------------
 */
#include "probmodels.h"
#include "numeric.h"

#include <math.h>

#include "miscadmin.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(bgnbd_fit_final);
PG_FUNCTION_INFO_V1(bgnbd_p_alive);
PG_FUNCTION_INFO_V1(bgnbd_expected);
PG_FUNCTION_INFO_V1(bgnbd_expected_new);
PG_FUNCTION_INFO_V1(bgnbd_p_churn);
PG_FUNCTION_INFO_V1(bgnbd_loglik);

#define BGNBD_MAX_TERMS 20000000L
/* Beyond this a * z the expectation uses the a, b -> infinity limit. */
#define BGNBD_LIMIT_AZ 20000.0

/* Read and validate the parameters of a churn.bgnbd row. */
void
BgnbdGetParams(HeapTupleHeader m, double *r, double *alpha, double *a, double *b)
{
	static const char *const names[] = {"r", "alpha", "a", "b"};
	double		v[4];

	ProbModelParams(m, "churn.bgnbd", 4, names, v);
	*r = v[0];
	*alpha = v[1];
	*a = v[2];
	*b = v[3];
}

/*
 * log of A4/A3, the odds that the customer dropped out right after the last
 * purchase rather than being alive at t (x > 0 only):
 *   log(a / (b + x - 1)) + (r + x) * log((alpha + t) / (alpha + t_x)).
 */
static double
BgnbdLogDeadOdds(double r, double alpha, double a, double b,
				 int32 x, double t_x, double t)
{
	return log(a) - log(b + x - 1) + (r + x) * (log(alpha + t) - log(alpha + t_x));
}

/* P(alive at t) = 1 / (1 + dead odds); exactly 1 when x = 0. */
static double
BgnbdPAlive(double r, double alpha, double a, double b,
			int32 x, double t_x, double t)
{
	double		d;

	if (x == 0)
		return 1.0;
	d = BgnbdLogDeadOdds(r, alpha, a, b, x, t_x, t);
	return d > 0 ? exp(-d) / (1.0 + exp(-d)) : 1.0 / (1.0 + exp(d));
}

/* Per-customer log-likelihood, log-space throughout (FHL 2005 eq. 6). */
static double
BgnbdLogLik(double r, double alpha, double a, double b,
			int32 x, double t_x, double t)
{
	double		ll = r * log(alpha) - (r + x) * log(alpha + t);

	if (x > 0)
	{
		ll += lgamma(r + x) - lgamma(r)
			+ lgamma(a + b) + lgamma(b + x) - lgamma(b) - lgamma(a + b + x);
		/* log(A3 + A4) = log A3 + log1p(A4 / A3) */
		ll += ProbLogSumExp(0.0, BgnbdLogDeadOdds(r, alpha, a, b, x, t_x, t));
	}
	return ll;
}

/*
 * Conditional expected number of purchases in (t, t + horizon]:
 *
 *   E = P(alive) * (a+b+x-1)/(a-1)
 *       * [1 - ((alpha+t)/(alpha+t+h))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)],
 *   z = h / (alpha + t + h)     (FHL 2005 eq. 10).
 *
 * The 2F1 grows like (1-z)^(a-1-r-x) and overflows for large x, and the
 * bracket cancels for small h.  Euler's transformation
 * 2F1(A', B'; C; z) = (1-z)^(C-A'-B') 2F1(C-A', C-B'; C; z) turns the
 * product into (1-z)^(a-1) 2F1(a+b-1-r, a-1; C; z) with C = a+b+x-1, whose
 * terms carry the factor (a-1) and shrink with x instead of growing.
 * Writing 2F1(A, a-1; C; z) = 1 + (a-1) U and V = C U,
 *
 *   E = P(alive) * [C * (1 - (1-z)^(a-1))/(a-1) - (1-z)^(a-1) V],
 *   V = sum_{n>=1} (A)_n (a)_{n-1} / ((C+1)_{n-1} n!) z^n,  A = a+b-1-r,
 *
 * which has no division by a-1 or by C (both may be 0); W = (1-z)^(a-1) V
 * is summed in log space so that it cannot overflow either.
 * The series is summed until the geometric tail bound is below 1e-16 of the
 * sum; it needs about 37/(1-z) terms, so very long horizons relative to
 * alpha + t are slow and are refused beyond BGNBD_MAX_TERMS terms.
 *
 * Its terms also grow until n is about a z, so a degenerate fit (a and b in
 * the thousands or more: the dropout probability p ~ Beta(a, b) is all but
 * fixed) would need that many terms.  There the limit a, b -> infinity at
 * fixed p = a/(a+b) is used instead: given alive, a customer with rate
 * lambda buys (1 - exp(-p lambda h))/p times in h on average, and lambda ~
 * Gamma(r + x, alpha + t), so
 *
 *   E = P(alive) * (1 - ((alpha+t)/(alpha+t+p h))^(r+x)) / p,
 *
 * whose relative error is of the order of 1/(a+b).
 */
double
BgnbdExpected(double r, double alpha, double a, double b,
			  double horizon, int32 x, double t_x, double t)
{
	double		pal,
				z,
				L,
				A,
				C,
				E1,
				lscale,
				rel,
				S;
	long		n;

	if (horizon == 0)
		return 0.0;
	pal = BgnbdPAlive(r, alpha, a, b, x, t_x, t);
	z = horizon / (alpha + t + horizon);
	if (a * z > BGNBD_LIMIT_AZ)
	{
		double		p = a / (a + b);

		return pal * -expm1(-(r + x) * log1p(p * horizon / (alpha + t))) / p;
	}
	L = -log1p(horizon / (alpha + t));	/* log(1 - z) */
	A = a + b - 1 - r;
	C = a + b + x - 1;
	if (fabs((a - 1) * L) < 1e-8)
		E1 = -L * (1 + 0.5 * (a - 1) * L);
	else
		E1 = -expm1((a - 1) * L) / (a - 1);

	if (A == 0)
		return pal * C * E1;

	/*
	 * W = (1-z)^(a-1) V is summed relative to exp(lscale), the largest term
	 * so far (V alone overflows when a z is large, the product stays
	 * finite): rel is the current term and S the sum in that unit, so the
	 * loop needs no log or exp except when a new largest term appears.
	 */
	lscale = (a - 1) * L + log(fabs(A) * z);
	rel = A > 0 ? 1.0 : -1.0;
	S = rel;
	for (n = 1;; n++)
	{
		double		ratio = (A + n) * (a + n - 1) * z / ((C + n) * (n + 1));
		double		rho = Max(fabs(ratio), z);

		if (rho < 1 && S != 0 && fabs(rel) * rho <= 1e-16 * fabs(S) * (1 - rho))
			break;
		if (ratio == 0)
			break;
		if (n >= BGNBD_MAX_TERMS)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("horizon too long for the bg/nbd conditional expectation"),
					 errdetail("The hypergeometric series did not converge in %ld terms (z = %.17g).",
							   (long) BGNBD_MAX_TERMS, z),
					 errhint("Use a horizon shorter than about 10^6 times alpha + t.")));
		if ((n & 0xffff) == 0)
			CHECK_FOR_INTERRUPTS();
		rel *= ratio;
		if (fabs(rel) > 1)
		{
			double		grow = fabs(rel);

			lscale += log(grow);
			S /= grow;
			rel /= grow;
		}
		S += rel;
	}
	return pal * (C * E1 - S * exp(lscale));
}

/* ----------------------------------------------------------------------
 * Fit
 * ---------------------------------------------------------------------- */

/*
 * Fit data in struct-of-arrays form, sorted by x.  t and t_x are replaced by
 * indexes into their sorted distinct values, so that log(alpha + t) is
 * computed once per distinct value per evaluation: real data are in whole
 * days and have few distinct durations.
 */
typedef struct BgnbdFitCtx
{
	int			n;				/* entries */
	int32	   *x;
	double	   *w;
	int32	   *ti;				/* index into tval */
	int32	   *txi;			/* index into txval */
	int			nt,
				ntx;
	double	   *tval;			/* distinct t */
	double	   *txval;			/* distinct t_x */
	double	   *lt,
			   *it,
			   *ltx,
			   *itx;			/* per evaluation: log(alpha+.), 1/(alpha+.) */
} BgnbdFitCtx;

/* Distinct sorted values of v[0..n-1] (v is sorted in place). */
static int
BgnbdDistinct(double *v, int n)
{
	int			i,
				k = 0;

	qsort(v, n, sizeof(double), CompareFloat8);
	for (i = 0; i < n; i++)
		if (k == 0 || v[i] != v[k - 1])
			v[k++] = v[i];
	return k;
}

/* Index of value in the sorted distinct array vals[0..n-1]. */
static int32
BgnbdFind(const double *vals, int n, double value)
{
	int			lo = 0,
				hi = n - 1;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (vals[mid] < value)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Build the fit context from the sorted compressed entries. */
static void
BgnbdFitCtxInit(BgnbdFitCtx *c, const ProbEntry *e, int n)
{
	int			i;

	c->n = n;
	c->x = palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE);
	c->w = palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE);
	c->ti = palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE);
	c->txi = palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE);
	c->tval = palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE);
	c->txval = palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE);
	for (i = 0; i < n; i++)
	{
		c->tval[i] = e[i].v2;
		c->txval[i] = e[i].v1;
	}
	c->nt = BgnbdDistinct(c->tval, n);
	c->ntx = BgnbdDistinct(c->txval, n);
	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		c->x[i] = e[i].x;
		c->w[i] = e[i].w;
		c->ti[i] = BgnbdFind(c->tval, c->nt, e[i].v2);
		c->txi[i] = BgnbdFind(c->txval, c->ntx, e[i].v1);
	}
	c->lt = palloc_extended(sizeof(double) * c->nt, MCXT_ALLOC_HUGE);
	c->it = palloc_extended(sizeof(double) * c->nt, MCXT_ALLOC_HUGE);
	c->ltx = palloc_extended(sizeof(double) * c->ntx, MCXT_ALLOC_HUGE);
	c->itx = palloc_extended(sizeof(double) * c->ntx, MCXT_ALLOC_HUGE);
}

/*
 * Negative total log-likelihood over the compressed entries and its gradient
 * with respect to theta = log(r, alpha, a, b).  Everything that depends on x
 * only (lgamma, digamma) is computed once per distinct x, the logs of
 * alpha + t and alpha + t_x once per distinct duration.
 */
static double
BgnbdObjective(const double *theta, double *grad, void *vctx)
{
	BgnbdFitCtx *c = vctx;
	double		r = exp(theta[0]),
				alpha = exp(theta[1]),
				a = exp(theta[2]),
				b = exp(theta[3]);
	double		la = theta[1];
	double		lgr = lgamma(r),
				lgab = lgamma(a + b),
				lgb = lgamma(b);
	double		psr = 0,
				psab = 0,
				psb = 0;
	double		f = 0,
				gr = 0,
				gal = 0,
				ga = 0,
				gb = 0;
	int			i = 0;

	for (i = 0; i < c->nt; i++)
	{
		c->lt[i] = log(alpha + c->tval[i]);
		c->it[i] = 1.0 / (alpha + c->tval[i]);
	}
	for (i = 0; i < c->ntx; i++)
	{
		c->ltx[i] = log(alpha + c->txval[i]);
		c->itx[i] = 1.0 / (alpha + c->txval[i]);
	}
	if (grad)
	{
		psr = ProbDigamma(r);
		psab = ProbDigamma(a + b);
		psb = ProbDigamma(b);
	}
	i = 0;
	while (i < c->n)
	{
		int32		x = c->x[i];
		double		rx = r + x;

		if (x == 0)
		{
			/* ll = r (log alpha - log(alpha + t)) */
			for (; i < c->n && c->x[i] == 0; i++)
			{
				double		w = c->w[i];
				double		d = la - c->lt[c->ti[i]];

				f -= w * r * d;
				gr -= w * d;
				gal -= w * r * (1.0 / alpha - c->it[c->ti[i]]);
			}
		}
		else
		{
			double		c0 = lgamma(rx) - lgr + lgab + lgamma(b + x) - lgb
				- lgamma(a + b + x) + r * la;
			double		lodds0 = log(a) - log(b + x - 1);
			double		drx = 0,
						dax = 0,
						dbx = 0,
						sw = 0,
						sww = 0;

			if (grad)
			{
				double		psabx = ProbDigamma(a + b + x);

				drx = ProbDigamma(rx) - psr + la;
				dax = psab - psabx;
				dbx = psab + ProbDigamma(b + x) - psb - psabx;
			}
			for (; i < c->n && c->x[i] == x; i++)
			{
				double		w = c->w[i];
				double		lT = c->lt[c->ti[i]];
				double		ltx = c->ltx[c->txi[i]];
				double		lodds = lodds0 + rx * (lT - ltx);
				double		e = exp(-fabs(lodds));
				double		lse = Max(lodds, 0.0) + log1p(e);
				double		ww = (lodds > 0 ? 1.0 : e) / (1.0 + e); /* P(dead) */

				f -= w * (c0 - rx * lT + lse);
				if (grad)
				{
					gr += w * ((1 - ww) * lT + ww * ltx);
					gal += w * rx * ((1 - ww) * c->it[c->ti[i]] + ww * c->itx[c->txi[i]]);
					sww += w * ww;
				}
				sw += w;
			}
			if (grad)
			{
				gr -= sw * drx;
				gal -= sw * r / alpha;
				ga -= sw * dax + sww / a;
				gb -= sw * dbx - sww / (b + x - 1);
			}
		}
	}
	if (grad)
	{
		grad[0] = gr * r;
		grad[1] = gal * alpha;
		grad[2] = ga * a;
		grad[3] = gb * b;
	}
	return f;
}

/* Final: maximise the likelihood and return a churn.bgnbd row. */
Datum
bgnbd_fit_final(PG_FUNCTION_ARGS)
{
	ProbState  *st = (ProbState *) PG_GETARG_POINTER(0);
	BgnbdFitCtx ctx;
	ProbEntry  *e;
	int			ne;
	double		theta[4];
	double		sumx,
				sumt;
	ProbOptResult res;

	(void) ChurnAggContext(fcinfo, "bgnbd_fit_final");
	e = ProbStateSortedEntries(st, &ne);
	if (ne == 0)
		PG_RETURN_NULL();		/* no rows, or total weight 0 */
	ProbRftSums(e, ne, "bgnbd_fit", &sumx, &sumt);

	BgnbdFitCtxInit(&ctx, e, ne);
	pfree(e);

	/* start: r = a = b = 1, alpha so that r/alpha matches the mean rate */
	theta[0] = 0;
	theta[1] = log(Max(sumt / sumx, 1e-6));
	theta[2] = 0;
	theta[3] = 0;
	res = ProbMinimize(BgnbdObjective, &ctx, 4, theta, true);

	PG_RETURN_DATUM(ProbFitResult(fcinfo, theta, 4, &res, st->wsum));
}

/* ----------------------------------------------------------------------
 * Per-customer functions
 * ---------------------------------------------------------------------- */

/* churn.bgnbd_p_alive(m, x, t_x, t): P(customer still alive at t). */
Datum
bgnbd_p_alive(PG_FUNCTION_ARGS)
{
	double		r,
				alpha,
				a,
				b;
	int32		x;
	double		t_x,
				t;

	BgnbdGetParams(PG_GETARG_HEAPTUPLEHEADER(0), &r, &alpha, &a, &b);
	ProbGetRftArgs(fcinfo, 1, &x, &t_x, &t);
	PG_RETURN_FLOAT8(BgnbdPAlive(r, alpha, a, b, x, t_x, t));
}

/* churn.bgnbd_expected(m, horizon, x, t_x, t): E[purchases in (t, t+h]]. */
Datum
bgnbd_expected(PG_FUNCTION_ARGS)
{
	double		r,
				alpha,
				a,
				b;
	double		h,
				t_x,
				t;
	int32		x;

	BgnbdGetParams(PG_GETARG_HEAPTUPLEHEADER(0), &r, &alpha, &a, &b);
	ProbGetHorizonRftArgs(fcinfo, 1, &h, &x, &t_x, &t);
	PG_RETURN_FLOAT8(BgnbdExpected(r, alpha, a, b, h, x, t_x, t));
}

/* churn.bgnbd_expected_new(m, t): E[X(t)] for a customer just acquired. */
Datum
bgnbd_expected_new(PG_FUNCTION_ARGS)
{
	double		r,
				alpha,
				a,
				b;
	double		t = PG_GETARG_FLOAT8(1);

	BgnbdGetParams(PG_GETARG_HEAPTUPLEHEADER(0), &r, &alpha, &a, &b);
	ChurnCheckNonNegative(t, "t");
	PG_RETURN_FLOAT8(BgnbdExpected(r, alpha, a, b, t, 0, 0.0, 0.0));
}

/*
 * churn.bgnbd_p_churn(m, horizon, x, t_x, t): P(no purchase in (t, t+h]).
 * A dead customer never buys.  Given alive at t, lambda ~ Gamma(r + x,
 * alpha + t) and a BG/NBD customer can only drop out right after a
 * purchase, so no purchase in h has probability E[exp(-lambda h)]
 * = ((alpha + t)/(alpha + t + h))^(r + x).  Hence
 *   P = (1 - P(alive)) + P(alive) * ((alpha+t)/(alpha+t+h))^(r+x).
 */
Datum
bgnbd_p_churn(PG_FUNCTION_ARGS)
{
	double		r,
				alpha,
				a,
				b,
				pal;
	double		h,
				t_x,
				t;
	int32		x;

	BgnbdGetParams(PG_GETARG_HEAPTUPLEHEADER(0), &r, &alpha, &a, &b);
	ProbGetHorizonRftArgs(fcinfo, 1, &h, &x, &t_x, &t);
	pal = BgnbdPAlive(r, alpha, a, b, x, t_x, t);
	PG_RETURN_FLOAT8((1.0 - pal) + pal * exp(-(r + x) * log1p(h / (alpha + t))));
}

/* churn.bgnbd_loglik(m, x, t_x, t): the customer's log-likelihood. */
Datum
bgnbd_loglik(PG_FUNCTION_ARGS)
{
	double		r,
				alpha,
				a,
				b;
	int32		x;
	double		t_x,
				t;

	BgnbdGetParams(PG_GETARG_HEAPTUPLEHEADER(0), &r, &alpha, &a, &b);
	ProbGetRftArgs(fcinfo, 1, &x, &t_x, &t);
	PG_RETURN_FLOAT8(BgnbdLogLik(r, alpha, a, b, x, t_x, t));
}
