/*-------------------------------------------------------------------------
 *
 * capture.c
 *	  The capture trigger of a pipeline source, and the column types a
 *	  pipeline accepts.
 *
 * The trigger runs inside the transaction of whoever writes the source, so
 * it must not run anything that user could steer with the extension's
 * rights.  Its rules:
 *
 *	- Values are converted in C, with PostgreSQL's own functions for a short
 *	  list of built-in types (PipelineCheckColumns).  No cast, operator,
 *	  domain check or output function that a user created is ever called:
 *	  casts are looked up by type, not by search_path, so converting a
 *	  user's type in SQL would run that user's code.
 *	- A column whose type is no longer on the list (ALTER TABLE ... TYPE)
 *	  makes the write fail with a clear error instead.
 *	- No SQL runs at all: the pipeline row is read directly through its
 *	  primary key, and the captured rows are kept in memory and written to
 *	  the queue by C code just before the transaction commits, in that
 *	  transaction (capture_queue.c).  So no role switch is needed and
 *	  nothing the writer defines (search_path, operators, triggers on the
 *	  queue) takes part.
 *
 * It serves both relations of a pipeline: the purchase source (trigger
 * argument: the pipeline id) and, from 0.3.0, the optional events relation
 * (arguments: the pipeline id and 'events').  An INSERT queues (customer,
 * local day, amount, store) rows into churn.pipeline_queue, or (customer, local
 * day, kind, rating) rows into churn.pipeline_event_queue; an UPDATE that
 * changes the multiset of those rows, a DELETE of any row and a TRUNCATE
 * queue a request to re-read that whole relation.  Events are queued as
 * they are: the refresh sorts out the ones it skips and counts them
 * (pipeline_event_check), so that no captured row disappears uncounted.
 *
 *-------------------------------------------------------------------------
 */
#include "pipeline.h"
#include "capture.h"
#include "engagement.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/transam.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(pipeline_capture);
PG_FUNCTION_INFO_V1(pipeline_config_changed);
PG_FUNCTION_INFO_V1(pipeline_check_columns);
PG_FUNCTION_INFO_V1(pipeline_check_event_columns);
PG_FUNCTION_INFO_V1(pipeline_event_check);
PG_FUNCTION_INFO_V1(pipeline_check_store_column);

/* Reads source rows and converts them; set up once per statement. */
typedef struct CaptureReader
{
	AttrNumber	customer_att;
	AttrNumber	ts_att;
	AttrNumber	kind_att;		/* events: the kind; purchases: the store or InvalidAttrNumber */
	AttrNumber	value_att;		/* amount or rating */
	Oid			customer_type;
	Oid			ts_type;
	Oid			kind_type;
	Oid			value_type;
	FmgrInfo	customer_out;
	FmgrInfo	kind_out;
	text	   *time_zone;
} CaptureReader;

/* Is the type in the list? */
static bool
TypeIn(Oid type, const Oid *list, int n)
{
	for (int i = 0; i < n; i++)
		if (list[i] == type)
			return true;
	return false;
}

static const Oid CustomerTypes[] = {TEXTOID, VARCHAROID, BPCHAROID, NAMEOID, INT2OID, INT4OID,
INT8OID, NUMERICOID, UUIDOID};
static const Oid TimestampTypes[] = {DATEOID, TIMESTAMPOID, TIMESTAMPTZOID};
static const Oid AmountTypes[] = {INT2OID, INT4OID, INT8OID, NUMERICOID, FLOAT4OID, FLOAT8OID};
static const Oid KindTypes[] = {TEXTOID, VARCHAROID, BPCHAROID, NAMEOID};

#define CUSTOMER_TYPES "text, varchar, char, name, smallint, integer, bigint, numeric or uuid"
#define TIMESTAMP_TYPES "date, timestamp or timestamptz"
#define NUMBER_TYPES "smallint, integer, bigint, numeric, real or double precision"
#define SOURCE_COLUMNS_HINT "Name the columns with customer_col, ts_col and amount_col."
#define EVENT_COLUMNS_HINT "Name the columns with event_customer_col, event_ts_col, event_kind_col and event_rating_col."

