/*-------------------------------------------------------------------------
 *
 * rfm.c
 *	  RFM scoring: quantile cut points as a parallel aggregate, and the bin
 *	  of a value given those cut points.
 *
 * rfm_cuts(value, bins) returns the bins - 1 cut points at quantiles i/bins
 * with linear interpolation between order statistics, the same values as
 * percentile_cont(i/bins) WITHIN GROUP (ORDER BY value).
 *
 *-------------------------------------------------------------------------
 */
#include "churn_warning.h"
#include "numeric.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#define RFM_MAX_BINS 100

PG_FUNCTION_INFO_V1(rfm_cuts_trans);
PG_FUNCTION_INFO_V1(rfm_cuts_combine);
PG_FUNCTION_INFO_V1(rfm_cuts_serialize);
PG_FUNCTION_INFO_V1(rfm_cuts_deserialize);
PG_FUNCTION_INFO_V1(rfm_cuts_final);
PG_FUNCTION_INFO_V1(rfm_bin);

typedef struct RfmCutsState
{
	int32		bins;
	Float8Array values;
} RfmCutsState;

/* A new, empty state in the aggregate context. */
static RfmCutsState *
RfmNewState(MemoryContext cxt, int32 bins, int64 cap)
{
	RfmCutsState *st = MemoryContextAllocZero(cxt, sizeof(RfmCutsState));

	st->bins = bins;
	Float8ArrayInit(&st->values, cxt, Max(cap, 64));
	return st;
}

/* Check the bins argument. */
static int32
RfmCheckBins(int32 bins)
{
	if (bins < 2 || bins > RFM_MAX_BINS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bins must be between 2 and %d", RFM_MAX_BINS),
				 errdetail("The value was %d.", bins)));
	return bins;
}

/* rfm_cuts transition: collect non-NULL values. */
Datum
rfm_cuts_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	RfmCutsState *st;
	float8		v;
	int32		bins;

	aggcxt = ChurnAggContext(fcinfo, "rfm_cuts_trans");
	st = PG_ARGISNULL(0) ? NULL : (RfmCutsState *) PG_GETARG_POINTER(0);
	if (PG_ARGISNULL(1))
		return ChurnAggKeepState(fcinfo);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("bins must not be NULL")));
	bins = RfmCheckBins(PG_GETARG_INT32(2));
	v = PG_GETARG_FLOAT8(1);
	if (isnan(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rfm_cuts value must not be NaN")));
	if (st == NULL)
		st = RfmNewState(aggcxt, bins, 64);
	else if (st->bins != bins)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bins must be the same for every row of a group"),
				 errdetail("Got %d after %d.", bins, st->bins)));
	Float8ArrayAppend(&st->values, v);
	PG_RETURN_POINTER(st);
}

/* rfm_cuts combine: concatenate two partial states. */
Datum
rfm_cuts_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	RfmCutsState *a = PG_ARGISNULL(0) ? NULL : (RfmCutsState *) PG_GETARG_POINTER(0);
	RfmCutsState *b = PG_ARGISNULL(1) ? NULL : (RfmCutsState *) PG_GETARG_POINTER(1);

	aggcxt = ChurnAggContext(fcinfo, "rfm_cuts_combine");
	if (b == NULL)
		return ChurnAggKeepState(fcinfo);
	if (a == NULL)
		a = RfmNewState(aggcxt, b->bins, b->values.n);
	else if (a->bins != b->bins)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bins must be the same for every row of a group")));
	Float8ArrayAppendMany(&a->values, b->values.data, b->values.n);
	PG_RETURN_POINTER(a);
}

/* rfm_cuts serialize: bins, count, values. */
Datum
rfm_cuts_serialize(PG_FUNCTION_ARGS)
{
	RfmCutsState *st = (RfmCutsState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	(void) ChurnAggContext(fcinfo, "rfm_cuts_serialize");
	pq_begintypsend(&buf);
	pq_sendint32(&buf, st->bins);
	pq_sendint64(&buf, st->values.n);
	for (int64 i = 0; i < st->values.n; i++)
		pq_sendfloat8(&buf, st->values.data[i]);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* rfm_cuts deserialize. */
Datum
rfm_cuts_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	MemoryContext aggcxt;
	StringInfoData buf;
	RfmCutsState *st;
	int32		bins;
	int64		n;

	aggcxt = ChurnAggContext(fcinfo, "rfm_cuts_deserialize");
	buf.data = VARDATA_ANY(b);
	buf.len = VARSIZE_ANY_EXHDR(b);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	bins = pq_getmsgint(&buf, 4);
	n = pq_getmsgint64(&buf);
	if (n < 0 || n > (buf.len - buf.cursor) / 8 || bins < 2 || bins > RFM_MAX_BINS)
		ChurnBadSerializedState("invalid serialized rfm_cuts state");
	st = RfmNewState(aggcxt, bins, n);
	for (int64 i = 0; i < n; i++)
		Float8ArrayAppend(&st->values, pq_getmsgfloat8(&buf));
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

/* rfm_cuts final: sort and read off the interpolated quantiles. */
Datum
rfm_cuts_final(PG_FUNCTION_ARGS)
{
	RfmCutsState *st;
	Datum	   *cuts;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (RfmCutsState *) PG_GETARG_POINTER(0);
	if (st->values.n == 0)
		PG_RETURN_NULL();
	/* sorting in place is fine: the final function is declared READ_WRITE */
	Float8ArraySort(&st->values);
	cuts = palloc((st->bins - 1) * sizeof(Datum));
	for (int i = 1; i < st->bins; i++)
	{
		double		pos = (double) i / st->bins * (st->values.n - 1);
		int64		lo = (int64) floor(pos);
		int64		hi = (int64) ceil(pos);
		double		v = st->values.data[lo];

		if (hi != lo)
			v = v + (pos - lo) * (st->values.data[hi] - v);
		cuts[i - 1] = Float8GetDatum(v);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(cuts, st->bins - 1, FLOAT8OID,
										  sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * rfm_bin(value, cuts, higher_is_better): 1 + the number of cut points
 * strictly below value (a value equal to a cut stays in the lower bin);
 * reversed when lower values are better (recency).
 */
Datum
rfm_bin(PG_FUNCTION_ARGS)
{
	float8		v = PG_GETARG_FLOAT8(0);
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
	bool		higher_is_better = PG_GETARG_BOOL(2);
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				bin = 1;

	(void) Float8VectorLength(arr, "cut points", true, NULL);
	if (isnan(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value to bin must not be NaN")));
	deconstruct_array(arr, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		float8		c;

		if (nulls[i] || isnan(DatumGetFloat8(elems[i])))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cut points must not contain NULL or NaN")));
		c = DatumGetFloat8(elems[i]);
		if (i > 0 && c < DatumGetFloat8(elems[i - 1]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cut points must be in ascending order")));
		if (c < v)
			bin++;
	}
	PG_RETURN_INT32(higher_is_better ? bin : n + 2 - bin);
}
