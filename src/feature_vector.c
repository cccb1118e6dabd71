/*-------------------------------------------------------------------------
 *
 * feature_vector.c
 *	  The model feature list and the float8[] vector built from it:
 *	  churn.feature_names() and churn.feature_vector(features, engagement,
 *	  fill).
 *
 * ChurnFeatures is the only place that says which features exist and in
 * which order.  Values are read from the composites by field name, so the
 * order of the fields in churn.features does not matter here.
 *
 *-------------------------------------------------------------------------
 */
#include "churn_warning.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "featurelist.h"

PG_FUNCTION_INFO_V1(feature_names);
PG_FUNCTION_INFO_V1(feature_names_source);
PG_FUNCTION_INFO_V1(feature_vector);

const FeatureDef ChurnFeatures[CHURN_NFEATURES] = {
	{"x", FEATURE_PURCHASE},
	{"t_x", FEATURE_PURCHASE},
	{"t", FEATURE_PURCHASE},
	{"recency_days", FEATURE_PURCHASE},
	{"purchase_days", FEATURE_PURCHASE},
	{"total_spend", FEATURE_PURCHASE},
	{"avg_spend", FEATURE_PURCHASE},
	{"repeat_avg_spend", FEATURE_PURCHASE},
	{"mean_gap_days", FEATURE_PURCHASE},
	{"sd_gap_days", FEATURE_PURCHASE},
	{"overdue_ratio", FEATURE_PURCHASE},
	{"recent_days", FEATURE_PURCHASE},
	{"prior_days", FEATURE_PURCHASE},
	{"frequency_change", FEATURE_PURCHASE},
	{"recent_avg_spend", FEATURE_PURCHASE},
	{"prior_avg_spend", FEATURE_PURCHASE},
	{"spend_change", FEATURE_PURCHASE},
	{"aov_decline_months", FEATURE_PURCHASE},
	{"return_days", FEATURE_PURCHASE},
	{"days_since_event", FEATURE_ENGAGEMENT},
	{"days_since_visit", FEATURE_ENGAGEMENT},
	{"days_since_login", FEATURE_ENGAGEMENT},
	{"days_since_review", FEATURE_ENGAGEMENT},
	{"days_since_complaint", FEATURE_ENGAGEMENT},
	{"days_since_interaction", FEATURE_ENGAGEMENT},
	{"events_recent", FEATURE_ENGAGEMENT},
	{"events_prior", FEATURE_ENGAGEMENT},
	{"event_change", FEATURE_ENGAGEMENT},
	{"negative_recent", FEATURE_ENGAGEMENT},
	{"avg_rating_recent", FEATURE_ENGAGEMENT},
};

/* How one composite type's fields map to features. */
typedef struct FeatureLayout
{
	Oid			typid;			/* InvalidOid until first seen */
	TupleDesc	desc;
	int			attno[CHURN_NFEATURES]; /* 0-based field, -1 if not this source */
	int			first_purchase; /* churn.features only */
	Datum	   *values;
	bool	   *nulls;
} FeatureLayout;

struct FeatureReader
{
	MemoryContext mcxt;
	FeatureLayout layout[2];	/* by FeatureSource */
};

/* Position of a feature name in ChurnFeatures, or -1. */
int
FeatureIndex(const char *name)
{
	for (int i = 0; i < CHURN_NFEATURES; i++)
		if (strcmp(ChurnFeatures[i].name, name) == 0)
			return i;
	return -1;
}

/* A reader whose layouts are filled on first use. */
FeatureReader *
FeatureReaderCreate(MemoryContext mcxt)
{
	FeatureReader *r = MemoryContextAllocZero(mcxt, sizeof(FeatureReader));

	r->mcxt = mcxt;
	return r;
}

/* Field number of name in desc, or -1. */
static int
FeatureFindField(TupleDesc desc, const char *name)
{
	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return a;
	}
	return -1;
}

/* Map the fields of a composite type to the features of one source. */
static void
FeatureLayoutInit(FeatureReader *r, FeatureLayout *l, FeatureSource source, Oid typid, int32 typmod)
{
	TupleDesc	desc = lookup_rowtype_tupdesc(typid, typmod);
	MemoryContext old = MemoryContextSwitchTo(r->mcxt);

	l->desc = CreateTupleDescCopy(desc);
	ReleaseTupleDesc(desc);
	l->values = palloc(sizeof(Datum) * l->desc->natts);
	l->nulls = palloc(sizeof(bool) * l->desc->natts);
	MemoryContextSwitchTo(old);
	for (int i = 0; i < CHURN_NFEATURES; i++)
	{
		l->attno[i] = -1;
		if (ChurnFeatures[i].source != source)
			continue;
		l->attno[i] = FeatureFindField(l->desc, ChurnFeatures[i].name);
		if (l->attno[i] < 0)
			elog(ERROR, "type %s has no field \"%s\"", format_type_be(typid), ChurnFeatures[i].name);
	}
	l->first_purchase = FeatureFindField(l->desc, "first_purchase");
	if (source == FEATURE_PURCHASE && l->first_purchase < 0)
		elog(ERROR, "type %s has no field \"first_purchase\"", format_type_be(typid));
	l->typid = typid;
}