/* The schema-qualified name of a relation, for messages. */
static char *
RelationName(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
}

/* Find a column of a relation and raise the pipeline's error when it is missing or of a refused type. */
static AttrNumber
CheckColumn(Oid relid, const char *col, const char *role, const Oid *types, int ntypes,
			const char *expected, const char *hint, Oid *type)
{
	AttrNumber	att = get_attnum(relid, col);

	if (att == InvalidAttrNumber || att < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" does not exist in %s", col, RelationName(relid)),
				 errhint("%s", hint)));
	*type = get_atttype(relid, att);
	if (!TypeIn(*type, types, ntypes))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s column \"%s\" of %s has type %s, expected %s",
						role, col, RelationName(relid), *type >= FirstNormalObjectId ? format_type_be_qualified(*type) : format_type_be(*type), expected),
				 errdetail("A pipeline converts its source's values only with built-in types, so that no user-defined cast or function runs inside it."),
				 errhint("Point the pipeline at a view that casts the column to one of those types.")));
	return att;
}

/* The kind of a checked time column; an error when it differs from the kind recorded (ts_kind). */
static const char *
CheckTimeKind(Oid relid, const char *ts_col, const char *role, Oid ts_type, const char *ts_kind)
{
	const char *kind = ts_type == DATEOID ? "date" : ts_type == TIMESTAMPOID ? "timestamp" : "timestamptz";

	if (ts_kind != NULL && strcmp(kind, ts_kind) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s column \"%s\" of %s is now of type %s, not %s as when the pipeline was set up",
						role, ts_col, RelationName(relid), format_type_be(ts_type), ts_kind),
				 errhint("Set the pipeline's columns again with churn.alter_pipeline.")));
	return kind;
}

/*
 * Check the three columns of a pipeline source and set up their reader: the customer a built-in
 * text, integer, numeric or uuid type; the time a date, timestamp or
 * timestamptz; the amount a built-in number type.  Returns the time
 * column's kind ("date", "timestamp" or "timestamptz").
 */
static const char *
CaptureCheckColumns(Oid relid, const char *customer_col, const char *ts_col,
					const char *amount_col, const char *ts_kind, CaptureReader *reader)
{
	reader->customer_att = CheckColumn(relid, customer_col, "customer", CustomerTypes,
									   lengthof(CustomerTypes), CUSTOMER_TYPES, SOURCE_COLUMNS_HINT,
									   &reader->customer_type);
	reader->ts_att = CheckColumn(relid, ts_col, "time", TimestampTypes, lengthof(TimestampTypes),
								 TIMESTAMP_TYPES, SOURCE_COLUMNS_HINT, &reader->ts_type);
	reader->value_att = CheckColumn(relid, amount_col, "amount", AmountTypes, lengthof(AmountTypes),
									NUMBER_TYPES, SOURCE_COLUMNS_HINT, &reader->value_type);
	reader->kind_att = InvalidAttrNumber;
	reader->kind_type = InvalidOid;
	return CheckTimeKind(relid, ts_col, "time", reader->ts_type, ts_kind);
}

/*
 * Check a pipeline source's store column (compared as text, so any type
 * the customer column may have) and set it up as the reader's kind.
 */
static void
CaptureCheckStoreColumn(Oid relid, const char *store_col, CaptureReader *reader)
{
	reader->kind_att = CheckColumn(relid, store_col, "store", CustomerTypes, lengthof(CustomerTypes),
								   CUSTOMER_TYPES, "Name the store column with store_col.", &reader->kind_type);
}

/* Check a pipeline source's store column (see CaptureCheckStoreColumn). */
void
PipelineCheckStoreColumn(Oid relid, const char *store_col)
{
	CaptureReader reader;

	CaptureCheckStoreColumn(relid, store_col, &reader);
}

/*
 * Check the four columns of a pipeline's events relation and set up their
 * reader: customer and time as for the source, the kind a built-in text
 * type, the rating a built-in number type.  Returns the time column's kind.
 */
