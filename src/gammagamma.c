/*-------------------------------------------------------------------------
 *
 * gammagamma.c
 *	  Gamma-Gamma model of monetary value (Fader & Hardie 2013, "The
 *	  Gamma-Gamma Model of Monetary Value"; Fader, Hardie & Lee 2005, "RFM
 *	  and CLV"): each transaction value of a customer is Gamma(p, nu), and
 *	  nu ~ Gamma(q, v) across customers.  The data per customer are x
 *	  repeat transactions with average value avg_spend (zbar).
 *
 *-------------------------------------------------------------------------
 */
#include "probmodels.h"
#include "numeric.h"

#include <math.h>

#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(gg_fit_trans);
PG_FUNCTION_INFO_V1(gg_fit_final);
PG_FUNCTION_INFO_V1(gg_expected_spend);
PG_FUNCTION_INFO_V1(gg_loglik);
PG_FUNCTION_INFO_V1(predicted_value);

/* Read and validate the parameters of a churn.gg row. */
static void
GgGetParams(HeapTupleHeader m, double *p, double *q, double *v)
{
	static const char *const names[] = {"p", "q", "v"};
	double		par[3];

	ProbModelParams(m, "churn.gg", 3, names, par);
	*p = par[0];
	*q = par[1];
	*v = par[2];
}

/*
 * Log density of the average zbar of x transactions (note eq. 3):
 *   Gamma(px+q)/(Gamma(px) Gamma(q)) v^q zbar^(px-1) x^(px) / (v + x zbar)^(px+q)
 */
static double
GgLogLik(double p, double q, double v, int32 x, double zbar)
{
	double		px = p * x;

	return lgamma(px + q) - lgamma(px) - lgamma(q) + q * log(v)
		+ (px - 1) * log(zbar) + px * log((double) x) - (px + q) * log(v + x * zbar);
}

/* Conditional expected average spend; the population mean when x = 0. */
static double
GgExpectedSpend(double p, double q, double v, int32 x, double zbar)
{
	double		den = p * x + q - 1;

	if (!(den > 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expected spend is infinite for this gamma-gamma model"),
				 errdetail("p * x + q - 1 = %g must be positive (for x = 0 the model needs q > 1).", den)));
	return p * (v + x * zbar) / den;
}

/* Validate the inputs of a spend function. */
static void
GgCheckInput(int32 x, double zbar)
{
	if (x < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("x must not be negative"),
				 errdetail("x is the number of repeat purchases; the value was %d.", x)));
	ChurnCheckNonNegative(zbar, "avg_spend");
}

typedef struct GgFitCtx
{
	ProbEntry  *e;				/* sorted by x; v1 = avg_spend */
	int			n;
} GgFitCtx;

/* Negative log-likelihood and gradient in theta = log(p, q, v). */
static double
GgObjective(const double *theta, double *grad, void *vctx)
{
	GgFitCtx   *c = vctx;
	double		p = exp(theta[0]),
				q = exp(theta[1]),
				v = exp(theta[2]);
	double		lgq = lgamma(q),
				psq = grad ? ProbDigamma(q) : 0,
				lv = theta[2];
	double		f = 0,
				gp = 0,
				gq = 0,
				gv = 0;
	int			i = 0;

	while (i < c->n)
	{
		int32		x = c->e[i].x;
		double		px = p * x;
		double		c0 = lgamma(px + q) - lgamma(px) - lgq + q * lv + px * log((double) x);
		double		pspq = 0,
					psp = 0;

		if (grad)
		{
			pspq = ProbDigamma(px + q);
			psp = ProbDigamma(px);
		}
		for (; i < c->n && c->e[i].x == x; i++)
		{
			double		w = c->e[i].w;
			double		lz = log(c->e[i].v1);
			double		lvz = log(v + x * c->e[i].v1);

			f -= w * (c0 + (px - 1) * lz - (px + q) * lvz);
			if (grad)
			{
				gp -= w * x * (pspq - psp + lz + log((double) x) - lvz);
				gq -= w * (pspq - psq + lv - lvz);
				gv -= w * (q / v - (px + q) / (v + x * c->e[i].v1));
			}
		}
	}
	if (grad)
	{
		grad[0] = gp * p;
		grad[1] = gq * q;
		grad[2] = gv * v;
	}
	return f;
}

