/*-------------------------------------------------------------------------
 *
 * eval.c
 *	  Evaluation aggregates: churn.auc, churn.log_loss, churn.brier,
 *	  churn.lift and churn.calibration.
 *
 * All aggregates keep an internal transition state in the aggregate memory
 * context and provide combine, serialize and deserialize functions, so they
 * run as partial aggregates under parallel query.
 *
 * Exactness:
 *	- churn.auc keeps every score (positives and negatives in two arrays),
 *	  sorts them and counts concordant pairs with integers: twice the
 *	  Mann-Whitney U is an exact 64-bit count, the only rounding is the final
 *	  division.
 *	- log loss, Brier score and the per-bin mean of churn.calibration sum
 *	  their terms in an exact fixed-point accumulator (ExactSum), so the
 *	  result does not depend on row order or on how rows were split among
 *	  parallel workers: a parallel plan gives bit-for-bit the serial result.
 *
 *-------------------------------------------------------------------------
 */
#include "eval.h"
#include "numeric.h"

#include <math.h>
#include <string.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(eval_rank_trans);
PG_FUNCTION_INFO_V1(eval_rank_combine);
PG_FUNCTION_INFO_V1(eval_rank_serialize);
PG_FUNCTION_INFO_V1(eval_rank_deserialize);
PG_FUNCTION_INFO_V1(eval_auc_final);
PG_FUNCTION_INFO_V1(eval_lift_final);
PG_FUNCTION_INFO_V1(eval_logloss_trans);
PG_FUNCTION_INFO_V1(eval_brier_trans);
PG_FUNCTION_INFO_V1(eval_mean_combine);
PG_FUNCTION_INFO_V1(eval_mean_serialize);
PG_FUNCTION_INFO_V1(eval_mean_deserialize);
PG_FUNCTION_INFO_V1(eval_mean_final);
PG_FUNCTION_INFO_V1(eval_calib_trans);
PG_FUNCTION_INFO_V1(eval_calib_combine);
PG_FUNCTION_INFO_V1(eval_calib_serialize);
PG_FUNCTION_INFO_V1(eval_calib_deserialize);
PG_FUNCTION_INFO_V1(eval_calib_final);

/* Probabilities are clipped to [EVAL_EPS, 1 - EVAL_EPS] for log loss. */
#define EVAL_EPS 1e-15

/* ------------------------------------------------------------------------
 * ExactSum: exact sum of finite doubles.
 *
 * A double is m * 2^k with |m| < 2^53 and -1074 <= k <= 971.  The sum is held
 * as a fixed-point number in units of 2^-1074, split into 32-bit limbs kept in
 * int64 slots (room for 2^30 additions before carries must be propagated).
 * After normalisation every limb but the top one is in [0, 2^32) and the top
 * one carries the sign, so the representation of a value is unique and its
 * conversion to double is deterministic.
 * ------------------------------------------------------------------------
 */
#define ES_LIMB_BITS 32
#define ES_NLIMBS 68
#define ES_MAX_PENDING (INT64CONST(1) << 30)

typedef struct ExactSum
{
	int64		pending;		/* additions since the last normalisation */
	int64		limb[ES_NLIMBS];
} ExactSum;

/* Propagate carries so that limbs 0..N-2 are in [0, 2^32). */
static void
ExactSumNormalize(ExactSum *s)
{
	int			i;

	for (i = 0; i < ES_NLIMBS - 1; i++)
	{
		int64		v = s->limb[i];
		int64		lo = v & INT64CONST(0xFFFFFFFF);
		int64		carry = (v - lo) / (INT64CONST(1) << ES_LIMB_BITS);

		s->limb[i] = lo;
		s->limb[i + 1] += carry;
	}
	s->pending = 0;
}