static const char *
CaptureCheckEventColumns(Oid relid, const char *customer_col, const char *ts_col, const char *kind_col,
						 const char *rating_col, const char *ts_kind, CaptureReader *reader)
{
	reader->customer_att = CheckColumn(relid, customer_col, "event customer", CustomerTypes,
									   lengthof(CustomerTypes), CUSTOMER_TYPES, EVENT_COLUMNS_HINT,
									   &reader->customer_type);
	reader->ts_att = CheckColumn(relid, ts_col, "event time", TimestampTypes, lengthof(TimestampTypes),
								 TIMESTAMP_TYPES, EVENT_COLUMNS_HINT, &reader->ts_type);
	reader->kind_att = CheckColumn(relid, kind_col, "event kind", KindTypes, lengthof(KindTypes),
								   "text, varchar, char or name", EVENT_COLUMNS_HINT, &reader->kind_type);
	reader->value_att = CheckColumn(relid, rating_col, "event rating", AmountTypes, lengthof(AmountTypes),
									NUMBER_TYPES, EVENT_COLUMNS_HINT, &reader->value_type);
	return CheckTimeKind(relid, ts_col, "event time", reader->ts_type, ts_kind);
}

/*
 * Check a pipeline source's columns (see CaptureCheckColumns); ts_kind,
 * when given, is the kind recorded for the pipeline.  Returns the kind.
 */
const char *
PipelineCheckColumns(Oid relid, const char *customer_col, const char *ts_col,
					 const char *amount_col, const char *ts_kind)
{
	CaptureReader reader;

	return CaptureCheckColumns(relid, customer_col, ts_col, amount_col, ts_kind, &reader);
}

/*
 * churn.pipeline_check_columns(source, customer_col, ts_col, amount_col,
 * ts_kind): the time column's kind, or an error; ts_kind NULL skips the
 * comparison with the kind recorded for a pipeline.
 */
