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
 *	- Only the two statements that read the pipeline row and write the
 *	  queue run as the extension's owner, with plain values as parameters,
 *	  a fixed search_path and inside a security-restricted operation.
 *
 * An INSERT queues (customer, local day, amount) rows; an UPDATE that
 * changes the multiset of those rows, a DELETE of any row and a TRUNCATE
 * queue a request to re-read the whole source.
 *
 *-------------------------------------------------------------------------
 */
#include "pipeline.h"

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
PG_FUNCTION_INFO_V1(pipeline_check_columns);

/* Rows queued with one INSERT statement at most. */
#define CAPTURE_BATCH_ROWS 10000

/* The pipeline row as the trigger needs it. */
typedef struct CaptureConfig
{
	bool		found;
	Oid			source;
	char	   *customer_col;
	char	   *ts_col;
	char	   *amount_col;
	char	   *ts_kind;
	char	   *time_zone;
	bool		trigger_capture;
} CaptureConfig;

/* One source row reduced to what a pipeline keeps. */
typedef struct CaptureRow
{
	char	   *customer;		/* NULL when the customer is NULL */
	bool		day_null;
	DateADT		day;
	bool		amount_null;
	float8		amount;
} CaptureRow;

/* Reads source rows and converts them; set up once per statement. */
typedef struct CaptureReader
{
	AttrNumber	customer_att;
	AttrNumber	ts_att;
	AttrNumber	amount_att;
	Oid			customer_type;
	Oid			ts_type;
	Oid			amount_type;
	FmgrInfo	customer_out;
	text	   *time_zone;
} CaptureReader;

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

/* The schema-qualified name of a relation, for messages. */
static char *
RelationName(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
}

/* Find a column of a relation and raise the pipeline's error when it is missing or of a refused type. */
static AttrNumber
CheckColumn(Oid relid, const char *col, const char *role, const Oid *types, int ntypes,
			const char *expected, Oid *type)
{
	AttrNumber	att = get_attnum(relid, col);

	if (att == InvalidAttrNumber || att < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" does not exist in %s", col, RelationName(relid)),
				 errhint("Name the columns with customer_col, ts_col and amount_col.")));
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
	const char *kind;

	reader->customer_att = CheckColumn(relid, customer_col, "customer", CustomerTypes,
									   lengthof(CustomerTypes),
									   "text, varchar, char, name, smallint, integer, bigint, numeric or uuid",
									   &reader->customer_type);
	reader->ts_att = CheckColumn(relid, ts_col, "time", TimestampTypes, lengthof(TimestampTypes),
								 "date, timestamp or timestamptz", &reader->ts_type);
	reader->amount_att = CheckColumn(relid, amount_col, "amount", AmountTypes, lengthof(AmountTypes),
									 "smallint, integer, bigint, numeric, real or double precision",
									 &reader->amount_type);
	kind = reader->ts_type == DATEOID ? "date" :
		reader->ts_type == TIMESTAMPOID ? "timestamp" : "timestamptz";
	if (ts_kind != NULL && strcmp(kind, ts_kind) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("time column \"%s\" of %s is now of type %s, not %s as when the pipeline was set up",
						ts_col, RelationName(relid), format_type_be(reader->ts_type), ts_kind),
				 errhint("Set the pipeline's columns again with churn.alter_pipeline.")));
	return kind;
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

/* Read the pipeline's row as the extension's owner. */
static CaptureConfig
CaptureLoadConfig(int32 pipeline_id)
{
	CaptureConfig cfg;
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(pipeline_id)};
	ChurnPrivilegeSwitch sw;

	memset(&cfg, 0, sizeof(cfg));
	ChurnBecomeExtensionOwner(&sw);
	if (SPI_execute_with_args("SELECT source::pg_catalog.oid, customer_col::pg_catalog.text, "
							  "ts_col::pg_catalog.text, amount_col::pg_catalog.text, ts_kind, time_zone, "
							  "capture OPERATOR(pg_catalog.=) 'trigger' "
							  "FROM churn.pipeline WHERE pipeline_id OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "pipeline look-up failed");
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		cfg.found = true;
		cfg.source = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		cfg.customer_col = SPI_getvalue(tup, desc, 2);
		cfg.ts_col = SPI_getvalue(tup, desc, 3);
		cfg.amount_col = SPI_getvalue(tup, desc, 4);
		cfg.ts_kind = SPI_getvalue(tup, desc, 5);
		cfg.time_zone = SPI_getvalue(tup, desc, 6);
		cfg.trigger_capture = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
	}
	ChurnRestorePrivileges(&sw);
	return cfg;
}

