/*-------------------------------------------------------------------------
 *
 * score.c
 *	  Scoring in one place: churn.model_score(model, x),
 *	  churn.model_score(model, features, engagement) and
 *	  churn.model_input(model, features, engagement).
 *
 * Every path that turns a customer into a churn probability (churn.predict,
 * the backtest, the pipeline refresh) calls these.  A model is a
 * churn.model row, registered or built on the fly by a backtest or a
 * refresh.  Its feature_names say which features it reads and in which
 * order; the feature list itself is featurelist.h.  The time unit of the
 * probabilistic models is applied here and nowhere else: their inputs are
 * x, t_x and t in days, and time_unit_days converts days to model units.
 *
 * Missing values: logistic regression reads them as 0 (its training rows
 * were filled the same way), XGBoost as missing, the rule model fires no
 * rule on them; BG/NBD and Pareto/NBD give NULL.
 *
 * Derived features: a logit or xgb row may also carry a BG/NBD model in its
 * bgnbd column; its feature names may then include bgnbd_p_alive and
 * bgnbd_expected (expected purchases over the row's horizon), computed from
 * x, t_x and t with that model (time unit time_unit_days).
 *
 *-------------------------------------------------------------------------
 */
#include "churn_warning.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "featurelist.h"
#include "numeric.h"
#include "rules.h"
#include "score.h"

PG_FUNCTION_INFO_V1(model_score);
PG_FUNCTION_INFO_V1(model_score_features);
PG_FUNCTION_INFO_V1(model_input);
PG_FUNCTION_INFO_V1(model_p_alive);
PG_FUNCTION_INFO_V1(model_expected);

/* What a call asks of a probabilistic model. */
typedef enum ScoreOp
{
	OP_P_CHURN,					/* P(no purchase within the horizon) */
	OP_P_ALIVE,					/* P(still a customer) */
	OP_EXPECTED,				/* expected purchases within a number of days */
	NOPS
} ScoreOp;

/* How a kind takes its input. */
typedef enum ScoreShape
{
	SHAPE_RFT,					/* (model, horizon, x int, t_x, t) in model time units */
	SHAPE_VECTOR,				/* (model, x float8[]) */
	SHAPE_RULES					/* a ruleset over the full feature vector */
} ScoreShape;

typedef struct ModelKind
{
	const char *kind;			/* churn.model.kind */
	const char *column;			/* the churn.model column holding its parameters */
	ScoreShape	shape;
	bool		fill_zero;		/* missing values read as 0 */
	PGFunction	fn[NOPS];		/* p_churn; for SHAPE_RFT also p_alive, expected */
} ModelKind;

static const ModelKind ModelKinds[] = {
	{"bgnbd", "bgnbd", SHAPE_RFT, false, {bgnbd_p_churn, bgnbd_p_alive, bgnbd_expected}},
	{"pnbd", "pnbd", SHAPE_RFT, false, {pnbd_p_churn, pnbd_p_alive, pnbd_expected}},
	{"logit", "logit", SHAPE_VECTOR, true, {logit_predict}},
	{"xgb", "xgb", SHAPE_VECTOR, false, {xgb_predict}},
	{"rules", "ruleset", SHAPE_RULES, false, {NULL}},
};

#define NKINDS lengthof(ModelKinds)

/* Map codes of the derived features (ChurnFeatures indexes are >= 0). */
#define DERIVED_NONE			(-1)
#define DERIVED_BGNBD_P_ALIVE	(-2)
#define DERIVED_BGNBD_EXPECTED	(-3)

/* The fields of a churn.model row that scoring reads. */
typedef struct ModelRow
{
	const ModelKind *kind;
	int			k;				/* index into ModelKinds */
	Datum		name;
	Datum		param;
	Datum		aux_bgnbd;		/* the bgnbd column of a logit or xgb row, or 0 */
	int32		horizon_days;
	double		time_unit_days;
} ModelRow;

