/*-------------------------------------------------------------------------
 *
 * xgb_train.c
 *	  XGBoost training inside the database: the aggregate churn.xgb_fit and
 *	  the GUCs churn_warning.xgb_threads and churn_warning.xgb_max_memory.
 *
 * The aggregate keeps every accepted row in the aggregate context as
 * float32 (what XGBoost's DMatrix stores): one contiguous row-major matrix,
 * NaN for a missing value, and a float label per row.  Partial states
 * serialize to one bytea, so the aggregate runs in parallel.
 *
 * The final function trains a binary:logistic gbtree model with the real
 * XGBoost library through its C API: the matrix goes to
 * XGDMatrixCreateFromDense as an array interface (the path python-xgboost
 * takes for a numpy array), the booster is updated round by round with
 * XGBoosterUpdateOneIter (interrupts are checked between rounds), saved as
 * JSON and compiled by churn.xgb_load into the churn.xgb type.
 *
 * The library is loaded with dlopen the first time a backend trains, never
 * in the postmaster: XGBoost starts OpenMP threads, and a process that
 * forks after starting them hangs.  Signals are blocked while an XGBoost
 * call runs, so the OpenMP threads (which inherit the mask when they are
 * created inside such a call) never run PostgreSQL's signal handlers; a
 * cancel that arrives during a round is acted on when the round ends.  The
 * DMatrix and Booster handles are freed by a memory context reset callback,
 * on success and on any error or cancel alike.
 *
 *-------------------------------------------------------------------------
 */
#include "mlmodels.h"
#include "numeric.h"

#include <dlfcn.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>

#include <xgboost/c_api.h>

#include "common/shortest_dec.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(xgb_fit_trans);
PG_FUNCTION_INFO_V1(xgb_fit_trans_params);
PG_FUNCTION_INFO_V1(xgb_fit_combine);
PG_FUNCTION_INFO_V1(xgb_fit_serial);
PG_FUNCTION_INFO_V1(xgb_fit_deserial);
PG_FUNCTION_INFO_V1(xgb_fit_final);

#define XGB_FIT_SERIAL_MAGIC	0x5847460A	/* serialized state format tag */
#define XGB_FIT_MAX_FEATURES	1000000 /* as churn.xgb_load accepts */
#define XGB_FIT_DEFAULT_ROUNDS	10
#define XGB_FIT_MAX_PARAMS		64
#define XGB_FIT_LOG_BYTES		2048	/* XGBoost log messages kept per call */
#define XGB_FIT_NODE_BYTES		2048	/* per tree node at the peak: XGBoost's JSON,
										 * jsonb_in and churn.xgb_load (measured: 790
										 * MB for 4000 trees, 451162 nodes) */
#define XGB_FIT_ROW_WORK_BYTES	32	/* per row: gradients, predictions, row sets */
#define XGB_FIT_AUTO_EXACT_ROWS (1 << 22)	/* XGBoost 1.7 "auto": exact below */

/* GUCs */
static int	XgbFitThreads = 1;
static int	XgbFitMaxMemory = 1024 * 1024;	/* kB */

/* ---------------------------------------------------------------------------
 * Parameters
 * ---------------------------------------------------------------------------
 */

typedef enum XgbParamType
{
	XGBP_INT,
	XGBP_FLOAT,
	XGBP_BOOL,
	XGBP_CHOICE,
	XGBP_MONOTONE,				/* "(1,0,-1)" or [1, 0, -1] */
	XGBP_INTERACTION			/* "[[0,1],[2]]" or [[0, 1], [2]] */
} XgbParamType;

/* One supported parameter: its name, the name it is an alias of, its range. */
typedef struct XgbParamSpec
{
	const char *name;
	const char *alias_of;		/* canonical name, or NULL */
	XgbParamType type;
	double		lo;
	double		hi;				/* DBL_MAX: no upper bound */
	bool		lo_open;
	bool		hi_open;
	const char *choices;		/* XGBP_CHOICE: comma-separated */
} XgbParamSpec;

#define XGBP_NUM(n, a, t, lo, hi, lo_open, hi_open) {n, a, t, lo, hi, lo_open, hi_open, NULL}
#define XGBP_ENUM(n, c) {n, NULL, XGBP_CHOICE, 0, 0, false, false, c}
#define XGBP_OTHER(n, t) {n, NULL, t, 0, 0, false, false, NULL}

/*
 * The booster and learner parameters of XGBoost 1.7 that make sense for a
 * CPU binary:logistic gbtree model, plus num_boost_round.  Bounds are
 * XGBoost's own, tightened where its value is meaningless (subsample and
 * colsample_* of 0, scale_pos_weight 0).
 */