/* Convert one source row with built-in functions only. */
static void
CaptureConvert(CaptureReader *rd, TupleTableSlot *slot, CaptureRow *row)
{
	bool		isnull;
	Datum		d;

	d = slot_getattr(slot, rd->customer_att, &isnull);
	row->customer = NULL;
	if (!isnull)
	{
		char	   *s = OutputFunctionCall(&rd->customer_out, d);

		/* char(n) -> text drops the padding, as the cast does */
		if (rd->customer_type == BPCHAROID)
		{
			int			len = strlen(s);

			while (len > 0 && s[len - 1] == ' ')
				len--;
			s[len] = '\0';
		}
		row->customer = s;
	}

	d = slot_getattr(slot, rd->ts_att, &row->day_null);
	if (!row->day_null)
	{
		if (rd->ts_type == TIMESTAMPTZOID)
			d = DirectFunctionCall2(timestamptz_zone, PointerGetDatum(rd->time_zone), d);
		if (rd->ts_type != DATEOID)
			d = DirectFunctionCall1(timestamp_date, d);
		row->day = DatumGetDateADT(d);
	}

	d = slot_getattr(slot, rd->amount_att, &row->amount_null);
	row->amount = 0;
	if (!row->amount_null)
	{
		switch (rd->amount_type)
		{
			case INT2OID:
				row->amount = (float8) DatumGetInt16(d);
				break;
			case INT4OID:
				row->amount = (float8) DatumGetInt32(d);
				break;
			case INT8OID:
				row->amount = (float8) DatumGetInt64(d);
				break;
			case FLOAT4OID:
				row->amount = (float8) DatumGetFloat4(d);
				break;
			case FLOAT8OID:
				row->amount = DatumGetFloat8(d);
				break;
			default:
				row->amount = DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
				break;
		}
	}
}

/* Start reading a transition table from its beginning with a read pointer of our own. */
static void
CaptureRewind(Tuplestorestate *store)
{
	int			ptr = tuplestore_alloc_read_pointer(store, EXEC_FLAG_REWIND);

	tuplestore_select_read_pointer(store, ptr);
	tuplestore_rescan(store);
}

