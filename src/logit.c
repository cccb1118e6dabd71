/*-------------------------------------------------------------------------
 *
 * logit.c
 *	  Logistic regression fitted by an aggregate: churn.logit_fit and
 *	  churn.logit_predict.
 *
 * The aggregate keeps every accepted row (Newton needs several passes over
 * the data) in chunks allocated in the aggregate context: a row costs
 * 8 * p bytes of float8 features plus one bit of label.  Partial states
 * serialize to one bytea (header + label bitmap + features), so the
 * aggregate runs in parallel; the combine function adopts the deserialized
 * chunks without copying them.
 *
 * The final function maximises
 *		loglik(beta) - l2 / 2 * sum_{j >= 2} beta_j^2
 * (the intercept beta_1 is not penalised) by Newton's method with step
 * halving, solving each step with a Cholesky factorisation of the negative
 * Hessian.  Standard errors are sqrt(diag(H^-1)) at the optimum, where H is
 * the negative Hessian of that objective (for l2 = 0 exactly what
 * statsmodels' Logit reports).
 *
 *-------------------------------------------------------------------------
 */
#include "mlmodels.h"
#include "numeric.h"

#include <float.h>
#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(logit_fit_trans);
PG_FUNCTION_INFO_V1(logit_fit_trans_l2);
PG_FUNCTION_INFO_V1(logit_fit_combine);
PG_FUNCTION_INFO_V1(logit_fit_serialize);
PG_FUNCTION_INFO_V1(logit_fit_deserialize);
PG_FUNCTION_INFO_V1(logit_fit_final);
PG_FUNCTION_INFO_V1(logit_predict);

#define LOGIT_SERIAL_MAGIC	0x4C47540A	/* serialized state format tag */
#define LOGIT_MAX_ITER		100		/* Newton steps before giving up */
#define LOGIT_MAX_HALVINGS	40		/* step halvings within one step */
#define LOGIT_TOL			1e-7	/* |delta_j| <= tol * max(1, |beta_j|) */
#define LOGIT_WARM_TOL		1e-3	/* same, for the warm start on a subsample */
#define LOGIT_PIVOT_TOL		1e-11	/* Cholesky pivot / diagonal: singular */
#define LOGIT_PERFECT_TOL	1e-10	/* |y - p| below this: a perfectly fitted row */
#define LOGIT_CHUNK_BYTES	(256 * 1024)	/* target size of one chunk of rows */
#define LOGIT_WARM_MIN_ROWS	400000	/* warm-start Newton on a subsample from here */
#define LOGIT_WARM_ROWS		100000	/* about this many rows in the subsample */

/* Hint of the error for NULL elements in x or coef. */
#define LOGIT_NULL_HINT		"Impute missing features before fitting or scoring a logistic regression."

/* One chunk of stored rows: a label bitmap and row-major features. */
typedef struct LogitChunk
{
	int32		nrows;			/* rows stored */
	int32		capacity;		/* rows that fit */
	uint8	   *ybits;			/* bit i set: row i churned */
	double	   *x;				/* nrows * p features, row-major */
} LogitChunk;

/* Aggregate state: the accepted rows and the penalty. */
typedef struct LogitState
{
	MemoryContext mcxt;			/* where chunks live (the aggregate context) */
	int32		p;				/* features per row, -1 until the first row */
	int32		chunk_rows;		/* capacity of new chunks */
	double		l2;				/* penalty (0 for the two-argument form) */
	bool		has_l2;			/* l2 given (three-argument form) */
	int64		n;				/* rows stored */
	int64		npos;			/* rows with churned = true */
	int32		nchunks;
	int32		maxchunks;
	LogitChunk **chunks;
} LogitState;

/* Serialized state header; label bitmap and features follow. */
typedef struct LogitSerialHeader
{
	uint32		magic;
	int32		p;
	int32		has_l2;
	int32		pad;
	double		l2;
	int64		n;
	int64		npos;
} LogitSerialHeader;

/* Sums of one pass over the data at a given beta. */
typedef struct LogitPassResult
{
	double		loglik;			/* unpenalised log-likelihood */
	double		max_resid;		/* max |y - p| over rows */
	int64		nperfect;		/* rows with |y - p| < LOGIT_PERFECT_TOL */
	int64		nwrong;			/* rows on the wrong side of p = 1/2 */
} LogitPassResult;

/* Most memory the rows of one logit_fit may take, kB (churn_warning.logit_max_memory, 0.3.0). */
static int	LogitFitMaxMemory = 1024 * 1024;

/* Define churn_warning.logit_max_memory (called from _PG_init). */
void
LogitFitInit(void)
{
	DefineCustomIntVariable("churn_warning.logit_max_memory",
							"Most memory the rows of one churn.logit_fit call may take.",
							"The fit keeps its rows (8 bytes per feature) in memory; more rows are refused.",
							&LogitFitMaxMemory,
							1024 * 1024, 1024, MAX_KILOBYTES,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
}

/* Refuse a state that would hold more than rows rows beyond churn_warning.logit_max_memory. */
static void
LogitCheckRows(const LogitState *st, int64 rows)
{
	double		bytes = (double) rows * (Max(st->p, 1) * sizeof(double) + 0.125);

	if (bytes > (double) LogitFitMaxMemory * 1024.0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("logit_fit: the training rows exceed churn_warning.logit_max_memory"),
				 errdetail("%lld rows of %d features take %.0f kB; churn_warning.logit_max_memory is %d kB.",
						   (long long) rows, st->p, ceil(bytes / 1024.0), LogitFitMaxMemory),
				 errhint("Train on a sample of the rows, or ask a superuser to raise churn_warning.logit_max_memory.")));
}