Datum
pipeline_check_columns(PG_FUNCTION_ARGS)
{
	Oid			relid;

	for (int i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the source and its column names must not be NULL")));
	relid = PG_GETARG_OID(0);
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	PG_RETURN_TEXT_P(cstring_to_text(PipelineCheckColumns(relid,
														  NameStr(*PG_GETARG_NAME(1)),
														  NameStr(*PG_GETARG_NAME(2)),
														  NameStr(*PG_GETARG_NAME(3)),
														  PG_ARGISNULL(4) ? NULL :
														  text_to_cstring(PG_GETARG_TEXT_PP(4)))));
}

/*
 * Check the columns of a pipeline's events relation (see
 * CaptureCheckEventColumns); ts_kind, when given, is the kind recorded for
 * the pipeline.  Returns the kind.
 */
const char *
PipelineCheckEventColumns(Oid relid, const char *customer_col, const char *ts_col, const char *kind_col,
						  const char *rating_col, const char *ts_kind)
{
	CaptureReader reader;

	return CaptureCheckEventColumns(relid, customer_col, ts_col, kind_col, rating_col, ts_kind, &reader);
}

/*
 * churn.pipeline_check_event_columns(events, customer_col, ts_col,
 * kind_col, rating_col, ts_kind): the time column's kind, or an error;
 * ts_kind NULL skips the comparison with the kind recorded for a pipeline.
 */
Datum
pipeline_check_event_columns(PG_FUNCTION_ARGS)
{
	Oid			relid;

	for (int i = 0; i < 5; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the events relation and its column names must not be NULL")));
	relid = PG_GETARG_OID(0);
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	PG_RETURN_TEXT_P(cstring_to_text(PipelineCheckEventColumns(relid,
															   NameStr(*PG_GETARG_NAME(1)),
															   NameStr(*PG_GETARG_NAME(2)),
															   NameStr(*PG_GETARG_NAME(3)),
															   NameStr(*PG_GETARG_NAME(4)),
															   PG_ARGISNULL(5) ? NULL :
															   text_to_cstring(PG_GETARG_TEXT_PP(5)))));
}

/*
 * churn.pipeline_event_check(day, kind, rating): the event's kind as
 * churn.engagement_agg names it when a refresh keeps the event, NULL when
 * it skips (and counts) it: no kind or an unknown one, a rating on a kind
 * other than review, a rating outside 1-5 or NaN, a day that is infinite or
 * beyond what a timestamp holds.
 */
Datum
pipeline_event_check(PG_FUNCTION_ARGS)
{
	DateADT		day;
	text	   *kind;
	int			code;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	day = PG_GETARG_DATEADT(0);
	/* a day away from both ends of the timestamp range, in any time zone */
	if (DATE_NOT_FINITE(day) || day <= DATETIME_MIN_JULIAN - POSTGRES_EPOCH_JDATE ||
		day >= TIMESTAMP_END_JULIAN - POSTGRES_EPOCH_JDATE - 1)
		PG_RETURN_NULL();
	kind = PG_GETARG_TEXT_PP(1);
	code = EngagementEventCode(VARDATA_ANY(kind), VARSIZE_ANY_EXHDR(kind), !PG_ARGISNULL(2),
							   PG_ARGISNULL(2) ? 0 : PG_GETARG_FLOAT8(2));
	if (code < 0)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(EngagementKindNames[code]));
}

/* A text value of a built-in type; char(n) loses its padding, as the cast to text does. */
static char *
CaptureText(FmgrInfo *out, Oid type, Datum d)
{
	char	   *s = OutputFunctionCall(out, d);

	if (type == BPCHAROID)
	{
		int			len = strlen(s);

		while (len > 0 && s[len - 1] == ' ')
			len--;
		s[len] = '\0';
	}
	return s;
}

/* A value of a built-in number type as float8. */
static float8
CaptureNumber(Oid type, Datum d)
{
	switch (type)
	{
		case INT2OID:
			return (float8) DatumGetInt16(d);
		case INT4OID:
			return (float8) DatumGetInt32(d);
		case INT8OID:
			return (float8) DatumGetInt64(d);
		case FLOAT4OID:
			return (float8) DatumGetFloat4(d);
		case FLOAT8OID:
			return DatumGetFloat8(d);
		default:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
	}
}

/* Convert one source row with built-in functions only. */
static void
CaptureConvert(CaptureReader *rd, TupleTableSlot *slot, CaptureRow *row)
{
	bool		isnull;
	Datum		d;

	d = slot_getattr(slot, rd->customer_att, &isnull);
	row->customer = isnull ? NULL : CaptureText(&rd->customer_out, rd->customer_type, d);

	d = slot_getattr(slot, rd->ts_att, &row->day_null);
	row->day = 0;
	if (!row->day_null)
	{
		if (rd->ts_type == TIMESTAMPTZOID)
			d = DirectFunctionCall2(timestamptz_zone, PointerGetDatum(rd->time_zone), d);
		if (rd->ts_type != DATEOID)
			d = DirectFunctionCall1(timestamp_date, d);
		row->day = DatumGetDateADT(d);
	}

	row->kind = NULL;
	if (rd->kind_att != InvalidAttrNumber)
	{
		d = slot_getattr(slot, rd->kind_att, &isnull);
		if (!isnull)
			row->kind = CaptureText(&rd->kind_out, rd->kind_type, d);
	}

	d = slot_getattr(slot, rd->value_att, &row->value_null);
	row->value = row->value_null ? 0 : CaptureNumber(rd->value_type, d);
}

/* Start reading a transition table from its beginning with a read pointer of our own. */
static void
CaptureRewind(Tuplestorestate *store)
{
	int			ptr = tuplestore_alloc_read_pointer(store, EXEC_FLAG_REWIND);

	tuplestore_select_read_pointer(store, ptr);
	tuplestore_rescan(store);
}

/* Keep the purchases or events of an INSERT for the queue (written at commit). */
static void
CaptureInserted(int32 pipeline_id, CaptureStream stream, Oid relid, CaptureReader *rd,
				Tuplestorestate *store, TupleDesc desc)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	MemoryContext row_cxt = AllocSetContextCreate(CurrentMemoryContext, "churn capture row",
												  ALLOCSET_SMALL_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(row_cxt);

	CaptureRewind(store);
	while (tuplestore_gettupleslot(store, true, false, slot))
	{
		CaptureRow	row;

		CHECK_FOR_INTERRUPTS();
		CaptureConvert(rd, slot, &row);
		/* rows without a customer or a time too: the refresh rejects them */
		CaptureBufferRow(pipeline_id, stream, relid, &row);
		MemoryContextReset(row_cxt);
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(row_cxt);
	ExecDropSingleTupleTableSlot(slot);
}

/* Order of two optional strings, NULL first; *decided is set when they differ. */
static int
CompareOptionalText(const char *x, const char *y, bool *decided)
{
	int			c;

	*decided = true;
	if ((x == NULL) != (y == NULL))
		return x == NULL ? -1 : 1;
	if (x != NULL && (c = strcmp(x, y)) != 0)
		return c;
	*decided = false;
	return 0;
}

/* Order of reduced rows, NULLs first in each field. */
static int
CaptureRowCompare(const void *a, const void *b)
{
	const CaptureRow *x = (const CaptureRow *) a;
	const CaptureRow *y = (const CaptureRow *) b;
	bool		decided;
	int			c;

	c = CompareOptionalText(x->customer, y->customer, &decided);
	if (decided)
		return c;
	if (x->day_null != y->day_null)
		return x->day_null ? -1 : 1;
	if (!x->day_null && x->day != y->day)
		return x->day < y->day ? -1 : 1;
	c = CompareOptionalText(x->kind, y->kind, &decided);
	if (decided)
		return c;
	if (x->value_null != y->value_null)
		return x->value_null ? -1 : 1;
	if (x->value_null)
		return 0;
	return float8_cmp_internal(x->value, y->value);
}

/* All rows of a transition table, reduced and sorted; *n gets their number. */
static CaptureRow *
CaptureSortedRows(CaptureReader *rd, Tuplestorestate *store, TupleDesc desc, int64 *n)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	int64		cap = 64;
	CaptureRow *rows = palloc(cap * sizeof(CaptureRow));

	*n = 0;
	CaptureRewind(store);
	while (tuplestore_gettupleslot(store, true, false, slot))
	{
		CHECK_FOR_INTERRUPTS();
		if (*n == cap)
		{
			cap *= 2;
			rows = repalloc_huge(rows, cap * sizeof(CaptureRow));
		}
		CaptureConvert(rd, slot, &rows[(*n)++]);
	}
	ExecDropSingleTupleTableSlot(slot);
	qsort(rows, *n, sizeof(CaptureRow), CaptureRowCompare);
	return rows;
}

/* Does an UPDATE change any purchase or event (any of the fields a pipeline keeps)? */
static bool
CaptureUpdateChanges(CaptureReader *rd, TriggerData *trig, TupleDesc desc)
{
	int64		nold;
	int64		nnew;
	CaptureRow *old = CaptureSortedRows(rd, trig->tg_oldtable, desc, &nold);
	CaptureRow *new = CaptureSortedRows(rd, trig->tg_newtable, desc, &nnew);

	if (nold != nnew)
		return true;
	for (int64 i = 0; i < nold; i++)
		if (CaptureRowCompare(&old[i], &new[i]) != 0)
			return true;
	return false;
}

/* The stream a capture trigger serves, from its arguments; an error for a trigger not made by a pipeline. */
static CaptureStream
CaptureTriggerStream(FunctionCallInfo fcinfo)
{
	TriggerData *trig = (TriggerData *) fcinfo->context;
	int			nargs;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trig->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trig->tg_event))
		nargs = -1;
	else
		nargs = trig->tg_trigger->tgnargs;
	if (nargs == 2 && strcmp(trig->tg_trigger->tgargs[1], "events") == 0)
		return CAPTURE_EVENTS;
	if (nargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("churn.pipeline_capture is installed by churn.create_pipeline only")));
	return CAPTURE_PURCHASES;
}

