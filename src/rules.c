/*-------------------------------------------------------------------------
 *
 * rules.c
 *	  The rule model: churn.rule_score(x, ruleset) and the scorer that
 *	  churn.model_score uses for models of kind 'rules'.
 *
 * A rule fires when "feature op threshold" holds; the score is the
 * noisy-OR 1 - prod(1 - weight) of the rules that fire, computed as
 * 1 - exp(sum(ln(max(1 - weight, 1e-300)))) so a weight of 1 gives 1.
 * Comparisons follow float8's SQL semantics (NaN is above every number
 * and equal to itself); a missing value fires no rule.  Rulesets are read
 * once per call site and snapshot (snapcache.h).
 *
 *-------------------------------------------------------------------------
 */
#include "churn_warning.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/memutils.h"

#include "featurelist.h"
#include "rules.h"
#include "score.h"
#include "snapcache.h"

PG_FUNCTION_INFO_V1(rule_score);
PG_FUNCTION_INFO_V1(rule_reason);

/*
 * The reasons a rule can stand for (churn.rules.reason), in the order one
 * is picked when rules of several fire: a service problem first (it is
 * what a store can repair), then price, then silence, then frequency.
 */
static const char *const RuleReasons[] = {"service", "price", "silence", "frequency"};

/* Smallest 1 - weight taken into the log, so a weight of 1 gives score 1. */
#define RULE_MIN_KEEP 1e-300

typedef enum RuleOp
{
	RULE_LT, RULE_LE, RULE_GT, RULE_GE, RULE_EQ, RULE_NE
} RuleOp;

typedef struct Rule
{
	int			feature;		/* index into ChurnFeatures */
	RuleOp		op;
	double		threshold;
	double		log_keep;		/* ln(max(1 - weight, RULE_MIN_KEEP)) */
	Datum		name;			/* text */
	int			reason;			/* index into RuleReasons, -1 for none */
} Rule;

typedef struct Ruleset
{
	char	   *name;
	int			len;
	int			nrules;
	Rule	   *rules;			/* by weight descending, then name */
} Ruleset;

struct RulesCache
{
	MemoryContext cxt;			/* rulesets; reset when the snapshot changes */
	SnapCacheKey key;
	int			nsets;
	Ruleset    *sets[8];		/* the last rulesets used (a call site rarely has more) */
};

/* A cache of rulesets for one call site. */
RulesCache *
RulesCacheCreate(MemoryContext mcxt)
{
	RulesCache *c = MemoryContextAllocZero(mcxt, sizeof(RulesCache));

	c->cxt = AllocSetContextCreate(mcxt, "churn rulesets", ALLOCSET_SMALL_SIZES);
	return c;
}

/* The operator of an op text of churn.rules. */
static RuleOp
RuleParseOp(const char *op)
{
	static const char *const ops[] = {"<", "<=", ">", ">=", "=", "<>"};

	for (int i = 0; i < lengthof(ops); i++)
		if (strcmp(op, ops[i]) == 0)
			return (RuleOp) i;
	elog(ERROR, "unknown rule operator \"%s\"", op);
	return RULE_NE;				/* keep the compiler quiet */
}

/* Read one rule row of the SPI result into r. */
static void
RuleRead(HeapTuple tup, TupleDesc td, Rule *r)
{
	char	   *feature = SPI_getvalue(tup, td, 2);
	char	   *reason;
	bool		isnull;
	double		weight;

	r->feature = FeatureIndex(feature);
	if (r->feature < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("rule \"%s\" names unknown feature \"%s\"", SPI_getvalue(tup, td, 1), feature),
				 errhint("Features are the names in churn.feature_names().")));
	r->op = RuleParseOp(SPI_getvalue(tup, td, 3));
	r->threshold = DatumGetFloat8(SPI_getbinval(tup, td, 4, &isnull));
	weight = DatumGetFloat8(SPI_getbinval(tup, td, 5, &isnull));
	r->log_keep = log(Max(1.0 - weight, RULE_MIN_KEEP));
	r->name = datumCopy(SPI_getbinval(tup, td, 1, &isnull), false, -1);
	r->reason = -1;
	reason = SPI_getvalue(tup, td, 6);
	for (int i = 0; reason != NULL && i < lengthof(RuleReasons); i++)
		if (strcmp(reason, RuleReasons[i]) == 0)
			r->reason = i;
}

