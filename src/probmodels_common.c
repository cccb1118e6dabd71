/*-------------------------------------------------------------------------
 *
 * probmodels_common.c
 *	  Shared machinery of the buy-till-you-die models: the compressed
 *	  aggregate state (with combine / serialize / deserialize), input
 *	  validation, special functions and the optimiser.
 *
 *-------------------------------------------------------------------------
 */
#include "probmodels.h"
#include "numeric.h"

#include <float.h>
#include <math.h>

#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(prob_rft_fit_trans);
PG_FUNCTION_INFO_V1(prob_fit_combine);
PG_FUNCTION_INFO_V1(prob_fit_serialize);
PG_FUNCTION_INFO_V1(prob_fit_deserialize);

#define PROB_INITIAL_CAP 64
#define PROB_THETA_LIMIT 50.0	/* |log parameter| beyond this is outside
								 * the domain */

/* ----------------------------------------------------------------------
 * Compressed state
 * ---------------------------------------------------------------------- */

/* Create an empty state whose memory lives in cxt. */
static ProbState *
ProbStateCreate(MemoryContext cxt)
{
	ProbState  *st = MemoryContextAllocZero(cxt, sizeof(ProbState));

	st->cxt = cxt;
	st->cap = PROB_INITIAL_CAP;
	st->e = MemoryContextAlloc(cxt, sizeof(ProbEntry) * st->cap);
	st->nslots = PROB_INITIAL_CAP * 2;
	st->slots = MemoryContextAlloc(cxt, sizeof(int32) * st->nslots);
	memset(st->slots, 0xff, sizeof(int32) * st->nslots);
	return st;
}

/* Mix the bits of a key into a 64-bit hash (splitmix64 finaliser). */
static inline uint64
ProbHashKey(int32 x, double v1, double v2)
{
	uint64		a,
				b,
				h;

	memcpy(&a, &v1, sizeof(a));
	memcpy(&b, &v2, sizeof(b));
	h = (uint64) (uint32) x * UINT64CONST(0x9E3779B97F4A7C15);
	h ^= a + UINT64CONST(0xBF58476D1CE4E5B9) + (h << 6) + (h >> 2);
	h ^= b + UINT64CONST(0x94D049BB133111EB) + (h << 6) + (h >> 2);
	h ^= h >> 30;
	h *= UINT64CONST(0xBF58476D1CE4E5B9);
	h ^= h >> 27;
	h *= UINT64CONST(0x94D049BB133111EB);
	h ^= h >> 31;
	return h;
}

/* Rebuild the open-addressing index with nslots slots. */
static void
ProbStateRehash(ProbState *st, int nslots)
{
	int			i;

	pfree(st->slots);
	st->nslots = nslots;
	st->slots = MemoryContextAllocHuge(st->cxt, sizeof(int32) * (Size) nslots);
	memset(st->slots, 0xff, sizeof(int32) * (Size) nslots);
	for (i = 0; i < st->n; i++)
	{
		uint64		h = ProbHashKey(st->e[i].x, st->e[i].v1, st->e[i].v2);
		int			s = (int) (h & (uint64) (nslots - 1));

		while (st->slots[s] >= 0)
			s = (s + 1) & (nslots - 1);
		st->slots[s] = i;
	}
}

/* Add weight w to key (x, v1, v2), inserting the key if it is new. */
void
ProbStateAdd(ProbState *st, int32 x, double v1, double v2, double w)
{
	uint64		h;
	int			s;

	/* -0.0 and 0.0 are the same key */
	v1 += 0.0;
	v2 += 0.0;
	h = ProbHashKey(x, v1, v2);
	s = (int) (h & (uint64) (st->nslots - 1));
	for (;;)
	{
		int32		i = st->slots[s];

		if (i < 0)
			break;
		if (st->e[i].x == x && st->e[i].v1 == v1 && st->e[i].v2 == v2)
		{
			st->e[i].w += w;
			st->wsum += w;
			st->nrows++;
			return;
		}
		s = (s + 1) & (st->nslots - 1);
	}
	if (st->n >= (1 << 27))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct inputs for a probabilistic model fit"),
				 errhint("Round t_x and t to fewer distinct values, e.g. whole days.")));
	if (st->n == st->cap)
	{
		st->cap *= 2;
		st->e = repalloc_huge(st->e, sizeof(ProbEntry) * (Size) st->cap);
	}
	st->e[st->n].x = x;
	st->e[st->n].v1 = v1;
	st->e[st->n].v2 = v2;
	st->e[st->n].w = w;
	st->slots[s] = st->n;
	st->n++;
	st->wsum += w;
	st->nrows++;
	if ((int64) st->n * 2 > st->nslots)
		ProbStateRehash(st, st->nslots * 2);
}

