/*-------------------------------------------------------------------------
 *
 * aggstate.c
 *	  churn.agg_state: a real (not internal) transition type for the
 *	  fitting and evaluation aggregates, so that Citus can run them as
 *	  partial aggregates (it passes states between nodes as text through
 *	  the type's I/O functions, and refuses internal states).
 *
 * The value is an expanded object (utils/expandeddatum.h) whose header
 * points at the aggregate's existing in-memory state (ProbState,
 * RfmCutsState, LogitState, EvalRankState, ...).  The support functions
 * here wrap the existing internal-state ones: they unwrap the state, call
 * the existing function with the same call info, and wrap the result.
 * Once a group's state is expanded in the aggregate context, each call
 * returns the same read-write pointer, so nodeAgg keeps it without a copy
 * and a transition costs what it cost with STYPE = internal.
 *
 * Flat form (in a tuple: parallel workers, Citus text): a varlena with
 * the state kind and the bytes of the existing serialize function.  Text
 * form: "<kind>:<hex of those bytes>".  The flat form is what the
 * existing deserialize function rebuilds a state from.
 *
 * All expanded states of one aggregate context share one child memory
 * context ("churn agg states"): a context per group made hash aggregation
 * quadratic (its memory accounting walks every child).  The states' own
 * memory stays in the aggregate context, as before.
 *
 *-------------------------------------------------------------------------
 */
#include "churn_warning.h"
#include "numeric.h"

#include "nodes/memnodes.h"
#include "utils/builtins.h"
#include "utils/expandeddatum.h"
#include "utils/memutils.h"

/* the existing internal-state support functions (eval.c, logit.c, ...) */
extern Datum prob_fit_serialize(PG_FUNCTION_ARGS);
extern Datum prob_fit_deserialize(PG_FUNCTION_ARGS);
extern Datum rft_fit_trans(PG_FUNCTION_ARGS);
extern Datum gg_fit_trans(PG_FUNCTION_ARGS);
extern Datum prob_fit_combine(PG_FUNCTION_ARGS);
extern Datum bgnbd_fit_final(PG_FUNCTION_ARGS);
extern Datum pnbd_fit_final(PG_FUNCTION_ARGS);
extern Datum gg_fit_final(PG_FUNCTION_ARGS);
extern Datum rfm_cuts_serialize(PG_FUNCTION_ARGS);
extern Datum rfm_cuts_deserialize(PG_FUNCTION_ARGS);
extern Datum rfm_cuts_trans(PG_FUNCTION_ARGS);
extern Datum rfm_cuts_combine(PG_FUNCTION_ARGS);
extern Datum rfm_cuts_final(PG_FUNCTION_ARGS);
extern Datum logit_fit_serialize(PG_FUNCTION_ARGS);
extern Datum logit_fit_deserialize(PG_FUNCTION_ARGS);
extern Datum logit_fit_trans(PG_FUNCTION_ARGS);
extern Datum logit_fit_trans_l2(PG_FUNCTION_ARGS);
extern Datum logit_fit_combine(PG_FUNCTION_ARGS);
extern Datum logit_fit_final(PG_FUNCTION_ARGS);
extern Datum eval_rank_serialize(PG_FUNCTION_ARGS);
extern Datum eval_rank_deserialize(PG_FUNCTION_ARGS);
extern Datum eval_rank_trans(PG_FUNCTION_ARGS);
extern Datum eval_rank_combine(PG_FUNCTION_ARGS);
extern Datum eval_auc_final(PG_FUNCTION_ARGS);
extern Datum eval_lift_final(PG_FUNCTION_ARGS);
extern Datum eval_mean_serialize(PG_FUNCTION_ARGS);
extern Datum eval_mean_deserialize(PG_FUNCTION_ARGS);
extern Datum eval_logloss_trans(PG_FUNCTION_ARGS);
extern Datum eval_brier_trans(PG_FUNCTION_ARGS);
extern Datum eval_mean_combine(PG_FUNCTION_ARGS);
extern Datum eval_mean_final(PG_FUNCTION_ARGS);
extern Datum eval_calib_serialize(PG_FUNCTION_ARGS);
extern Datum eval_calib_deserialize(PG_FUNCTION_ARGS);
extern Datum eval_calib_trans(PG_FUNCTION_ARGS);
extern Datum eval_calib_combine(PG_FUNCTION_ARGS);
extern Datum eval_calib_final(PG_FUNCTION_ARGS);