/* Check the columns of the relation a trigger serves and set up their reader. */
static void
CaptureSetUp(CaptureConfig *cfg, CaptureStream stream, Oid relid, CaptureReader *rd)
{
	Oid			outfunc;
	bool		varlena;

	memset(rd, 0, sizeof(*rd));
	if (stream == CAPTURE_PURCHASES)
	{
		(void) CaptureCheckColumns(relid, cfg->customer_col, cfg->ts_col, cfg->amount_col, cfg->ts_kind, rd);
		if (cfg->store_col != NULL)
		{
			CaptureCheckStoreColumn(relid, cfg->store_col, rd);
			getTypeOutputInfo(rd->kind_type, &outfunc, &varlena);
			fmgr_info(outfunc, &rd->kind_out);
		}
	}
	else
	{
		(void) CaptureCheckEventColumns(relid, cfg->event_customer_col, cfg->event_ts_col,
										cfg->event_kind_col, cfg->event_rating_col, cfg->event_ts_kind, rd);
		getTypeOutputInfo(rd->kind_type, &outfunc, &varlena);
		fmgr_info(outfunc, &rd->kind_out);
	}
	/* built-in types only (checked above): their output functions are built-in */
	getTypeOutputInfo(rd->customer_type, &outfunc, &varlena);
	fmgr_info(outfunc, &rd->customer_out);
	rd->time_zone = cstring_to_text(cfg->time_zone);
}