/* Get the state of a fitting aggregate, creating it in the aggregate context. */
ProbState *
ProbStateGet(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext aggcxt = ChurnAggContext(fcinfo, fname);

	if (PG_ARGISNULL(0))
		return ProbStateCreate(aggcxt);
	return (ProbState *) PG_GETARG_POINTER(0);
}

/* Order entries by x, then v1, then v2 (a deterministic summation order). */
static int
ProbEntryCmp(const void *pa, const void *pb)
{
	const ProbEntry *a = pa;
	const ProbEntry *b = pb;

	if (a->x != b->x)
		return a->x < b->x ? -1 : 1;
	if (a->v1 != b->v1)
		return a->v1 < b->v1 ? -1 : 1;
	if (a->v2 != b->v2)
		return a->v2 < b->v2 ? -1 : 1;
	return 0;
}

/* Sorted copy of the entries that carry positive weight. */
ProbEntry *
ProbStateSortedEntries(ProbState *st, int *n)
{
	ProbEntry  *out = palloc_extended(sizeof(ProbEntry) * (Size) Max(st->n, 1),
									  MCXT_ALLOC_HUGE);
	int			i,
				k = 0;

	for (i = 0; i < st->n; i++)
		if (st->e[i].w > 0)
			out[k++] = st->e[i];
	qsort(out, k, sizeof(ProbEntry), ProbEntryCmp);
	*n = k;
	return out;
}

/*
 * Transition of bgnbd_fit and pnbd_fit: validate an (x, t_x, t[, weight])
 * row and add it to the compressed state; rows with a NULL input are skipped.
 */
Datum
prob_rft_fit_trans(PG_FUNCTION_ARGS)
{
	ProbState  *st;
	int32		x;
	double		t_x,
				t,
				w = 1.0;

	for (int i = 1; i < PG_NARGS(); i++)
	{
		if (PG_ARGISNULL(i))
		{
			if (PG_ARGISNULL(0))
				PG_RETURN_NULL();
			PG_RETURN_POINTER(PG_GETARG_POINTER(0));
		}
	}
	st = ProbStateGet(fcinfo, "bgnbd_fit/pnbd_fit");
	x = PG_GETARG_INT32(1);
	t_x = PG_GETARG_FLOAT8(2);
	t = PG_GETARG_FLOAT8(3);
	ProbCheckRft(x, t_x, t);
	if (PG_NARGS() > 4)
	{
		w = PG_GETARG_FLOAT8(4);
		ProbCheckWeight(w);
	}
	/* with x = 0, t_x does not enter either likelihood: store 0 so rows fold */
	ProbStateAdd(st, x, x == 0 ? 0.0 : t_x, t, w);
	PG_RETURN_POINTER(st);
}

/* Combine two partial states (parallel aggregation). */
Datum
prob_fit_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	ProbState  *s1;
	ProbState  *s2;
	int			i;

	aggcxt = ChurnAggContext(fcinfo, "prob_fit_combine");
	s1 = PG_ARGISNULL(0) ? NULL : (ProbState *) PG_GETARG_POINTER(0);
	s2 = PG_ARGISNULL(1) ? NULL : (ProbState *) PG_GETARG_POINTER(1);
	if (s2 == NULL)
	{
		if (s1 == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s1);
	}
	if (s1 == NULL)
		s1 = ProbStateCreate(aggcxt);
	for (i = 0; i < s2->n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		ProbStateAdd(s1, s2->e[i].x, s2->e[i].v1, s2->e[i].v2, s2->e[i].w);
	}
	/* ProbStateAdd counted one row per key; use the true row counts */
	s1->nrows += s2->nrows - s2->n;
	PG_RETURN_POINTER(s1);
}