/* Create an empty state in the aggregate context. */
static LogitState *
LogitStateCreate(MemoryContext mcxt, bool has_l2, double l2)
{
	LogitState *st = MemoryContextAllocZero(mcxt, sizeof(LogitState));

	st->mcxt = mcxt;
	st->p = -1;
	st->has_l2 = has_l2;
	st->l2 = l2;
	st->maxchunks = 16;
	st->chunks = MemoryContextAlloc(mcxt, st->maxchunks * sizeof(LogitChunk *));
	return st;
}

/* Fix the number of features and the chunk size on the first row. */
static void
LogitStateSetWidth(LogitState *st, int p)
{
	int			rows;

	if (p > LOGIT_MAX_FEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("logit_fit supports at most %d features, got %d",
						LOGIT_MAX_FEATURES, p)));
	st->p = p;
	rows = LOGIT_CHUNK_BYTES / (8 * Max(p, 1));
	rows = Max(rows, 64) & ~7;
	st->chunk_rows = rows;
}

/* Register a chunk at the end of the chunk list, growing the list. */
static void
LogitAddChunk(LogitState *st, LogitChunk *c)
{
	if (st->nchunks >= st->maxchunks)
	{
		st->maxchunks *= 2;
		st->chunks = repalloc(st->chunks, st->maxchunks * sizeof(LogitChunk *));
	}
	st->chunks[st->nchunks++] = c;
}

/* Allocate an empty chunk for capacity rows of p features. */
static LogitChunk *
LogitNewChunk(MemoryContext mcxt, int p, int capacity)
{
	LogitChunk *c = MemoryContextAlloc(mcxt, sizeof(LogitChunk));

	c->nrows = 0;
	c->capacity = capacity;
	c->ybits = MemoryContextAllocZero(mcxt, (capacity + 7) / 8);
	c->x = MemoryContextAllocHuge(mcxt, (Size) capacity * Max(p, 1) * sizeof(double));
	return c;
}

/* Append one validated row to the state. */
static inline void
LogitAppend(LogitState *st, bool y, const double *x)
{
	LogitChunk *c = st->nchunks > 0 ? st->chunks[st->nchunks - 1] : NULL;

	if (c == NULL || c->nrows >= c->capacity)
	{
		LogitCheckRows(st, st->n + st->chunk_rows);
		c = LogitNewChunk(st->mcxt, st->p, st->chunk_rows);
		LogitAddChunk(st, c);
	}
	if (y)
	{
		c->ybits[c->nrows >> 3] |= (uint8) (1 << (c->nrows & 7));
		st->npos++;
	}
	if (st->p > 0)
		memcpy(c->x + (Size) c->nrows * st->p, x, st->p * sizeof(double));
	c->nrows++;
	st->n++;
}

/* Shared transition: validate one row and store it. */
static Datum
LogitTransCommon(FunctionCallInfo fcinfo, bool has_l2)
{
	MemoryContext aggcxt;
	LogitState *st;
	double		l2 = 0.0;
	ArrayType  *arr;
	int			len;
	double	   *data;

	aggcxt = ChurnAggContext(fcinfo, "logit_fit_trans");

	if (has_l2)
	{
		if (PG_ARGISNULL(3))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("l2 must not be NULL"),
					 errhint("Use 0 for an unpenalised fit.")));
		l2 = PG_GETARG_FLOAT8(3);
		ChurnCheckNonNegative(l2, "l2");
	}

	st = PG_ARGISNULL(0) ? NULL : (LogitState *) PG_GETARG_POINTER(0);
	if (st == NULL)
		st = LogitStateCreate(aggcxt, has_l2, l2);
	else if (has_l2 && st->l2 != l2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("l2 must be the same for every row of logit_fit"),
				 errdetail("Got %g after %g.", l2, st->l2)));

	/* Rows with a NULL label or a NULL feature array are skipped. */
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(st);

	arr = PG_GETARG_ARRAYTYPE_P(2);
	len = Float8VectorLength(arr, "x", false, LOGIT_NULL_HINT);
	if (st->p < 0)
		LogitStateSetWidth(st, len);
	else if (len != st->p)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("x has %d elements but earlier rows have %d", len, st->p),
				 errdetail("Every row of logit_fit needs the same number of features.")));

	data = len > 0 ? (double *) ARR_DATA_PTR(arr) : NULL;
	Float8VectorCheckFinite(data, len, "x");

	LogitAppend(st, PG_GETARG_BOOL(1), data);
	PG_RETURN_POINTER(st);
}

/* Transition function of logit_fit(churned, x). */
Datum
logit_fit_trans(PG_FUNCTION_ARGS)
{
	return LogitTransCommon(fcinfo, false);
}

/* Transition function of logit_fit(churned, x, l2). */
Datum
logit_fit_trans_l2(PG_FUNCTION_ARGS)
{
	return LogitTransCommon(fcinfo, true);
}

