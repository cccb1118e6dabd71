/*-------------------------------------------------------------------------
 *
 * paretonbd.c
 *	  Pareto/NBD model (Schmittlein, Morrison & Colombo 1987; Fader & Hardie
 *	  2005, "A note on deriving the Pareto/NBD model and related
 *	  expressions"): purchases at rate lambda ~ Gamma(r, alpha) while alive,
 *	  lifetime exponential with rate mu ~ Gamma(s, beta).
 *
 * Every quantity is written with the integral
 *
 *   I(p, q; A, B; y) = int_y^inf (A + u)^-p (B + u)^-q du      (p + q > 1)
 *
 * e.g. the likelihood is
 *   L = Gamma(r+x) alpha^r beta^s / Gamma(r)
 *       * [ (alpha+T)^-(r+x) (beta+T)^-s
 *           + s * (I(r+x, s+1; alpha, beta; t_x) - I(r+x, s+1; alpha, beta; T)) ],
 * which is the note's A0 form with its alpha >= beta / alpha < beta
 * branches.  For A >= B, with z = (A - B)/(A + y),
 *   I = (A+y)^-p (B+y)^(1-q) / (p+q-1) * 2F1(1, p; p+q; z)
 * (the note's 2F1(p+q-1, q; p+q; z) after Euler's transformation); for
 * A < B swap (p, A) with (q, B).  2F1(1, p; p+q; z) = sum (p)_n/(p+q)_n z^n
 * has positive terms whose ratio is below z < 1, so it is summed without
 * cancellation or overflow and its tail is bounded by term * z/(1-z).
 *
 *-------------------------------------------------------------------------
 */
#include "probmodels.h"
#include "numeric.h"

#include <math.h>

#include "miscadmin.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(pnbd_fit_final);
PG_FUNCTION_INFO_V1(pnbd_p_alive);
PG_FUNCTION_INFO_V1(pnbd_expected);
PG_FUNCTION_INFO_V1(pnbd_expected_new);
PG_FUNCTION_INFO_V1(pnbd_p_churn);
PG_FUNCTION_INFO_V1(pnbd_loglik);

#define PNBD_MAX_TERMS 20000000L
/* beyond this z the series needs thousands of terms: integrate instead */
#ifndef PNBD_SERIES_MAX_Z
#define PNBD_SERIES_MAX_Z 0.9
#endif

/* Read and validate the parameters of a churn.pnbd row. */
static void
PnbdGetParams(HeapTupleHeader m, double *r, double *alpha, double *s, double *beta)
{
	static const char *const names[] = {"r", "alpha", "s", "beta"};
	double		v[4];

	ProbModelParams(m, "churn.pnbd", 4, names, v);
	*r = v[0];
	*alpha = v[1];
	*s = v[2];
	*beta = v[3];
}

/* log I(p, q; A, B; y); NaN if the series does not converge. */
static double
PnbdLogI(double p, double q, double A, double B, double y)
{
	double		z,
				S = 1.0,
				term = 1.0;
	long		n;

	if (A < B)
	{
		double		tmp;

		tmp = p;
		p = q;
		q = tmp;
		tmp = A;
		A = B;
		B = tmp;
	}
	z = (A - B) / (A + y);
	if (z > 0)
	{
		for (n = 0;; n++)
		{
			term *= (p + n) / (p + q + n) * z;
			S += term;
			if (term * z <= 1e-17 * S * (1 - z))
				break;
			if (n >= PNBD_MAX_TERMS)
				return NAN;
			if ((n & 0xffff) == 0xffff)
				CHECK_FOR_INTERRUPTS();
		}
	}
	return -p * log(A + y) - (q - 1) * log(B + y) - log(p + q - 1) + log(S);
}

/* Positive nodes and weights of 16-point Gauss-Legendre on [-1, 1]. */
static const double GaussLegendre16[8][2] = {
	{0.095012509837637454, 0.18945061045506859},
	{0.28160355077925892, 0.18260341504492361},
	{0.45801677765722737, 0.16915651939500262},
	{0.61787624440264377, 0.14959598881657676},
	{0.755404408355003, 0.12462897125553403},
	{0.86563120238783176, 0.095158511682492591},
	{0.9445750230732326, 0.062253523938647706},
	{0.98940093499164994, 0.027152459411754037}
};

