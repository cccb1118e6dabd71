/*-------------------------------------------------------------------------
 *
 * tiers.c
 *	  churn.warning_tier: the warning tier of a churn probability and an
 *	  annual value under a policy of churn.tier_policy.
 *
 * The policy is read with SPI the first time a call site (FmgrInfo) needs
 * it and kept in fn_extra, so a query that tiers a million rows reads the
 * table once; the cache is tied to the snapshot (snapcache.h).
 *
 *-------------------------------------------------------------------------
 */
#include "churn_warning.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "featurelist.h"
#include "snapcache.h"
#include "tiers.h"

PG_FUNCTION_INFO_V1(warning_tier);
PG_FUNCTION_INFO_V1(warning_tier_hysteresis);
PG_FUNCTION_INFO_V1(tier_code_list);
PG_FUNCTION_INFO_V1(alert_urgency);
PG_FUNCTION_INFO_V1(tier_code_zone);
PG_FUNCTION_INFO_V1(tier_code_level);
PG_FUNCTION_INFO_V1(lifecycle);
PG_FUNCTION_INFO_V1(lifecycle_tier);

const TierCodeInfo TierCodes[TIER_NCODES] = {
	{"N0", "none", 0},
	{"B2", "blue", 2},
	{"B1", "blue", 1},
	{"Y4", "yellow", 4},
	{"Y3", "yellow", 3},
	{"Y2", "yellow", 2},
	{"Y1", "yellow", 1},
	{"R3", "red", 3},
	{"R2", "red", 2},
	{"R1", "red", 1},
};

/* A policy as loaded from churn.tier_policy, segments by min_value descending. */
typedef struct TierPolicy
{
	char	   *name;
	int			namelen;
	int			nseg;
	TierSegment *segs;
	Datum	   *seg_text;		/* segment names as text datums */
} TierPolicy;

/* recency_days, x, t and mean_gap_days (TierLifecycleFeatures) */
#define LIFECYCLE_NFEATURES 4

/* fn_extra of a warning_tier or lifecycle call site. */
typedef struct TierCache
{
	TupleDesc	tupdesc;		/* blessed churn.tier */
	Datum		code_text[TIER_NCODES];
	Datum		zone_text[TIER_NCODES];
	MemoryContext policy_cxt;	/* policies; reset when the snapshot changes */
	SnapCacheKey key;
	int			npol;
	int			maxpol;
	TierPolicy **pols;
	TierPolicy *last;			/* the policy of the previous call */
	MemoryContext mcxt;			/* fn_mcxt */
	FeatureReader *reader;		/* lifecycle's features; created on first use */
	int			lifecycle_which[LIFECYCLE_NFEATURES];
} TierCache;

/* A float8 as the shortest text that reads back exactly, for messages. */
static char *
TierFloatText(double v)
{
	char	   *buf = palloc(DOUBLE_SHORTEST_DECIMAL_LEN);

	double_to_shortest_decimal_buf(v, buf);
	return buf;
}

/* Urgency 0..9 of p in a segment: the number of cut points <= p. */
int
TierUrgency(const TierSegment *seg, double p)
{
	int			k = 0;

	while (k < TIER_NCUTS && seg->cuts[k] <= p)
		k++;
	return k;
}

/* Urgency of a code (case-insensitive, surrounding blanks ignored), or -1. */
int
TierCodeUrgency(const char *code, int len)
{
	int			k;

	while (len > 0 && code[0] == ' ')
		code++, len--;
	while (len > 0 && code[len - 1] == ' ')
		len--;
	if (len != 2)
		return -1;
	for (k = 0; k < TIER_NCODES; k++)
		if (pg_toupper((unsigned char) code[0]) == TierCodes[k].code[0] &&
			code[1] == TierCodes[k].code[1])
			return k;
	return -1;
}

