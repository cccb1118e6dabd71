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

#include "access/htup_details.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(rft_fit_trans);
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
rft_fit_trans(PG_FUNCTION_ARGS)
{
	ProbState  *st;
	int32		x;
	double		t_x,
				t,
				w = 1.0;

	for (int i = 1; i < PG_NARGS(); i++)
		if (PG_ARGISNULL(i))
			return ChurnAggKeepState(fcinfo);
	st = ProbStateGet(fcinfo, "bgnbd_fit/pnbd_fit");
	ProbGetRftArgs(fcinfo, 1, &x, &t_x, &t);
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
		return ChurnAggKeepState(fcinfo);
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
		ChurnBadSerializedState("invalid serialized probabilistic model state");
	p = VARDATA_ANY(in);
	memcpy(&hdr, p, sizeof(hdr));
	if (hdr.n < 0 || VARSIZE_ANY_EXHDR(in) != sizeof(hdr) + sizeof(ProbEntry) * (Size) hdr.n)
		ChurnBadSerializedState("invalid serialized probabilistic model state");
	st = ProbStateCreate(CurrentMemoryContext);
	p += sizeof(hdr);
	for (i = 0; i < hdr.n; i++)
	{
		ProbEntry	e;

		memcpy(&e, p + sizeof(ProbEntry) * (Size) i, sizeof(e));
		/* a state may come from outside (churn.agg_state text) */
		if (e.x < 0 || !isfinite(e.v1) || !isfinite(e.v2) || !isfinite(e.w) || e.w < 0)
			ChurnBadSerializedState("invalid serialized probabilistic model state");
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

/* Read (x, t_x, t) from arguments argno .. argno + 2 and validate them. */
void
ProbGetRftArgs(FunctionCallInfo fcinfo, int argno, int32 *x, double *t_x, double *t)
{
	*x = PG_GETARG_INT32(argno);
	*t_x = PG_GETARG_FLOAT8(argno + 1);
	*t = PG_GETARG_FLOAT8(argno + 2);
	ProbCheckRft(*x, *t_x, *t);
}

/* Read a horizon from argument argno and (x, t_x, t) after it, validated. */
void
ProbGetHorizonRftArgs(FunctionCallInfo fcinfo, int argno, double *h, int32 *x,
					  double *t_x, double *t)
{
	*h = PG_GETARG_FLOAT8(argno);
	ChurnCheckNonNegative(*h, "horizon");
	ProbGetRftArgs(fcinfo, argno + 1, x, t_x, t);
}

/*
 * Weighted sums of x and of t over the keys of a BG/NBD or Pareto/NBD fit;
 * an error naming the aggregate fname when no customer has a repeat
 * purchase (the likelihood then has no maximum).
 */
void
ProbRftSums(const ProbEntry *e, int n, const char *fname, double *sumx, double *sumt)
{
	int			i;

	*sumx = 0;
	*sumt = 0;
	for (i = 0; i < n; i++)
	{
		*sumx += e[i].w * e[i].x;
		*sumt += e[i].w * e[i].v2;
	}
	if (*sumx == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s needs at least one customer with a repeat purchase", fname),
				 errdetail("Every row has x = 0. The likelihood then increases without bound as r goes to 0, so no maximum likelihood estimate exists.")));
}

/*
 * The model row of a fit: the k parameters exp(theta), the log-likelihood,
 * the total weight wsum, the iterations and the convergence flag, in the
 * order of the columns of churn.bgnbd, churn.pnbd and churn.gg.
 */
Datum
ProbFitResult(FunctionCallInfo fcinfo, const double *theta, int k,
			  const ProbOptResult *res, double wsum)
{
	Datum		values[PROB_MAX_PARAMS + 4];
	bool		nulls[PROB_MAX_PARAMS + 4] = {0};
	int			i;

	Assert(k <= PROB_MAX_PARAMS);
	for (i = 0; i < k; i++)
		values[i] = Float8GetDatum(exp(theta[i]));
	values[k] = Float8GetDatum(-res->fval);
	values[k + 1] = Float8GetDatum(wsum);
	values[k + 2] = Int32GetDatum(res->iterations);
	values[k + 3] = BoolGetDatum(res->converged);
	return ChurnMakeComposite(fcinfo, values, nulls);
}

/*
 * Fetch the first n float8 fields of a model composite (named by names),
 * each positive and finite.  One row type lookup for all of them: scoring
 * calls this for every customer.
 */
void
ProbModelParams(HeapTupleHeader m, const char *type, int n, const char *const *names,
				double *out)
{
	TupleDesc	desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(m),
											 HeapTupleHeaderGetTypMod(m));
	HeapTupleData tuple;

	ChurnCompositeTuple(m, &tuple);
	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		d = heap_getattr(&tuple, i + 1, desc, &isnull);
		double		v;

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("model parameter %s of %s is null", names[i], type)));
		v = DatumGetFloat8(d);
		if (!(isfinite(v) && v > 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("model parameter %s of %s must be positive and finite", names[i], type),
					 errdetail("The value was %g.", v)));
		out[i] = v;
	}
	ReleaseTupleDesc(desc);
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
		/*
		 * h near cbrt(DBL_EPSILON) = 6e-6, the step that balances the O(h^2)
		 * truncation of a central difference with its rounding error
		 */
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
 * The constants of ProbMinimize.  The objectives are negative
 * log-likelihoods of 2 to 4 log-scale parameters (BG/NBD, Pareto/NBD,
 * Gamma-Gamma) summed over up to millions of rows, so |f| ranges from 1e1
 * to 1e7 and every tolerance on f is relative to max(1, |f|).  A double
 * carries about 16 significant digits: tolerances at 1e-15 of |f| are
 * "rounding level", 1e-11 to 1e-12 a few thousand ulps above it.
 */