/* Read a ruleset from churn.rules; error if it has no rule. */
static Ruleset *
RulesLoad(RulesCache *c, const char *name, int len)
{
	Oid			argtype = TEXTOID;
	Datum		arg = PointerGetDatum(cstring_to_text_with_len(name, len));
	MemoryContext old;
	Ruleset    *set;
	int			ret;

	if ((ret = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(ret));
	/* reason through to_jsonb: a database still on 0.2.0 has no such column */
	ret = SPI_execute_with_args("SELECT rule, feature, op, threshold, weight,"
								" pg_catalog.to_jsonb(r) OPERATOR(pg_catalog.->>) 'reason'"
								" FROM churn.rules r WHERE ruleset OPERATOR(pg_catalog.=) $1"
								" ORDER BY weight DESC, rule",
								1, &argtype, &arg, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading churn.rules failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("ruleset \"%s\" does not exist", pnstrdup(name, len)),
				 errhint("Rulesets are the ruleset values in churn.rules.")));
	old = MemoryContextSwitchTo(c->cxt);
	set = palloc0(sizeof(Ruleset));
	set->name = pnstrdup(name, len);
	set->len = len;
	set->nrules = (int) SPI_processed;
	set->rules = palloc0(sizeof(Rule) * set->nrules);
	for (int i = 0; i < set->nrules; i++)
		RuleRead(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, &set->rules[i]);
	MemoryContextSwitchTo(old);
	SPI_finish();
	return set;
}

/* The named ruleset, from the cache or the table. */
static Ruleset *
RulesGet(RulesCache *c, const char *name, int len)
{
	Ruleset    *set;

	if (!SnapCacheStillValid(&c->key))
	{
		MemoryContextReset(c->cxt);
		c->nsets = 0;
	}
	for (int i = 0; i < c->nsets; i++)
		if (c->sets[i]->len == len && memcmp(c->sets[i]->name, name, len) == 0)
			return c->sets[i];
	set = RulesLoad(c, name, len);
	if (c->nsets == lengthof(c->sets))
	{
		/* forget the oldest; it is reread if needed */
		memmove(c->sets, c->sets + 1, sizeof(c->sets[0]) * (c->nsets - 1));
		c->nsets--;
	}
	c->sets[c->nsets++] = set;
	return set;
}

/* Does "v op threshold" hold under float8's SQL comparison? */
static inline bool
RuleFires(const Rule *r, double v)
{
	int			cmp = float8_cmp_internal(v, r->threshold);

	switch (r->op)
	{
		case RULE_LT:
			return cmp < 0;
		case RULE_LE:
			return cmp <= 0;
		case RULE_GT:
			return cmp > 0;
		case RULE_GE:
			return cmp >= 0;
		case RULE_EQ:
			return cmp == 0;
		case RULE_NE:
			return cmp != 0;
	}
	return false;
}

/* Noisy-OR score of a full feature vector under a ruleset. */
double
RulesScore(RulesCache *c, const char *ruleset, int len, const double *x,
		   const bool *isnull, Datum **fired, int *nfired)
{
	Ruleset    *set = RulesGet(c, ruleset, len);
	double		sum = 0;
	int			k = 0;

	if (fired != NULL)
		*fired = palloc(sizeof(Datum) * set->nrules);
	for (int i = 0; i < set->nrules; i++)
	{
		const Rule *r = &set->rules[i];

		if (isnull[r->feature] || !RuleFires(r, x[r->feature]))
			continue;
		sum += r->log_keep;
		if (fired != NULL)
			(*fired)[k] = r->name;
		k++;
	}
	if (nfired != NULL)
		*nfired = k;
	return k == 0 ? 0.0 : 1.0 - exp(sum);
}

/*
 * rule_score(x, ruleset): the rule model's score of a vector in
 * feature_names() order and the rules that fired, strongest first.
 */
Datum
rule_score(PG_FUNCTION_ARGS)
{
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(0);
	text	   *ruleset = PG_GETARG_TEXT_PP(1);
	RulesCache *c = (RulesCache *) fcinfo->flinfo->fn_extra;
	double		x[CHURN_NFEATURES];
	bool		isnull[CHURN_NFEATURES];
	Datum	   *fired;
	int			nfired;
	int			n;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	double		score;

	if (c == NULL)
		fcinfo->flinfo->fn_extra = c = RulesCacheCreate(fcinfo->flinfo->fn_mcxt);
	/* an unknown ruleset is reported before a malformed vector */
	(void) RulesGet(c, VARDATA_ANY(ruleset), VARSIZE_ANY_EXHDR(ruleset));
	n = ScoreReadVector(a, CHURN_NFEATURES, x, isnull);
	if (n != CHURN_NFEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("feature vector has %d elements, the rule model needs %d", n, CHURN_NFEATURES),
				 errhint("Build it with churn.feature_vector(features, engagement).")));
	score = RulesScore(c, VARDATA_ANY(ruleset), VARSIZE_ANY_EXHDR(ruleset), x, isnull, &fired, &nfired);
	values[0] = Float8GetDatum(score);
	values[1] = PointerGetDatum(construct_array(fired, nfired, TEXTOID, -1, false, TYPALIGN_INT));
	return ChurnMakeComposite(fcinfo, values, nulls);
}