/* Transition: customers with x > 0 enter; x = 0 and NULL rows are skipped. */
Datum
gg_fit_trans(PG_FUNCTION_ARGS)
{
	ProbState  *st;
	int32		x;
	double		zbar,
				w = 1.0;
	int			i;

	for (i = 1; i < PG_NARGS(); i++)
		if (PG_ARGISNULL(i))
		{
			if (PG_ARGISNULL(0))
				PG_RETURN_NULL();
			PG_RETURN_POINTER(PG_GETARG_POINTER(0));
		}
	x = PG_GETARG_INT32(1);
	zbar = PG_GETARG_FLOAT8(2);
	if (x < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("x must not be negative"),
				 errdetail("x is the number of repeat purchases; the value was %d.", x)));
	if (PG_NARGS() > 3)
	{
		w = PG_GETARG_FLOAT8(3);
		ProbCheckWeight(w);
	}
	if (x == 0)
	{
		/* customers without repeat purchases carry no spend information */
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	ChurnCheckFinite(zbar, "avg_spend");
	if (!(zbar > 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("avg_spend must be positive when x > 0"),
				 errdetail("x = %d, avg_spend = %g.", x, zbar),
				 errhint("The gamma-gamma model needs positive transaction values; leave out customers whose repeat purchases are all free.")));
	st = ProbStateGet(fcinfo, "gg_fit");
	ProbStateAdd(st, x, zbar, 0.0, w);
	PG_RETURN_POINTER(st);
}

/* Final: maximise the likelihood and return a churn.gg row. */
Datum
gg_fit_final(PG_FUNCTION_ARGS)
{
	ProbState  *st = (ProbState *) PG_GETARG_POINTER(0);
	GgFitCtx	ctx;
	double		theta[3];
	double		sumz = 0;
	ProbOptResult res;
	int			i;

	(void) ChurnAggContext(fcinfo, "gg_fit_final");
	ctx.e = ProbStateSortedEntries(st, &ctx.n);
	if (ctx.n == 0)
		PG_RETURN_NULL();
	for (i = 0; i < ctx.n; i++)
		sumz += ctx.e[i].w * ctx.e[i].v1;

	/* start: p = 1, q = 2, v = mean spend (so the prior mean p v/(q-1) fits) */
	theta[0] = 0;
	theta[1] = log(2.0);
	theta[2] = log(sumz / st->wsum);
	res = ProbMinimize(GgObjective, &ctx, 3, theta, true);

	PG_RETURN_DATUM(ProbFitResult(fcinfo, theta, 3, &res, st->wsum));
}

/* churn.gg_expected_spend(m, x, avg_spend): E[average spend | x, zbar]. */
Datum
gg_expected_spend(PG_FUNCTION_ARGS)
{
	double		p,
				q,
				v;
	int32		x = PG_GETARG_INT32(1);
	double		zbar = PG_GETARG_FLOAT8(2);

	GgGetParams(PG_GETARG_HEAPTUPLEHEADER(0), &p, &q, &v);
	GgCheckInput(x, zbar);
	PG_RETURN_FLOAT8(GgExpectedSpend(p, q, v, x, zbar));
}

/* churn.gg_loglik(m, x, avg_spend): log density of zbar given x (x > 0). */
Datum
gg_loglik(PG_FUNCTION_ARGS)
{
	double		p,
				q,
				v;
	int32		x = PG_GETARG_INT32(1);
	double		zbar = PG_GETARG_FLOAT8(2);

	GgGetParams(PG_GETARG_HEAPTUPLEHEADER(0), &p, &q, &v);
	GgCheckInput(x, zbar);
	if (x == 0 || zbar == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gg_loglik needs x > 0 and a positive avg_spend"),
				 errdetail("x = %d, avg_spend = %g.", x, zbar)));
	PG_RETURN_FLOAT8(GgLogLik(p, q, v, x, zbar));
}

/*
 * churn.predicted_value(m, g, horizon, x, t_x, t, avg_spend): expected
 * purchases in (t, t + horizon] times the expected spend per purchase,
 * undiscounted.
 */
Datum
predicted_value(PG_FUNCTION_ARGS)
{
	double		r,
				alpha,
				a,
				b,
				p,
				q,
				v;
	double		h,
				t_x,
				t;
	int32		x;
	double		zbar = PG_GETARG_FLOAT8(6);
	double		n;

	BgnbdGetParams(PG_GETARG_HEAPTUPLEHEADER(0), &r, &alpha, &a, &b);
	GgGetParams(PG_GETARG_HEAPTUPLEHEADER(1), &p, &q, &v);
	ProbGetHorizonRftArgs(fcinfo, 2, &h, &x, &t_x, &t);
	GgCheckInput(x, zbar);
	n = BgnbdExpected(r, alpha, a, b, h, x, t_x, t);
	PG_RETURN_FLOAT8(n * GgExpectedSpend(p, q, v, x, zbar));
}