/* fn_extra of a call site. */
typedef struct ScoreCache
{
	MemoryContext mcxt;
	Oid			typid;			/* churn.model's row type */
	TupleDesc	desc;
	int			att_name,
				att_kind,
				att_names,
				att_horizon,
				att_unit,
				att_param[NKINDS];
	Datum	   *values;
	bool	   *nulls;
	FmgrInfo	fn[NKINDS][NOPS];	/* the kinds' scorers, with their own caches */
	FeatureReader *reader;
	RulesCache *rules;
	text	   *kind;			/* the kind text last seen, and its index */
	int			kind_index;
	ArrayType  *names;			/* the feature_names the map was built for */
	int			nnames;
	int		   *map;			/* model feature i -> ChurnFeatures index, or DERIVED_* */
	bool		derived;		/* some feature is derived */
	double	   *x;				/* model vector */
	bool	   *xnull;
} ScoreCache;

/* Field number of a churn.model column. */
static int
ScoreField(TupleDesc desc, const char *name)
{
	for (int a = 0; a < desc->natts; a++)
		if (!TupleDescAttr(desc, a)->attisdropped &&
			strcmp(NameStr(TupleDescAttr(desc, a)->attname), name) == 0)
			return a;
	elog(ERROR, "churn.model has no column \"%s\"", name);
	return -1;					/* keep the compiler quiet */
}

/* The cache of a call site, (re)built for the row type of the model argument. */
static ScoreCache *
ScoreGetCache(FunctionCallInfo fcinfo, HeapTupleHeader m)
{
	ScoreCache *c = (ScoreCache *) fcinfo->flinfo->fn_extra;
	Oid			typid = HeapTupleHeaderGetTypeId(m);
	MemoryContext old;
	TupleDesc	desc;

	if (c != NULL && c->typid == typid)
		return c;
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	c = palloc0(sizeof(ScoreCache));
	c->mcxt = fcinfo->flinfo->fn_mcxt;
	desc = lookup_rowtype_tupdesc(typid, HeapTupleHeaderGetTypMod(m));
	c->desc = CreateTupleDescCopy(desc);
	ReleaseTupleDesc(desc);
	c->typid = typid;
	c->att_name = ScoreField(c->desc, "name");
	c->att_kind = ScoreField(c->desc, "kind");
	c->att_names = ScoreField(c->desc, "feature_names");
	c->att_horizon = ScoreField(c->desc, "horizon_days");
	c->att_unit = ScoreField(c->desc, "time_unit_days");
	for (int k = 0; k < NKINDS; k++)
	{
		c->att_param[k] = ScoreField(c->desc, ModelKinds[k].column);
		for (int op = 0; op < NOPS; op++)
		{
			FmgrInfo   *fn = &c->fn[k][op];

			fn->fn_addr = ModelKinds[k].fn[op];
			fn->fn_oid = InvalidOid;
			fn->fn_nargs = ModelKinds[k].shape != SHAPE_RFT ? 2 : op == OP_P_ALIVE ? 4 : 5;
			fn->fn_strict = true;
			fn->fn_mcxt = c->mcxt;
		}
	}
	c->values = palloc(sizeof(Datum) * c->desc->natts);
	c->nulls = palloc(sizeof(bool) * c->desc->natts);
	c->reader = FeatureReaderCreate(c->mcxt);
	c->rules = RulesCacheCreate(c->mcxt);
	MemoryContextSwitchTo(old);
	fcinfo->flinfo->fn_extra = c;
	return c;
}

/* The name of a model for messages. */
static char *
ScoreModelName(const ModelRow *r)
{
	return r->name ? TextDatumGetCString(r->name) : pstrdup("(unnamed)");
}