static const XgbParamSpec XgbParamSpecs[] = {
	XGBP_NUM("num_boost_round", NULL, XGBP_INT, 1, 1000000, false, false),
	XGBP_ENUM("objective", "binary:logistic"),
	XGBP_ENUM("booster", "gbtree"),
	XGBP_ENUM("tree_method", "auto,exact,approx,hist"),
	XGBP_NUM("eta", NULL, XGBP_FLOAT, 0, DBL_MAX, false, false),
	XGBP_NUM("learning_rate", "eta", XGBP_FLOAT, 0, DBL_MAX, false, false),
	XGBP_NUM("gamma", NULL, XGBP_FLOAT, 0, DBL_MAX, false, false),
	XGBP_NUM("min_split_loss", "gamma", XGBP_FLOAT, 0, DBL_MAX, false, false),
	XGBP_NUM("max_depth", NULL, XGBP_INT, 0, INT_MAX, false, false),
	XGBP_NUM("max_leaves", NULL, XGBP_INT, 0, INT_MAX, false, false),
	XGBP_NUM("max_bin", NULL, XGBP_INT, 2, INT_MAX, false, false),
	XGBP_ENUM("grow_policy", "depthwise,lossguide"),
	XGBP_NUM("min_child_weight", NULL, XGBP_FLOAT, 0, DBL_MAX, false, false),
	XGBP_NUM("max_delta_step", NULL, XGBP_FLOAT, 0, DBL_MAX, false, false),
	XGBP_NUM("subsample", NULL, XGBP_FLOAT, 0, 1, true, false),
	XGBP_ENUM("sampling_method", "uniform"),
	XGBP_NUM("colsample_bytree", NULL, XGBP_FLOAT, 0, 1, true, false),
	XGBP_NUM("colsample_bylevel", NULL, XGBP_FLOAT, 0, 1, true, false),
	XGBP_NUM("colsample_bynode", NULL, XGBP_FLOAT, 0, 1, true, false),
	XGBP_NUM("lambda", NULL, XGBP_FLOAT, 0, DBL_MAX, false, false),
	XGBP_NUM("reg_lambda", "lambda", XGBP_FLOAT, 0, DBL_MAX, false, false),
	XGBP_NUM("alpha", NULL, XGBP_FLOAT, 0, DBL_MAX, false, false),
	XGBP_NUM("reg_alpha", "alpha", XGBP_FLOAT, 0, DBL_MAX, false, false),
	XGBP_NUM("scale_pos_weight", NULL, XGBP_FLOAT, 0, DBL_MAX, true, false),
	XGBP_NUM("base_score", NULL, XGBP_FLOAT, 0, 1, true, true),
	XGBP_NUM("num_parallel_tree", NULL, XGBP_INT, 1, INT_MAX, false, false),
	XGBP_OTHER("monotone_constraints", XGBP_MONOTONE),
	XGBP_OTHER("interaction_constraints", XGBP_INTERACTION),
	XGBP_NUM("seed", NULL, XGBP_INT, INT_MIN, INT_MAX, false, false),
	XGBP_NUM("random_state", "seed", XGBP_INT, INT_MIN, INT_MAX, false, false),
	XGBP_OTHER("seed_per_iteration", XGBP_BOOL),
	XGBP_NUM("nthread", NULL, XGBP_INT, 0, INT_MAX, false, false),
	XGBP_NUM("n_jobs", "nthread", XGBP_INT, 0, INT_MAX, false, false),
};

#define XGB_NUM_PARAM_SPECS lengthof(XgbParamSpecs)

/* Parsed params: what goes to XGBoosterSetParam, and what the fit itself uses. */
typedef struct XgbFitParams
{
	int			nset;			/* parameters passed to XGBoost as given */
	const char *set_name[XGB_FIT_MAX_PARAMS];
	char	   *set_value[XGB_FIT_MAX_PARAMS];
	int			rounds;			/* num_boost_round */
	int			nthread;		/* requested, 0 = churn_warning.xgb_threads */
	bool		has_objective;
	int			max_depth;		/* for the memory estimate */
	int			max_leaves;
	int			max_bin;
	int			num_parallel_tree;
	char		tree_method[8];
} XgbFitParams;

static void XgbParamBad(const XgbParamSpec *spec, const char *what, const char *got) pg_attribute_noreturn();

/* Raise the error for a parameter value outside its domain. */
static void
XgbParamBad(const XgbParamSpec *spec, const char *what, const char *got)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("xgb_fit parameter \"%s\" %s", spec->name, what),
			 got ? errdetail("Got %s.", got) : 0));
}

/* Text of a jsonb scalar for error messages. */
static char *
XgbJsonText(JsonbValue *v)
{
	if (v->type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	if (v->type == jbvString)
		return psprintf("\"%s\"", pnstrdup(v->val.string.val, v->val.string.len));
	if (v->type == jbvBool)
		return pstrdup(v->val.boolean ? "true" : "false");
	return pstrdup("a JSON array or object");
}

/* A number parameter (JSON number or numeric string) as a double; validated. */
static double
XgbParamNumber(const XgbParamSpec *spec, JsonbValue *v)
{
	double		d;
	char	   *end;
	char	   *s;

	if (v->type == jbvNumeric)
	{
		s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		d = strtod(s, &end);
	}
	else if (v->type == jbvString)
	{
		s = pnstrdup(v->val.string.val, v->val.string.len);
		errno = 0;
		d = strtod(s, &end);
		if (end == s || *end != '\0' || s[0] == ' ')
			XgbParamBad(spec, "must be a number", XgbJsonText(v));
	}
	else
		XgbParamBad(spec, "must be a number", XgbJsonText(v));
	if (!isfinite(d))
		XgbParamBad(spec, "must be a finite number", XgbJsonText(v));
	if (spec->type == XGBP_INT && d != floor(d))
		XgbParamBad(spec, "must be an integer", XgbJsonText(v));
	if (d < spec->lo || (spec->lo_open && d == spec->lo) ||
		d > spec->hi || (spec->hi_open && d == spec->hi))
	{
		char	   *range;

		if (spec->hi == DBL_MAX || (spec->hi == INT_MAX && d < spec->lo))
			range = psprintf("must be %s %.10g", spec->lo_open ? ">" : ">=", spec->lo);
		else
			range = psprintf("must be in %c%.10g, %.10g%c", spec->lo_open ? '(' : '[', spec->lo,
							 spec->hi, spec->hi_open ? ')' : ']');
		XgbParamBad(spec, range, XgbJsonText(v));
	}
	return d;
}

/* Integer list of a constraint array ([1, 0, -1]) between lo and hi, as "a,b,c". */
static char *
XgbParamIntList(const XgbParamSpec *spec, JsonbContainer *c, int lo, int hi)
{
	StringInfoData buf;
	JsonbIterator *it = JsonbIteratorInit(c);
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool		first = true;

	initStringInfo(&buf);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		double		d;

		if (tok != WJB_ELEM)
			continue;
		if (v.type != jbvNumeric)
			XgbParamBad(spec, psprintf("must hold integers from %d to %d", lo, hi), XgbJsonText(&v));
		d = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v.val.numeric)));
		if (d != floor(d) || d < lo || d > hi)
			XgbParamBad(spec, psprintf("must hold integers from %d to %d", lo, hi), XgbJsonText(&v));
		appendStringInfo(&buf, "%s%d", first ? "" : ",", (int) d);
		first = false;
	}
	return buf.data;
}