/* One kind of state: its text name and its existing (de)serializers. */
typedef struct AggStateKind
{
	const char *name;
	PGFunction	serialize;
	PGFunction	deserialize;
} AggStateKind;

enum
{
	AGGSTATE_PROB,
	AGGSTATE_RFM,
	AGGSTATE_LOGIT,
	AGGSTATE_RANK,
	AGGSTATE_MEAN,
	AGGSTATE_CALIB,
	AGGSTATE_NKINDS
};

static const AggStateKind AggStateKinds[AGGSTATE_NKINDS] = {
	[AGGSTATE_PROB] = {"prob_fit", prob_fit_serialize, prob_fit_deserialize},
	[AGGSTATE_RFM] = {"rfm_cuts", rfm_cuts_serialize, rfm_cuts_deserialize},
	[AGGSTATE_LOGIT] = {"logit_fit", logit_fit_serialize, logit_fit_deserialize},
	[AGGSTATE_RANK] = {"eval_rank", eval_rank_serialize, eval_rank_deserialize},
	[AGGSTATE_MEAN] = {"eval_mean", eval_mean_serialize, eval_mean_deserialize},
	[AGGSTATE_CALIB] = {"eval_calib", eval_calib_serialize, eval_calib_deserialize},
};

/* Flat form: varlena header, kind, then the serialized bytes. */
typedef struct AggStateFlat
{
	int32		vl_len_;
	int32		kind;
} AggStateFlat;

#define AGGSTATE_FLAT_HDRSZ sizeof(AggStateFlat)

/* Expanded form: the in-memory state and its cached serialization. */
typedef struct AggStateExpanded
{
	ExpandedObjectHeader hdr;
	int32		kind;
	void	   *state;			/* in the aggregate context */
	bytea	   *flat;			/* serialized state, or NULL when stale */
} AggStateExpanded;

static const char AggStateCxtName[] = "churn agg states";

static Size AggStateGetFlatSize(ExpandedObjectHeader *eohptr);
static void AggStateFlattenInto(ExpandedObjectHeader *eohptr, void *result, Size allocated_size);

static const ExpandedObjectMethods AggStateMethods = {
	AggStateGetFlatSize,
	AggStateFlattenInto
};

/* Call an existing serializer or deserializer, its memory going to cxt. */
static Datum
AggStateCallSerial(PGFunction fn, Datum arg, MemoryContext cxt)
{
	LOCAL_FCINFO(fc, 2);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	Datum		result;

	/* ChurnAggContext() answers cxt for a memory context passed as context */
	InitFunctionCallInfoData(*fc, NULL, 2, InvalidOid, (Node *) cxt, NULL);
	fc->args[0].value = arg;
	fc->args[0].isnull = false;
	fc->args[1].value = (Datum) 0;
	fc->args[1].isnull = true;
	result = fn(fc);
	MemoryContextSwitchTo(old);
	if (fc->isnull)
		elog(ERROR, "aggregate state (de)serializer returned NULL");
	return result;
}

/* The serialized state of an expanded value, computed once until it changes. */
static bytea *
AggStateSerialized(AggStateExpanded *es)
{
	if (es->flat == NULL)
		es->flat = DatumGetByteaPP(AggStateCallSerial(AggStateKinds[es->kind].serialize,
													  PointerGetDatum(es->state),
													  es->hdr.eoh_context));
	return es->flat;
}