/* Build the map from the model's feature names to the feature list, unless it is the same as before. */
static void
ScoreMapNames(ScoreCache *c, Datum raw)
{
	struct varlena *v = (struct varlena *) DatumGetPointer(raw);
	ArrayType  *names;
	Datum	   *elems;
	bool	   *enulls;
	int			n;
	MemoryContext old;

	if (VARATT_IS_EXTENDED(v) && !VARATT_IS_SHORT(v))
		v = pg_detoast_datum(v);
	/* the common case: the same names as the previous call, compared without a copy */
	if (c->names != NULL && VARSIZE_ANY_EXHDR(v) == VARSIZE(c->names) - VARHDRSZ &&
		memcmp(VARDATA_ANY(v), VARDATA(c->names), VARSIZE(c->names) - VARHDRSZ) == 0)
		return;
	names = DatumGetArrayTypeP(PointerGetDatum(v));
	deconstruct_array(names, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &n);
	old = MemoryContextSwitchTo(c->mcxt);
	if (c->names != NULL)
	{
		pfree(c->names);
		pfree(c->map);
		pfree(c->x);
		pfree(c->xnull);
	}
	c->names = (ArrayType *) palloc(VARSIZE(names));
	memcpy(c->names, names, VARSIZE(names));
	c->nnames = n;
	c->map = palloc(sizeof(int) * Max(n, 1));
	c->x = palloc(sizeof(double) * Max(n, 1));
	c->xnull = palloc(sizeof(bool) * Max(n, 1));
	MemoryContextSwitchTo(old);
	c->derived = false;
	for (int i = 0; i < n; i++)
	{
		char	   *name = enulls[i] ? NULL : TextDatumGetCString(elems[i]);

		c->map[i] = name == NULL ? DERIVED_NONE :
			strcmp(name, "bgnbd_p_alive") == 0 ? DERIVED_BGNBD_P_ALIVE :
			strcmp(name, "bgnbd_expected") == 0 ? DERIVED_BGNBD_EXPECTED : FeatureIndex(name);
		c->derived |= c->map[i] < DERIVED_NONE;
	}
}

/* Index into ModelKinds of a kind text (the last one is remembered). */
static int
ScoreKindIndex(ScoreCache *c, text *kind, const ModelRow *r)
{
	char	   *s;
	int			k;

	if (c->kind != NULL && VARSIZE_ANY_EXHDR(c->kind) == VARSIZE_ANY_EXHDR(kind) &&
		memcmp(VARDATA_ANY(c->kind), VARDATA_ANY(kind), VARSIZE_ANY_EXHDR(kind)) == 0)
		return c->kind_index;
	s = text_to_cstring(kind);
	for (k = 0; k < NKINDS; k++)
		if (strcmp(ModelKinds[k].kind, s) == 0)
			break;
	if (k == NKINDS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model \"%s\" has unknown kind \"%s\"", ScoreModelName(r), s)));
	if (c->kind != NULL)
		pfree(c->kind);
	c->kind = (text *) MemoryContextAlloc(c->mcxt, VARSIZE_ANY(kind));
	memcpy(c->kind, kind, VARSIZE_ANY(kind));
	c->kind_index = k;
	return k;
}

/* Deform a churn.model row and check that it is one scoring understands. */
static void
ScoreReadModel(ScoreCache *c, HeapTupleHeader m, ModelRow *r)
{
	HeapTupleData tuple;

	ChurnCompositeTuple(m, &tuple);
	heap_deform_tuple(&tuple, c->desc, c->values, c->nulls);
	memset(r, 0, sizeof(ModelRow));
	r->name = c->nulls[c->att_name] ? (Datum) 0 : c->values[c->att_name];
	if (c->nulls[c->att_kind] || c->nulls[c->att_names] || c->nulls[c->att_horizon] || c->nulls[c->att_unit])
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model \"%s\" lacks its kind, feature names, horizon or time unit", ScoreModelName(r))));
	r->k = ScoreKindIndex(c, DatumGetTextPP(c->values[c->att_kind]), r);
	r->kind = &ModelKinds[r->k];
	r->param = c->nulls[c->att_param[r->k]] ? (Datum) 0 : c->values[c->att_param[r->k]];
	r->aux_bgnbd = r->kind->shape == SHAPE_VECTOR && !c->nulls[c->att_param[0]] ? c->values[c->att_param[0]] : (Datum) 0;
	r->horizon_days = DatumGetInt32(c->values[c->att_horizon]);
	r->time_unit_days = DatumGetFloat8(c->values[c->att_unit]);
	if (r->horizon_days <= 0 || !(r->time_unit_days > 0) || isinf(r->time_unit_days))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model \"%s\" needs a positive horizon and time unit", ScoreModelName(r))));
	ScoreMapNames(c, c->values[c->att_names]);
}