/* Serialized layout: nrows, wsum, n, then n ProbEntry structs. */
typedef struct ProbSerialHeader
{
	int64		nrows;
	double		wsum;
	int32		n;
	int32		pad;
} ProbSerialHeader;

/* Serialize a state to bytea for transfer between parallel workers. */
Datum
prob_fit_serialize(PG_FUNCTION_ARGS)
{
	ProbState  *st;
	ProbSerialHeader hdr;
	Size		len;
	bytea	   *out;

	(void) ChurnAggContext(fcinfo, "prob_fit_serialize");
	st = (ProbState *) PG_GETARG_POINTER(0);
	memset(&hdr, 0, sizeof(hdr));
	hdr.nrows = st->nrows;
	hdr.wsum = st->wsum;
	hdr.n = st->n;
	len = VARHDRSZ + sizeof(hdr) + sizeof(ProbEntry) * (Size) st->n;
	if (len > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("probabilistic model fit state too large to serialize"),
				 errdetail("The state holds %d distinct inputs.", st->n)));
	out = palloc(len);
	SET_VARSIZE(out, len);
	memcpy(VARDATA(out), &hdr, sizeof(hdr));
	memcpy(VARDATA(out) + sizeof(hdr), st->e, sizeof(ProbEntry) * (Size) st->n);
	PG_RETURN_BYTEA_P(out);
}

/* Rebuild a state from its serialized form (in the current context). */
Datum
prob_fit_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *in;
	ProbSerialHeader hdr;
	ProbState  *st;
	const char *p;
	int			i;

	(void) ChurnAggContext(fcinfo, "prob_fit_deserialize");
	in = PG_GETARG_BYTEA_PP(0);
	if (VARSIZE_ANY_EXHDR(in) < sizeof(hdr))
		elog(ERROR, "invalid serialized probabilistic model state");
	p = VARDATA_ANY(in);
	memcpy(&hdr, p, sizeof(hdr));
	if (hdr.n < 0 || VARSIZE_ANY_EXHDR(in) != sizeof(hdr) + sizeof(ProbEntry) * (Size) hdr.n)
		elog(ERROR, "invalid serialized probabilistic model state");
	st = ProbStateCreate(CurrentMemoryContext);
	p += sizeof(hdr);
	for (i = 0; i < hdr.n; i++)
	{
		ProbEntry	e;

		memcpy(&e, p + sizeof(ProbEntry) * (Size) i, sizeof(e));
		ProbStateAdd(st, e.x, e.v1, e.v2, e.w);
	}
	st->nrows = hdr.nrows;
	st->wsum = hdr.wsum;
	PG_RETURN_POINTER(st);
}

/* ----------------------------------------------------------------------
 * Input validation
 * ---------------------------------------------------------------------- */

/* Weights must be finite and non-negative; zero weights are accepted. */
void
ProbCheckWeight(double w)
{
	ChurnCheckNonNegative(w, "weight");
}

/* Validate one customer summary (x, t_x, t) under the BTYD conventions. */
void
ProbCheckRft(int32 x, double t_x, double t)
{
	if (x < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("x must not be negative"),
				 errdetail("x is the number of repeat purchases; the value was %d.", x)));
	ChurnCheckNonNegative(t_x, "t_x");
	ChurnCheckNonNegative(t, "t");
	if (t_x > t)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("t_x must not be greater than t"),
				 errdetail("t_x = %g, t = %g.", t_x, t),
				 errhint("t_x is the time from the first to the last purchase, t the time from the first purchase to the end of the observation period.")));
	if (x > 0 && t_x <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("t_x must be positive when x > 0"),
				 errdetail("x = %d repeat purchases but t_x = %g.", x, t_x),
				 errhint("Merge purchases on the same day; t_x is the time from the first to the last purchase day.")));
}

/* Fetch a float8 field of a model composite, validating it. */
double
ProbModelParam(HeapTupleHeader m, int attno, const char *type,
			   const char *name, bool positive)
{
	bool		isnull;
	Datum		d = GetAttributeByNum(m, (AttrNumber) attno, &isnull);
	double		v;

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model parameter %s of %s is null", name, type)));
	v = DatumGetFloat8(d);
	if (positive && !(isfinite(v) && v > 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model parameter %s of %s must be positive and finite", name, type),
				 errdetail("The value was %g.", v)));
	return v;
}