/* log of the integrand of PnbdLogIntegral at u = log(A + tau), times d tau/du */
static inline double
PnbdLogIntegrand(double p, double q, double A, double B, double lo, double u)
{
	return -(p - 1) * u - q * log(B + Max(exp(u) - A, lo));
}

/*
 * log of the integral from lo to hi of (A+tau)^-p (B+tau)^-q d tau, by
 * 16-point Gauss-Legendre in u = log(A+tau) on panels across which the
 * log-integrand changes by at most about 4 (then the rule is exact to
 * ~1e-16 relative); panels more than e^-50 below the largest are skipped.
 * Used where the series of PnbdLogI converges too slowly (z near 1).
 */
static double
PnbdLogIntegral(double p, double q, double A, double B, double lo, double hi)
{
	double		u0 = log(A + lo),
				u1 = log(A + hi);
	double		change = fabs(p - 1) * (u1 - u0) + fabs(q) * (log(B + hi) - log(B + lo));
	int			panels = (int) Min(Max(ceil(change / 4.0), 1.0), 4096.0);
	double		h = (u1 - u0) / panels;
	double		gmax = -INFINITY,
				sum = 0,
				prev;

	/* the largest value sits at a panel end (g is monotone or unimodal) */
	for (int k = 0; k <= panels; k++)
		gmax = Max(gmax, PnbdLogIntegrand(p, q, A, B, lo, u0 + k * h));
	prev = PnbdLogIntegrand(p, q, A, B, lo, u0);
	for (int k = 0; k < panels; k++)
	{
		double		next = PnbdLogIntegrand(p, q, A, B, lo, u0 + (k + 1) * h);
		double		mid = u0 + (k + 0.5) * h;

		if (Max(prev, next) >= gmax - 50)
		{
			for (int j = 0; j < 8; j++)
			{
				double		d = 0.5 * h * GaussLegendre16[j][0];

				sum += GaussLegendre16[j][1] *
					(exp(PnbdLogIntegrand(p, q, A, B, lo, mid - d) - gmax) +
					 exp(PnbdLogIntegrand(p, q, A, B, lo, mid + d) - gmax));
			}
		}
		prev = next;
	}
	return gmax + log(sum * 0.5 * h);
}

/* Raise the error for a hypergeometric series that did not converge. */
static void
PnbdSeriesError(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("pareto/nbd hypergeometric series did not converge"),
			 errdetail("alpha and beta differ by a factor of more than about 10^6 relative to t.")));
}

/*
 * The two log terms of the likelihood beyond the common factor:
 * *la = log((alpha+T)^-(r+x) (beta+T)^-s)   (alive at T)
 * *lb = log(s * int_{t_x}^T ...)            (died between t_x and T)
 */
static void
PnbdLogTerms(double r, double alpha, double s, double beta,
			 int32 x, double t_x, double t, double *la, double *lb)
{
	*la = -(r + x) * log(alpha + t) - s * log(beta + t);
	if (t_x < t)
	{
		double		z = fabs(alpha - beta) / (Max(alpha, beta) + t_x);

		if (z > PNBD_SERIES_MAX_Z)
			*lb = log(s) + PnbdLogIntegral(r + x, s + 1, alpha, beta, t_x, t);
		else
		{
			double		l1 = PnbdLogI(r + x, s + 1, alpha, beta, t_x);
			double		l2 = PnbdLogI(r + x, s + 1, alpha, beta, t);

			*lb = log(s) + l1 + log(-expm1(Min(l2 - l1, 0.0)));
		}
	}
	else
		*lb = -INFINITY;
}

/* Per-customer log-likelihood. */
static double
PnbdLogLik(double r, double alpha, double s, double beta,
		   int32 x, double t_x, double t)
{
	double		la,
				lb;

	PnbdLogTerms(r, alpha, s, beta, x, t_x, t, &la, &lb);
	return lgamma(r + x) - lgamma(r) + r * log(alpha) + s * log(beta)
		+ ProbLogSumExp(la, lb);
}