/* A constraint parameter: XGBoost's string form as is, or built from a JSON array. */
static char *
XgbParamConstraint(const XgbParamSpec *spec, JsonbValue *v)
{
	JsonbContainer *c;
	StringInfoData buf;
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	bool		first = true;

	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		XgbParamBad(spec, "must be a string or a JSON array", XgbJsonText(v));
	c = v->val.binary.data;
	if (spec->type == XGBP_MONOTONE)
		return psprintf("(%s)", XgbParamIntList(spec, c, -1, 1));

	/* interaction_constraints: an array of arrays of feature indices */
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	it = JsonbIteratorInit(c);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (e.type != jbvBinary || !JsonContainerIsArray(e.val.binary.data))
			XgbParamBad(spec, "must be an array of arrays of feature indices", XgbJsonText(&e));
		appendStringInfo(&buf, "%s[%s]", first ? "" : ",",
						 XgbParamIntList(spec, e.val.binary.data, 0, XGB_FIT_MAX_FEATURES - 1));
		first = false;
	}
	appendStringInfoChar(&buf, ']');
	return buf.data;
}

/* Value of one parameter as the text XGBoosterSetParam takes; validated. */
static char *
XgbParamValue(const XgbParamSpec *spec, JsonbValue *v)
{
	char		buf[DOUBLE_SHORTEST_DECIMAL_LEN];

	if (v->type == jbvNull)
		XgbParamBad(spec, "must not be null", NULL);
	switch (spec->type)
	{
		case XGBP_INT:
			return psprintf("%lld", (long long) XgbParamNumber(spec, v));
		case XGBP_FLOAT:
			double_to_shortest_decimal_buf(XgbParamNumber(spec, v), buf);
			return pstrdup(buf);
		case XGBP_BOOL:
			if (v->type == jbvBool)
				return pstrdup(v->val.boolean ? "1" : "0");
			if (v->type == jbvString &&
				(v->val.string.len == 4 && strncmp(v->val.string.val, "true", 4) == 0))
				return pstrdup("1");
			if (v->type == jbvString &&
				(v->val.string.len == 5 && strncmp(v->val.string.val, "false", 5) == 0))
				return pstrdup("0");
			XgbParamBad(spec, "must be true or false", XgbJsonText(v));
			break;
		case XGBP_CHOICE:
			{
				char	   *s;
				char	   *opts;
				char	   *tok;

				if (v->type != jbvString)
					XgbParamBad(spec, psprintf("must be one of: %s", spec->choices), XgbJsonText(v));
				s = pnstrdup(v->val.string.val, v->val.string.len);
				opts = pstrdup(spec->choices);
				for (tok = strtok(opts, ","); tok != NULL; tok = strtok(NULL, ","))
					if (strcmp(tok, s) == 0)
						return s;
				XgbParamBad(spec, psprintf("must be one of: %s", spec->choices), XgbJsonText(v));
			}
			break;
		case XGBP_MONOTONE:
		case XGBP_INTERACTION:
			return XgbParamConstraint(spec, v);
	}
	return NULL;				/* not reached */
}

/* The spec of a parameter name, or an error listing the supported ones. */
static const XgbParamSpec *
XgbParamLookup(const char *name)
{
	StringInfoData list;
	int			i;

	for (i = 0; i < (int) XGB_NUM_PARAM_SPECS; i++)
		if (strcmp(XgbParamSpecs[i].name, name) == 0)
			return &XgbParamSpecs[i];
	initStringInfo(&list);
	for (i = 0; i < (int) XGB_NUM_PARAM_SPECS; i++)
		appendStringInfo(&list, "%s%s", i > 0 ? ", " : "", XgbParamSpecs[i].name);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown xgb_fit parameter \"%s\"", name),
			 errhint("Supported parameters: %s.", list.data)));
	return NULL;				/* not reached */
}

/* Remember what the fit itself needs from one validated parameter. */
static void
XgbParamNote(XgbFitParams *prm, const char *canonical, const char *value)
{
	if (strcmp(canonical, "max_depth") == 0)
		prm->max_depth = atoi(value);
	else if (strcmp(canonical, "max_leaves") == 0)
		prm->max_leaves = atoi(value);
	else if (strcmp(canonical, "max_bin") == 0)
		prm->max_bin = atoi(value);
	else if (strcmp(canonical, "num_parallel_tree") == 0)
		prm->num_parallel_tree = atoi(value);
	else if (strcmp(canonical, "tree_method") == 0)
		strlcpy(prm->tree_method, value, sizeof(prm->tree_method));
	else if (strcmp(canonical, "objective") == 0)
		prm->has_objective = true;
}

/*
 * Parse and validate the params object (NULL: all defaults) into prm; the
 * strings are allocated in the current memory context.
 */
static void
XgbParseParams(Jsonb *params, XgbFitParams *prm)
{
	const char *seen[XGB_NUM_PARAM_SPECS];
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			i;

	memset(prm, 0, sizeof(*prm));
	prm->rounds = XGB_FIT_DEFAULT_ROUNDS;
	prm->max_depth = 6;
	prm->max_bin = 256;
	prm->num_parallel_tree = 1;
	strlcpy(prm->tree_method, "auto", sizeof(prm->tree_method));
	memset(seen, 0, sizeof(seen));
	if (params == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(params))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("xgb_fit params must be a JSON object"),
				 errhint("For example '{\"max_depth\": 4, \"eta\": 0.1, \"num_boost_round\": 50}'.")));

	it = JsonbIteratorInit(&params->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		const XgbParamSpec *spec;
		const char *canonical;
		char	   *name;
		char	   *value;

		if (tok != WJB_KEY)
			continue;
		name = pnstrdup(v.val.string.val, v.val.string.len);
		spec = XgbParamLookup(name);
		canonical = spec->alias_of ? spec->alias_of : spec->name;
		for (i = 0; i < (int) XGB_NUM_PARAM_SPECS; i++)
		{
			const XgbParamSpec *o = &XgbParamSpecs[i];

			if (strcmp(o->alias_of ? o->alias_of : o->name, canonical) != 0)
				continue;
			if (seen[i] != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("xgb_fit parameters \"%s\" and \"%s\" are the same parameter", seen[i], name),
						 errhint("Give only one of them.")));
			if (o == spec)
				seen[i] = spec->name;
		}
		tok = JsonbIteratorNext(&it, &v, true);
		value = XgbParamValue(spec, &v);
		if (strcmp(canonical, "num_boost_round") == 0)
			prm->rounds = atoi(value);
		else if (strcmp(canonical, "nthread") == 0)
			prm->nthread = atoi(value);
		else
		{
			prm->set_name[prm->nset] = spec->name;
			prm->set_value[prm->nset++] = value;
			XgbParamNote(prm, canonical, value);
		}
	}
}