/* The cache of a call site, created on first use. */
static TierCache *
TierGetCache(FunctionCallInfo fcinfo)
{
	TierCache  *c = (TierCache *) fcinfo->flinfo->fn_extra;
	MemoryContext oldcxt;
	TupleDesc	tupdesc;
	int			k;

	if (c != NULL)
		return c;
	oldcxt = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	c = palloc0(sizeof(TierCache));
	c->mcxt = fcinfo->flinfo->fn_mcxt;
	if (get_call_result_type(fcinfo, NULL, &tupdesc) == TYPEFUNC_COMPOSITE)
		c->tupdesc = BlessTupleDesc(CreateTupleDescCopy(tupdesc));
	for (k = 0; k < TIER_NCODES; k++)
	{
		c->code_text[k] = PointerGetDatum(cstring_to_text(TierCodes[k].code));
		c->zone_text[k] = PointerGetDatum(cstring_to_text(TierCodes[k].zone));
	}
	c->policy_cxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "churn warning_tier policies",
										  ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(oldcxt);
	fcinfo->flinfo->fn_extra = c;
	return c;
}

/* Forget the cached policies if the snapshot is not the one they were read under. */
static void
TierCheckSnapshot(TierCache *c)
{
	if (SnapCacheStillValid(&c->key))
		return;
	MemoryContextReset(c->policy_cxt);
	c->npol = 0;
	c->maxpol = 0;
	c->pols = NULL;
	c->last = NULL;
}

/* Read a policy from churn.tier_policy into the cache; error if it does not exist. */
static TierPolicy *
TierLoadPolicy(TierCache *c, const char *name, int namelen)
{
	MemoryContext cxt = c->policy_cxt;
	Oid			argtype = TEXTOID;
	Datum		arg;
	TierPolicy *pol;
	uint64		i;
	int			ret;

	arg = PointerGetDatum(cstring_to_text_with_len(name, namelen));
	if ((ret = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(ret));
	ret = SPI_execute_with_args("SELECT value_segment, min_annual_value, lead_days, hysteresis_margin,"
								" b2, b1, y4, y3, y2, y1, r3, r2, r1,"
								" new_days, lapsing_gaps, lost_gaps, lost_min_days, lost_max_days, default_gap_days"
								" FROM churn.tier_policy WHERE policy OPERATOR(pg_catalog.=) $1"
								" ORDER BY min_annual_value DESC, value_segment",
								1, &argtype, &arg, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading churn.tier_policy failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
	{
		char	   *known = NULL;

		ret = SPI_execute("SELECT pg_catalog.string_agg(DISTINCT policy, ', ' ORDER BY policy) FROM churn.tier_policy",
						  true, 0);
		if (ret == SPI_OK_SELECT && SPI_processed == 1)
		{
			char	   *s = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			if (s != NULL)
				known = MemoryContextStrdup(cxt, s);
		}
		SPI_finish();
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tier policy \"%s\" does not exist", pnstrdup(name, namelen)),
				 known ? errhint("Known policies: %s.", known)
				 : errhint("churn.tier_policy is empty.")));
	}

	pol = MemoryContextAllocZero(cxt, sizeof(TierPolicy));
	pol->name = MemoryContextAlloc(cxt, namelen + 1);
	memcpy(pol->name, name, namelen);
	pol->name[namelen] = '\0';
	pol->namelen = namelen;
	pol->nseg = (int) SPI_processed;
	pol->segs = MemoryContextAllocZero(cxt, sizeof(TierSegment) * pol->nseg);
	pol->seg_text = MemoryContextAllocZero(cxt, sizeof(Datum) * pol->nseg);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		TierSegment *seg = &pol->segs[i];
		Datum		d[4 + TIER_NCUTS + 6];
		bool		isnull;
		int			k;
		char	   *s;
		MemoryContext oldcxt;

		for (k = 0; k < lengthof(d); k++)
		{
			d[k] = SPI_getbinval(tup, td, k + 1, &isnull);
			if (isnull)
				elog(ERROR, "churn.tier_policy column %d is NULL", k + 1);
		}
		s = TextDatumGetCString(d[0]);
		seg->name = MemoryContextStrdup(cxt, s);
		seg->min_value = DatumGetFloat8(d[1]);
		seg->lead_days = DatumGetInt32(d[2]);
		seg->margin = DatumGetFloat8(d[3]);
		for (k = 0; k < TIER_NCUTS; k++)
			seg->cuts[k] = DatumGetFloat8(d[4 + k]);
		seg->new_days = DatumGetInt32(d[4 + TIER_NCUTS]);
		seg->lapsing_gaps = DatumGetFloat8(d[5 + TIER_NCUTS]);
		seg->lost_gaps = DatumGetFloat8(d[6 + TIER_NCUTS]);
		seg->lost_min_days = DatumGetInt32(d[7 + TIER_NCUTS]);
		seg->lost_max_days = DatumGetInt32(d[8 + TIER_NCUTS]);
		seg->default_gap_days = DatumGetFloat8(d[9 + TIER_NCUTS]);
		oldcxt = MemoryContextSwitchTo(cxt);
		pol->seg_text[i] = PointerGetDatum(cstring_to_text(seg->name));
		MemoryContextSwitchTo(oldcxt);
	}
	SPI_finish();

	if (c->npol == c->maxpol)
	{
		c->maxpol = Max(4, c->maxpol * 2);
		c->pols = c->pols == NULL
			? MemoryContextAlloc(cxt, sizeof(TierPolicy *) * c->maxpol)
			: repalloc(c->pols, sizeof(TierPolicy *) * c->maxpol);
	}
	c->pols[c->npol++] = pol;
	return pol;
}