/* Add one finite double to the accumulator, exactly. */
static inline void
ExactSumAdd(ExactSum *s, double x)
{
	int			e;
	double		f;
	int64		m;
	uint64		am;
	uint64		rest;
	int			sh;
	int			li;
	int			bo;
	int64		c0,
				c1,
				c2;

	if (x == 0.0)
		return;
	f = frexp(x, &e);			/* x = f * 2^e, 0.5 <= |f| < 1 */
	m = (int64) ldexp(f, 53);	/* exact integer, |m| < 2^53 */
	sh = e - 53 + 1074;			/* x = m * 2^(sh - 1074) */
	if (sh < 0)
	{
		/* subnormal: the low -sh bits of m are zero */
		m /= (INT64CONST(1) << (-sh));
		sh = 0;
	}
	am = (m < 0) ? (uint64) (-m) : (uint64) m;
	li = sh / ES_LIMB_BITS;
	bo = sh % ES_LIMB_BITS;
	c0 = (int64) ((am & ((UINT64CONST(1) << (ES_LIMB_BITS - bo)) - 1)) << bo);
	rest = am >> (ES_LIMB_BITS - bo);
	c1 = (int64) (rest & UINT64CONST(0xFFFFFFFF));
	c2 = (int64) (rest >> ES_LIMB_BITS);
	if (m < 0)
	{
		c0 = -c0;
		c1 = -c1;
		c2 = -c2;
	}
	s->limb[li] += c0;
	s->limb[li + 1] += c1;
	s->limb[li + 2] += c2;
	if (++s->pending >= ES_MAX_PENDING)
		ExactSumNormalize(s);
}

/* Add accumulator b into a (b is normalised as a side effect). */
static void
ExactSumCombine(ExactSum *a, ExactSum *b)
{
	int			i;

	ExactSumNormalize(a);
	ExactSumNormalize(b);
	for (i = 0; i < ES_NLIMBS; i++)
		a->limb[i] += b->limb[i];
	a->pending = 1;
	ExactSumNormalize(a);
}

/* The accumulated sum rounded to double (deterministic for a given sum). */
static double
ExactSumValue(ExactSum *s)
{
	long double r = 0;
	int			i;

	ExactSumNormalize(s);
	for (i = ES_NLIMBS - 1; i >= 0; i--)
		if (s->limb[i] != 0)
			r += ldexpl((long double) s->limb[i], ES_LIMB_BITS * i - 1074);
	return (double) r;
}

/* ------------------------------------------------------------------------
 * Helpers shared by the aggregates
 * ------------------------------------------------------------------------
 */

/* Read and check the optional bins argument (argument number argno). */
static int32
EvalGetBins(FunctionCallInfo fcinfo, int argno)
{
	int32		bins;

	if (PG_NARGS() <= argno)
		return CHURN_EVAL_DEFAULT_BINS;
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("bins must not be NULL")));
	bins = PG_GETARG_INT32(argno);
	if (bins < 1 || bins > CHURN_EVAL_MAX_BINS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bins must be between 1 and %d", CHURN_EVAL_MAX_BINS),
				 errdetail("The value was %d.", bins)));
	return bins;
}

/* Error for a bins argument that changes from row to row. */
static void
EvalBinsMismatch(int32 have, int32 got)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("bins must be the same for every row of a group"),
			 errdetail("Bins %d and %d were both given.", have, got)));
}

/* Reject a NaN score. */
static void
EvalCheckScore(double score)
{
	if (isnan(score))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("score must not be NaN")));
}

/* Reject a probability that is NaN or outside [0, 1]. */
static void
EvalCheckProbability(double p)
{
	if (isnan(p))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("probability must not be NaN")));
	if (p < 0.0 || p > 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("probability must be between 0 and 1"),
				 errdetail("The value was %g.", p)));
}

/* One bin of a lift table or a calibration table, before output. */
typedef struct EvalBin
{
	int64		n;
	int64		positives;
	double		mean;			/* mean score (valid when n > 0) */
	double		min;
	double		max;
} EvalBin;

/*
 * Build the churn.bin_stat[] result from bins in output order; cumulative
 * columns run from the first bin to the current one.
 */