/* Combine two partial states: adopt the second state's chunks. */
Datum
logit_fit_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	LogitState *s1;
	LogitState *s2;
	int			i;

	aggcxt = ChurnAggContext(fcinfo, "logit_fit_combine");

	s1 = PG_ARGISNULL(0) ? NULL : (LogitState *) PG_GETARG_POINTER(0);
	s2 = PG_ARGISNULL(1) ? NULL : (LogitState *) PG_GETARG_POINTER(1);
	if (s2 == NULL)
		return ChurnAggKeepState(fcinfo);
	if (s1 == NULL)
		s1 = LogitStateCreate(aggcxt, s2->has_l2, s2->l2);
	else if (s1->has_l2 != s2->has_l2 || s1->l2 != s2->l2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("l2 must be the same for every row of logit_fit")));
	if (s2->p < 0)
		PG_RETURN_POINTER(s1);
	if (s1->p < 0)
	{
		s1->p = s2->p;
		s1->chunk_rows = s2->chunk_rows;
	}
	else if (s1->p != s2->p)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("x has %d elements but earlier rows have %d", s2->p, s1->p),
				 errdetail("Every row of logit_fit needs the same number of features.")));

	LogitCheckRows(s1, s1->n + s2->n);
	for (i = 0; i < s2->nchunks; i++)
	{
		LogitChunk *c = s2->chunks[i];

		if (s2->mcxt == s1->mcxt)
			LogitAddChunk(s1, c);	/* same lifetime: take it over */
		else
		{
			LogitChunk *copy = LogitNewChunk(s1->mcxt, s1->p, c->nrows);

			copy->nrows = c->nrows;
			memcpy(copy->ybits, c->ybits, (c->nrows + 7) / 8);
			memcpy(copy->x, c->x, (Size) c->nrows * Max(s1->p, 1) * sizeof(double));
			LogitAddChunk(s1, copy);
		}
	}
	s1->n += s2->n;
	s1->npos += s2->npos;
	s2->nchunks = 0;
	s2->n = s2->npos = 0;
	PG_RETURN_POINTER(s1);
}

/* Serialize a partial state: header, label bitmap, then all features. */
Datum
logit_fit_serialize(PG_FUNCTION_ARGS)
{
	LogitState *st = (LogitState *) PG_GETARG_POINTER(0);
	int			p = Max(st->p, 0);
	Size		bitbytes = (Size) ((st->n + 7) / 8);
	Size		xbytes = (Size) st->n * p * sizeof(double);
	Size		total = VARHDRSZ + sizeof(LogitSerialHeader) + MAXALIGN(bitbytes) + xbytes;
	bytea	   *out;
	LogitSerialHeader *h;
	uint8	   *bits;
	char	   *xp;
	int64		row = 0;
	int			i;

	(void) ChurnAggContext(fcinfo, "logit_fit_serialize");
	if (total > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("logit_fit partial state of %lld rows is too large to pass between parallel workers",
						(long long) st->n),
				 errhint("Run the fit without parallelism: SET max_parallel_workers_per_gather = 0.")));
	out = palloc(total);
	SET_VARSIZE(out, total);
	h = (LogitSerialHeader *) VARDATA(out);
	h->magic = LOGIT_SERIAL_MAGIC;
	h->pad = 0;
	h->p = st->p;
	h->has_l2 = st->has_l2;
	h->l2 = st->l2;
	h->n = st->n;
	h->npos = st->npos;
	bits = (uint8 *) (h + 1);
	memset(bits, 0, MAXALIGN(bitbytes));
	xp = (char *) bits + MAXALIGN(bitbytes);
	for (i = 0; i < st->nchunks; i++)
	{
		LogitChunk *c = st->chunks[i];
		int			r;

		for (r = 0; r < c->nrows; r++, row++)
			if (c->ybits[r >> 3] & (1 << (r & 7)))
				bits[row >> 3] |= (uint8) (1 << (row & 7));
		if (p > 0)
		{
			memcpy(xp, c->x, (Size) c->nrows * p * sizeof(double));
			xp += (Size) c->nrows * p * sizeof(double);
		}
	}
	PG_RETURN_BYTEA_P(out);
}

/* Rebuild a partial state from logit_fit_serialize's bytea, in the aggregate context. */
Datum
logit_fit_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_P(0);
	MemoryContext aggcxt;
	LogitSerialHeader h;
	LogitState *st;
	const char *payload = VARDATA(in);
	Size		len = VARSIZE(in) - VARHDRSZ;
	Size		bitbytes;
	const uint8 *bits;
	const char *xp;
	int64		row = 0;

	aggcxt = ChurnAggContext(fcinfo, "logit_fit_deserialize");
	if (len < sizeof(LogitSerialHeader))
		ChurnBadSerializedState("logit_fit: truncated serialized state");
	memcpy(&h, payload, sizeof(h));
	if (h.magic != LOGIT_SERIAL_MAGIC || h.n < 0 || h.p < -1 || h.p > LOGIT_MAX_FEATURES)
		ChurnBadSerializedState("logit_fit: corrupt serialized state");
	bitbytes = (Size) ((h.n + 7) / 8);
	if (len != sizeof(h) + MAXALIGN(bitbytes) + (Size) h.n * Max(h.p, 0) * sizeof(double))
		ChurnBadSerializedState("logit_fit: serialized state has the wrong size");

	st = LogitStateCreate(aggcxt, h.has_l2 != 0, h.l2);
	if (h.p >= 0)
		LogitStateSetWidth(st, h.p);
	LogitCheckRows(st, h.n);
	bits = (const uint8 *) payload + sizeof(h);
	xp = (const char *) bits + MAXALIGN(bitbytes);
	while (row < h.n)
	{
		int			take = (int) Min((int64) st->chunk_rows, h.n - row);
		LogitChunk *c = LogitNewChunk(aggcxt, st->p, take);
		int			r;

		for (r = 0; r < take; r++)
			if (bits[(row + r) >> 3] & (1 << ((row + r) & 7)))
				c->ybits[r >> 3] |= (uint8) (1 << (r & 7));
		if (st->p > 0)
		{
			memcpy(c->x, xp, (Size) take * st->p * sizeof(double));
			xp += (Size) take * st->p * sizeof(double);
		}
		c->nrows = take;
		LogitAddChunk(st, c);
		row += take;
	}
	st->n = h.n;
	st->npos = h.npos;
	PG_RETURN_POINTER(st);
}