/* ---------------------------------------------------------------------------
 * Aggregate state
 * ---------------------------------------------------------------------------
 */

/* Aggregate state: the accepted rows as float32 and the parameters. */
typedef struct XgbFitState
{
	MemoryContext mcxt;			/* where everything lives (aggregate context) */
	Jsonb	   *params;			/* copy of the params argument; NULL = defaults */
	XgbFitParams prm;			/* params parsed */
	int32		p;				/* features per row, -1 until the first row */
	int64		n;				/* rows stored */
	int64		npos;			/* rows with label = true */
	int64		nmissing;		/* feature values missing (NULL or NaN) */
	int64		cap;			/* rows allocated */
	float	   *x;				/* n * p features, row-major, NaN = missing */
	float	   *y;				/* n labels, 0 or 1 */
} XgbFitState;

/* Serialized state header; params, labels and features follow. */
typedef struct XgbFitSerialHeader
{
	uint32		magic;
	int32		p;
	int64		n;
	int64		npos;
	int64		nmissing;
	int32		params_len;		/* bytes of the params jsonb, 0 = none */
	int32		pad;
} XgbFitSerialHeader;

/* kB of churn_warning.xgb_max_memory as bytes. */
static double
XgbMaxMemoryBytes(void)
{
	return (double) XgbFitMaxMemory * 1024.0;
}

/* True when params is NULL or the empty object (both mean: defaults). */
static bool
XgbParamsEmpty(Jsonb *params)
{
	return params == NULL || (JB_ROOT_IS_OBJECT(params) && JB_ROOT_COUNT(params) == 0);
}

/* True when two params arguments are the same (NULL and {} alike). */
static bool
XgbParamsSame(Jsonb *a, Jsonb *b)
{
	if (XgbParamsEmpty(a) || XgbParamsEmpty(b))
		return XgbParamsEmpty(a) && XgbParamsEmpty(b);
	return VARSIZE(a) == VARSIZE(b) && memcmp(a, b, VARSIZE(a)) == 0;
}

/* Create an empty state in mcxt with the given params, validating them. */
static XgbFitState *
XgbFitStateCreate(MemoryContext mcxt, Jsonb *params)
{
	MemoryContext old = MemoryContextSwitchTo(mcxt);
	XgbFitState *st = palloc0(sizeof(XgbFitState));

	st->mcxt = mcxt;
	st->p = -1;
	if (!XgbParamsEmpty(params))
	{
		st->params = palloc(VARSIZE(params));
		memcpy(st->params, params, VARSIZE(params));
	}
	XgbParseParams(st->params, &st->prm);
	MemoryContextSwitchTo(old);
	return st;
}

static void XgbRowsTooLarge(int64 rows, int p) pg_attribute_noreturn();

/* Raise the error for rows that outgrow churn_warning.xgb_max_memory. */
static void
XgbRowsTooLarge(int64 rows, int p)
{
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("xgb_fit: the training rows exceed churn_warning.xgb_max_memory"),
			 errdetail("%lld rows of %d features take %.0f kB before training starts; churn_warning.xgb_max_memory is %d kB.",
					   (long long) rows, p, ceil((double) rows * (p + 1) * sizeof(float) / 1024.0),
					   XgbFitMaxMemory),
			 errhint("Train on a sample of the rows, or ask a superuser to raise churn_warning.xgb_max_memory.")));
}

/* Make room for extra more rows, doubling but within the memory limit. */
static void
XgbFitReserve(XgbFitState *st, int64 extra)
{
	double		rowbytes = (double) (st->p + 1) * sizeof(float);
	int64		need = st->n + extra;
	int64		limit_rows = (int64) Min(XgbMaxMemoryBytes() / rowbytes, (double) PG_INT64_MAX / 2);
	int64		cap;

	if (need <= st->cap)
		return;
	if (need > limit_rows)
		XgbRowsTooLarge(need, st->p);
	cap = Max(need, st->cap * 2);
	cap = Max(cap, (int64) (64 * 1024 / rowbytes));	/* start near 64 kB */
	cap = Min(cap, limit_rows);
	if (st->x == NULL)
	{
		st->x = MemoryContextAllocHuge(st->mcxt, (Size) cap * st->p * sizeof(float));
		st->y = MemoryContextAllocHuge(st->mcxt, (Size) cap * sizeof(float));
	}
	else
	{
		st->x = repalloc_huge(st->x, (Size) cap * st->p * sizeof(float));
		st->y = repalloc_huge(st->y, (Size) cap * sizeof(float));
	}
	st->cap = cap;
}

static void XgbWidthMismatch(int got, int want) pg_attribute_noreturn();

/* Raise the error for rows of different lengths. */
static void
XgbWidthMismatch(int got, int want)
{
	ereport(ERROR,
			(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
			 errmsg("x has %d elements but earlier rows have %d", got, want),
			 errdetail("Every row of xgb_fit needs the same number of features; use NULL for a missing value.")));
}

/* Fix the number of features on the first row. */
static void
XgbFitSetWidth(XgbFitState *st, int p)
{
	if (p < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("x must have at least one element"),
				 errdetail("xgb_fit needs at least one feature.")));
	if (p > XGB_FIT_MAX_FEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("xgb_fit supports at most %d features, got %d", XGB_FIT_MAX_FEATURES, p)));
	st->p = p;
}

/*
 * Convert one row's float8[] to float32 at out (as XGBoost's DMatrix does);
 * NULL elements and NaN become NaN (missing).  Returns the missing count.
 */
static int
XgbFitReadRow(ArrayType *a, int p, float *out)
{
	const double *data = (const double *) ARR_DATA_PTR(a);
	const bits8 *nulls = ARR_NULLBITMAP(a);
	int			missing = 0;
	int			i;

	for (i = 0; i < p; i++)
	{
		double		v;
		float		f;

		if (nulls && !(nulls[i >> 3] & (1 << (i & 7))))
		{
			out[i] = NAN;
			missing++;
			continue;
		}
		v = *data++;
		if (isnan(v))
		{
			out[i] = NAN;
			missing++;
			continue;
		}
		f = (float) v;
		if (unlikely(isinf(f)))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("x[%d] = %g is out of range for XGBoost's float32 features", i + 1, v),
					 errhint("Use NULL for a missing value.")));
		out[i] = f;
	}
	return missing;
}