/* Call a kind's scorer; NULL when it returns NULL. */
static Datum
ScoreCall(FmgrInfo *fn, int nargs, Datum *args, bool *isnull)
{
	LOCAL_FCINFO(fcinfo, 5);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, fn, nargs, InvalidOid, NULL, NULL);
	for (int i = 0; i < nargs; i++)
	{
		fcinfo->args[i].value = args[i];
		fcinfo->args[i].isnull = false;
	}
	result = FunctionCallInvoke(fcinfo);
	*isnull = fcinfo->isnull;
	return result;
}

/*
 * Call op of the probabilistic kind k with model param on rft = (x, t_x, t)
 * in days; days is the horizon of OP_EXPECTED and OP_P_CHURN, in days.
 */
static Datum
ScoreRftCall(ScoreCache *c, int k, Datum param, double unit, ScoreOp op, double days,
			 const double *rft, bool *isnull)
{
	double		x = rint(rft[0]);
	Datum		args[5];
	int			n = 0;

	if (isnan(x) || x < PG_INT32_MIN || x > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("integer out of range")));
	args[n++] = param;
	if (op != OP_P_ALIVE)
		args[n++] = Float8GetDatum(days / unit);
	args[n++] = Int32GetDatum((int32) x);
	args[n++] = Float8GetDatum(rft[1] / unit);
	args[n++] = Float8GetDatum(rft[2] / unit);
	return ScoreCall(&c->fn[k][op], n, args, isnull);
}

/* BG/NBD or Pareto/NBD row: op on the model vector (x, t_x, t in days). */
static Datum
ScoreRft(ScoreCache *c, const ModelRow *r, ScoreOp op, double days, bool *isnull)
{
	if (c->nnames < 3 || c->xnull[0] || c->xnull[1] || c->xnull[2])
	{
		*isnull = true;
		return (Datum) 0;
	}
	return ScoreRftCall(c, r->k, r->param, r->time_unit_days, op,
						op == OP_P_CHURN ? r->horizon_days : days, c->x, isnull);
}

/* The model vector (c->x, c->xnull) as a float8[], missing values filled as the kind reads them. */
static ArrayType *
ScoreVectorArray(ScoreCache *c, const ModelRow *r)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(c->nnames, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(c->nnames, 1));
	int			dims[1] = {c->nnames};
	int			lbs[1] = {1};

	for (int i = 0; i < c->nnames; i++)
	{
		nulls[i] = c->xnull[i] && !r->kind->fill_zero;
		elems[i] = Float8GetDatum(c->xnull[i] ? 0 : c->x[i]);
	}
	return construct_md_array(elems, nulls, 1, dims, lbs, FLOAT8OID, sizeof(float8),
							  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* The rule model on the model vector, spread over the full feature list. */
static double
ScoreRules(ScoreCache *c, const ModelRow *r)
{
	double		full[CHURN_NFEATURES];
	bool		fnull[CHURN_NFEATURES];
	text	   *ruleset = DatumGetTextPP(r->param);

	for (int i = 0; i < CHURN_NFEATURES; i++)
		fnull[i] = true, full[i] = 0;
	for (int i = 0; i < c->nnames; i++)
		if (c->map[i] >= 0)
		{
			full[c->map[i]] = c->x[i];
			fnull[c->map[i]] = c->xnull[i];
		}
	return RulesScore(c->rules, VARDATA_ANY(ruleset), VARSIZE_ANY_EXHDR(ruleset), full, fnull, NULL, NULL);
}

/* Error unless the row holds the model of its kind (model_input needs only the kind). */
static void
ScoreCheckParam(const ModelRow *r)
{
	if (r->param == (Datum) 0)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model \"%s\" of kind %s has no %s", ScoreModelName(r), r->kind->kind, r->kind->column)));
}