/*
 * Double vectors (GCC/clang vector extensions): two-wide (SSE2 on x86-64)
 * everywhere, and a four-wide AVX2 clone of the Hessian kernel picked at run
 * time.  Both do the same IEEE operations in the same order
 * (no FMA contraction), so results do not depend on the CPU.
 */
#if defined(__GNUC__)
#define LOGIT_VECTOR 1
typedef double LogitV2 __attribute__((vector_size(16), aligned(8), may_alias));
typedef double LogitV4 __attribute__((vector_size(32), aligned(8), may_alias));
#if defined(__x86_64__)
#define LOGIT_X86_DISPATCH 1
#endif
#endif

/*
 * Hessian kernel: H[j][l] += sum_r a[r] Z[r][j] Z[r][l] over four rows r, for
 * j < k and (j & ~3) <= l < kp (the upper triangle plus a few entries below
 * the diagonal, so that every row segment is a whole number of vectors).
 * Z holds four rows of kp doubles, zero-padded beyond k.  VT is a vector
 * type of W doubles (W divides 4).
 */
#ifdef LOGIT_VECTOR
#define LOGIT_RANK4_BODY(VT, W) \
{ \
	const double *z0 = Z, *z1 = Z + kp, *z2 = Z + 2 * kp, *z3 = Z + 3 * kp; \
	int			j, l; \
	for (j = 0; j < k; j++) \
	{ \
		double		c0 = a[0] * z0[j], c1 = a[1] * z1[j], c2 = a[2] * z2[j], c3 = a[3] * z3[j]; \
		double	   *Hj = H + (Size) j * kp; \
		for (l = j & ~3; l < kp; l += W) \
			*(VT *) (Hj + l) += c0 * *(const VT *) (z0 + l) + c1 * *(const VT *) (z1 + l) \
				+ c2 * *(const VT *) (z2 + l) + c3 * *(const VT *) (z3 + l); \
	} \
}
#else
#define LOGIT_RANK4_BODY(VT, W) \
{ \
	const double *z0 = Z, *z1 = Z + kp, *z2 = Z + 2 * kp, *z3 = Z + 3 * kp; \
	int			j, l; \
	for (j = 0; j < k; j++) \
	{ \
		double		c0 = a[0] * z0[j], c1 = a[1] * z1[j], c2 = a[2] * z2[j], c3 = a[3] * z3[j]; \
		double	   *Hj = H + (Size) j * kp; \
		for (l = j & ~3; l < kp; l++) \
			Hj[l] += c0 * z0[l] + c1 * z1[l] + c2 * z2[l] + c3 * z3[l]; \
	} \
}
#endif

typedef void (*LogitRank4Fn) (double *H, const double *Z, const double *a, int k, int kp);

/* Portable Hessian kernel (see LOGIT_RANK4_BODY): SSE2 pairs on x86-64. */
static void
LogitRank4Default(double *H, const double *Z, const double *a, int k, int kp)
LOGIT_RANK4_BODY(LogitV2, 2)

#ifdef LOGIT_X86_DISPATCH
/* The same kernel for AVX2 (used only when the CPU has it). */
__attribute__((target("avx2")))
static void
LogitRank4Avx2(double *H, const double *Z, const double *a, int k, int kp)
LOGIT_RANK4_BODY(LogitV4, 4)
#endif

/* Pick the Hessian kernel for this CPU. */
static LogitRank4Fn
LogitRank4Choose(void)
{
#ifdef LOGIT_X86_DISPATCH
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2"))
		return LogitRank4Avx2;
#endif
	return LogitRank4Default;
}

/* eta = z . beta over kp (a multiple of 4) entries, in a fixed order. */
static inline double
LogitDot(const double *z, const double *beta, int kp)
{
	int			l;
#ifdef LOGIT_VECTOR
	LogitV2		acc0 = *(const LogitV2 *) z * *(const LogitV2 *) beta;
	LogitV2		acc1 = *(const LogitV2 *) (z + 2) * *(const LogitV2 *) (beta + 2);

	for (l = 4; l < kp; l += 4)
	{
		acc0 += *(const LogitV2 *) (z + l) * *(const LogitV2 *) (beta + l);
		acc1 += *(const LogitV2 *) (z + l + 2) * *(const LogitV2 *) (beta + l + 2);
	}
	return (acc0[0] + acc1[0]) + (acc0[1] + acc1[1]);
#else
	double		eta = 0.0;

	for (l = 0; l < kp; l++)
		eta += z[l] * beta[l];
	return eta;
#endif
}