/* Shared transition: check the params, validate one row and store it. */
static Datum
XgbFitTransCommon(FunctionCallInfo fcinfo, bool has_params)
{
	MemoryContext aggcxt = ChurnAggContext(fcinfo, "xgb_fit_trans");
	XgbFitState *st = PG_ARGISNULL(0) ? NULL : (XgbFitState *) PG_GETARG_POINTER(0);
	Jsonb	   *params = (has_params && !PG_ARGISNULL(3)) ? PG_GETARG_JSONB_P(3) : NULL;
	ArrayType  *arr;
	int			len;

	if (st == NULL)
		st = XgbFitStateCreate(aggcxt, params);
	else if (!XgbParamsSame(st->params, params))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params must be the same for every row of xgb_fit")));

	/* Rows with a NULL label or a NULL feature array are skipped. */
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(st);

	arr = PG_GETARG_ARRAYTYPE_P(2);
	len = Float8VectorLength(arr, "x", true, NULL);
	if (st->p < 0)
		XgbFitSetWidth(st, len);
	else if (len != st->p)
		XgbWidthMismatch(len, st->p);

	XgbFitReserve(st, 1);
	st->nmissing += XgbFitReadRow(arr, st->p, st->x + (Size) st->n * st->p);
	if (PG_GETARG_BOOL(1))
	{
		st->y[st->n] = 1.0f;
		st->npos++;
	}
	else
		st->y[st->n] = 0.0f;
	st->n++;
	PG_RETURN_POINTER(st);
}

/* Transition function of xgb_fit(label, x). */
Datum
xgb_fit_trans(PG_FUNCTION_ARGS)
{
	return XgbFitTransCommon(fcinfo, false);
}

/* Transition function of xgb_fit(label, x, params). */
Datum
xgb_fit_trans_params(PG_FUNCTION_ARGS)
{
	return XgbFitTransCommon(fcinfo, true);
}

/* Combine two partial states: append the second state's rows to the first. */
Datum
xgb_fit_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = ChurnAggContext(fcinfo, "xgb_fit_combine");
	XgbFitState *s1 = PG_ARGISNULL(0) ? NULL : (XgbFitState *) PG_GETARG_POINTER(0);
	XgbFitState *s2 = PG_ARGISNULL(1) ? NULL : (XgbFitState *) PG_GETARG_POINTER(1);

	if (s2 == NULL)
		PG_RETURN_POINTER(s1);
	if (s1 == NULL)
		s1 = XgbFitStateCreate(aggcxt, s2->params);
	else if (!XgbParamsSame(s1->params, s2->params))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params must be the same for every row of xgb_fit")));
	if (s2->p < 0)
		PG_RETURN_POINTER(s1);
	if (s1->p < 0)
		s1->p = s2->p;
	else if (s1->p != s2->p)
		XgbWidthMismatch(s2->p, s1->p);

	if (s1->n == 0 && s1->x == NULL && s2->mcxt == s1->mcxt)
	{
		/* same lifetime: take the buffers over */
		s1->x = s2->x;
		s1->y = s2->y;
		s1->cap = s2->cap;
		s2->x = s2->y = NULL;
		s2->cap = 0;
	}
	else if (s2->n > 0)
	{
		XgbFitReserve(s1, s2->n);
		memcpy(s1->x + (Size) s1->n * s1->p, s2->x, (Size) s2->n * s2->p * sizeof(float));
		memcpy(s1->y + s1->n, s2->y, (Size) s2->n * sizeof(float));
	}
	s1->n += s2->n;
	s1->npos += s2->npos;
	s1->nmissing += s2->nmissing;
	s2->n = s2->npos = s2->nmissing = 0;
	PG_RETURN_POINTER(s1);
}

/* Serialize a partial state: header, params, labels, then all features. */
Datum
xgb_fit_serial(PG_FUNCTION_ARGS)
{
	XgbFitState *st = (XgbFitState *) PG_GETARG_POINTER(0);
	int			p = Max(st->p, 0);
	Size		plen = st->params ? VARSIZE(st->params) : 0;
	double		total = (double) VARHDRSZ + sizeof(XgbFitSerialHeader) + MAXALIGN(plen) +
		(double) st->n * (p + 1) * sizeof(float);
	bytea	   *out;
	XgbFitSerialHeader *h;
	char	   *w;

	if (total > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("xgb_fit partial state of %lld rows is too large to pass between parallel workers",
						(long long) st->n),
				 errhint("Run the fit without parallelism: SET max_parallel_workers_per_gather = 0.")));
	out = palloc0((Size) total);
	SET_VARSIZE(out, (Size) total);
	h = (XgbFitSerialHeader *) VARDATA(out);
	h->magic = XGB_FIT_SERIAL_MAGIC;
	h->p = st->p;
	h->n = st->n;
	h->npos = st->npos;
	h->nmissing = st->nmissing;
	h->params_len = (int32) plen;
	w = (char *) (h + 1);
	if (plen > 0)
		memcpy(w, st->params, plen);
	w += MAXALIGN(plen);
	if (st->n > 0)
	{
		memcpy(w, st->y, (Size) st->n * sizeof(float));
		w += (Size) st->n * sizeof(float);
		memcpy(w, st->x, (Size) st->n * p * sizeof(float));
	}
	PG_RETURN_BYTEA_P(out);
}