/*
 * BFGS iterations: the CDNOW fits take 15-30, other data up to a few
 * hundred.  1000 only stops a fit that drifts along a flat ridge towards
 * the domain limit; the Newton polish then decides convergence.
 */
#define PROB_BFGS_MAX_ITER	1000

/*
 * Newton polish steps: near the optimum Newton converges quadratically in
 * 2-5 steps; 50 bounds the work when damped (indefinite) steps creep, and
 * such a fit is reported with converged = false.
 */
#define PROB_NEWTON_MAX_ITER 50

/*
 * BFGS stops when max |gradient| <= 1e-9 * max(1, |f|): the gradient of a
 * sum of n terms carries rounding noise of about n * 1e-16 per term, so at
 * 1e-9 relative BFGS has done what it can; the Newton decrement test below
 * is the real convergence criterion.
 */
#define PROB_BFGS_GRAD_TOL	1e-9

/*
 * BFGS also stops when the predicted decrease -g'p of the full step is
 * <= 1e-11 * max(1, |f|), about 1e5 ulps of f: the Armijo test can no
 * longer tell a decrease from rounding, and Newton steps take over.
 */
#define PROB_BFGS_DECREASE_TOL 1e-11

/*
 * Longest BFGS step, in log units of the parameters: 1 (a factor e) on the
 * first step, whose direction is the raw gradient with no curvature
 * information and so has arbitrary length, 5 (a factor 148) afterwards, so
 * that a badly scaled quasi-Newton step cannot leap to where the
 * likelihood's gamma functions overflow (the domain is |theta| <= 50).
 */
#define PROB_FIRST_STEP_MAX 1.0
#define PROB_STEP_MAX		5.0

/*
 * Sufficient decrease of the Armijo line search: accept a step that gains
 * 1e-4 of the linearly predicted decrease (the usual choice, Nocedal &
 * Wright, Numerical Optimization, section 3.1): almost any decrease, but
 * not one that vanishes faster than the step.
 */
#define PROB_ARMIJO_C		1e-4

/*
 * Line search trials.  BFGS: 60 halvings reach t = 2^-60, below the
 * resolution of a double relative to theta, so more cannot move the point.
 * Newton: its direction is well scaled near the optimum and the full step
 * is almost always taken; 40 halvings (t = 1e-12) mean no decrease is
 * representable, which the fallback test below handles.
 */