static Datum
EvalBinArray(FunctionCallInfo fcinfo, EvalBin *bins, int nbins)
{
	Oid			arraytype = get_func_rettype(fcinfo->flinfo->fn_oid);
	Oid			elemtype = get_element_type(arraytype);
	TupleDesc	tupdesc;
	Datum	   *elems;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int64		total_n = 0;
	int64		total_pos = 0;
	int64		cum_n = 0;
	int64		cum_pos = 0;
	double		overall;
	int			i;

	if (!OidIsValid(elemtype))
		elog(ERROR, "bin aggregate final function must return an array");
	tupdesc = lookup_rowtype_tupdesc_copy(elemtype, -1);
	tupdesc = BlessTupleDesc(tupdesc);
	if (tupdesc->natts != 12)
		elog(ERROR, "type churn.bin_stat has %d columns, expected 12", tupdesc->natts);

	for (i = 0; i < nbins; i++)
	{
		total_n += bins[i].n;
		total_pos += bins[i].positives;
	}
	overall = total_n > 0 ? (double) total_pos / (double) total_n : 0.0;

	elems = palloc(sizeof(Datum) * nbins);
	for (i = 0; i < nbins; i++)
	{
		Datum		values[12];
		bool		nulls[12];
		EvalBin    *b = &bins[i];
		double		rate = 0.0;
		double		cum_rate = 0.0;

		memset(nulls, 0, sizeof(nulls));
		cum_n += b->n;
		cum_pos += b->positives;

		values[0] = Int32GetDatum(i + 1);
		values[1] = Int64GetDatum(b->n);
		values[2] = Int64GetDatum(b->positives);
		if (b->n > 0)
		{
			rate = (double) b->positives / (double) b->n;
			values[3] = Float8GetDatum(b->mean);
			values[4] = Float8GetDatum(rate);
			values[8] = Float8GetDatum(b->min);
			values[9] = Float8GetDatum(b->max);
		}
		else
			nulls[3] = nulls[4] = nulls[8] = nulls[9] = true;
		/* lift: the bin's rate over the overall rate */
		if (b->n > 0 && total_pos > 0)
			values[5] = Float8GetDatum(rate / overall);
		else
			nulls[5] = true;
		if (cum_n > 0)
		{
			cum_rate = (double) cum_pos / (double) cum_n;
			values[6] = Float8GetDatum(cum_rate);
		}
		else
			nulls[6] = true;
		if (cum_n > 0 && total_pos > 0)
			values[7] = Float8GetDatum(cum_rate / overall);
		else
			nulls[7] = true;
		values[10] = Int64GetDatum(cum_n);
		if (total_pos > 0)
			values[11] = Float8GetDatum((double) cum_pos / (double) total_pos);
		else
			nulls[11] = true;

		elems[i] = HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
	}
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, nbins, elemtype,
										  typlen, typbyval, typalign));
}

/* ------------------------------------------------------------------------
 * Rank state: all scores, split by label (churn.auc, churn.lift)
 * ------------------------------------------------------------------------
 */
typedef struct EvalRankState
{
	Float8Array pos;			/* scores of positives */
	Float8Array neg;			/* scores of negatives */
	int32		bins;			/* bins for churn.lift */
	bool		sorted;			/* both arrays sorted ascending */
} EvalRankState;

/* Header of the serialized rank state; the scores follow. */
typedef struct EvalRankWire
{
	int64		npos;
	int64		nneg;
	int32		bins;
	int32		sorted;
} EvalRankWire;

/* A new empty rank state in memory context ctx. */
static EvalRankState *
EvalRankNew(MemoryContext ctx, int32 bins, int64 cappos, int64 capneg)
{
	EvalRankState *st = MemoryContextAllocZero(ctx, sizeof(EvalRankState));

	Float8ArrayInit(&st->pos, ctx, Max(cappos, 256));
	Float8ArrayInit(&st->neg, ctx, Max(capneg, 256));
	st->bins = bins;
	st->sorted = true;
	return st;
}

