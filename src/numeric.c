/*-------------------------------------------------------------------------
 *
 * numeric.c
 *	  Numeric building blocks shared by the models and aggregates of
 *	  churn_warning: Cholesky factorisation and solve (logit.c's Newton
 *	  steps, probmodels_common.c's optimiser), the double comparator, the
 *	  growable float8 array (eval.c, rfm.c), float8[] argument checks
 *	  (logit.c, xgb.c, rfm.c) and the aggregate-context check (every
 *	  aggregate, daylog.c's transitions too).
 *
 * The arithmetic is plain IEEE double in a fixed order; the build uses no
 * fast-math, so every caller gets bit-for-bit reproducible results.
 *
 *-------------------------------------------------------------------------
 */
#include "numeric.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "utils/memutils.h"

/* ----------------------------------------------------------------------
 * Cholesky factorisation
 * ---------------------------------------------------------------------- */

/* Factor A = L L' in place; -1 on success, else the first failing column. */
int
CholeskyDecompose(double *A, int n, double pivot_tol)
{
	int			i,
				j,
				l;

	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			A[j * n + i] = A[i * n + j];

	for (j = 0; j < n; j++)
	{
		double		diag = A[j * n + j];
		double		d = diag;

		for (l = 0; l < j; l++)
			d -= A[j * n + l] * A[j * n + l];

		/*
		 * With pivot_tol = 0 this fails exactly when d is not positive and
		 * finite: d <= diag whenever diag is not positive, and 0 * diag is
		 * NaN for an infinite diag, whose d is then infinite or NaN anyway.
		 */
		if (!(diag > 0) || !(d > pivot_tol * diag) || !isfinite(d))
			return j;
		d = sqrt(d);
		A[j * n + j] = d;
		for (i = j + 1; i < n; i++)
		{
			double		s = A[i * n + j];

			for (l = 0; l < j; l++)
				s -= A[i * n + l] * A[j * n + l];
			A[i * n + j] = s / d;
		}
	}
	return -1;
}

/* Forward then back substitution with the lower-triangular factor L. */
void
CholeskySolve(const double *L, int n, double *b)
{
	int			i,
				l;

	for (i = 0; i < n; i++)
	{
		double		s = b[i];

		for (l = 0; l < i; l++)
			s -= L[i * n + l] * b[l];
		b[i] = s / L[i * n + i];
	}
	for (i = n - 1; i >= 0; i--)
	{
		double		s = b[i];

		for (l = i + 1; l < n; l++)
			s -= L[l * n + i] * b[l];
		b[i] = s / L[i * n + i];
	}
}

/* diag((L L')^-1) via the inverse of the triangular factor. */
void
CholeskyInverseDiag(const double *L, int n, double *out)
{
	double	   *inv = palloc0((Size) n * n * sizeof(double));
	int			i,
				j,
				l;

	/* inv = L^-1, lower triangular, column by column */
	for (j = 0; j < n; j++)
	{
		inv[j * n + j] = 1.0 / L[j * n + j];
		for (i = j + 1; i < n; i++)
		{
			double		s = 0.0;

			for (l = j; l < i; l++)
				s -= L[i * n + l] * inv[l * n + j];
			inv[i * n + j] = s / L[i * n + i];
		}
	}
	/* (L L')^-1 = inv' inv: diagonal entry j is the sum of squares of column j */
	for (j = 0; j < n; j++)
	{
		double		s = 0.0;

		for (i = j; i < n; i++)
			s += inv[i * n + j] * inv[i * n + j];
		out[j] = s;
	}
	pfree(inv);
}

/* ----------------------------------------------------------------------
 * Sorting
 * ---------------------------------------------------------------------- */