/* Rebuild a partial state from xgb_fit_serial's bytea, in the aggregate context. */
Datum
xgb_fit_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_P(0);
	MemoryContext aggcxt = ChurnAggContext(fcinfo, "xgb_fit_deserial");
	const char *r = VARDATA(in);
	Size		len = VARSIZE(in) - VARHDRSZ;
	XgbFitSerialHeader h;
	XgbFitState *st;
	Jsonb	   *params = NULL;

	if (len < sizeof(h))
		elog(ERROR, "xgb_fit: truncated serialized state");
	memcpy(&h, r, sizeof(h));
	if (h.magic != XGB_FIT_SERIAL_MAGIC || h.n < 0 || h.p < -1 || h.p > XGB_FIT_MAX_FEATURES ||
		h.params_len < 0 || (h.p < 0 && h.n > 0))
		elog(ERROR, "xgb_fit: corrupt serialized state");
	if (len != sizeof(h) + MAXALIGN(h.params_len) + (Size) h.n * (Max(h.p, 0) + 1) * sizeof(float))
		elog(ERROR, "xgb_fit: serialized state has the wrong size");
	r += sizeof(h);
	if (h.params_len > 0)
	{
		params = palloc(h.params_len);
		memcpy(params, r, h.params_len);
	}
	r += MAXALIGN(h.params_len);

	st = XgbFitStateCreate(aggcxt, params);
	if (h.p >= 0)
		st->p = h.p;
	if (h.n > 0)
	{
		XgbFitReserve(st, h.n);
		memcpy(st->y, r, (Size) h.n * sizeof(float));
		r += (Size) h.n * sizeof(float);
		memcpy(st->x, r, (Size) h.n * h.p * sizeof(float));
	}
	st->n = h.n;
	st->npos = h.npos;
	st->nmissing = h.nmissing;
	PG_RETURN_POINTER(st);
}

/* ---------------------------------------------------------------------------
 * The XGBoost library
 * ---------------------------------------------------------------------------
 */

/* The C API functions used, resolved with dlsym (prototypes from c_api.h). */
#define XGB_API_FUNCTIONS(X) \
	X(XGBoostVersion) \
	X(XGBGetLastError) \
	X(XGBRegisterLogCallback) \
	X(XGDMatrixCreateFromDense) \
	X(XGDMatrixSetFloatInfo) \
	X(XGDMatrixFree) \
	X(XGBoosterCreate) \
	X(XGBoosterFree) \
	X(XGBoosterSetParam) \
	X(XGBoosterUpdateOneIter) \
	X(XGBoosterSaveModelToBuffer)

#define XGB_API_MEMBER(f) __typeof__(f) *f;
typedef struct XgbApi
{
	XGB_API_FUNCTIONS(XGB_API_MEMBER)
} XgbApi;

static XgbApi Xgb;
static bool XgbLoaded = false;

/* XGBoost log messages of the current call (the callback runs on this thread). */
static char XgbLogBuf[XGB_FIT_LOG_BYTES];
static int	XgbLogLen = 0;
static sigset_t XgbSavedMask;

/* Library names tried, in order. */
static const char *const XgbLibraryNames[] = {"libxgboost.so.0", "libxgboost.so"};

/*
 * Shorten a message of XGBoost to its first line, without the time stamp
 * and the source location ("[12:00:00] ../src/learner.cc:767: ").
 */
static char *
XgbCleanMessage(const char *msg)
{
	char	   *s = pstrdup(msg ? msg : "(no message)");
	char	   *nl;
	char	   *p;

	while (*s == '\n' || *s == ' ')
		s++;
	if (s[0] == '[' && (p = strstr(s, "] ")) != NULL && p - s <= 10)
		s = p + 2;
	for (p = s; *p >= 'A' && *p <= 'Z'; p++)
		;						/* a level: "WARNING: ", "INFO: " */
	if (p > s && p[0] == ':' && p[1] == ' ')
		s = p + 2;
	p = strstr(s, ": ");
	if (p != NULL && p > s && p[-1] >= '0' && p[-1] <= '9' && memchr(s, ' ', p - s) == NULL)
		s = p + 2;
	while (*s == '\n' || *s == ' ')
		s++;
	if ((nl = strchr(s, '\n')) != NULL)
		*nl = '\0';
	return s;
}

/* Log callback of XGBoost: keep the message for XgbLeave (no ereport here). */
static void
XgbLogCallback(const char *msg)
{
	int			room = XGB_FIT_LOG_BYTES - XgbLogLen - 2;
	int			len = (int) strlen(msg);

	if (room <= 0)
		return;
	len = Min(len, room);
	memcpy(XgbLogBuf + XgbLogLen, msg, len);
	XgbLogLen += len;
	XgbLogBuf[XgbLogLen++] = '\n';
	XgbLogBuf[XgbLogLen] = '\0';
}

/* Before an XGBoost call: block every signal (OpenMP threads inherit the mask). */
static void
XgbEnter(void)
{
	sigset_t	all;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &XgbSavedMask);
	XgbLogLen = 0;
}

/* After an XGBoost call: restore the signal mask, pass log messages on as NOTICEs. */
static void
XgbLeave(void)
{
	char	   *msgs;
	char	   *line;
	char	   *next;

	pthread_sigmask(SIG_SETMASK, &XgbSavedMask, NULL);
	if (XgbLogLen == 0)
		return;
	msgs = pnstrdup(XgbLogBuf, XgbLogLen);
	XgbLogLen = 0;
	for (line = msgs; line != NULL && *line != '\0'; line = next)
	{
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (*line != '\0')
			ereport(NOTICE, (errmsg("XGBoost: %s", XgbCleanMessage(line))));
	}
}

static void XgbRaise(const char *what) pg_attribute_noreturn();

/* Raise the error of a failed XGBoost call, XGBoost's message as the detail. */
static void
XgbRaise(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("XGBoost failed %s", what),
			 errdetail("%s", XgbCleanMessage(Xgb.XGBGetLastError())),
			 errhint("XGBoost checks combinations of parameters when training starts; see its parameter documentation.")));
}

/* Run one XGBoost C API call with signals blocked; raise its error if it failed. */
#define XGB_CALL(call, what) \
	do { \
		int			xgb_rc_; \
		XgbEnter(); \
		xgb_rc_ = (call); \
		XgbLeave(); \
		if (xgb_rc_ != 0) \
			XgbRaise(what); \
	} while (0)

/*
 * Load the XGBoost library and resolve the C API, once per backend.  Only
 * ever reached from the final function, in a backend (or parallel worker)
 * running a query, never in the postmaster.
 */