#define PROB_BFGS_LS_TRIES	60
#define PROB_NEWTON_LS_TRIES 40

/*
 * Step shrink factors: halve after a finite value that did not decrease
 * enough; cut by 10 after a point outside the domain (a non-finite value),
 * which says nothing about the curvature, to get back inside quickly.
 * Newton steps are only halved: near the optimum they stay in the domain.
 */
#define PROB_SHRINK			0.5
#define PROB_BFGS_SHRINK_INFEASIBLE 0.1

/*
 * BFGS update only when the curvature s'y > 1e-12 * |y| * (step length):
 * s'y must be safely positive for the inverse Hessian to stay positive
 * definite, and below 1e-12 of |y| |s| it is rounding noise.
 */
#define PROB_CURVATURE_TOL	1e-12

/*
 * Stall: three BFGS steps in a row that lower f by at most 1e-15 *
 * max(1, |f|) (a few ulps) end the BFGS phase; one such step can be an
 * unlucky line search, three in a row are the rounding floor.
 */
#define PROB_STALL_TOL		1e-15
#define PROB_STALL_STEPS	3

/*
 * Finite-difference step of the Newton Hessian.  Analytic gradients are
 * exact to rounding: forward differences with h = 1e-5 have truncation
 * error O(h) = 1e-5 relative and rounding error 1e-16 / h = 1e-11, enough
 * for a quadratically convergent step and a trustworthy sign of the
 * curvature.  Numeric gradients (central differences with step 1e-6, see
 * ProbNumericGradient) carry noise of about 1e-10 * |f|: differencing them
 * again needs a larger step, central differences with h = 1e-3 (truncation
 * O(h^2) = 1e-6, noise / h = 1e-7).
 */
#define PROB_HESS_STEP_ANALYTIC 1e-5
#define PROB_HESS_STEP_NUMERIC 1e-3

/*
 * Convergence certificate: a positive definite Hessian and a Newton
 * decrement g' H^-1 g <= 1e-12 * max(1, |f|).  The decrement is twice the
 * predicted f - f*, so f is within 5e-13 relative of the optimum; for the
 * CDNOW BG/NBD fit that bounds the parameter error far below 1e-6
 * relative.
 */
#define PROB_NEWTON_DEC_TOL 1e-12

/*
 * When no Newton step along a positive definite direction lowers f any
 * more (PROB_NEWTON_LS_TRIES failed), the point still counts as converged
 * if the decrement is <= 1e-8 * max(1, |f|): f is within 5e-9 relative of
 * the optimum and no representable step improves it.
 */
#define PROB_NEWTON_DEC_FALLBACK 1e-8

/*
 * Levenberg damping of an indefinite Hessian: add lam * max(1, max |H_ii|)
 * to the diagonal, starting at lam = 1e-6 (barely perturbing a nearly
 * definite H) and growing 10-fold; beyond 1e12 the diagonal dominates any
 * finite H, so a failure there means H is not finite and the polish stops.
 */
#define PROB_DAMP_START		1e-6
#define PROB_DAMP_GROWTH	10
#define PROB_DAMP_MAX		1e12

/* The current point of a minimisation and what is known there. */
typedef struct ProbOpt
{
	ProbEval	ev;				/* the objective */
	double	   *theta;			/* the point (the caller's array) */
	double		fx;				/* f(theta) */
	double		g[PROB_MAX_PARAMS];	/* gradient at theta */
} ProbOpt;

/* Move the current point to xn, with value fn and gradient gn. */
static void
ProbOptMove(ProbOpt *o, const double *xn, double fn, const double *gn)
{
	memcpy(o->theta, xn, sizeof(double) * o->ev.k);
	memcpy(o->g, gn, sizeof(double) * o->ev.k);
	o->fx = fn;
}