/* P(alive at T) = alive term / (alive term + died term). */
static double
PnbdPAlive(double r, double alpha, double s, double beta,
		   int32 x, double t_x, double t)
{
	double		la,
				lb,
				p;

	PnbdLogTerms(r, alpha, s, beta, x, t_x, t, &la, &lb);
	p = exp(la - ProbLogSumExp(la, lb));
	if (isnan(p))
		PnbdSeriesError();
	return p;
}

/* ----------------------------------------------------------------------
 * Fit
 * ---------------------------------------------------------------------- */

typedef struct PnbdFitCtx
{
	ProbEntry  *e;				/* sorted by x */
	int			n;
} PnbdFitCtx;

/* Negative total log-likelihood in theta = log(r, alpha, s, beta). */
static double
PnbdObjective(const double *theta, double *grad, void *vctx)
{
	PnbdFitCtx *c = vctx;
	double		r = exp(theta[0]),
				alpha = exp(theta[1]),
				s = exp(theta[2]),
				beta = exp(theta[3]);
	double		common = -lgamma(r) + r * theta[1] + s * theta[3];
	double		f = 0;
	int			i = 0;

	Assert(grad == NULL);
	while (i < c->n)
	{
		int32		x = c->e[i].x;
		double		cx = common + lgamma(r + x);

		CHECK_FOR_INTERRUPTS();
		for (; i < c->n && c->e[i].x == x; i++)
		{
			double		la,
						lb;

			PnbdLogTerms(r, alpha, s, beta, x, c->e[i].v1, c->e[i].v2, &la, &lb);
			f -= c->e[i].w * (cx + ProbLogSumExp(la, lb));
		}
	}
	return f;
}

/* Final: maximise the likelihood and return a churn.pnbd row. */
Datum
pnbd_fit_final(PG_FUNCTION_ARGS)
{
	ProbState  *st = (ProbState *) PG_GETARG_POINTER(0);
	PnbdFitCtx	ctx;
	double		theta[4];
	double		sumx,
				sumt;
	ProbOptResult res;

	(void) ChurnAggContext(fcinfo, "pnbd_fit_final");
	ctx.e = ProbStateSortedEntries(st, &ctx.n);
	if (ctx.n == 0)
		PG_RETURN_NULL();
	ProbRftSums(ctx.e, ctx.n, "pnbd_fit", &sumx, &sumt);
	if (sumt == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("pnbd_fit needs a positive observation time t")));

	/* start: r = s = 1, alpha from the mean purchase rate, beta = mean t */
	theta[0] = 0;
	theta[1] = log(sumt / sumx);
	theta[2] = 0;
	theta[3] = log(sumt / st->wsum);
	res = ProbMinimize(PnbdObjective, &ctx, 4, theta, false);

	PG_RETURN_DATUM(ProbFitResult(fcinfo, theta, 4, &res, st->wsum));
}

/* ----------------------------------------------------------------------
 * Per-customer functions
 * ---------------------------------------------------------------------- */

/* Conditional expected purchases in (t, t+h] (Fader & Hardie 2005 eq. 28). */
static double
PnbdExpected(double r, double alpha, double s, double beta,
			 double h, int32 x, double t_x, double t)
{
	double		ls,
				factor;

	if (h == 0)
		return 0.0;
	ls = log1p(h / (beta + t));
	/* [1 - ((beta+t)/(beta+t+h))^(s-1)] / (s-1), -> ls as s -> 1 */
	if (fabs((s - 1) * ls) < 1e-8)
		factor = ls * (1 - 0.5 * (s - 1) * ls);
	else
		factor = -expm1(-(s - 1) * ls) / (s - 1);
	return PnbdPAlive(r, alpha, s, beta, x, t_x, t)
		* (r + x) * (beta + t) / (alpha + t) * factor;
}

/* churn.pnbd_p_alive(m, x, t_x, t) */
Datum
pnbd_p_alive(PG_FUNCTION_ARGS)
{
	double		r,
				alpha,
				s,
				beta;
	int32		x;
	double		t_x,
				t;

	PnbdGetParams(PG_GETARG_HEAPTUPLEHEADER(0), &r, &alpha, &s, &beta);
	ProbGetRftArgs(fcinfo, 1, &x, &t_x, &t);
	PG_RETURN_FLOAT8(PnbdPAlive(r, alpha, s, beta, x, x == 0 ? 0.0 : t_x, t));
}