/* Forget the cached serialization after the state changed. */
static inline void
AggStateForgetFlat(AggStateExpanded *es)
{
	if (es->flat != NULL)
	{
		pfree(es->flat);
		es->flat = NULL;
	}
}

/* Expanded-object method: the size of the flat form. */
static Size
AggStateGetFlatSize(ExpandedObjectHeader *eohptr)
{
	AggStateExpanded *es = (AggStateExpanded *) eohptr;

	return AGGSTATE_FLAT_HDRSZ + VARSIZE_ANY_EXHDR(AggStateSerialized(es));
}

/* Expanded-object method: write the flat form into result. */
static void
AggStateFlattenInto(ExpandedObjectHeader *eohptr, void *result, Size allocated_size)
{
	AggStateExpanded *es = (AggStateExpanded *) eohptr;
	bytea	   *ser = AggStateSerialized(es);
	AggStateFlat *f = (AggStateFlat *) result;

	Assert(allocated_size == AGGSTATE_FLAT_HDRSZ + VARSIZE_ANY_EXHDR(ser));
	SET_VARSIZE(f, allocated_size);
	f->kind = es->kind;
	memcpy((char *) f + AGGSTATE_FLAT_HDRSZ, VARDATA_ANY(ser), VARSIZE_ANY_EXHDR(ser));
}

/* The child context of aggcxt holding its expanded states' headers. */
static MemoryContext
AggStateSharedContext(MemoryContext aggcxt)
{
	MemoryContext c;

	for (c = aggcxt->firstchild; c != NULL; c = c->nextchild)
		if (c->name == AggStateCxtName)
			return c;
	return AllocSetContextCreateInternal(aggcxt, AggStateCxtName, ALLOCSET_SMALL_SIZES);
}

/* Wrap an in-memory state as a new expanded value of the aggregate context. */
static AggStateExpanded *
AggStateWrap(int32 kind, void *state, MemoryContext aggcxt)
{
	MemoryContext shared = AggStateSharedContext(aggcxt);
	AggStateExpanded *es = MemoryContextAlloc(shared, sizeof(AggStateExpanded));

	EOH_init_header(&es->hdr, &AggStateMethods, shared);
	es->kind = kind;
	es->state = state;
	es->flat = NULL;
	return es;
}

/* Raise the error for a state of another aggregate. */
static void
AggStateWrongKind(int32 got, int32 want)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("aggregate state of kind \"%s\" given where \"%s\" is expected",
					(got >= 0 && got < AGGSTATE_NKINDS) ? AggStateKinds[got].name : "?",
					AggStateKinds[want].name)));
}

/* The expanded value d points at, or NULL when d is flat. */
static AggStateExpanded *
AggStateExpandedOf(Datum d, int32 kind)
{
	AggStateExpanded *es;

	if (!VARATT_IS_EXTERNAL_EXPANDED(DatumGetPointer(d)))
		return NULL;
	es = (AggStateExpanded *) DatumGetEOHP(d);
	if (es->hdr.eoh_methods != &AggStateMethods)
		elog(ERROR, "expanded value is not a churn.agg_state");
	if (es->kind != kind)
		AggStateWrongKind(es->kind, kind);
	return es;
}

/* Rebuild the in-memory state of a value (flat or expanded) in cxt. */
static void *
AggStateRebuild(Datum d, int32 kind, MemoryContext cxt)
{
	AggStateExpanded *es = AggStateExpandedOf(d, kind);
	AggStateFlat *flat;
	Size		len;
	bytea	   *ser;

	if (es != NULL)
		ser = AggStateSerialized(es);
	else
	{
		flat = (AggStateFlat *) PG_DETOAST_DATUM(d);
		if (VARSIZE(flat) < AGGSTATE_FLAT_HDRSZ)
			elog(ERROR, "invalid churn.agg_state value");
		if (flat->kind != kind)
			AggStateWrongKind(flat->kind, kind);
		len = VARSIZE(flat) - AGGSTATE_FLAT_HDRSZ;
		ser = palloc(VARHDRSZ + len);
		SET_VARSIZE(ser, VARHDRSZ + len);
		memcpy(VARDATA(ser), (char *) flat + AGGSTATE_FLAT_HDRSZ, len);
	}
	return DatumGetPointer(AggStateCallSerial(AggStateKinds[kind].deserialize,
											  PointerGetDatum(ser), cxt));
}