/*
 * One row's share at linear predictor eta and label y: its log-likelihood
 * term is added to *ll, its weight p (1 - p) goes to *w, and the residual
 * y - p is returned.
 */
static inline double
LogitRowTerms(double eta, bool y, double *ll, double *w)
{
	double		e,
				lp,
				resid;

	/*
	 * With e = exp(-|eta|): p = 1 / (1 + e) or e / (1 + e), 1 - p the other
	 * one, w = p (1 - p) = e / (1 + e)^2, and log(1 + exp(eta)) = max(eta,
	 * 0) + log(1 + e); all without cancellation.  log(1 + e) rather than
	 * log1p(e): its absolute error stays below 2^-53, as good as the sum it
	 * goes into, and it is much faster.
	 */
	e = exp(-fabs(eta));
	lp = log(1.0 + e);
	*w = e / ((1.0 + e) * (1.0 + e));
	if (eta >= 0)
	{
		if (y)
		{
			*ll -= lp;
			resid = e / (1.0 + e);
		}
		else
		{
			*ll -= eta + lp;
			resid = -1.0 / (1.0 + e);
		}
	}
	else
	{
		if (y)
		{
			*ll += eta - lp;
			resid = 1.0 / (1.0 + e);
		}
		else
		{
			*ll -= lp;
			resid = -e / (1.0 + e);
		}
	}
	return resid;
}

/* g += resid * z over kp (a multiple of 4) entries. */
static inline void
LogitAddGradient(double *g, double resid, const double *z, int kp)
{
	int			l;

#ifdef LOGIT_VECTOR
	for (l = 0; l < kp; l += 2)
		*(LogitV2 *) (g + l) += resid * *(const LogitV2 *) (z + l);
#else
	for (l = 0; l < kp; l++)
		g[l] += resid * z[l];
#endif
}

/*
 * One pass over the rows at beta (length kp = k rounded up to a multiple of
 * 4, zero-padded; k = p + 1): log-likelihood, gradient g (kp) and negative
 * Hessian H (kp x kp row-major; entries with l >= j & ~3 are valid).  With
 * want_derivs false only the log-likelihood and residual summary are
 * computed.  Z is scratch space of 4 * kp doubles.
 */
static void
LogitPass(const LogitState *st, const double *beta, double *g, double *H,
		  bool want_derivs, LogitPassResult *res, double *Z)
{
	int			p = st->p;
	int			k = p + 1;
	int			kp = (k + 3) & ~3;
	double		ll = 0.0;
	double		maxr = 0.0;
	int64		nperfect = 0;
	int64		nwrong = 0;
	double		a[4];
	LogitRank4Fn rank4 = LogitRank4Choose();
	int			ci;

	memset(Z, 0, 4 * kp * sizeof(double));
	if (want_derivs)
	{
		memset(g, 0, kp * sizeof(double));
		memset(H, 0, (Size) kp * kp * sizeof(double));
	}

	for (ci = 0; ci < st->nchunks; ci++)
	{
		const LogitChunk *c = st->chunks[ci];
		int			r0;

		CHECK_FOR_INTERRUPTS();
		for (r0 = 0; r0 < c->nrows; r0 += 4)
		{
			int			nb = Min(4, c->nrows - r0);
			int			b;

			for (b = 0; b < 4; b++)
			{
				double	   *z = Z + b * kp;
				int			r = r0 + b;
				double		resid;

				if (b >= nb)
				{
					a[b] = 0.0;
					continue;
				}
				z[0] = 1.0;
				if (p > 0)
					memcpy(z + 1, c->x + (Size) r * p, p * sizeof(double));
				resid = LogitRowTerms(LogitDot(z, beta, kp),
									  (c->ybits[r >> 3] >> (r & 7)) & 1, &ll, &a[b]);
				if (fabs(resid) > maxr)
					maxr = fabs(resid);
				if (fabs(resid) < LOGIT_PERFECT_TOL)
					nperfect++;
				if (fabs(resid) >= 0.5)
					nwrong++;
				if (want_derivs)
					LogitAddGradient(g, resid, z, kp);
			}
			if (want_derivs)
				rank4(H, Z, a, k, kp);
		}
	}
	res->loglik = ll;
	res->max_resid = maxr;
	res->nperfect = nperfect;
	res->nwrong = nwrong;
}

/* Build a float8[] from a C array. */
static ArrayType *
LogitFloat8Array(const double *v, int n)
{
	Datum	   *d = palloc(Max(n, 1) * sizeof(Datum));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = Float8GetDatum(v[i]);
	return construct_array(d, n, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* Raise the separation error with counts of perfectly predicted rows. */
static void
LogitSeparationError(const LogitState *st, const LogitPassResult *res)
{
	bool		perfect = res->nwrong == 0;

	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg(perfect ? "logit_fit: the classes are perfectly separated"
					: "logit_fit: the classes are quasi-completely separated"),
			 perfect ? errdetail("A linear combination of the features classifies all %lld rows correctly, so the maximum likelihood coefficients are infinite.",
								 (long long) st->n)
			 : errdetail("%lld of %lld rows are predicted with probability 0 or 1 and the maximum likelihood coefficients are infinite.",
						 (long long) res->nperfect, (long long) st->n),
			 errhint("Add an L2 penalty, e.g. churn.logit_fit(churned, x, 1.0), or drop the feature that separates the classes.")));
}