/* -1, 0 or 1 as *a is below, equal to or above *b. */
int
CompareFloat8(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* ----------------------------------------------------------------------
 * Growable array of doubles
 * ---------------------------------------------------------------------- */

/* Allocate room for cap values (at least one) in cxt. */
void
Float8ArrayInit(Float8Array *arr, MemoryContext cxt, int64 cap)
{
	arr->n = 0;
	arr->cap = Max(cap, 1);
	arr->data = MemoryContextAllocHuge(cxt, sizeof(double) * (Size) arr->cap);
}

/* Grow to max(2 * cap, n + extra) when extra more values do not fit. */
void
Float8ArrayReserve(Float8Array *arr, int64 extra)
{
	int64		cap;

	if (arr->n + extra <= arr->cap)
		return;
	cap = Max(arr->cap * 2, arr->n + extra);
	arr->data = repalloc_huge(arr->data, sizeof(double) * (Size) cap);
	arr->cap = cap;
}

/* Store v after the last value. */
void
Float8ArrayAppend(Float8Array *arr, double v)
{
	if (arr->n >= arr->cap)
		Float8ArrayReserve(arr, 1);
	arr->data[arr->n++] = v;
}

/* Copy v[0..n-1] after the last value. */
void
Float8ArrayAppendMany(Float8Array *arr, const void *v, int64 n)
{
	Float8ArrayReserve(arr, n);
	if (n > 0)
		memcpy(arr->data + arr->n, v, sizeof(double) * (Size) n);
	arr->n += n;
}

/* qsort with CompareFloat8. */
void
Float8ArraySort(Float8Array *arr)
{
	qsort(arr->data, arr->n, sizeof(double), CompareFloat8);
}

/* ----------------------------------------------------------------------
 * float8[] arguments
 * ---------------------------------------------------------------------- */

/* Check the element type and shape of a float8[] vector; return its length. */
int
Float8VectorLength(ArrayType *a, const char *what, bool allow_nulls,
				   const char *null_hint)
{
	if (ARR_ELEMTYPE(a) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s must be a float8[] array", what)));
	if (ARR_NDIM(a) == 0)
		return 0;
	if (ARR_NDIM(a) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", what),
				 errdetail("The array has %d dimensions.", ARR_NDIM(a))));
	if (!allow_nulls && ARR_HASNULL(a) && array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain NULL elements", what),
				 null_hint ? errhint("%s", null_hint) : 0));
	return ARR_DIMS(a)[0];
}

/* ChurnCheckFinite on each element, naming it what[i] (1-based). */
void
Float8VectorCheckFinite(const double *v, int n, const char *what)
{
	int			i;

	for (i = 0; i < n; i++)
		if (unlikely(!isfinite(v[i])))
			ChurnCheckFinite(v[i], psprintf("%s[%d]", what, i + 1));
}

/* ----------------------------------------------------------------------
 * Aggregate support
 * ---------------------------------------------------------------------- */

/* AggCheckCallContext: the aggregate context, or NULL outside an aggregate. */
MemoryContext
ChurnAggContextIfAny(FunctionCallInfo fcinfo)
{
	MemoryContext aggcxt;

	/* src/aggstate.c calls (de)serializers with the target context here */
	if (fcinfo->context != NULL && MemoryContextIsValid((MemoryContext) fcinfo->context))
		return (MemoryContext) fcinfo->context;
	if (!AggCheckCallContext(fcinfo, &aggcxt))
		return NULL;
	return aggcxt;
}

/* ChurnAggContextIfAny, raising the one non-aggregate-context error. */
MemoryContext
ChurnAggContext(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext aggcxt = ChurnAggContextIfAny(fcinfo);

	if (aggcxt == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s called in non-aggregate context", fname)));
	return aggcxt;
}

/*
 * Refuse a serialized aggregate state that does not parse: since 0.3.0 it
 * can come from outside (the text form of churn.agg_state, src/aggstate.c).
 */
void
ChurnBadSerializedState(const char *msg)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("%s", msg)));
	pg_unreachable();
}

/* The state in argument 0 as it is, NULL included. */
Datum
ChurnAggKeepState(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(PG_GETARG_DATUM(0));
}