/* churn.pnbd_expected(m, horizon, x, t_x, t) */
Datum
pnbd_expected(PG_FUNCTION_ARGS)
{
	double		r,
				alpha,
				s,
				beta;
	double		h,
				t_x,
				t;
	int32		x;

	PnbdGetParams(PG_GETARG_HEAPTUPLEHEADER(0), &r, &alpha, &s, &beta);
	ProbGetHorizonRftArgs(fcinfo, 1, &h, &x, &t_x, &t);
	PG_RETURN_FLOAT8(PnbdExpected(r, alpha, s, beta, h, x, x == 0 ? 0.0 : t_x, t));
}

/* churn.pnbd_expected_new(m, t): E[X(t)] for a customer just acquired. */
Datum
pnbd_expected_new(PG_FUNCTION_ARGS)
{
	double		r,
				alpha,
				s,
				beta;
	double		t = PG_GETARG_FLOAT8(1);

	PnbdGetParams(PG_GETARG_HEAPTUPLEHEADER(0), &r, &alpha, &s, &beta);
	ChurnCheckNonNegative(t, "t");
	PG_RETURN_FLOAT8(PnbdExpected(r, alpha, s, beta, t, 0, 0.0, 0.0));
}

/*
 * churn.pnbd_p_churn(m, horizon, x, t_x, t): P(no purchase in (t, t+h]).
 * Given alive at t, lambda ~ Gamma(r+x, alpha') and mu ~ Gamma(s, beta')
 * independently (alpha' = alpha+t, beta' = beta+t).  No purchase in h
 * happens if the customer dies before the next purchase, or the next
 * purchase comes after h:
 *   P(none | alive) = E[mu/(lambda+mu)] + E[lambda/(lambda+mu) e^-(lambda+mu)h]
 *     = alpha'^(r+x) beta'^s [ s I(r+x, s+1; alpha', beta'; 0)
 *                              + (r+x) I(r+x+1, s; alpha', beta'; h) ],
 * two positive terms (they sum to 1 at h = 0).
 */
Datum
pnbd_p_churn(PG_FUNCTION_ARGS)
{
	double		r,
				alpha,
				s,
				beta,
				pal,
				c,
				l1,
				l2,
				none;
	double		h,
				t_x,
				t;
	int32		x;

	PnbdGetParams(PG_GETARG_HEAPTUPLEHEADER(0), &r, &alpha, &s, &beta);
	ProbGetHorizonRftArgs(fcinfo, 1, &h, &x, &t_x, &t);
	pal = PnbdPAlive(r, alpha, s, beta, x, x == 0 ? 0.0 : t_x, t);
	c = (r + x) * log(alpha + t) + s * log(beta + t);
	l1 = PnbdLogI(r + x, s + 1, alpha + t, beta + t, 0.0);
	l2 = PnbdLogI(r + x + 1, s, alpha + t, beta + t, h);
	if (isnan(l1) || isnan(l2))
		PnbdSeriesError();
	none = exp(c + log(s) + l1) + exp(c + log(r + x) + l2);
	none = Min(Max(none, 0.0), 1.0);
	PG_RETURN_FLOAT8((1.0 - pal) + pal * none);
}

/* churn.pnbd_loglik(m, x, t_x, t) */
Datum
pnbd_loglik(PG_FUNCTION_ARGS)
{
	double		r,
				alpha,
				s,
				beta,
				ll;
	int32		x;
	double		t_x,
				t;

	PnbdGetParams(PG_GETARG_HEAPTUPLEHEADER(0), &r, &alpha, &s, &beta);
	ProbGetRftArgs(fcinfo, 1, &x, &t_x, &t);
	ll = PnbdLogLik(r, alpha, s, beta, x, x == 0 ? 0.0 : t_x, t);
	if (isnan(ll))
		PnbdSeriesError();
	PG_RETURN_FLOAT8(ll);
}