/* ----------------------------------------------------------------------
 * Special functions
 * ---------------------------------------------------------------------- */

/* Digamma by upward recurrence to x >= 6 and the asymptotic series. */
double
ProbDigamma(double x)
{
	double		res = 0.0;
	double		f;

	if (!(x > 0))
		return NAN;
	while (x < 6.0)
	{
		res -= 1.0 / x;
		x += 1.0;
	}
	f = 1.0 / (x * x);
	res += log(x) - 0.5 / x
		- f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f * (1.0 / 132)))));
	return res;
}

/* log(exp(a) + exp(b)), exact for -inf arguments. */
double
ProbLogSumExp(double a, double b)
{
	double		m = Max(a, b);

	if (m == -INFINITY)
		return -INFINITY;
	return m + log1p(exp(Min(a, b) - m));
}

/* ----------------------------------------------------------------------
 * Optimiser
 * ---------------------------------------------------------------------- */

typedef struct ProbEval
{
	ProbObjective f;
	void	   *ctx;
	int			k;
	bool		analytic;
} ProbEval;

/* Objective value and gradient; +inf outside |theta| <= PROB_THETA_LIMIT. */
static double
ProbEvalFG(ProbEval *ev, const double *theta, double *grad)
{
	int			i;
	double		v;

	for (i = 0; i < ev->k; i++)
		if (!(fabs(theta[i]) <= PROB_THETA_LIMIT))
			return INFINITY;
	if (ev->analytic)
		v = ev->f(theta, grad, ev->ctx);
	else
		v = ProbNumericGradient(ev->f, ev->ctx, ev->k, theta, grad);
	if (isnan(v))
		return INFINITY;
	for (i = 0; i < ev->k; i++)
		if (!isfinite(grad[i]))
			return INFINITY;
	return v;
}

/* Central differences; one-sided where one side is outside the domain. */
double
ProbNumericGradient(ProbObjective f, void *ctx, int k, const double *theta,
					double *grad)
{
	double		f0 = f(theta, NULL, ctx);
	double		tp[PROB_MAX_PARAMS];
	int			i;

	if (!isfinite(f0))
		return f0;
	memcpy(tp, theta, sizeof(double) * k);
	for (i = 0; i < k; i++)
	{
		double		h = 1e-6 * Max(1.0, fabs(theta[i]));
		double		fp,
					fm;

		tp[i] = theta[i] + h;
		fp = f(tp, NULL, ctx);
		tp[i] = theta[i] - h;
		fm = f(tp, NULL, ctx);
		tp[i] = theta[i];
		if (isfinite(fp) && isfinite(fm))
			grad[i] = (fp - fm) / (2 * h);
		else if (isfinite(fp))
			grad[i] = (fp - f0) / h;
		else if (isfinite(fm))
			grad[i] = (f0 - fm) / h;
		else
			grad[i] = NAN;
	}
	return f0;
}

/* Newton direction: solve H d = -g; false when H is not positive definite. */
static bool
ProbNewtonDirection(int k, const double H[PROB_MAX_PARAMS][PROB_MAX_PARAMS],
					const double *g, double *d)
{
	double		L[PROB_MAX_PARAMS * PROB_MAX_PARAMS];
	int			i,
				j;

	/* CholeskyDecompose reads the upper triangle: give it H's lower one */
	for (i = 0; i < k; i++)
		for (j = 0; j < k; j++)
			L[i * k + j] = H[Max(i, j)][Min(i, j)];
	if (CholeskyDecompose(L, k, 0.0) >= 0)
		return false;
	for (i = 0; i < k; i++)
		d[i] = -g[i];
	CholeskySolve(L, k, d);
	return true;
}

/*
 * Minimise f: BFGS on theta with an Armijo backtracking line search, then
 * Newton iterations with a Hessian from central differences of the gradient.
 * converged is set only when the Hessian is positive definite and the Newton
 * decrement g' H^-1 g is below 1e-12 * max(1, |f|) (for the CDNOW BG/NBD fit
 * that bounds the parameter error far below 1e-6 relative).
 */