/* Working storage and outcome of one Newton run. */
typedef struct LogitWork
{
	int			k;				/* coefficients (p + 1) */
	int			kp;				/* k rounded up to a multiple of 4 */
	double		l2;
	double	   *beta;			/* kp, zero-padded: start in, result out */
	double	   *beta_old;
	double	   *delta;
	double	   *g;				/* gradient of the penalised objective */
	double	   *Hp;				/* kp x kp unpenalised negative Hessian */
	double	   *H;				/* k x k penalised, then its Cholesky factor */
	double	   *Z;				/* 4 x kp scratch */
	int			iter;			/* Newton steps taken */
	bool		factored;		/* H holds the factor for the std errors */
	double		loglik;			/* unpenalised log-likelihood at beta */
	LogitPassResult res;		/* summary of the last pass */
} LogitWork;

typedef enum LogitStatus
{
	LOGIT_CONVERGED,
	LOGIT_NOT_CONVERGED,
	LOGIT_FAILED				/* collinear or separated (quiet mode only) */
} LogitStatus;

/* Allocate Newton working storage for st. */
static void
LogitWorkInit(LogitWork *w, const LogitState *st, double l2)
{
	w->k = st->p + 1;
	w->kp = (w->k + 3) & ~3;
	w->l2 = l2;
	w->beta = palloc0(w->kp * sizeof(double));
	w->beta_old = palloc0(w->kp * sizeof(double));
	w->delta = palloc0(w->kp * sizeof(double));
	w->g = palloc0(w->kp * sizeof(double));
	w->Hp = palloc_extended((Size) w->kp * w->kp * sizeof(double), MCXT_ALLOC_HUGE);
	w->H = palloc_extended((Size) w->k * w->k * sizeof(double), MCXT_ALLOC_HUGE);
	w->Z = palloc(4 * w->kp * sizeof(double));
	w->iter = 0;
	w->factored = false;
}

/* H = Hp (upper triangle) + l2 on the non-intercept diagonal. */
static void
LogitPenalisedHessian(LogitWork *w)
{
	int			k = w->k;
	int			i,
				j;

	for (i = 0; i < k; i++)
		for (j = i; j < k; j++)
			w->H[i * k + j] = w->Hp[(Size) i * w->kp + j] + (i == j && i > 0 ? w->l2 : 0.0);
}

/*
 * One full pass at w->beta: the gradient of the penalised objective in
 * w->g, the unpenalised log-likelihood in w->loglik; returns the penalised
 * objective.
 */
static double
LogitEvaluate(const LogitState *st, LogitWork *w)
{
	double		pen = 0.0;
	int			j;

	LogitPass(st, w->beta, w->g, w->Hp, true, &w->res, w->Z);
	for (j = 1; j < w->k; j++)
	{
		pen += w->beta[j] * w->beta[j];
		w->g[j] -= w->l2 * w->beta[j];
	}
	w->loglik = w->res.loglik;
	return w->res.loglik - 0.5 * w->l2 * pen;
}

/*
 * Solve H delta = g for the Newton step, H the negative Hessian of the
 * penalised objective, factored in place in w->H.  A singular H is an error
 * (collinear features, or separation once rows are fitted perfectly), or
 * false when quiet.
 */
static bool
LogitSolveStep(const LogitState *st, LogitWork *w, bool quiet)
{
	int			bad;

	LogitPenalisedHessian(w);
	bad = CholeskyDecompose(w->H, w->k, LOGIT_PIVOT_TOL);
	if (bad >= 0)
	{
		if (quiet)
			return false;
		if (w->iter == 0 || w->res.nperfect == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("logit_fit: the features are collinear"),
					 errdetail("x[%d] is constant or (nearly) a linear combination of the intercept and the features before it.",
							   Max(bad, 1)),
					 errhint("Drop the redundant feature, or add an L2 penalty, e.g. churn.logit_fit(churned, x, 1.0).")));
		LogitSeparationError(st, &w->res);
	}
	memcpy(w->delta, w->g, w->k * sizeof(double));
	CholeskySolve(w->H, w->k, w->delta);
	return true;
}

/*
 * beta_old = beta, beta += delta; the largest relative change goes to
 * *maxrel.  A coefficient overflowing is separation: an error, or false
 * when quiet.
 */
static bool
LogitTakeStep(const LogitState *st, LogitWork *w, bool quiet, double *maxrel)
{
	int			j;

	memcpy(w->beta_old, w->beta, w->k * sizeof(double));
	*maxrel = 0.0;
	for (j = 0; j < w->k; j++)
	{
		double		rel;

		w->beta[j] += w->delta[j];
		if (!isfinite(w->beta[j]))
		{
			if (quiet)
				return false;
			LogitSeparationError(st, &w->res);
		}
		rel = fabs(w->delta[j]) / Max(1.0, fabs(w->beta[j]));
		if (rel > *maxrel)
			*maxrel = rel;
	}
	return true;
}

/*
 * Move w->loglik from beta_old to beta = beta_old + delta by its
 * second-order expansion, ll + (g + l2 beta_old) . delta - delta' Hp delta
 * / 2, exact to O(|delta|^3).
 */