/* The named policy, from the cache or the table. */
static TierPolicy *
TierGetPolicy(TierCache *c, const char *name, int namelen)
{
	int			i;

	TierCheckSnapshot(c);
	if (c->last != NULL && c->last->namelen == namelen &&
		memcmp(c->last->name, name, namelen) == 0)
		return c->last;
	for (i = 0; i < c->npol; i++)
		if (c->pols[i]->namelen == namelen && memcmp(c->pols[i]->name, name, namelen) == 0)
			return c->last = c->pols[i];
	return c->last = TierLoadPolicy(c, name, namelen);
}

/* Index of the value segment of an annual value. */
static int
TierFindSegment(const TierPolicy *pol, double annual_value)
{
	int			i;

	for (i = 0; i < pol->nseg; i++)
		if (pol->segs[i].min_value <= annual_value)
			return i;
	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("tier policy \"%s\" has no value segment for annual value %s",
					pol->name, TierFloatText(annual_value)),
			 errhint("Check it with SELECT churn.tier_policy_validate('%s');", pol->name)));
	return -1;					/* keep the compiler quiet */
}

/* Reject a probability outside [0, 1] and a negative or non-finite value. */
static void
TierCheckInputs(double p, double annual_value)
{
	ChurnCheckFinite(p, "p_churn");
	if (p < 0.0 || p > 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("p_churn %s is outside [0, 1]", TierFloatText(p)),
				 errhint("p_churn is a probability of churn.")));
	ChurnCheckNonNegative(annual_value, "annual_value");
}

/* The churn.tier row of urgency k in segment s. */
static Datum
TierResult(TierCache *c, TierPolicy *pol, int s, int k)
{
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};

	values[0] = c->zone_text[k];
	values[1] = Int32GetDatum(TierCodes[k].level);
	values[2] = c->code_text[k];
	values[3] = pol->seg_text[s];
	values[4] = Int32GetDatum(pol->segs[s].lead_days);
	return HeapTupleGetDatum(heap_form_tuple(c->tupdesc, values, nulls));
}