/*
 * The in-memory state of argument argno, to be updated: the expanded
 * value itself when this aggregate context owns it (*owner set), else a
 * rebuilt copy in aggcxt (*owner NULL).  NULL for a NULL argument.
 */
static void *
AggStateForUpdate(FunctionCallInfo fcinfo, int argno, int32 kind, MemoryContext aggcxt,
				  AggStateExpanded **owner)
{
	Datum		d = fcinfo->args[argno].value;
	AggStateExpanded *es;

	*owner = NULL;
	if (fcinfo->args[argno].isnull)
		return NULL;
	es = AggStateExpandedOf(d, kind);
	if (es != NULL && VARATT_IS_EXTERNAL_EXPANDED_RW(DatumGetPointer(d)) &&
		MemoryContextGetParent(es->hdr.eoh_context) == aggcxt)
	{
		*owner = es;
		return es->state;
	}
	return AggStateRebuild(d, kind, aggcxt);
}

/* The in-memory state of argument argno, only read (NULL for NULL). */
static void *
AggStateForRead(FunctionCallInfo fcinfo, int argno, int32 kind, MemoryContext cxt)
{
	AggStateExpanded *es;

	if (fcinfo->args[argno].isnull)
		return NULL;
	es = AggStateExpandedOf(fcinfo->args[argno].value, kind);
	if (es != NULL)
		return es->state;
	return AggStateRebuild(fcinfo->args[argno].value, kind, cxt);
}

/*
 * Transition or combine through an existing internal-state function: the
 * state in argument 0 (and for a combine the other state in argument 1)
 * unwrapped, the result wrapped; the same expanded value comes back once
 * it exists, so nodeAgg does not copy it.
 */
static Datum
AggStateAdvance(FunctionCallInfo fcinfo, PGFunction inner, int32 kind, bool combine,
				const char *fname)
{
	MemoryContext aggcxt = ChurnAggContext(fcinfo, fname);
	NullableDatum saved0 = fcinfo->args[0];
	NullableDatum saved1 = fcinfo->args[1];
	AggStateExpanded *es;
	void	   *st;
	Datum		result;

	st = AggStateForUpdate(fcinfo, 0, kind, aggcxt, &es);
	if (combine)
	{
		/* the other state is read, or adopted: rebuild it where it may live on */
		void	   *other = AggStateForRead(fcinfo, 1, kind, aggcxt);

		fcinfo->args[1].value = PointerGetDatum(other);
	}
	fcinfo->args[0].value = PointerGetDatum(st);
	fcinfo->args[0].isnull = (st == NULL);
	result = inner(fcinfo);
	fcinfo->args[0] = saved0;
	fcinfo->args[1] = saved1;
	if (fcinfo->isnull)
		return (Datum) 0;
	if (es == NULL)
		es = AggStateWrap(kind, DatumGetPointer(result), aggcxt);
	else
	{
		es->state = DatumGetPointer(result);
		AggStateForgetFlat(es);
	}
	return EOHPGetRWDatum(&es->hdr);
}