/* Sort both score arrays ascending (idempotent). */
static void
EvalRankSort(EvalRankState *st)
{
	if (st->sorted)
		return;
	Float8ArraySort(&st->pos);
	CHECK_FOR_INTERRUPTS();
	Float8ArraySort(&st->neg);
	st->sorted = true;
}

/* Transition: remember one (score, label) row; optional 4th arg is bins. */
Datum
eval_rank_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx = ChurnAggContext(fcinfo, "eval_rank_trans");
	EvalRankState *st = PG_ARGISNULL(0) ? NULL : (EvalRankState *) PG_GETARG_POINTER(0);
	int32		bins = EvalGetBins(fcinfo, 3);
	double		score;

	if (st != NULL && st->bins != bins)
		EvalBinsMismatch(st->bins, bins);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		return ChurnAggKeepState(fcinfo);
	score = PG_GETARG_FLOAT8(1);
	EvalCheckScore(score);
	if (st == NULL)
		st = EvalRankNew(aggctx, bins, 0, 0);

	Float8ArrayAppend(PG_GETARG_BOOL(2) ? &st->pos : &st->neg, score);
	st->sorted = false;
	PG_RETURN_POINTER(st);
}

/* Combine: append the second state's scores to the first. */
Datum
eval_rank_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx = ChurnAggContext(fcinfo, "eval_rank_combine");
	EvalRankState *st1 = PG_ARGISNULL(0) ? NULL : (EvalRankState *) PG_GETARG_POINTER(0);
	EvalRankState *st2 = PG_ARGISNULL(1) ? NULL : (EvalRankState *) PG_GETARG_POINTER(1);

	if (st2 == NULL)
		return ChurnAggKeepState(fcinfo);
	if (st1 == NULL)
		st1 = EvalRankNew(aggctx, st2->bins, st2->pos.n, st2->neg.n);
	else if (st1->bins != st2->bins)
		EvalBinsMismatch(st1->bins, st2->bins);

	Float8ArrayAppendMany(&st1->pos, st2->pos.data, st2->pos.n);
	Float8ArrayAppendMany(&st1->neg, st2->neg.data, st2->neg.n);
	st1->sorted = false;
	PG_RETURN_POINTER(st1);
}

/* Serialize: header and the raw scores (same server, same float format). */
Datum
eval_rank_serialize(PG_FUNCTION_ARGS)
{
	EvalRankState *st = (EvalRankState *) PG_GETARG_POINTER(0);
	EvalRankWire w;
	Size		len;
	bytea	   *out;
	char	   *p;

	(void) ChurnAggContext(fcinfo, "eval_rank_serialize");
	len = sizeof(EvalRankWire) + sizeof(double) * (Size) (st->pos.n + st->neg.n);
	if (len > MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many rows in one parallel worker for an evaluation aggregate"),
				 errdetail("A worker holds %lld scores; at most %lld can be passed on.",
						   (long long) (st->pos.n + st->neg.n),
						   (long long) ((MaxAllocSize - VARHDRSZ - sizeof(EvalRankWire)) / sizeof(double))),
				 errhint("Set max_parallel_workers_per_gather = 0 for this query.")));
	w.npos = st->pos.n;
	w.nneg = st->neg.n;
	w.bins = st->bins;
	w.sorted = st->sorted ? 1 : 0;
	out = (bytea *) palloc(VARHDRSZ + len);
	SET_VARSIZE(out, VARHDRSZ + len);
	p = VARDATA(out);
	memcpy(p, &w, sizeof(w));
	p += sizeof(w);
	if (st->pos.n > 0)
		memcpy(p, st->pos.data, sizeof(double) * st->pos.n);
	p += sizeof(double) * st->pos.n;
	if (st->neg.n > 0)
		memcpy(p, st->neg.data, sizeof(double) * st->neg.n);
	PG_RETURN_BYTEA_P(out);
}