static void
LogitExpandLoglik(LogitWork *w)
{
	int			k = w->k;
	double		gd = 0.0,
				dhd = 0.0;
	int			i,
				j;

	for (i = 0; i < k; i++)
	{
		double		hd = 0.0;

		gd += (w->g[i] + (i > 0 ? w->l2 * w->beta_old[i] : 0.0)) * w->delta[i];
		for (j = 0; j < k; j++)
			hd += w->Hp[(Size) Min(i, j) * w->kp + Max(i, j)] * w->delta[j];
		dhd += w->delta[i] * hd;
	}
	w->loglik += gd - 0.5 * dhd;
}

/*
 * Newton's method with step halving from w->beta.  Errors (collinearity,
 * separation) are raised unless quiet, in which case LOGIT_FAILED is
 * returned.  On LOGIT_CONVERGED, w->H holds the Cholesky factor of the
 * negative Hessian at the last full pass (within the tolerance of the
 * optimum) and w->loglik the log-likelihood at w->beta.
 */
static LogitStatus
LogitNewton(const LogitState *st, LogitWork *w, double tol, bool quiet)
{
	int			k = w->k;
	double		obj,
				obj_old = -DBL_MAX;
	double		step = 1.0;
	int			halvings = 0,
				slow_steps = 0,
				j;

	w->iter = 0;
	w->factored = false;
	for (;;)
	{
		double		maxrel;

		CHECK_FOR_INTERRUPTS();
		obj = LogitEvaluate(st, w);

		/* A step that lowered the objective is halved (and not counted again). */
		if (w->iter > 0 && obj < obj_old - 1e-12 * (1.0 + fabs(obj_old)))
		{
			if (++halvings > LOGIT_MAX_HALVINGS)
				return LOGIT_NOT_CONVERGED;
			step *= 0.5;
			for (j = 0; j < k; j++)
				w->beta[j] = w->beta_old[j] + step * w->delta[j];
			continue;
		}
		if (w->l2 == 0 && w->res.max_resid < 1e-8)
		{
			if (quiet)
				return LOGIT_FAILED;
			LogitSeparationError(st, &w->res);
		}
		if (w->iter >= LOGIT_MAX_ITER)
			return LOGIT_NOT_CONVERGED;

		if (!LogitSolveStep(st, w, quiet))
			return LOGIT_FAILED;
		obj_old = obj;
		step = 1.0;
		halvings = 0;
		if (!LogitTakeStep(st, w, quiet, &maxrel))
			return LOGIT_FAILED;
		w->iter++;

		/*
		 * Converged: the step was below the tolerance, so (Newton converging
		 * quadratically) beta is exact to far below it, and the Hessian just
		 * factored differs from the one at beta by O(tolerance): it gives the
		 * standard errors without another pass.
		 */
		if (maxrel <= tol)
		{
			LogitExpandLoglik(w);
			w->factored = true;
			return LOGIT_CONVERGED;
		}

		/*
		 * Quasi-separation: rows fitted perfectly while the coefficients keep
		 * moving by large steps long after Newton should have converged.
		 */
		if (w->l2 == 0 && w->res.nperfect > 0 && maxrel > 1e-3)
		{
			if (++slow_steps >= 12)
			{
				if (quiet)
					return LOGIT_FAILED;
				LogitSeparationError(st, &w->res);
			}
		}
		else
			slow_steps = 0;
	}
}

/*
 * A state holding every stride-th row of st (same width and penalty), in
 * the current memory context.
 */
static LogitState *
LogitSubsample(const LogitState *st, int stride)
{
	LogitState *sub = LogitStateCreate(CurrentMemoryContext, st->has_l2, st->l2);
	int64		row = 0;
	int			ci;

	LogitStateSetWidth(sub, st->p);
	for (ci = 0; ci < st->nchunks; ci++)
	{
		const LogitChunk *c = st->chunks[ci];
		int			r;

		for (r = (int) ((stride - row % stride) % stride); r < c->nrows; r += stride)
			LogitAppend(sub, (c->ybits[r >> 3] >> (r & 7)) & 1, c->x + (Size) r * st->p);
		row += c->nrows;
	}
	return sub;
}