/* Score the model vector in c->x; vec is the caller's float8[] when it has one. */
static Datum
ScoreModelVector(ScoreCache *c, const ModelRow *r, Datum vec, bool *isnull)
{
	Datum		args[2];

	ScoreCheckParam(r);
	*isnull = false;
	switch (r->kind->shape)
	{
		case SHAPE_RFT:
			return ScoreRft(c, r, OP_P_CHURN, 0, isnull);
		case SHAPE_RULES:
			return Float8GetDatum(ScoreRules(c, r));
		case SHAPE_VECTOR:
			args[0] = r->param;
			args[1] = vec ? vec : PointerGetDatum(ScoreVectorArray(c, r));
			return ScoreCall(&c->fn[r->k][OP_P_CHURN], 2, args, isnull);
	}
	elog(ERROR, "unknown score shape %d", (int) r->kind->shape);
	return (Datum) 0;
}

/* Fill the derived features of the model vector from the full feature vector v. */
static void
ScoreDerive(ScoreCache *c, const ModelRow *r, const double *v, const bool *vnull)
{
	for (int i = 0; i < c->nnames; i++)
	{
		bool		isnull = true;
		Datum		d = (Datum) 0;

		if (c->map[i] >= DERIVED_NONE)
			continue;
		if (r->aux_bgnbd != (Datum) 0 && !vnull[0] && !vnull[1] && !vnull[2])
			d = ScoreRftCall(c, 0, r->aux_bgnbd, r->time_unit_days,
							 c->map[i] == DERIVED_BGNBD_P_ALIVE ? OP_P_ALIVE : OP_EXPECTED,
							 r->horizon_days, v, &isnull);
		c->xnull[i] = isnull;
		c->x[i] = isnull ? 0 : DatumGetFloat8(d);
	}
}

/*
 * Read the customer's features (argument 1, engagement argument e_arg or
 * none when -1) into the model vector; false when there are none.
 */
static bool
ScoreReadFeatures(FunctionCallInfo fcinfo, ScoreCache *c, const ModelRow *r, int e_arg)
{
	HeapTupleHeader f,
				e;
	double		v[CHURN_NFEATURES];
	bool		vnull[CHURN_NFEATURES];

	if (PG_ARGISNULL(1))
		return false;
	f = PG_GETARG_HEAPTUPLEHEADER(1);
	e = e_arg < 0 || PG_ARGISNULL(e_arg) ? NULL : PG_GETARG_HEAPTUPLEHEADER(e_arg);
	if (!c->derived)
		return FeatureReaderRead(c->reader, f, e, c->map, c->nnames, c->x, c->xnull);
	if (!FeatureReaderRead(c->reader, f, e, NULL, CHURN_NFEATURES, v, vnull))
		return false;
	for (int i = 0; i < c->nnames; i++)
	{
		c->xnull[i] = c->map[i] < 0 || vnull[c->map[i]];
		c->x[i] = c->xnull[i] ? 0 : v[c->map[i]];
	}
	ScoreDerive(c, r, v, vnull);
	return true;
}

/* The length of a float8[]; its elements go to x and isnull when it has at most max. */
int
ScoreReadVector(ArrayType *a, int max, double *x, bool *isnull)
{
	int			n = Float8VectorLength(a, "x", true, NULL);
	Datum	   *elems;
	bool	   *enulls;
	int			ne;

	if (n > max)
		return n;
	deconstruct_array(a, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &enulls, &ne);
	for (int i = 0; i < ne; i++)
	{
		isnull[i] = enulls[i];
		x[i] = enulls[i] ? 0 : DatumGetFloat8(elems[i]);
	}
	return n;
}