/* Deserialize a rank state written by eval_rank_serialize. */
Datum
eval_rank_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	const char *p = VARDATA_ANY(in);
	Size		len = VARSIZE_ANY_EXHDR(in);
	EvalRankWire w;
	EvalRankState *st;

	(void) ChurnAggContext(fcinfo, "eval_rank_deserialize");
	if (len < sizeof(w))
		ChurnBadSerializedState("invalid serialized evaluation state");
	memcpy(&w, p, sizeof(w));
	p += sizeof(w);
	if (w.npos < 0 || w.nneg < 0 || w.bins < 1 || w.bins > CHURN_EVAL_MAX_BINS ||
		len != sizeof(w) + sizeof(double) * (Size) (w.npos + w.nneg))
		ChurnBadSerializedState("invalid serialized evaluation state");
	st = EvalRankNew(CurrentMemoryContext, w.bins, w.npos, w.nneg);
	Float8ArrayAppendMany(&st->pos, p, w.npos);
	p += sizeof(double) * w.npos;
	Float8ArrayAppendMany(&st->neg, p, w.nneg);
	/* a state may come from outside (churn.agg_state text): sort again */
	st->sorted = false;
	PG_RETURN_POINTER(st);
}

/*
 * Final: exact ROC AUC = U / (n_pos * n_neg), U the Mann-Whitney statistic
 * (pairs with the positive scored higher, ties counting half).
 */