/* Final function: Newton/IRLS fit of the stored rows. */
Datum
logit_fit_final(PG_FUNCTION_ARGS)
{
	LogitState *st = PG_ARGISNULL(0) ? NULL : (LogitState *) PG_GETARG_POINTER(0);
	LogitWork	w;
	LogitStatus status;
	int			k,
				j;
	double		start_intercept;
	double	   *se;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	if (st == NULL || st->n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("logit_fit needs at least one row"),
				 errdetail("Rows with a NULL label or NULL features are skipped; none were left.")));
	if (st->npos == 0 || st->npos == st->n)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("logit_fit: all %lld rows have churned = %s",
						(long long) st->n, st->npos == 0 ? "false" : "true"),
				 errhint("Logistic regression needs rows of both classes.")));

	k = st->p + 1;
	if (st->l2 == 0 && st->n < k)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("logit_fit: %lld rows are too few for %d coefficients",
						(long long) st->n, k),
				 errhint("Add rows, drop features, or add an L2 penalty.")));

	LogitWorkInit(&w, st, st->l2);
	se = palloc(k * sizeof(double));

	/* Start at the intercept-only optimum: logit of the churn share. */
	start_intercept = log((double) st->npos / (double) (st->n - st->npos));
	w.beta[0] = start_intercept;

	/*
	 * Warm start for large inputs: Newton on every stride-th row lands within
	 * sampling error of the optimum, so the full data then needs about three
	 * passes instead of six.  Any trouble on the subsample (separation,
	 * collinearity) just falls back to the cold start.
	 */
	if (st->n >= LOGIT_WARM_MIN_ROWS)
	{
		MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "logit_fit warm start",
												  ALLOCSET_DEFAULT_SIZES);
		MemoryContext old = MemoryContextSwitchTo(tmp);
		int			stride = (int) Min((int64) 64, st->n / LOGIT_WARM_ROWS);
		LogitState *sub = LogitSubsample(st, Max(stride, 2));
		LogitWork	ws;
		bool		ok = false;

		if (sub->npos > 0 && sub->npos < sub->n)
		{
			LogitWorkInit(&ws, sub, st->l2);
			ws.beta[0] = start_intercept;
			ok = LogitNewton(sub, &ws, LOGIT_WARM_TOL, true) == LOGIT_CONVERGED;
		}
		MemoryContextSwitchTo(old);
		if (ok)
			memcpy(w.beta, ws.beta, k * sizeof(double));
		MemoryContextDelete(tmp);
	}

	status = LogitNewton(st, &w, LOGIT_TOL, false);
	if (status != LOGIT_CONVERGED)
	{
		if (st->l2 == 0 && w.res.nperfect > 0)
			LogitSeparationError(st, &w.res);
		ereport(WARNING,
				(errmsg("logit_fit did not converge in %d Newton steps", w.iter),
				 errhint("The result has converged = false; consider scaling the features or adding an L2 penalty.")));
		/* the last pass was at w.beta: factor its Hessian for the std errors */
		LogitPenalisedHessian(&w);
		w.factored = CholeskyDecompose(w.H, k, LOGIT_PIVOT_TOL) < 0;
	}

	/* Standard errors: sqrt(diag(H^-1)) with H the negative Hessian. */
	if (w.factored)
	{
		CholeskyInverseDiag(w.H, k, se);
		for (j = 0; j < k; j++)
			se[j] = sqrt(se[j]);
	}
	else
		nulls[1] = true;

	values[0] = PointerGetDatum(LogitFloat8Array(w.beta, k));
	values[1] = nulls[1] ? (Datum) 0 : PointerGetDatum(LogitFloat8Array(se, k));
	values[2] = Float8GetDatum(w.loglik);
	values[3] = Int64GetDatum(st->n);
	values[4] = Int32GetDatum(w.iter);
	values[5] = BoolGetDatum(status == LOGIT_CONVERGED);
	return ChurnMakeComposite(fcinfo, values, nulls);
}

/* Per-call-site cache of logit_predict's parsed model. */
typedef struct LogitPredictCache
{
	Size		len;			/* bytes of the cached composite */
	char	   *raw;			/* copy of the composite datum */
	int			ncoef;
	double	   *coef;
} LogitPredictCache;

/* Parse (or reuse) the coefficient vector of a churn.logit value. */
static LogitPredictCache *
LogitGetModel(FunctionCallInfo fcinfo)
{
	HeapTupleHeader th = PG_GETARG_HEAPTUPLEHEADER(0);
	Size		len = HeapTupleHeaderGetDatumLength(th);
	LogitPredictCache *cache = (LogitPredictCache *) fcinfo->flinfo->fn_extra;
	MemoryContext old;
	bool		isnull;
	Datum		d;
	ArrayType  *a;
	int			n;

	if (cache != NULL && cache->len == len && memcmp(cache->raw, th, len) == 0)
		return cache;

	d = GetAttributeByNum(th, 1, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the model has no coefficients (coef is NULL)")));
	a = DatumGetArrayTypeP(d);
	n = Float8VectorLength(a, "coef", false, LOGIT_NULL_HINT);
	if (n < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the model has no coefficients (coef is empty)")));

	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	if (cache == NULL)
		cache = palloc0(sizeof(LogitPredictCache));
	else
	{
		pfree(cache->raw);
		pfree(cache->coef);
	}
	cache->raw = palloc(len);
	memcpy(cache->raw, th, len);
	cache->len = len;
	cache->ncoef = n;
	cache->coef = palloc(n * sizeof(double));
	memcpy(cache->coef, ARR_DATA_PTR(a), n * sizeof(double));
	MemoryContextSwitchTo(old);
	fcinfo->flinfo->fn_extra = cache;
	return cache;
}

/* Probability 1 / (1 + exp(-(coef[1] + coef[2:] . x))). */
Datum
logit_predict(PG_FUNCTION_ARGS)
{
	LogitPredictCache *m = LogitGetModel(fcinfo);
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
	int			len = Float8VectorLength(arr, "x", false, LOGIT_NULL_HINT);
	const double *x = len > 0 ? (const double *) ARR_DATA_PTR(arr) : NULL;
	double		eta = m->coef[0];
	int			i;

	if (len != m->ncoef - 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("x has %d elements but the model has %d features", len, m->ncoef - 1)));
	Float8VectorCheckFinite(x, len, "x");
	for (i = 0; i < len; i++)
		eta += m->coef[i + 1] * x[i];
	if (isnan(eta))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the linear predictor is NaN"),
				 errdetail("The model coefficients contain NaN or infinite values.")));
	if (eta >= 0)
		PG_RETURN_FLOAT8(1.0 / (1.0 + exp(-eta)));
	else
	{
		double		e = exp(eta);

		PG_RETURN_FLOAT8(e / (1.0 + e));
	}
}