/* Write queued rows (or, with n < 0, a re-read request) as the extension's owner. */
static void
CaptureEnqueue(int32 pipeline_id, ArrayBuildState *cust, ArrayBuildState *days,
			   ArrayBuildState *amounts, int n)
{
	ChurnPrivilegeSwitch sw;
	Oid			argtypes[4] = {INT4OID, TEXTARRAYOID, DATEARRAYOID, FLOAT8ARRAYOID};
	Datum		args[4];
	int			ret;

	args[0] = Int32GetDatum(pipeline_id);
	if (n > 0)
	{
		args[1] = makeArrayResult(cust, CurrentMemoryContext);
		args[2] = makeArrayResult(days, CurrentMemoryContext);
		args[3] = makeArrayResult(amounts, CurrentMemoryContext);
	}
	ChurnBecomeExtensionOwner(&sw);
	if (n > 0)
		ret = SPI_execute_with_args("INSERT INTO churn.pipeline_queue (pipeline_id, customer_id, day, amount) "
									"SELECT $1, u.c, u.d, u.a FROM ROWS FROM (pg_catalog.unnest($2), "
									"pg_catalog.unnest($3), pg_catalog.unnest($4)) u(c, d, a)",
									4, argtypes, args, NULL, false, 0);
	else
		ret = SPI_execute_with_args("INSERT INTO churn.pipeline_queue (pipeline_id, rebuild) VALUES ($1, true)",
									1, argtypes, args, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not write the pipeline queue: %d", ret);
	ChurnRestorePrivileges(&sw);
}

/* Queue the purchases of an INSERT, in batches. */
static void
CaptureInserted(int32 pipeline_id, CaptureReader *rd, Tuplestorestate *store, TupleDesc desc)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	MemoryContext batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "churn capture batch",
													ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(batch_cxt);
	ArrayBuildState *cust = NULL;
	ArrayBuildState *days = NULL;
	ArrayBuildState *amounts = NULL;
	int			n = 0;

	CaptureRewind(store);
	for (;;)
	{
		bool		more = tuplestore_gettupleslot(store, true, false, slot);
		CaptureRow	row;

		CHECK_FOR_INTERRUPTS();
		if (more)
		{
			CaptureConvert(rd, slot, &row);
			/* rows without a customer or a time are not purchases */
			if (row.customer != NULL && !row.day_null)
			{
				cust = accumArrayResult(cust, CStringGetTextDatum(row.customer), false, TEXTOID, batch_cxt);
				days = accumArrayResult(days, DateADTGetDatum(row.day), false, DATEOID, batch_cxt);
				amounts = accumArrayResult(amounts, Float8GetDatum(row.amount), row.amount_null,
										   FLOAT8OID, batch_cxt);
				n++;
			}
		}
		if (n > 0 && (!more || n >= CAPTURE_BATCH_ROWS))
		{
			CaptureEnqueue(pipeline_id, cust, days, amounts, n);
			MemoryContextReset(batch_cxt);
			cust = days = amounts = NULL;
			n = 0;
		}
		if (!more)
			break;
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(batch_cxt);
	ExecDropSingleTupleTableSlot(slot);
}

/* Order of reduced rows, NULLs first in each field. */
static int
CaptureRowCompare(const void *a, const void *b)
{
	const CaptureRow *x = (const CaptureRow *) a;
	const CaptureRow *y = (const CaptureRow *) b;
	int			c;

	if ((x->customer == NULL) != (y->customer == NULL))
		return x->customer == NULL ? -1 : 1;
	if (x->customer != NULL && (c = strcmp(x->customer, y->customer)) != 0)
		return c;
	if (x->day_null != y->day_null)
		return x->day_null ? -1 : 1;
	if (!x->day_null && x->day != y->day)
		return x->day < y->day ? -1 : 1;
	if (x->amount_null != y->amount_null)
		return x->amount_null ? -1 : 1;
	if (x->amount_null)
		return 0;
	return float8_cmp_internal(x->amount, y->amount);
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

/* Does an UPDATE change any purchase (customer, day or amount)? */
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

/*
 * The statement trigger on a pipeline source (installed by
 * churn.create_pipeline; its argument is the pipeline id).
 */
Datum
pipeline_capture(PG_FUNCTION_ARGS)
{
	TriggerData *trig = (TriggerData *) fcinfo->context;
	TriggerEvent ev;
	int32		pipeline_id;
	CaptureConfig cfg;
	CaptureReader rd;
	Oid			relid;
	TupleDesc	desc;
	bool		rebuild = false;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trig->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trig->tg_event) || trig->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("churn.pipeline_capture is installed by churn.create_pipeline only")));
	ev = trig->tg_event;
	relid = RelationGetRelid(trig->tg_relation);
	desc = RelationGetDescr(trig->tg_relation);
	pipeline_id = pg_strtoint32(trig->tg_trigger->tgargs[0]);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	cfg = CaptureLoadConfig(pipeline_id);
	/* a trigger left on another table, or a pipeline that re-reads anyway */
	if (!cfg.found || cfg.source != relid || !cfg.trigger_capture)
	{
		SPI_finish();
		return PointerGetDatum(NULL);
	}

	if (TRIGGER_FIRED_BY_TRUNCATE(ev))
		rebuild = true;
	else
	{
		Oid			outfunc;
		bool		varlena;

		(void) CaptureCheckColumns(relid, cfg.customer_col, cfg.ts_col, cfg.amount_col, cfg.ts_kind, &rd);
		/* built-in types only (checked above): their output functions are built-in */
		getTypeOutputInfo(rd.customer_type, &outfunc, &varlena);
		fmgr_info(outfunc, &rd.customer_out);
		rd.time_zone = cstring_to_text(cfg.time_zone);

		if (TRIGGER_FIRED_BY_INSERT(ev))
			CaptureInserted(pipeline_id, &rd, trig->tg_newtable, desc);
		else if (TRIGGER_FIRED_BY_DELETE(ev))
		{
			TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);

			CaptureRewind(trig->tg_oldtable);
			rebuild = tuplestore_gettupleslot(trig->tg_oldtable, true, false, slot);
			ExecDropSingleTupleTableSlot(slot);
		}
		else if (TRIGGER_FIRED_BY_UPDATE(ev))
			rebuild = CaptureUpdateChanges(&rd, trig, desc);
	}
	if (rebuild)
		CaptureEnqueue(pipeline_id, NULL, NULL, NULL, -1);
	SPI_finish();
	return PointerGetDatum(NULL);
}