Datum
eval_auc_final(PG_FUNCTION_ARGS)
{
	EvalRankState *st = PG_ARGISNULL(0) ? NULL : (EvalRankState *) PG_GETARG_POINTER(0);
	uint64		twice_u = 0;
	int64		lo = 0;
	int64		hi = 0;
	int64		i;

	if (st == NULL || st->pos.n == 0 || st->neg.n == 0)
		PG_RETURN_NULL();
	/* 2 * npos * nneg must fit in 64 bits (about 6e9 rows of each class) */
	if ((uint64) st->neg.n > (PG_UINT64_MAX / 2) / (uint64) st->pos.n)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many rows for churn.auc")));
	EvalRankSort(st);
	for (i = 0; i < st->pos.n; i++)
	{
		double		s = st->pos.data[i];

		/* lo = negatives below s, hi = negatives at or below s */
		while (lo < st->neg.n && st->neg.data[lo] < s)
			lo++;
		if (hi < lo)
			hi = lo;
		while (hi < st->neg.n && st->neg.data[hi] <= s)
			hi++;
		twice_u += 2 * (uint64) lo + (uint64) (hi - lo);
		if ((i & 0xFFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	PG_RETURN_FLOAT8((double) twice_u /
					 (2.0 * (double) st->pos.n * (double) st->neg.n));
}

/*
 * The ntile bin (1-based) of 0-based position pos among n rows in k bins:
 * the first n % k bins hold n / k + 1 rows, the others n / k, exactly like
 * ntile(k) OVER (ORDER BY score DESC).
 */
static int
EvalNtile(int64 pos, int64 n, int32 k)
{
	int64		q = n / k;
	int64		r = n % k;

	if (pos < r * (q + 1))
		return (int) (pos / (q + 1)) + 1;
	return (int) (r + (pos - r * (q + 1)) / q) + 1;
}

/*
 * Final of churn.lift: quantile bins by score descending.  Rows are ranked
 * by score, highest first; a group of tied scores goes as a whole to the bin
 * of the group's first (best-ranked) row, so a bin depends only on the score
 * and never on the label or on row order.
 */
Datum
eval_lift_final(PG_FUNCTION_ARGS)
{
	EvalRankState *st = PG_ARGISNULL(0) ? NULL : (EvalRankState *) PG_GETARG_POINTER(0);
	EvalBin    *bins;
	long double *sums;
	int64		n;
	int64		ip;
	int64		in;
	int64		pos = 0;
	int			b;

	if (st == NULL || st->pos.n + st->neg.n == 0)
		PG_RETURN_NULL();
	EvalRankSort(st);
	n = st->pos.n + st->neg.n;
	bins = palloc0(sizeof(EvalBin) * st->bins);
	sums = palloc0(sizeof(long double) * st->bins);

	ip = st->pos.n - 1;
	in = st->neg.n - 1;
	while (ip >= 0 || in >= 0)
	{
		double		s;
		int64		gp = 0;
		int64		gn = 0;
		EvalBin    *bin;

		if (ip < 0)
			s = st->neg.data[in];
		else if (in < 0)
			s = st->pos.data[ip];
		else
			s = Max(st->pos.data[ip], st->neg.data[in]);
		while (ip >= 0 && st->pos.data[ip] == s)
		{
			gp++;
			ip--;
		}
		while (in >= 0 && st->neg.data[in] == s)
		{
			gn++;
			in--;
		}
		b = EvalNtile(pos, n, st->bins) - 1;
		bin = &bins[b];
		if (bin->n == 0)
			bin->max = s;
		bin->min = s;
		bin->n += gp + gn;
		bin->positives += gp;
		sums[b] += (long double) s * (long double) (gp + gn);
		pos += gp + gn;
		if ((pos & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	for (b = 0; b < st->bins; b++)
		if (bins[b].n > 0)
			bins[b].mean = (double) (sums[b] / (long double) bins[b].n);
	return EvalBinArray(fcinfo, bins, st->bins);
}

/* ------------------------------------------------------------------------
 * Mean state: count and exact sum (churn.log_loss, churn.brier)
 * ------------------------------------------------------------------------
 */
typedef struct EvalMeanState
{
	int64		n;
	ExactSum	sum;
} EvalMeanState;

/* The mean state to update, created in the aggregate context if needed. */
static EvalMeanState *
EvalMeanGet(FunctionCallInfo fcinfo, const char *what)
{
	MemoryContext aggctx = ChurnAggContext(fcinfo, what);

	if (!PG_ARGISNULL(0))
		return (EvalMeanState *) PG_GETARG_POINTER(0);
	return MemoryContextAllocZero(aggctx, sizeof(EvalMeanState));
}

/* Transition of churn.log_loss: add -log(p) or -log(1 - p), p clipped. */
Datum
eval_logloss_trans(PG_FUNCTION_ARGS)
{
	EvalMeanState *st;
	double		p;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		return ChurnAggKeepState(fcinfo);
	p = PG_GETARG_FLOAT8(1);
	EvalCheckProbability(p);
	st = EvalMeanGet(fcinfo, "eval_logloss_trans");
	if (p < EVAL_EPS)
		p = EVAL_EPS;
	else if (p > 1.0 - EVAL_EPS)
		p = 1.0 - EVAL_EPS;
	ExactSumAdd(&st->sum, PG_GETARG_BOOL(2) ? -log(p) : -log1p(-p));
	st->n++;
	PG_RETURN_POINTER(st);
}

/* Transition of churn.brier: add (p - label)^2. */
Datum
eval_brier_trans(PG_FUNCTION_ARGS)
{
	EvalMeanState *st;
	double		p;
	double		d;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		return ChurnAggKeepState(fcinfo);
	p = PG_GETARG_FLOAT8(1);
	EvalCheckProbability(p);
	st = EvalMeanGet(fcinfo, "eval_brier_trans");
	d = p - (PG_GETARG_BOOL(2) ? 1.0 : 0.0);
	ExactSumAdd(&st->sum, d * d);
	st->n++;
	PG_RETURN_POINTER(st);
}

/* Combine two mean states. */
Datum
eval_mean_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx = ChurnAggContext(fcinfo, "eval_mean_combine");
	EvalMeanState *st1 = PG_ARGISNULL(0) ? NULL : (EvalMeanState *) PG_GETARG_POINTER(0);
	EvalMeanState *st2 = PG_ARGISNULL(1) ? NULL : (EvalMeanState *) PG_GETARG_POINTER(1);

	if (st2 == NULL)
		return ChurnAggKeepState(fcinfo);
	if (st1 == NULL)
		st1 = MemoryContextAllocZero(aggctx, sizeof(EvalMeanState));
	st1->n += st2->n;
	ExactSumCombine(&st1->sum, &st2->sum);
	PG_RETURN_POINTER(st1);
}

/* Serialize a mean state (normalised, as raw bytes). */
Datum
eval_mean_serialize(PG_FUNCTION_ARGS)
{
	EvalMeanState *st = (EvalMeanState *) PG_GETARG_POINTER(0);
	bytea	   *out;

	(void) ChurnAggContext(fcinfo, "eval_mean_serialize");
	out = palloc(VARHDRSZ + sizeof(EvalMeanState));
	ExactSumNormalize(&st->sum);
	SET_VARSIZE(out, VARHDRSZ + sizeof(EvalMeanState));
	memcpy(VARDATA(out), st, sizeof(EvalMeanState));
	PG_RETURN_BYTEA_P(out);
}

/* Deserialize a mean state. */
Datum
eval_mean_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	EvalMeanState *st;

	(void) ChurnAggContext(fcinfo, "eval_mean_deserialize");
	if (VARSIZE_ANY_EXHDR(in) != sizeof(EvalMeanState))
		ChurnBadSerializedState("invalid serialized evaluation state");
	st = palloc(sizeof(EvalMeanState));
	memcpy(st, VARDATA_ANY(in), sizeof(EvalMeanState));
	PG_RETURN_POINTER(st);
}

/* Final: the mean of the accumulated terms, NULL without rows. */
Datum
eval_mean_final(PG_FUNCTION_ARGS)
{
	EvalMeanState *st = PG_ARGISNULL(0) ? NULL : (EvalMeanState *) PG_GETARG_POINTER(0);
	ExactSum	copy;

	if (st == NULL || st->n == 0)
		PG_RETURN_NULL();
	copy = st->sum;
	PG_RETURN_FLOAT8(ExactSumValue(&copy) / (double) st->n);
}

/* ------------------------------------------------------------------------
 * Calibration state: per equal-width bin counts and exact sums
 * ------------------------------------------------------------------------
 */
typedef struct EvalCalibBin
{
	int64		n;
	int64		positives;
	double		min;
	double		max;
	ExactSum	sum;
} EvalCalibBin;

typedef struct EvalCalibState
{
	int32		bins;
	int32		pad;
	EvalCalibBin bin[FLEXIBLE_ARRAY_MEMBER];
} EvalCalibState;

#define EvalCalibSize(bins) (offsetof(EvalCalibState, bin) + sizeof(EvalCalibBin) * (bins))

/*
 * Equal-width bin of p in [0, 1]: bin b holds [(b-1)/bins, b/bins), the last
 * bin also holds 1; the same as least(width_bucket(p, 0, 1, bins), bins).
 */
static int
EvalCalibBinOf(double p, int32 bins)
{
	int			b;

	if (p >= 1.0)
		return bins;
	b = (int) ((double) bins * p);
	if (b >= bins)
		b = bins - 1;
	return b + 1;
}

/* Transition of churn.calibration. */
Datum
eval_calib_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx = ChurnAggContext(fcinfo, "eval_calib_trans");
	EvalCalibState *st = PG_ARGISNULL(0) ? NULL : (EvalCalibState *) PG_GETARG_POINTER(0);
	int32		bins = EvalGetBins(fcinfo, 3);
	EvalCalibBin *bin;
	double		p;

	if (st != NULL && st->bins != bins)
		EvalBinsMismatch(st->bins, bins);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		return ChurnAggKeepState(fcinfo);
	p = PG_GETARG_FLOAT8(1);
	EvalCheckProbability(p);
	if (st == NULL)
	{
		st = MemoryContextAllocZero(aggctx, EvalCalibSize(bins));
		st->bins = bins;
	}
	bin = &st->bin[EvalCalibBinOf(p, bins) - 1];
	if (bin->n == 0 || p < bin->min)
		bin->min = p;
	if (bin->n == 0 || p > bin->max)
		bin->max = p;
	bin->n++;
	if (PG_GETARG_BOOL(2))
		bin->positives++;
	ExactSumAdd(&bin->sum, p);
	PG_RETURN_POINTER(st);
}

/* Combine two calibration states bin by bin. */
Datum
eval_calib_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx = ChurnAggContext(fcinfo, "eval_calib_combine");
	EvalCalibState *st1 = PG_ARGISNULL(0) ? NULL : (EvalCalibState *) PG_GETARG_POINTER(0);
	EvalCalibState *st2 = PG_ARGISNULL(1) ? NULL : (EvalCalibState *) PG_GETARG_POINTER(1);
	int			b;

	if (st2 == NULL)
		return ChurnAggKeepState(fcinfo);
	if (st1 == NULL)
	{
		st1 = MemoryContextAlloc(aggctx, EvalCalibSize(st2->bins));
		memcpy(st1, st2, EvalCalibSize(st2->bins));
		PG_RETURN_POINTER(st1);
	}
	if (st1->bins != st2->bins)
		EvalBinsMismatch(st1->bins, st2->bins);
	for (b = 0; b < st1->bins; b++)
	{
		EvalCalibBin *x = &st1->bin[b];
		EvalCalibBin *y = &st2->bin[b];

		if (y->n == 0)
			continue;
		if (x->n == 0 || y->min < x->min)
			x->min = y->min;
		if (x->n == 0 || y->max > x->max)
			x->max = y->max;
		x->n += y->n;
		x->positives += y->positives;
		ExactSumCombine(&x->sum, &y->sum);
	}
	PG_RETURN_POINTER(st1);
}

/* Serialize a calibration state (normalised, as raw bytes). */
Datum
eval_calib_serialize(PG_FUNCTION_ARGS)
{
	EvalCalibState *st = (EvalCalibState *) PG_GETARG_POINTER(0);
	Size		len = EvalCalibSize(st->bins);
	bytea	   *out;
	int			b;

	(void) ChurnAggContext(fcinfo, "eval_calib_serialize");
	out = palloc(VARHDRSZ + len);
	for (b = 0; b < st->bins; b++)
		ExactSumNormalize(&st->bin[b].sum);
	SET_VARSIZE(out, VARHDRSZ + len);
	memcpy(VARDATA(out), st, len);
	PG_RETURN_BYTEA_P(out);
}

/* Deserialize a calibration state. */
Datum
eval_calib_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	Size		len = VARSIZE_ANY_EXHDR(in);
	EvalCalibState *st;
	int32		bins;

	(void) ChurnAggContext(fcinfo, "eval_calib_deserialize");
	if (len < offsetof(EvalCalibState, bin))
		ChurnBadSerializedState("invalid serialized evaluation state");
	memcpy(&bins, VARDATA_ANY(in), sizeof(int32));
	if (bins < 1 || bins > CHURN_EVAL_MAX_BINS || len != EvalCalibSize(bins))
		ChurnBadSerializedState("invalid serialized evaluation state");
	st = palloc(len);
	memcpy(st, VARDATA_ANY(in), len);
	PG_RETURN_POINTER(st);
}

/* Final of churn.calibration: one row per equal-width bin, lowest first. */
Datum
eval_calib_final(PG_FUNCTION_ARGS)
{
	EvalCalibState *st = PG_ARGISNULL(0) ? NULL : (EvalCalibState *) PG_GETARG_POINTER(0);
	EvalBin    *bins;
	int			b;

	if (st == NULL)
		PG_RETURN_NULL();
	bins = palloc0(sizeof(EvalBin) * st->bins);
	for (b = 0; b < st->bins; b++)
	{
		EvalCalibBin *x = &st->bin[b];

		bins[b].n = x->n;
		bins[b].positives = x->positives;
		bins[b].min = x->min;
		bins[b].max = x->max;
		if (x->n > 0)
		{
			ExactSum	copy = x->sum;

			bins[b].mean = ExactSumValue(&copy) / (double) x->n;
		}
	}
	return EvalBinArray(fcinfo, bins, st->bins);
}