/* Set M to the k x k identity. */
static void
ProbIdentity(double M[PROB_MAX_PARAMS][PROB_MAX_PARAMS], int k)
{
	int			i;

	memset(M, 0, sizeof(double) * PROB_MAX_PARAMS * PROB_MAX_PARAMS);
	for (i = 0; i < k; i++)
		M[i][i] = 1.0;
}

/*
 * Backtracking (Armijo) line search from the current point along dir, whose
 * directional derivative is slope: the first t of 1, shrunk by PROB_SHRINK
 * (by infeasible_shrink after a non-finite value), with
 * f(theta + t dir) <= f(theta) + PROB_ARMIJO_C * t * slope.  The point, its
 * value and gradient go to xn, *fn and gn, the step to *t; false when
 * max_tries steps all failed.
 */
static bool
ProbArmijoSearch(ProbOpt *o, const double *dir, double slope, int max_tries,
				 double infeasible_shrink, double *xn, double *fn, double *gn,
				 double *t)
{
	int			k = o->ev.k;
	int			ls,
				i;

	*t = 1.0;
	for (ls = 0; ls < max_tries; ls++)
	{
		for (i = 0; i < k; i++)
			xn[i] = o->theta[i] + *t * dir[i];
		*fn = ProbEvalFG(&o->ev, xn, gn);
		if (isfinite(*fn) && *fn <= o->fx + PROB_ARMIJO_C * *t * slope)
			return true;
		*t *= isfinite(*fn) ? PROB_SHRINK : infeasible_shrink;
	}
	return false;
}

/*
 * The quasi-Newton direction p = -Hinv g and its slope g'p; restarts from
 * steepest descent (Hinv = I, *first set) when p is not a descent direction.
 */
static double
ProbBfgsDirection(const ProbOpt *o, double Hinv[PROB_MAX_PARAMS][PROB_MAX_PARAMS],
				  bool *first, double *p)
{
	int			k = o->ev.k;
	double		dg = 0;
	int			i,
				j;

	for (i = 0; i < k; i++)
	{
		p[i] = 0;
		for (j = 0; j < k; j++)
			p[i] -= Hinv[i][j] * o->g[j];
		dg += p[i] * o->g[i];
	}
	if (!(dg < 0))
	{
		/* not a descent direction: restart from steepest descent */
		ProbIdentity(Hinv, k);
		*first = true;
		dg = 0;
		for (i = 0; i < k; i++)
		{
			p[i] = -o->g[i];
			dg -= o->g[i] * o->g[i];
		}
	}
	return dg;
}

/*
 * Shorten p (and its slope *dg) to the longest allowed step; returns
 * max |p_i| before shortening.
 */
static double
ProbBfgsLimitStep(int k, double *p, double *dg, bool first)
{
	double		pmax = 0;
	int			i;

	for (i = 0; i < k; i++)
		pmax = Max(pmax, fabs(p[i]));
	if ((first && pmax > PROB_FIRST_STEP_MAX) || pmax > PROB_STEP_MAX)
	{
		double		sc = (first ? PROB_FIRST_STEP_MAX : PROB_STEP_MAX) / pmax;

		for (i = 0; i < k; i++)
			p[i] *= sc;
		*dg *= sc;
	}
	return pmax;
}

/*
 * BFGS update of the inverse Hessian for the step from theta to xn (step
 * length t * pmax), skipped when the curvature s'y is not safely positive;
 * the first update scales the identity to sy / yy (Shanno-Phua) first.
 */