/* warning_tier(p_churn, annual_value [, policy]): the tier under a policy ('default'). */
Datum
warning_tier(PG_FUNCTION_ARGS)
{
	double		p = PG_GETARG_FLOAT8(0);
	double		v = PG_GETARG_FLOAT8(1);
	TierCache  *c;
	TierPolicy *pol;
	int			s;

	TierCheckInputs(p, v);
	c = TierGetCache(fcinfo);
	if (PG_NARGS() >= 3)
	{
		text	   *name = PG_GETARG_TEXT_PP(2);

		pol = TierGetPolicy(c, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
	}
	else
		pol = TierGetPolicy(c, "default", 7);
	s = TierFindSegment(pol, v);
	return TierResult(c, pol, s, TierUrgency(&pol->segs[s], p));
}

/*
 * warning_tier(p_churn, annual_value, policy, previous_code, margin): keep
 * previous_code while p is within margin of its band.  NULL p, value or
 * policy give NULL; NULL previous_code means no hysteresis; NULL margin means
 * the segment's hysteresis_margin.
 */
Datum
warning_tier_hysteresis(PG_FUNCTION_ARGS)
{
	double		p,
				v,
				margin;
	text	   *name;
	TierCache  *c;
	TierPolicy *pol;
	TierSegment *seg;
	int			s,
				k;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	p = PG_GETARG_FLOAT8(0);
	v = PG_GETARG_FLOAT8(1);
	TierCheckInputs(p, v);
	if (!PG_ARGISNULL(4))
	{
		margin = PG_GETARG_FLOAT8(4);
		if (isnan(margin) || margin < 0.0 || margin >= 1.0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("hysteresis margin %s is outside [0, 1)", TierFloatText(margin))));
	}
	c = TierGetCache(fcinfo);
	name = PG_GETARG_TEXT_PP(2);
	pol = TierGetPolicy(c, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
	s = TierFindSegment(pol, v);
	seg = &pol->segs[s];
	k = TierUrgency(seg, p);
	if (!PG_ARGISNULL(3))
	{
		text	   *prev = PG_GETARG_TEXT_PP(3);
		int			j = TierCodeUrgency(VARDATA_ANY(prev), VARSIZE_ANY_EXHDR(prev));
		double		lower,
					upper;

		if (j < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" is not a tier code", text_to_cstring(prev)),
					 errhint("Tier codes are N0, B2, B1, Y4, Y3, Y2, Y1, R3, R2 and R1.")));
		margin = PG_ARGISNULL(4) ? seg->margin : PG_GETARG_FLOAT8(4);
		lower = j == 0 ? -INFINITY : seg->cuts[j - 1];
		upper = j == TIER_NCODES - 1 ? INFINITY : seg->cuts[j];
		if (p >= lower - margin && p < upper + margin)
			k = j;
	}
	return TierResult(c, pol, s, k);
}