/* A numeric field value as a double. */
static double
FeatureFieldValue(Form_pg_attribute att, Datum d)
{
	switch (att->atttypid)
	{
		case FLOAT8OID:
			return DatumGetFloat8(d);
		case FLOAT4OID:
			return DatumGetFloat4(d);
		case INT4OID:
			return DatumGetInt32(d);
		case INT8OID:
			return (double) DatumGetInt64(d);
		case INT2OID:
			return DatumGetInt16(d);
	}
	elog(ERROR, "feature field \"%s\" has unsupported type %s",
		 NameStr(att->attname), format_type_be(att->atttypid));
	return 0;					/* keep the compiler quiet */
}

/* Deform one composite into its layout, (re)building the layout if the type changed. */
static FeatureLayout *
FeatureDeform(FeatureReader *r, FeatureSource source, HeapTupleHeader th)
{
	FeatureLayout *l = &r->layout[source];
	Oid			typid = HeapTupleHeaderGetTypeId(th);
	HeapTupleData tuple;

	if (l->typid != typid)
		FeatureLayoutInit(r, l, source, typid, HeapTupleHeaderGetTypMod(th));
	ChurnCompositeTuple(th, &tuple);
	heap_deform_tuple(&tuple, l->desc, l->values, l->nulls);
	return l;
}

/* Fill out[] from the purchase and (optional) engagement features. */
bool
FeatureReaderRead(FeatureReader *r, HeapTupleHeader f, HeapTupleHeader e,
				  const int *which, int n, double *out, bool *isnull)
{
	FeatureLayout *lp,
			   *le = NULL;

	if (f == NULL)
		return false;
	lp = FeatureDeform(r, FEATURE_PURCHASE, f);
	if (lp->nulls[lp->first_purchase])
		return false;
	if (e != NULL)
		le = FeatureDeform(r, FEATURE_ENGAGEMENT, e);
	for (int i = 0; i < n; i++)
	{
		int			fi = which ? which[i] : i;
		FeatureLayout *l = fi < 0 ? NULL : ChurnFeatures[fi].source == FEATURE_PURCHASE ? lp : le;
		int			a = l ? l->attno[fi] : -1;

		isnull[i] = a < 0 || l->nulls[a];
		out[i] = isnull[i] ? 0 : FeatureFieldValue(TupleDescAttr(l->desc, a), l->values[a]);
	}
	return true;
}

/* The names of the features of one source (all when source < 0) as a text[]. */
static Datum
FeatureNamesArray(int source)
{
	Datum		names[CHURN_NFEATURES];
	int			n = 0;

	for (int i = 0; i < CHURN_NFEATURES; i++)
		if (source < 0 || ChurnFeatures[i].source == (FeatureSource) source)
			names[n++] = CStringGetTextDatum(ChurnFeatures[i].name);
	PG_RETURN_ARRAYTYPE_P(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* feature_names(): the names of the feature vector's elements, in order. */
Datum
feature_names(PG_FUNCTION_ARGS)
{
	return FeatureNamesArray(-1);
}

/* feature_names(source): the names of the 'purchase' or the 'engagement' features, in vector order. */
Datum
feature_names_source(PG_FUNCTION_ARGS)
{
	char	   *source = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (strcmp(source, "purchase") == 0)
		return FeatureNamesArray(FEATURE_PURCHASE);
	if (strcmp(source, "engagement") == 0)
		return FeatureNamesArray(FEATURE_ENGAGEMENT);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown feature source \"%s\"", source),
			 errhint("Feature sources are purchase and engagement.")));
	return (Datum) 0;			/* keep the compiler quiet */
}

/*
 * feature_vector(f, e, fill): the features as a float8[] in feature_names()
 * order; missing values are fill (NULL when fill is NULL).  NULL when f is
 * NULL or has no purchase.
 */
Datum
feature_vector(PG_FUNCTION_ARGS)
{
	FeatureReader *r = (FeatureReader *) fcinfo->flinfo->fn_extra;
	double		v[CHURN_NFEATURES];
	bool		isnull[CHURN_NFEATURES];
	Datum		elems[CHURN_NFEATURES];
	int			dims[1] = {CHURN_NFEATURES};
	int			lbs[1] = {1};
	bool		fill_null = PG_ARGISNULL(2);
	double		fill = fill_null ? 0 : PG_GETARG_FLOAT8(2);

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (r == NULL)
		fcinfo->flinfo->fn_extra = r = FeatureReaderCreate(fcinfo->flinfo->fn_mcxt);
	if (!FeatureReaderRead(r, PG_GETARG_HEAPTUPLEHEADER(0),
						   PG_ARGISNULL(1) ? NULL : PG_GETARG_HEAPTUPLEHEADER(1),
						   NULL, CHURN_NFEATURES, v, isnull))
		PG_RETURN_NULL();
	for (int i = 0; i < CHURN_NFEATURES; i++)
	{
		elems[i] = Float8GetDatum(isnull[i] ? fill : v[i]);
		isnull[i] = isnull[i] && fill_null;
	}
	PG_RETURN_ARRAYTYPE_P(construct_md_array(elems, isnull, 1, dims, lbs, FLOAT8OID, sizeof(float8),
											 FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