static void
ProbBfgsUpdate(const ProbOpt *o, double Hinv[PROB_MAX_PARAMS][PROB_MAX_PARAMS],
			   bool *first, const double *xn, const double *gn, double t,
			   double pmax)
{
	int			k = o->ev.k;
	double		s[PROB_MAX_PARAMS],
				y[PROB_MAX_PARAMS],
				Hy[PROB_MAX_PARAMS];
	double		sy = 0,
				yy = 0,
				yHy = 0;
	int			i,
				j;

	for (i = 0; i < k; i++)
	{
		s[i] = xn[i] - o->theta[i];
		y[i] = gn[i] - o->g[i];
		sy += s[i] * y[i];
		yy += y[i] * y[i];
	}
	if (!(sy > PROB_CURVATURE_TOL * sqrt(yy) * t * pmax))
		return;
	if (*first)
	{
		memset(Hinv, 0, sizeof(double) * PROB_MAX_PARAMS * PROB_MAX_PARAMS);
		for (i = 0; i < k; i++)
			Hinv[i][i] = sy / yy;
		*first = false;
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

/*
 * BFGS with an Armijo line search from the current point, until the
 * gradient or the predicted decrease is negligible, the line search fails
 * or progress stalls; returns the iterations taken.
 */
static int
ProbBfgs(ProbOpt *o)
{
	int			k = o->ev.k;
	double		Hinv[PROB_MAX_PARAMS][PROB_MAX_PARAMS];
	bool		first = true;
	int			stall = 0,
				it,
				i;

	ProbIdentity(Hinv, k);
	for (it = 0; it < PROB_BFGS_MAX_ITER; it++)
	{
		double		p[PROB_MAX_PARAMS],
					xn[PROB_MAX_PARAMS],
					gn[PROB_MAX_PARAMS];
		double		gmax = 0,
					dg,
					pmax,
					fn,
					t;

		CHECK_FOR_INTERRUPTS();
		for (i = 0; i < k; i++)
			gmax = Max(gmax, fabs(o->g[i]));
		if (gmax <= PROB_BFGS_GRAD_TOL * Max(1.0, fabs(o->fx)))
			break;
		dg = ProbBfgsDirection(o, Hinv, &first, p);
		/* predicted decrease at rounding level: leave the rest to Newton */
		if (-dg <= PROB_BFGS_DECREASE_TOL * Max(1.0, fabs(o->fx)))
			break;
		pmax = ProbBfgsLimitStep(k, p, &dg, first);
		if (!ProbArmijoSearch(o, p, dg, PROB_BFGS_LS_TRIES,
							  PROB_BFGS_SHRINK_INFEASIBLE, xn, &fn, gn, &t))
			break;
		ProbBfgsUpdate(o, Hinv, &first, xn, gn, t, pmax);
		stall = (o->fx - fn <= PROB_STALL_TOL * Max(1.0, fabs(o->fx))) ? stall + 1 : 0;
		ProbOptMove(o, xn, fn, gn);
		if (stall >= PROB_STALL_STEPS)
			break;
	}
	return it;
}

/*
 * Hessian at the current point by finite differences of the gradient
 * (forward for analytic gradients, central for numeric ones), symmetrised;
 * false when a difference point is outside the domain.
 */
static bool
ProbFiniteDiffHessian(ProbOpt *o, double H[PROB_MAX_PARAMS][PROB_MAX_PARAMS])
{
	int			k = o->ev.k;
	bool		analytic = o->ev.analytic;
	double		h = analytic ? PROB_HESS_STEP_ANALYTIC : PROB_HESS_STEP_NUMERIC;
	double		gp[PROB_MAX_PARAMS],
				gm[PROB_MAX_PARAMS],
				tp[PROB_MAX_PARAMS];
	int			i,
				j;

	memcpy(tp, o->theta, sizeof(double) * k);
	for (j = 0; j < k; j++)
	{
		tp[j] = o->theta[j] + h;
		if (!isfinite(ProbEvalFG(&o->ev, tp, gp)))
			return false;
		if (analytic)
			memcpy(gm, o->g, sizeof(double) * k);
		else
		{
			tp[j] = o->theta[j] - h;
			if (!isfinite(ProbEvalFG(&o->ev, tp, gm)))
				return false;
		}
		tp[j] = o->theta[j];
		for (i = 0; i < k; i++)
			H[i][j] = (gp[i] - gm[i]) / (analytic ? h : 2 * h);
	}
	for (i = 0; i < k; i++)
		for (j = 0; j < i; j++)
			H[i][j] = H[j][i] = 0.5 * (H[i][j] + H[j][i]);
	return true;
}

/*
 * Levenberg-damped Newton direction for an indefinite H: solve
 * (H + lam * max(1, max |H_ii|) I) d = -g for growing lam; false when even
 * the largest damping fails.
 */
static bool
ProbDampedNewtonDirection(int k, const double H[PROB_MAX_PARAMS][PROB_MAX_PARAMS],
						  const double *g, double *d)
{
	double		lam = PROB_DAMP_START;
	double		Hd[PROB_MAX_PARAMS][PROB_MAX_PARAMS];
	int			i;

	for (;;)
	{
		double		dmax = 0;

		for (i = 0; i < k; i++)
			dmax = Max(dmax, fabs(H[i][i]));
		memcpy(Hd, H, sizeof(Hd));
		for (i = 0; i < k; i++)
			Hd[i][i] += lam * Max(dmax, 1.0);
		if (ProbNewtonDirection(k, Hd, g, d))
			return true;
		lam *= PROB_DAMP_GROWTH;
		if (lam > PROB_DAMP_MAX)
			return false;
	}
}

/*
 * Newton steps with a finite-difference Hessian from the current point,
 * adding them to res->iterations; sets res->converged when the Hessian is
 * positive definite and the Newton decrement negligible.
 */
static void
ProbNewtonPolish(ProbOpt *o, ProbOptResult *res)
{
	int			k = o->ev.k;
	int			it,
				i;

	for (it = 0; it < PROB_NEWTON_MAX_ITER; it++)
	{
		double		H[PROB_MAX_PARAMS][PROB_MAX_PARAMS];
		double		d[PROB_MAX_PARAMS],
					xn[PROB_MAX_PARAMS],
					gn[PROB_MAX_PARAMS];
		double		dec = 0,
					tol = PROB_NEWTON_DEC_TOL * Max(1.0, fabs(o->fx)),
					fn,
					t;
		bool		pd;

		CHECK_FOR_INTERRUPTS();
		if (!ProbFiniteDiffHessian(o, H))
			return;
		pd = ProbNewtonDirection(k, H, o->g, d);
		/* indefinite: a damped step, but no convergence certificate */
		if (!pd && !ProbDampedNewtonDirection(k, H, o->g, d))
			return;
		for (i = 0; i < k; i++)
			dec -= o->g[i] * d[i];
		if (pd && dec <= tol)
		{
			/* certified; take the final full Newton step if it does not hurt */
			for (i = 0; i < k; i++)
				xn[i] = o->theta[i] + d[i];
			fn = ProbEvalFG(&o->ev, xn, gn);
			if (isfinite(fn) && fn <= o->fx)
			{
				memcpy(o->theta, xn, sizeof(double) * k);
				o->fx = fn;
			}
			res->converged = true;
			return;
		}
		/* the slope of d is -dec: fx + c t (-dec) is exactly fx - c t dec */
		if (!ProbArmijoSearch(o, d, -dec, PROB_NEWTON_LS_TRIES, PROB_SHRINK,
							  xn, &fn, gn, &t))
		{
			/* no further decrease representable: accept a tiny decrement */
			if (pd && dec <= PROB_NEWTON_DEC_FALLBACK * Max(1.0, fabs(o->fx)))
				res->converged = true;
			return;
		}
		ProbOptMove(o, xn, fn, gn);
		res->iterations++;
	}
}

/*
 * Minimise f: BFGS on theta, then Newton steps that polish the optimum and
 * certify convergence (see the constants above).
 */
ProbOptResult
ProbMinimize(ProbObjective f, void *ctx, int k, double *theta, bool analytic_gradient)
{
	ProbOpt		o = {{f, ctx, k, analytic_gradient}, theta, 0, {0}};
	ProbOptResult res = {NAN, 0, false};

	Assert(k <= PROB_MAX_PARAMS);
	o.fx = ProbEvalFG(&o.ev, theta, o.g);
	if (!isfinite(o.fx))
		return res;
	res.iterations = ProbBfgs(&o);
	ProbNewtonPolish(&o, &res);
	res.fval = o.fx;
	return res;
}