/*
 * The statement trigger on a pipeline source or events relation (installed
 * by churn.create_pipeline; its arguments are the pipeline id, and
 * 'events' on the events relation).  It runs no SQL: what it captures is
 * written to the queue when the transaction commits (capture_queue.c).
 */
Datum
pipeline_capture(PG_FUNCTION_ARGS)
{
	TriggerData *trig = (TriggerData *) fcinfo->context;
	CaptureStream stream = CaptureTriggerStream(fcinfo);
	TriggerEvent ev = trig->tg_event;
	Oid			relid = RelationGetRelid(trig->tg_relation);
	TupleDesc	desc = RelationGetDescr(trig->tg_relation);
	int32		pipeline_id = pg_strtoint32(trig->tg_trigger->tgargs[0]);
	CaptureCacheEntry *ce;
	CaptureReader *rd;
	bool		rebuild = false;

	ce = CaptureCacheLookup(pipeline_id, stream, relid);
	if (!ce->serves)
		return PointerGetDatum(NULL);

	if (TRIGGER_FIRED_BY_TRUNCATE(ev))
		rebuild = true;
	else
	{
		if (ce->reader == NULL)
		{
			MemoryContext oldcxt = MemoryContextSwitchTo(CaptureCacheContext());

			rd = palloc(sizeof(CaptureReader));
			CaptureSetUp(&ce->cfg, stream, relid, rd);
			ce->reader = rd;
			MemoryContextSwitchTo(oldcxt);
		}
		rd = (CaptureReader *) ce->reader;
		if (TRIGGER_FIRED_BY_INSERT(ev))
			CaptureInserted(pipeline_id, stream, relid, rd, trig->tg_newtable, desc);
		else if (TRIGGER_FIRED_BY_DELETE(ev))
		{
			TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);

			CaptureRewind(trig->tg_oldtable);
			rebuild = tuplestore_gettupleslot(trig->tg_oldtable, true, false, slot);
			ExecDropSingleTupleTableSlot(slot);
		}
		else if (TRIGGER_FIRED_BY_UPDATE(ev))
			rebuild = CaptureUpdateChanges(rd, trig, desc);
	}
	if (rebuild)
		CaptureBufferRebuild(pipeline_id, stream, relid);
	return PointerGetDatum(NULL);
}

/*
 * The statement trigger on churn.pipeline: every change of it reaches the
 * capture triggers' caches (in this backend at the next command, in the
 * others once committed) as a relcache invalidation of the empty table
 * churn.pipeline_capture_signal (one of churn.pipeline itself would make
 * every cached plan that reads it be planned again).
 */
Datum
pipeline_config_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("churn.pipeline_config_changed is a trigger function")));
	CaptureSignalConfigChange();
	return PointerGetDatum(NULL);
}

/* churn.pipeline_check_store_column(source, store_col): an error unless the store column is usable. */
Datum
pipeline_check_store_column(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);

	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	PipelineCheckStoreColumn(relid, NameStr(*PG_GETARG_NAME(1)));
	PG_RETURN_VOID();
}