/* model_score(model, x): the churn probability of a vector in the model's feature_names order. */
Datum
model_score(PG_FUNCTION_ARGS)
{
	HeapTupleHeader m = PG_GETARG_HEAPTUPLEHEADER(0);
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(1);
	ScoreCache *c = ScoreGetCache(fcinfo, m);
	ModelRow	r;
	Datum		result;
	bool		isnull;
	int			n;

	ScoreReadModel(c, m, &r);
	n = ScoreReadVector(a, c->nnames, c->x, c->xnull);
	if (n != c->nnames)
	{
		StringInfoData names;
		Datum	   *elems;
		int			ne;

		deconstruct_array(c->names, TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &ne);
		initStringInfo(&names);
		for (int i = 0; i < ne; i++)
			appendStringInfo(&names, "%s%s", i ? ", " : "", TextDatumGetCString(elems[i]));
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("model \"%s\" takes %d features (%s), got %d",
						ScoreModelName(&r), c->nnames, names.data, n)));
	}
	result = ScoreModelVector(c, &r, PointerGetDatum(a), &isnull);
	if (isnull)
		PG_RETURN_NULL();
	return result;
}

/*
 * The model row (argument 0) and the customer's features (arguments 1 and
 * 2) of a call; false when the result is NULL (no model, no purchases).
 */
static bool
ScoreCustomer(FunctionCallInfo fcinfo, ScoreCache **c, ModelRow *r)
{
	HeapTupleHeader m;

	if (PG_ARGISNULL(0))
		return false;
	m = PG_GETARG_HEAPTUPLEHEADER(0);
	*c = ScoreGetCache(fcinfo, m);
	ScoreReadModel(*c, m, r);
	return ScoreReadFeatures(fcinfo, *c, r, 2);
}

/* model_score(model, features, engagement): the churn probability of a customer; NULL without purchases. */
Datum
model_score_features(PG_FUNCTION_ARGS)
{
	ScoreCache *c;
	ModelRow	r;
	Datum		result;
	bool		isnull;

	if (!ScoreCustomer(fcinfo, &c, &r))
		PG_RETURN_NULL();
	result = ScoreModelVector(c, &r, (Datum) 0, &isnull);
	if (isnull)
		PG_RETURN_NULL();
	return result;
}

/* model_input(model, features, engagement): the vector the model reads; NULL without purchases. */
Datum
model_input(PG_FUNCTION_ARGS)
{
	ScoreCache *c;
	ModelRow	r;

	if (!ScoreCustomer(fcinfo, &c, &r))
		PG_RETURN_NULL();
	PG_RETURN_ARRAYTYPE_P(ScoreVectorArray(c, &r));
}

/* P(alive) or expected purchases of a customer under a BG/NBD or Pareto/NBD model row. */
static Datum
ScoreOutlook(FunctionCallInfo fcinfo, ScoreOp op, double days)
{
	HeapTupleHeader m = PG_GETARG_HEAPTUPLEHEADER(0);
	ScoreCache *c = ScoreGetCache(fcinfo, m);
	ModelRow	r;
	Datum		result;
	bool		isnull;

	ScoreReadModel(c, m, &r);
	if (r.kind->shape != SHAPE_RFT)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("model \"%s\" of kind %s has no P(alive) or expected purchases",
						ScoreModelName(&r), r.kind->kind),
				 errhint("Only bgnbd and pnbd models have them.")));
	ScoreCheckParam(&r);
	if (!ScoreReadFeatures(fcinfo, c, &r, -1))
		PG_RETURN_NULL();
	result = ScoreRft(c, &r, op, days, &isnull);
	if (isnull)
		PG_RETURN_NULL();
	return result;
}

/* model_p_alive(model, features): P(alive) of a customer; NULL without purchases. */
Datum
model_p_alive(PG_FUNCTION_ARGS)
{
	return ScoreOutlook(fcinfo, OP_P_ALIVE, 0);
}

/* model_expected(model, features, days): expected purchases in the next days; NULL without purchases. */
Datum
model_expected(PG_FUNCTION_ARGS)
{
	double		days = PG_GETARG_FLOAT8(2);

	ChurnCheckNonNegative(days, "days");
	return ScoreOutlook(fcinfo, OP_EXPECTED, days);
}