/*
 * How far a rule that does not fire is on its way to firing, in (0, 1), or
 * 0 when that cannot be said: the share of its threshold the value has
 * reached, for rules of the forms "x >= t" / "x > t" with t > 0 and
 * "x <= t" / "x < t" with t < 0 (a count or a number of days reaching a
 * limit; a change falling below a negative share).
 */
static double
RuleProgress(const Rule *r, double v)
{
	double		share;

	if (isnan(v) || isinf(v))
		return 0;
	if ((r->op == RULE_GE || r->op == RULE_GT) && r->threshold > 0)
		share = v / r->threshold;
	else if ((r->op == RULE_LE || r->op == RULE_LT) && r->threshold < 0)
		share = v / r->threshold;
	else
		return 0;
	return (share > 0 && share < 1) ? share : 0;
}

/*
 * The reason of the first-priority rule that fires on a full feature
 * vector; when none fires, that of the rule nearest to firing
 * (RuleProgress; ties by priority), so that every customer at risk has a
 * reason; -1 when no rule with a reason says anything.
 */
static int
RulesReason(RulesCache *c, const char *ruleset, int len, const double *x, const bool *isnull)
{
	Ruleset    *set = RulesGet(c, ruleset, len);
	int			best = -1;
	int			nearest = -1;
	double		nearest_progress = 0;

	for (int i = 0; i < set->nrules; i++)
	{
		const Rule *r = &set->rules[i];
		double		progress;

		if (r->reason < 0 || isnull[r->feature])
			continue;
		if (RuleFires(r, x[r->feature]))
		{
			if (best < 0 || r->reason < best)
				best = r->reason;
			continue;
		}
		if (best >= 0)
			continue;			/* a rule fires: nearness no longer matters */
		progress = RuleProgress(r, x[r->feature]);
		if (progress > nearest_progress ||
			(progress > 0 && progress == nearest_progress && r->reason < nearest))
		{
			nearest = r->reason;
			nearest_progress = progress;
		}
	}
	return best >= 0 ? best : nearest;
}

/*
 * rule_reason(f, e, lifecycle, ruleset): why a customer is at risk: 'lost'
 * for a lost customer, else the reason of the rules of the ruleset that
 * fire on their features (service, price, silence, frequency, in that order
 * of precedence), or of the rule nearest to firing when none fires; NULL
 * when no rule says anything or without purchases.
 */
Datum
rule_reason(PG_FUNCTION_ARGS)
{
	typedef struct ReasonCache
	{
		FeatureReader *reader;
		RulesCache *rules;
	}			ReasonCache;
	ReasonCache *rc = (ReasonCache *) fcinfo->flinfo->fn_extra;
	double		x[CHURN_NFEATURES];
	bool		isnull[CHURN_NFEATURES];
	text	   *ruleset;
	int			k;

	if (!PG_ARGISNULL(2))
	{
		text	   *stage = PG_GETARG_TEXT_PP(2);

		if (VARSIZE_ANY_EXHDR(stage) == 4 && memcmp(VARDATA_ANY(stage), "lost", 4) == 0)
			PG_RETURN_TEXT_P(cstring_to_text("lost"));
	}
	if (PG_ARGISNULL(0) || PG_ARGISNULL(3))
		PG_RETURN_NULL();
	if (rc == NULL)
	{
		rc = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(ReasonCache));
		rc->reader = FeatureReaderCreate(fcinfo->flinfo->fn_mcxt);
		rc->rules = RulesCacheCreate(fcinfo->flinfo->fn_mcxt);
		fcinfo->flinfo->fn_extra = rc;
	}
	if (!FeatureReaderRead(rc->reader, PG_GETARG_HEAPTUPLEHEADER(0),
						   PG_ARGISNULL(1) ? NULL : PG_GETARG_HEAPTUPLEHEADER(1),
						   NULL, CHURN_NFEATURES, x, isnull))
		PG_RETURN_NULL();
	ruleset = PG_GETARG_TEXT_PP(3);
	k = RulesReason(rc->rules, VARDATA_ANY(ruleset), VARSIZE_ANY_EXHDR(ruleset), x, isnull);
	if (k < 0)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(RuleReasons[k]));
}