ProbOptResult
ProbMinimize(ProbObjective f, void *ctx, int k, double *theta, bool analytic_gradient)
{
	ProbEval	ev = {f, ctx, k, analytic_gradient};
	ProbOptResult res = {NAN, 0, false};
	double		Hinv[PROB_MAX_PARAMS][PROB_MAX_PARAMS];
	double		g[PROB_MAX_PARAMS],
				gn[PROB_MAX_PARAMS],
				xn[PROB_MAX_PARAMS],
				p[PROB_MAX_PARAMS],
				s[PROB_MAX_PARAMS],
				y[PROB_MAX_PARAMS];
	double		fx,
				fn;
	int			i,
				j,
				it,
				stall = 0;
	bool		first = true;
	const int	max_bfgs = 1000;
	const int	max_newton = 50;

	Assert(k <= PROB_MAX_PARAMS);
	fx = ProbEvalFG(&ev, theta, g);
	if (!isfinite(fx))
		return res;
	memset(Hinv, 0, sizeof(Hinv));
	for (i = 0; i < k; i++)
		Hinv[i][i] = 1.0;

	for (it = 0; it < max_bfgs; it++)
	{
		double		gmax = 0,
					pmax = 0,
					dg = 0,
					t = 1.0,
					sy = 0,
					yy = 0;
		bool		accepted = false;
		int			ls;

		CHECK_FOR_INTERRUPTS();
		for (i = 0; i < k; i++)
			gmax = Max(gmax, fabs(g[i]));
		if (gmax <= 1e-9 * Max(1.0, fabs(fx)))
			break;
		for (i = 0; i < k; i++)
		{
			p[i] = 0;
			for (j = 0; j < k; j++)
				p[i] -= Hinv[i][j] * g[j];
			dg += p[i] * g[i];
		}
		if (!(dg < 0))
		{
			/* not a descent direction: restart from steepest descent */
			memset(Hinv, 0, sizeof(Hinv));
			for (i = 0; i < k; i++)
				Hinv[i][i] = 1.0;
			first = true;
			dg = 0;
			for (i = 0; i < k; i++)
			{
				p[i] = -g[i];
				dg -= g[i] * g[i];
			}
		}
		/* predicted decrease at rounding level: leave the rest to Newton */
		if (-dg <= 1e-11 * Max(1.0, fabs(fx)))
			break;
		for (i = 0; i < k; i++)
			pmax = Max(pmax, fabs(p[i]));
		/* first step and overly long steps: at most 1 (resp. 5) in log units */
		if ((first && pmax > 1.0) || pmax > 5.0)
		{
			double		sc = (first ? 1.0 : 5.0) / pmax;

			for (i = 0; i < k; i++)
				p[i] *= sc;
			dg *= sc;
		}
		for (ls = 0; ls < 60; ls++)
		{
			for (i = 0; i < k; i++)
				xn[i] = theta[i] + t * p[i];
			fn = ProbEvalFG(&ev, xn, gn);
			if (isfinite(fn) && fn <= fx + 1e-4 * t * dg)
			{
				accepted = true;
				break;
			}
			t *= isfinite(fn) ? 0.5 : 0.1;
		}
		if (!accepted)
			break;
		for (i = 0; i < k; i++)
		{
			s[i] = xn[i] - theta[i];
			y[i] = gn[i] - g[i];
			sy += s[i] * y[i];
			yy += y[i] * y[i];
		}
		if (sy > 1e-12 * sqrt(yy) * t * pmax)
		{
			double		Hy[PROB_MAX_PARAMS],
						yHy = 0;

			if (first)
			{
				memset(Hinv, 0, sizeof(Hinv));
				for (i = 0; i < k; i++)
					Hinv[i][i] = sy / yy;
				first = false;
			}
			for (i = 0; i < k; i++)
			{
				Hy[i] = 0;
				for (j = 0; j < k; j++)
					Hy[i] += Hinv[i][j] * y[j];
				yHy += y[i] * Hy[i];
			}
			for (i = 0; i < k; i++)
				for (j = 0; j < k; j++)
					Hinv[i][j] += ((sy + yHy) * s[i] * s[j]) / (sy * sy)
						- (Hy[i] * s[j] + s[i] * Hy[j]) / sy;
		}
		stall = (fx - fn <= 1e-15 * Max(1.0, fabs(fx))) ? stall + 1 : 0;
		memcpy(theta, xn, sizeof(double) * k);
		memcpy(g, gn, sizeof(double) * k);
		fx = fn;
		if (stall >= 3)
			break;
	}
	res.iterations = it;

	/* Newton polish and convergence certificate */
	for (it = 0; it < max_newton; it++)
	{
		double		H[PROB_MAX_PARAMS][PROB_MAX_PARAMS];
		double		d[PROB_MAX_PARAMS];
		double		gp[PROB_MAX_PARAMS],
					gm[PROB_MAX_PARAMS],
					tp[PROB_MAX_PARAMS];
		double		h = analytic_gradient ? 1e-5 : 1e-3;
		double		dec = 0,
					t = 1.0,
					tol = 1e-12 * Max(1.0, fabs(fx));
		bool		pd,
					accepted = false;
		int			ls;

		CHECK_FOR_INTERRUPTS();
		memcpy(tp, theta, sizeof(double) * k);
		for (j = 0; j < k; j++)
		{
			/*
			 * Analytic gradients are exact enough for forward differences
			 * (k evaluations); numeric ones need central differences.
			 */
			tp[j] = theta[j] + h;
			if (!isfinite(ProbEvalFG(&ev, tp, gp)))
				goto done;
			if (analytic_gradient)
				memcpy(gm, g, sizeof(double) * k);
			else
			{
				tp[j] = theta[j] - h;
				if (!isfinite(ProbEvalFG(&ev, tp, gm)))
					goto done;
			}
			tp[j] = theta[j];
			for (i = 0; i < k; i++)
				H[i][j] = (gp[i] - gm[i]) / (analytic_gradient ? h : 2 * h);
		}
		for (i = 0; i < k; i++)
			for (j = 0; j < i; j++)
				H[i][j] = H[j][i] = 0.5 * (H[i][j] + H[j][i]);
		pd = ProbNewtonDirection(k, H, g, d);
		if (!pd)
		{
			/* Levenberg damping until positive definite; not converged */
			double		lam = 1e-6;
			double		Hd[PROB_MAX_PARAMS][PROB_MAX_PARAMS];

			for (;;)
			{
				double		dmax = 0;

				for (i = 0; i < k; i++)
					dmax = Max(dmax, fabs(H[i][i]));
				memcpy(Hd, H, sizeof(H));
				for (i = 0; i < k; i++)
					Hd[i][i] += lam * Max(dmax, 1.0);
				if (ProbNewtonDirection(k, Hd, g, d))
					break;
				lam *= 10;
				if (lam > 1e12)
					goto done;
			}
		}
		for (i = 0; i < k; i++)
			dec -= g[i] * d[i];
		if (pd && dec <= tol)
		{
			/* certified; take the final full Newton step if it does not hurt */
			for (i = 0; i < k; i++)
				xn[i] = theta[i] + d[i];
			fn = ProbEvalFG(&ev, xn, gn);
			if (isfinite(fn) && fn <= fx)
			{
				memcpy(theta, xn, sizeof(double) * k);
				fx = fn;
			}
			res.converged = true;
			break;
		}
		for (ls = 0; ls < 40; ls++)
		{
			for (i = 0; i < k; i++)
				xn[i] = theta[i] + t * d[i];
			fn = ProbEvalFG(&ev, xn, gn);
			if (isfinite(fn) && fn <= fx - 1e-4 * t * dec)
			{
				accepted = true;
				break;
			}
			t *= 0.5;
		}
		if (!accepted)
		{
			/* no further decrease representable: accept a tiny decrement */
			if (pd && dec <= 1e-8 * Max(1.0, fabs(fx)))
				res.converged = true;
			break;
		}
		memcpy(theta, xn, sizeof(double) * k);
		memcpy(g, gn, sizeof(double) * k);
		fx = fn;
		res.iterations++;
	}
done:
	res.fval = fx;
	return res;
}
