/*-------------------------------------------------------------------------
 *
 * numeric.h
 *	  Numeric building blocks shared by the models and aggregates of
 *	  churn_warning: Cholesky factorisation and solve, the double
 *	  comparator, a growable float8 array, float8[] argument checks and the
 *	  aggregate-context check.
 *
 * Every function here is the single definition of its concept; the models
 * call these rather than keeping their own copies.  The arithmetic is plain
 * IEEE double in a fixed order (no fast-math), so results are bit-for-bit
 * reproducible.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_NUMERIC_H
#define CHURN_NUMERIC_H

#include "churn_warning.h"

#include "utils/array.h"

/* --- Cholesky factorisation --- */

/*
 * Factor the symmetric matrix A (row-major n x n; the upper triangle with the
 * diagonal is read) as L L' in place, L in the lower triangle.  A pivot fails
 * unless it is positive, finite and above pivot_tol times its diagonal entry
 * (0: plain positive definiteness).  Returns the first failing column, or -1.
 */
extern int	CholeskyDecompose(double *A, int n, double pivot_tol);

/* Solve L L' x = b in place in b with the factor from CholeskyDecompose. */
extern void CholeskySolve(const double *L, int n, double *b);

/* diag((L L')^-1) into out, from the factor of CholeskyDecompose. */
extern void CholeskyInverseDiag(const double *L, int n, double *out);

/* --- Sorting --- */

/* qsort comparator: doubles in ascending order (NaN compares equal to all). */
extern int	CompareFloat8(const void *a, const void *b);

/* --- Growable array of doubles --- */

/* A growable array of doubles; its memory lives where Float8ArrayInit put it. */
typedef struct Float8Array
{
	int64		n;				/* values stored */
	int64		cap;			/* values allocated */
	double	   *data;
} Float8Array;

/* Make arr an empty array with room for cap values, allocated in cxt. */
extern void Float8ArrayInit(Float8Array *arr, MemoryContext cxt, int64 cap);

/* Make room for extra more values (at least doubling the capacity). */
extern void Float8ArrayReserve(Float8Array *arr, int64 extra);

/* Append one value. */
extern void Float8ArrayAppend(Float8Array *arr, double v);

/* Append n values copied from v (which need not be aligned). */
extern void Float8ArrayAppendMany(Float8Array *arr, const void *v, int64 n);

/* Sort the values ascending. */
extern void Float8ArraySort(Float8Array *arr);

/* --- float8[] arguments --- */

/*
 * Length of a one-dimensional float8[] (0 for '{}'); what names the argument
 * in errors.  NULL elements are an error unless allow_nulls; null_hint, when
 * not NULL, is that error's hint.
 */
extern int	Float8VectorLength(ArrayType *a, const char *what, bool allow_nulls,
							   const char *null_hint);

/* Raise an error at the first non-finite v[i], named what[i + 1]. */
extern void Float8VectorCheckFinite(const double *v, int n, const char *what);

/* --- Aggregate support --- */

/* The aggregate memory context; an error when fname is not called as an aggregate. */
extern MemoryContext ChurnAggContext(FunctionCallInfo fcinfo, const char *fname);

/*
 * The aggregate memory context, or NULL when not called as an aggregate (for
 * transition functions that are also plain functions of a SQL type).
 */
extern MemoryContext ChurnAggContextIfAny(FunctionCallInfo fcinfo);
/* Refuse a serialized aggregate state that does not parse (22P03). */
extern void ChurnBadSerializedState(const char *msg) pg_attribute_noreturn();

/*
 * Return the state in argument 0 unchanged (SQL NULL when it is NULL): a
 * transition function skipping a row, a combine function given a NULL
 * second state.
 */
extern Datum ChurnAggKeepState(FunctionCallInfo fcinfo);

#endif							/* CHURN_NUMERIC_H */