/* tier_code_list(): every tier code with its zone, level and urgency, N0 first. */
Datum
tier_code_list(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	ChurnMaterializeSRF(fcinfo);
	for (int k = 0; k < TIER_NCODES; k++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = CStringGetTextDatum(TierCodes[k].code);
		values[1] = CStringGetTextDatum(TierCodes[k].zone);
		values[2] = Int32GetDatum(TierCodes[k].level);
		values[3] = Int32GetDatum(k);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* Urgency of a tier code written exactly (no case folding, no blanks), or -1. */
static int
TierExactCode(text *code)
{
	const char *s = VARDATA_ANY(code);

	if (VARSIZE_ANY_EXHDR(code) != 2)
		return -1;
	for (int k = 0; k < TIER_NCODES; k++)
		if (s[0] == TierCodes[k].code[0] && s[1] == TierCodes[k].code[1])
			return k;
	return -1;
}

/* alert_urgency(code): urgency 0 (N0) .. 9 (R1) of a tier code; NULL for anything else. */
Datum
alert_urgency(PG_FUNCTION_ARGS)
{
	int			k = TierExactCode(PG_GETARG_TEXT_PP(0));

	if (k < 0)
		PG_RETURN_NULL();
	PG_RETURN_INT32(k);
}

/* tier_code_zone(code): the zone of a tier code; NULL for anything else. */
Datum
tier_code_zone(PG_FUNCTION_ARGS)
{
	int			k = TierExactCode(PG_GETARG_TEXT_PP(0));

	if (k < 0)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(TierCodes[k].zone));
}

/* tier_code_level(code): the level of a tier code inside its zone; NULL for anything else. */
Datum
tier_code_level(PG_FUNCTION_ARGS)
{
	int			k = TierExactCode(PG_GETARG_TEXT_PP(0));

	if (k < 0)
		PG_RETURN_NULL();
	PG_RETURN_INT32(TierCodes[k].level);
}

/*
 * The lifecycle stage of a customer, judged against their own rhythm: the
 * usual gap is mean_gap_days (default_gap_days for a customer who bought
 * once).  lost: recency >= lost_max_days, or recency > max(lost_min_days,
 * lost_gaps x gap); new: first purchase less than new_days ago; lapsing:
 * recency > lapsing_gaps x gap; else active.
 */
static const char *
TierLifecycle(const TierSegment *seg, double x, double t, double recency, double mean_gap)
{
	double		gap = x >= 1 && mean_gap > 0 ? mean_gap : seg->default_gap_days;

	if (recency >= seg->lost_max_days || recency > Max(seg->lost_min_days, seg->lost_gaps * gap))
		return "lost";
	if (t < seg->new_days)
		return "new";
	if (recency > seg->lapsing_gaps * gap)
		return "lapsing";
	return "active";
}

/* The features lifecycle reads, in this order. */
static const char *const LifecycleFeatureNames[LIFECYCLE_NFEATURES] = {
	"recency_days", "x", "t", "mean_gap_days"
};

/*
 * Read recency_days, x, t and mean_gap_days of a churn.features row into v
 * (NaN when NULL); false without purchases or recency.  One deform per call
 * through the call site's reader, not a row type lookup per field.
 */
static bool
TierLifecycleFeatures(TierCache *c, HeapTupleHeader f, double *v)
{
	bool		isnull[LIFECYCLE_NFEATURES];

	if (c->reader == NULL)
	{
		c->reader = FeatureReaderCreate(c->mcxt);
		for (int i = 0; i < LIFECYCLE_NFEATURES; i++)
			c->lifecycle_which[i] = FeatureIndex(LifecycleFeatureNames[i]);
	}
	if (!FeatureReaderRead(c->reader, f, NULL, c->lifecycle_which, LIFECYCLE_NFEATURES, v, isnull))
		return false;
	for (int i = 0; i < LIFECYCLE_NFEATURES; i++)
		if (isnull[i])
			v[i] = NAN;
	return !isnull[0];
}

/* lifecycle(f, annual_value, policy): new, active, lapsing or lost; NULL without purchases. */
Datum
lifecycle(PG_FUNCTION_ARGS)
{
	double		v = PG_ARGISNULL(1) ? 0 : PG_GETARG_FLOAT8(1);
	text	   *name;
	TierCache  *c;
	TierPolicy *pol;
	double		f[LIFECYCLE_NFEATURES];

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	c = TierGetCache(fcinfo);
	if (!TierLifecycleFeatures(c, PG_GETARG_HEAPTUPLEHEADER(0), f))
		PG_RETURN_NULL();
	ChurnCheckNonNegative(v, "annual_value");
	name = PG_GETARG_TEXT_PP(2);
	pol = TierGetPolicy(c, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
	PG_RETURN_TEXT_P(cstring_to_text(TierLifecycle(&pol->segs[TierFindSegment(pol, v)],
												   f[1], f[2], f[0], f[3])));
}

/*
 * lifecycle_tier(t, lifecycle): a lost customer's red or yellow tier becomes
 * blue B1 (reactivation); every other tier is returned unchanged.
 */
Datum
lifecycle_tier(PG_FUNCTION_ARGS)
{
	HeapTupleHeader t;
	text	   *stage;
	HeapTupleData tuple;
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5];
	char	   *zone;
	Datum		result;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = PG_GETARG_HEAPTUPLEHEADER(0);
	if (PG_ARGISNULL(1))
		PG_RETURN_DATUM(PointerGetDatum(t));
	stage = PG_GETARG_TEXT_PP(1);
	if (VARSIZE_ANY_EXHDR(stage) != 4 || memcmp(VARDATA_ANY(stage), "lost", 4) != 0)
		PG_RETURN_DATUM(PointerGetDatum(t));
	desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(t), HeapTupleHeaderGetTypMod(t));
	if (desc->natts != 5)
		elog(ERROR, "churn.tier has %d fields, expected 5", desc->natts);
	ChurnCompositeTuple(t, &tuple);
	heap_deform_tuple(&tuple, desc, values, nulls);
	zone = nulls[0] ? "" : TextDatumGetCString(values[0]);
	if (strcmp(zone, "red") != 0 && strcmp(zone, "yellow") != 0)
	{
		ReleaseTupleDesc(desc);
		PG_RETURN_DATUM(PointerGetDatum(t));
	}
	values[0] = CStringGetTextDatum("blue");
	values[1] = Int32GetDatum(1);
	values[2] = CStringGetTextDatum("B1");
	nulls[0] = nulls[1] = nulls[2] = false;
	result = HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
	ReleaseTupleDesc(desc);
	PG_RETURN_DATUM(result);
}
