/*-------------------------------------------------------------------------
 *
 * probmodels.h
 *	  Buy-till-you-die models: BG/NBD, Pareto/NBD and Gamma-Gamma.
 *
 * The three fitting aggregates share one transition state: a hash table of
 * distinct (x, v1, v2) keys with the summed weight of the rows that had that
 * key ("compressed" input).  For BG/NBD and Pareto/NBD the key is
 * (x, t_x, t); for Gamma-Gamma it is (x, avg_spend, 0).  The final functions
 * maximise the log-likelihood over the distinct keys only, so a large input
 * with few distinct keys fits as fast as its compressed form.
 *
 * All parameters are optimised on the log scale (they are positive) by
 * ProbMinimize: BFGS with a backtracking line search, then Newton steps with
 * a finite-difference Hessian to polish and certify convergence.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROBMODELS_H
#define PROBMODELS_H

#include "churn_warning.h"

/* One distinct input key with its summed weight. */
typedef struct ProbEntry
{
	double		v1;				/* t_x, or avg_spend for Gamma-Gamma */
	double		v2;				/* t, or 0 for Gamma-Gamma */
	double		w;				/* summed weight of the rows with this key */
	int32		x;				/* number of repeat purchases */
} ProbEntry;

/* Aggregate transition state, allocated in the aggregate memory context. */
typedef struct ProbState
{
	MemoryContext cxt;			/* where entries and slots live */
	int64		nrows;			/* input rows accumulated (NULL rows excluded) */
	double		wsum;			/* total weight */
	int			n;				/* number of distinct keys */
	int			cap;			/* allocated entries */
	ProbEntry  *e;				/* the distinct keys */
	int32	   *slots;			/* open-addressing index into e, -1 = empty */
	int			nslots;			/* power of two, > 2 * n */
} ProbState;

/* Objective for ProbMinimize: returns f(theta) (to minimise) and, when grad
 * is not NULL, its gradient; returns a non-finite value outside the domain. */
typedef double (*ProbObjective) (const double *theta, double *grad, void *ctx);

#define PROB_MAX_PARAMS 4

/* Result of a minimisation. */
typedef struct ProbOptResult
{
	double		fval;			/* objective at the solution */
	int			iterations;		/* BFGS plus Newton iterations */
	bool		converged;		/* stationary point with positive-definite
								 * Hessian and negligible Newton decrement */
} ProbOptResult;

/* --- probmodels_common.c --- */

/* Get (creating it on the first row) the state of a fitting aggregate. */
extern ProbState *ProbStateGet(FunctionCallInfo fcinfo, const char *fname);

/* Add weight w to key (x, v1, v2). */
extern void ProbStateAdd(ProbState *st, int32 x, double v1, double v2, double w);

/* Sorted copy of the entries with positive weight, in CurrentMemoryContext. */
extern ProbEntry *ProbStateSortedEntries(ProbState *st, int *n);

/* Check a row weight: NaN, infinite and negative weights are errors. */
extern void ProbCheckWeight(double w);

/* Validate (x, t_x, t) of a BG/NBD or Pareto/NBD customer (errors). */
extern void ProbCheckRft(int32 x, double t_x, double t);

/* Read (x, t_x, t) from arguments argno .. argno + 2, validated. */
extern void ProbGetRftArgs(FunctionCallInfo fcinfo, int argno, int32 *x,
						   double *t_x, double *t);

/* Read a horizon (>= 0) from argument argno, then (x, t_x, t), validated. */
extern void ProbGetHorizonRftArgs(FunctionCallInfo fcinfo, int argno, double *h,
								  int32 *x, double *t_x, double *t);

/* Weighted sums of x and t; an error when every x is 0 (fname: the fit). */
extern void ProbRftSums(const ProbEntry *e, int n, const char *fname,
						double *sumx, double *sumt);

/* Minimise f over k <= PROB_MAX_PARAMS parameters starting from theta. */
extern ProbOptResult ProbMinimize(ProbObjective f, void *ctx, int k, double *theta,
								  bool analytic_gradient);

/* The fitted model row: exp(theta), loglik, wsum, iterations, converged. */
extern Datum ProbFitResult(FunctionCallInfo fcinfo, const double *theta, int k,
						   const ProbOptResult *res, double wsum);

/* Central-difference gradient of an objective that has no analytic one. */
extern double ProbNumericGradient(ProbObjective f, void *ctx, int k,
								  const double *theta, double *grad);

/* Digamma function for x > 0. */
extern double ProbDigamma(double x);

/* log(exp(a) + exp(b)) without overflow. */
extern double ProbLogSumExp(double a, double b);

/* Read the first n float8 fields of a model row (named by names) into
 * out; errors on NULL, non-positive or non-finite values. */
extern void ProbModelParams(HeapTupleHeader m, const char *type, int n,
							const char *const *names, double *out);

/* --- bgnbd.c (used by gammagamma.c for predicted_value) --- */

/* Conditional expected number of purchases in (t, t + horizon]. */
extern double BgnbdExpected(double r, double alpha, double a, double b,
							double horizon, int32 x, double t_x, double t);

/* Read and validate the parameters of a churn.bgnbd row. */
extern void BgnbdGetParams(HeapTupleHeader m, double *r, double *alpha,
						   double *a, double *b);

#endif							/* PROBMODELS_H */