static void
XgbLoadLibrary(void)
{
	void	   *h = NULL;
	char	   *err = NULL;
	int			major = 0,
				minor = 0,
				patch = 0;
	int			i;

	if (XgbLoaded)
		return;
	for (i = 0; i < (int) lengthof(XgbLibraryNames) && h == NULL; i++)
	{
		h = dlopen(XgbLibraryNames[i], RTLD_NOW | RTLD_LOCAL);
		if (h == NULL && err == NULL)
			err = pstrdup(dlerror());
	}
	if (h == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("could not load the XGBoost library"),
				 errdetail("%s", err),
				 errhint("churn.xgb_fit needs XGBoost 1.7 or later as a shared library; on Debian: apt-get install libxgboost0.")));
#define XGB_API_RESOLVE(f) \
	if ((Xgb.f = (__typeof__(f) *) dlsym(h, #f)) == NULL) \
		ereport(ERROR, \
				(errcode(ERRCODE_UNDEFINED_FUNCTION), \
				 errmsg("the XGBoost library has no function %s", #f), \
				 errhint("churn.xgb_fit needs XGBoost 1.7 or later.")));
	XGB_API_FUNCTIONS(XGB_API_RESOLVE)
#undef XGB_API_RESOLVE
	Xgb.XGBoostVersion(&major, &minor, &patch);
	if (major < 1 || (major == 1 && minor < 7))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("XGBoost %d.%d.%d is too old for churn.xgb_fit", major, minor, patch),
				 errhint("Install XGBoost 1.7 or later.")));
	XGB_CALL(Xgb.XGBRegisterLogCallback(XgbLogCallback), "to register its log callback");
	XgbLoaded = true;			/* the handle stays open: threads may run its code */
}

/* ---------------------------------------------------------------------------
 * Training
 * ---------------------------------------------------------------------------
 */

/* The XGBoost handles of one fit; freed by XgbFreeHandles. */
typedef struct XgbHandles
{
	DMatrixHandle dtrain;
	BoosterHandle booster;
} XgbHandles;

/* Memory context reset callback: free the handles (on success, error or cancel). */
static void
XgbFreeHandles(void *arg)
{
	XgbHandles *h = (XgbHandles *) arg;

	if (h->booster != NULL)
		(void) Xgb.XGBoosterFree(h->booster);
	h->booster = NULL;
	if (h->dtrain != NULL)
		(void) Xgb.XGDMatrixFree(h->dtrain);
	h->dtrain = NULL;
}

/*
 * Estimated peak bytes of a fit: the rows held by the aggregate, XGBoost's
 * CSR copy of them and its training structures (the sorted columns of the
 * exact method, the quantized matrix and column index of hist and approx:
 * about as large as the CSR copy again, measured with XGBoost 1.7 for both
 * methods), the histograms of hist and approx, per-row training buffers,
 * and the model at its largest (full trees) through XGBoost's JSON,
 * jsonb_in and churn.xgb_load.
 */
static double
XgbEstimateBytes(const XgbFitState *st, const XgbFitParams *prm, int nthread)
{
	double		n = (double) st->n;
	double		p = (double) st->p;
	double		nnz = n * p - (double) st->nmissing;
	double		nodes;
	double		bytes;
	bool		exact = strcmp(prm->tree_method, "exact") == 0 ||
		(strcmp(prm->tree_method, "auto") == 0 && st->n < XGB_FIT_AUTO_EXACT_ROWS);

	/* nodes of a full tree, at most 2n - 1 */
	nodes = prm->max_depth > 0 ? ldexp(1.0, Min(prm->max_depth + 1, 62)) - 1 : 2 * n - 1;
	if (prm->max_leaves > 0)
		nodes = Min(nodes, 2.0 * prm->max_leaves - 1);
	nodes = Min(nodes, 2 * n - 1);

	bytes = (double) st->cap * (p + 1) * sizeof(float);	/* the aggregate's rows */
	bytes += n * sizeof(float) + nnz * 8 + (n + 1) * 8; /* labels, CSR */
	bytes += nnz * 8 + p * 8;	/* training copy (sorted columns or index) */
	if (!exact)
		bytes += n * p * (prm->max_bin <= 256 ? 1 : prm->max_bin <= 65536 ? 2 : 4) +
			(nodes + nthread) * p * prm->max_bin * 16.0;	/* bins, histograms */
	bytes += n * XGB_FIT_ROW_WORK_BYTES;
	bytes += (double) prm->rounds * prm->num_parallel_tree * nodes * XGB_FIT_NODE_BYTES;
	return bytes;
}

/* Refuse a fit whose estimate exceeds churn_warning.xgb_max_memory. */
static void
XgbCheckMemory(const XgbFitState *st, const XgbFitParams *prm, int nthread)
{
	double		est = XgbEstimateBytes(st, prm, nthread);

	ereport(DEBUG1,
			(errmsg("xgb_fit: %lld rows x %d features, %d rounds, estimated memory %.0f kB",
					(long long) st->n, st->p, prm->rounds, ceil(est / 1024.0))));
	if (est > XgbMaxMemoryBytes())
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("xgb_fit would need more memory than churn_warning.xgb_max_memory"),
				 errdetail("Training %lld rows x %d features (%lld values present) for %d rounds of %d tree(s) with tree_method %s needs an estimated %.0f kB; churn_warning.xgb_max_memory is %d kB.",
						   (long long) st->n, st->p, (long long) (st->n * st->p - st->nmissing),
						   prm->rounds, prm->num_parallel_tree, prm->tree_method,
						   ceil(est / 1024.0), XgbFitMaxMemory),
				 errhint("Train on a sample of the rows, lower max_depth or num_boost_round, or ask a superuser to raise churn_warning.xgb_max_memory.")));
}

/* Threads for this fit: nthread (0 = the GUC) capped at churn_warning.xgb_threads. */
static int
XgbFitThreadCount(const XgbFitParams *prm)
{
	if (prm->nthread > XgbFitThreads)
		ereport(NOTICE,
				(errmsg("xgb_fit: nthread %d capped at churn_warning.xgb_threads = %d",
						prm->nthread, XgbFitThreads)));
	if (prm->nthread <= 0)
		return XgbFitThreads;
	return Min(prm->nthread, XgbFitThreads);
}