/* Final function through an existing internal-state one. */
static Datum
AggStateFinish(FunctionCallInfo fcinfo, PGFunction inner, int32 kind)
{
	NullableDatum saved0 = fcinfo->args[0];
	AggStateExpanded *es = NULL;
	void	   *st = NULL;
	Datum		result;

	if (!fcinfo->args[0].isnull)
	{
		es = AggStateExpandedOf(saved0.value, kind);
		st = es != NULL ? es->state : AggStateRebuild(saved0.value, kind, CurrentMemoryContext);
	}
	fcinfo->args[0].value = PointerGetDatum(st);
	fcinfo->args[0].isnull = (st == NULL);
	result = inner(fcinfo);
	fcinfo->args[0] = saved0;
	/* a READ_WRITE final function (rfm_cuts sorts) may have changed the state */
	if (es != NULL)
		AggStateForgetFlat(es);
	return result;
}

/*
 * SQL-callable wrappers: <existing function>_state, the churn.agg_state
 * overload of the existing SQL function (CONTRIBUTING: an overload with a
 * C function of its own is <sqlname>_<variant>).
 */
#define AGGSTATE_TRANS(sym, inner, kind) \
	PG_FUNCTION_INFO_V1(sym); \
	Datum sym(PG_FUNCTION_ARGS) { return AggStateAdvance(fcinfo, inner, kind, false, #inner); } \
	extern int	no_such_variable
#define AGGSTATE_COMBINE(sym, inner, kind) \
	PG_FUNCTION_INFO_V1(sym); \
	Datum sym(PG_FUNCTION_ARGS) { return AggStateAdvance(fcinfo, inner, kind, true, #inner); } \
	extern int	no_such_variable
#define AGGSTATE_FINAL(sym, inner, kind) \
	PG_FUNCTION_INFO_V1(sym); \
	Datum sym(PG_FUNCTION_ARGS) { return AggStateFinish(fcinfo, inner, kind); } \
	extern int	no_such_variable

/* bgnbd_fit, pnbd_fit, gg_fit */
AGGSTATE_TRANS(rft_fit_trans_state, rft_fit_trans, AGGSTATE_PROB);
AGGSTATE_TRANS(gg_fit_trans_state, gg_fit_trans, AGGSTATE_PROB);
AGGSTATE_COMBINE(prob_fit_combine_state, prob_fit_combine, AGGSTATE_PROB);
AGGSTATE_FINAL(bgnbd_fit_final_state, bgnbd_fit_final, AGGSTATE_PROB);
AGGSTATE_FINAL(pnbd_fit_final_state, pnbd_fit_final, AGGSTATE_PROB);
AGGSTATE_FINAL(gg_fit_final_state, gg_fit_final, AGGSTATE_PROB);

/* rfm_cuts */
AGGSTATE_TRANS(rfm_cuts_trans_state, rfm_cuts_trans, AGGSTATE_RFM);
AGGSTATE_COMBINE(rfm_cuts_combine_state, rfm_cuts_combine, AGGSTATE_RFM);
AGGSTATE_FINAL(rfm_cuts_final_state, rfm_cuts_final, AGGSTATE_RFM);

/* logit_fit */
AGGSTATE_TRANS(logit_fit_trans_state, logit_fit_trans, AGGSTATE_LOGIT);
AGGSTATE_TRANS(logit_fit_trans_l2_state, logit_fit_trans_l2, AGGSTATE_LOGIT);
AGGSTATE_COMBINE(logit_fit_combine_state, logit_fit_combine, AGGSTATE_LOGIT);
AGGSTATE_FINAL(logit_fit_final_state, logit_fit_final, AGGSTATE_LOGIT);

/* auc, lift */
AGGSTATE_TRANS(eval_rank_trans_state, eval_rank_trans, AGGSTATE_RANK);
AGGSTATE_COMBINE(eval_rank_combine_state, eval_rank_combine, AGGSTATE_RANK);
AGGSTATE_FINAL(eval_auc_final_state, eval_auc_final, AGGSTATE_RANK);
AGGSTATE_FINAL(eval_lift_final_state, eval_lift_final, AGGSTATE_RANK);

/* log_loss, brier */
AGGSTATE_TRANS(eval_logloss_trans_state, eval_logloss_trans, AGGSTATE_MEAN);
AGGSTATE_TRANS(eval_brier_trans_state, eval_brier_trans, AGGSTATE_MEAN);
AGGSTATE_COMBINE(eval_mean_combine_state, eval_mean_combine, AGGSTATE_MEAN);
AGGSTATE_FINAL(eval_mean_final_state, eval_mean_final, AGGSTATE_MEAN);

/* calibration */
AGGSTATE_TRANS(eval_calib_trans_state, eval_calib_trans, AGGSTATE_CALIB);
AGGSTATE_COMBINE(eval_calib_combine_state, eval_calib_combine, AGGSTATE_CALIB);
AGGSTATE_FINAL(eval_calib_final_state, eval_calib_final, AGGSTATE_CALIB);

PG_FUNCTION_INFO_V1(agg_state_in);
PG_FUNCTION_INFO_V1(agg_state_out);

/* Text input "<kind>:<hex>" (what agg_state_out prints) to the flat form. */
Datum
agg_state_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	const char *colon = strchr(str, ':');
	size_t		hexlen;
	AggStateFlat *f;
	int32		kind = -1;

	if (colon != NULL)
		for (int k = 0; k < AGGSTATE_NKINDS; k++)
			if (strlen(AggStateKinds[k].name) == (size_t) (colon - str) &&
				strncmp(str, AggStateKinds[k].name, colon - str) == 0)
				kind = k;
	if (kind < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type churn.agg_state"),
				 errdetail("The value must start with a state kind and a colon, e.g. \"prob_fit:\".")));
	hexlen = strlen(colon + 1);
	if (hexlen % 2 != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type churn.agg_state"),
				 errdetail("The hexadecimal part has an odd number of digits.")));
	f = palloc(AGGSTATE_FLAT_HDRSZ + hexlen / 2);
	SET_VARSIZE(f, AGGSTATE_FLAT_HDRSZ + hexlen / 2);
	f->kind = kind;
	(void) hex_decode(colon + 1, hexlen, (char *) f + AGGSTATE_FLAT_HDRSZ);
	PG_RETURN_POINTER(f);
}

/* Text output "<kind>:<hex of the serialized state>". */
Datum
agg_state_out(PG_FUNCTION_ARGS)
{
	Datum		d = PG_GETARG_DATUM(0);
	AggStateExpanded *es = NULL;
	const char *bytes;
	Size		len;
	int32		kind;
	char	   *out;
	size_t		namelen;

	if (VARATT_IS_EXTERNAL_EXPANDED(DatumGetPointer(d)))
	{
		es = (AggStateExpanded *) DatumGetEOHP(d);
		if (es->hdr.eoh_methods != &AggStateMethods)
			elog(ERROR, "expanded value is not a churn.agg_state");
		kind = es->kind;
		bytes = VARDATA_ANY(AggStateSerialized(es));
		len = VARSIZE_ANY_EXHDR(AggStateSerialized(es));
	}
	else
	{
		AggStateFlat *f = (AggStateFlat *) PG_DETOAST_DATUM(d);

		if (VARSIZE(f) < AGGSTATE_FLAT_HDRSZ || f->kind < 0 || f->kind >= AGGSTATE_NKINDS)
			elog(ERROR, "invalid churn.agg_state value");
		kind = f->kind;
		bytes = (const char *) f + AGGSTATE_FLAT_HDRSZ;
		len = VARSIZE(f) - AGGSTATE_FLAT_HDRSZ;
	}
	if (len > (MaxAllocSize - 64) / 2)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("aggregate state too large for its text form"),
				 errdetail("The state has %zu bytes.", (size_t) len)));
	namelen = strlen(AggStateKinds[kind].name);
	out = palloc(namelen + 1 + 2 * len + 1);
	memcpy(out, AggStateKinds[kind].name, namelen);
	out[namelen] = ':';
	out[namelen + 1 + hex_encode(bytes, len, out + namelen + 1)] = '\0';
	PG_RETURN_CSTRING(out);
}