/* Create the training DMatrix (h->dtrain) from the stored rows. */
static void
XgbMakeDMatrix(const XgbFitState *st, XgbHandles *h, int nthread)
{
	char	   *iface;
	char	   *config;

	/* numpy's __array_interface__ for a C-contiguous float32 matrix */
	iface = psprintf("{\"data\": [%llu, true], \"shape\": [%lld, %d], \"strides\": null, "
					 "\"typestr\": \"<f4\", \"version\": 3}",
					 (unsigned long long) (uintptr_t) st->x, (long long) st->n, st->p);
	config = psprintf("{\"missing\": NaN, \"nthread\": %d}", nthread);
	XGB_CALL(Xgb.XGDMatrixCreateFromDense(iface, config, &h->dtrain), "to create the training matrix");
	XGB_CALL(Xgb.XGDMatrixSetFloatInfo(h->dtrain, "label", st->y, (bst_ulong) st->n),
			 "to set the labels");
}

/* Create the booster (h->booster) and set its parameters. */
static void
XgbMakeBooster(const XgbFitParams *prm, XgbHandles *h, int nthread)
{
	char		nt[16];
	int			i;

	XGB_CALL(Xgb.XGBoosterCreate(&h->dtrain, 1, &h->booster), "to create the booster");
	for (i = 0; i < prm->nset; i++)
		XGB_CALL(Xgb.XGBoosterSetParam(h->booster, prm->set_name[i], prm->set_value[i]),
				 psprintf("to set parameter %s", prm->set_name[i]));
	if (!prm->has_objective)
		XGB_CALL(Xgb.XGBoosterSetParam(h->booster, "objective", "binary:logistic"),
				 "to set parameter objective");
	snprintf(nt, sizeof(nt), "%d", nthread);
	XGB_CALL(Xgb.XGBoosterSetParam(h->booster, "nthread", nt), "to set parameter nthread");
	XGB_CALL(Xgb.XGBoosterSetParam(h->booster, "validate_parameters", "1"),
			 "to set parameter validate_parameters");
}

/*
 * Train on the stored rows and return XGBoost's JSON model, allocated in
 * the caller's memory context.  The handles live in a child context whose
 * reset callback frees them, whether training ends, fails or is cancelled.
 */
static char *
XgbTrain(const XgbFitState *st, const XgbFitParams *prm, int nthread)
{
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext cxt = AllocSetContextCreate(caller, "xgb_fit training", ALLOCSET_SMALL_SIZES);
	XgbHandles *h = MemoryContextAllocZero(cxt, sizeof(XgbHandles));
	MemoryContextCallback *cb = MemoryContextAllocZero(cxt, sizeof(MemoryContextCallback));
	bst_ulong	len = 0;
	const char *buf = NULL;
	char	   *json;
	int			round;

	cb->func = XgbFreeHandles;
	cb->arg = h;
	MemoryContextRegisterResetCallback(cxt, cb);
	MemoryContextSwitchTo(cxt);

	XgbMakeDMatrix(st, h, nthread);
	XgbMakeBooster(prm, h, nthread);
	for (round = 0; round < prm->rounds; round++)
	{
		CHECK_FOR_INTERRUPTS();
		XGB_CALL(Xgb.XGBoosterUpdateOneIter(h->booster, round, h->dtrain),
				 psprintf("in training round %d", round + 1));
	}
	CHECK_FOR_INTERRUPTS();
	XGB_CALL(Xgb.XGBoosterSaveModelToBuffer(h->booster, "{\"format\": \"json\"}", &len, &buf),
			 "to save the model");
	if (len >= MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the trained XGBoost model is too large (%llu bytes of JSON)",
						(unsigned long long) len)));
	json = MemoryContextAlloc(caller, (Size) len + 1);
	memcpy(json, buf, (Size) len);
	json[len] = '\0';

	MemoryContextSwitchTo(caller);
	MemoryContextDelete(cxt);	/* frees the handles */
	return json;
}

/* Final function: train the model and compile it into a churn.xgb. */
Datum
xgb_fit_final(PG_FUNCTION_ARGS)
{
	XgbFitState *st = PG_ARGISNULL(0) ? NULL : (XgbFitState *) PG_GETARG_POINTER(0);
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext compile;
	int			nthread;
	char	   *json;
	Datum		doc;
	Datum		model;
	struct varlena *result;

	if (st == NULL || st->n == 0)
		PG_RETURN_NULL();
	if (st->npos == 0 || st->npos == st->n)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("xgb_fit: all %lld rows have label = %s",
						(long long) st->n, st->npos == 0 ? "false" : "true"),
				 errhint("A binary classifier needs rows of both classes.")));

	nthread = XgbFitThreadCount(&st->prm);
	XgbCheckMemory(st, &st->prm, nthread);
	XgbLoadLibrary();
	json = XgbTrain(st, &st->prm, nthread);

	/* compile in a context of its own: jsonb_in and xgb_load need a lot */
	compile = AllocSetContextCreate(caller, "xgb_fit compile", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(compile);
	doc = DirectFunctionCall1(jsonb_in, CStringGetDatum(json));
	model = DirectFunctionCall1(xgb_load, doc);
	MemoryContextSwitchTo(caller);
	result = palloc(VARSIZE(DatumGetPointer(model)));
	memcpy(result, DatumGetPointer(model), VARSIZE(DatumGetPointer(model)));
	MemoryContextDelete(compile);
	pfree(json);
	PG_RETURN_POINTER(result);
}

/* ---------------------------------------------------------------------------
 * GUCs
 * ---------------------------------------------------------------------------
 */

/* Define churn_warning.xgb_threads and churn_warning.xgb_max_memory (from _PG_init). */
void
XgbFitInit(void)
{
	DefineCustomIntVariable("churn_warning.xgb_threads",
							"Most threads one churn.xgb_fit call trains with.",
							"Passed to XGBoost as nthread; a larger nthread parameter is capped to it.",
							&XgbFitThreads,
							1, 1, 1024,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("churn_warning.xgb_max_memory",
							"Most memory one churn.xgb_fit call may use, as estimated before training.",
							"Covers the collected rows, XGBoost's copy of them, training buffers and the model.",
							&XgbFitMaxMemory,
							1024 * 1024, 1024, MAX_KILOBYTES,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
}
