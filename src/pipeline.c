/*-------------------------------------------------------------------------
 *
 * pipeline.c
 *	  The two places where a pipeline changes whose rights apply.
 *
 * Pipeline bookkeeping (churn.pipeline, histories, snapshots, runs) belongs
 * to the extension's owner and no other role may write it.  A user reaches
 * it only through pipeline_dispatch, which checks that the calling role
 * owns the pipeline and then runs the SQL internals as the extension's
 * owner.  The one step that touches user data, reading the source, runs
 * back in the pipeline owner's rights inside a security-restricted
 * operation (as REFRESH MATERIALIZED VIEW does), so a pipeline can never
 * read what its owner could not, and nothing in the source can change role
 * or leave objects behind.  The same holds for the pipeline's events
 * relation (0.3.0), read by pipeline_read_events.
 *
 *-------------------------------------------------------------------------
 */
#include "pipeline.h"
#include "worker.h"

#include "catalog/pg_type.h"
#include "churn_warning.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(pipeline_dispatch);
PG_FUNCTION_INFO_V1(pipeline_read);
PG_FUNCTION_INFO_V1(pipeline_read_events);
PG_FUNCTION_INFO_V1(pipeline_read_purchases);

/* Start a GUC nest level with a search_path that user objects cannot shadow. */
int
ChurnLockSearchPath(void)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/* The role that owns the extension (and so its internal functions); needs SPI. */
Oid
ChurnExtensionOwner(void)
{
	bool		isnull;
	Datum		d;

	if (SPI_execute("SELECT extowner FROM pg_catalog.pg_extension "
					"WHERE extname OPERATOR(pg_catalog.=) 'churn_warning'", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "extension churn_warning is not installed in this database");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return DatumGetObjectId(d);
}

/*
 * Run what follows as the extension's owner, inside a security-restricted
 * operation with a fixed search_path; needs SPI.
 */
void
ChurnBecomeExtensionOwner(ChurnPrivilegeSwitch *sw)
{
	Oid			owner = ChurnExtensionOwner();

	GetUserIdAndSecContext(&sw->userid, &sw->sec_context);
	SetUserIdAndSecContext(owner, sw->sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	sw->nest = ChurnLockSearchPath();
}

/* Back to the rights in force before ChurnBecomeExtensionOwner. */
void
ChurnRestorePrivileges(ChurnPrivilegeSwitch *sw)
{
	AtEOXact_GUC(true, sw->nest);
	SetUserIdAndSecContext(sw->userid, sw->sec_context);
}

/*
 * Call churn.<internal>(the caller's arguments..., caller oid) as the
 * extension's owner and return its result.  The public function is a C
 * function without SECURITY DEFINER, so GetUserId() is the role that
 * called it (inside another role's SECURITY DEFINER function, that role),
 * which the internal function may trust: only the extension's owner can
 * execute it.
 */
Datum
ChurnCallInternal(FunctionCallInfo fcinfo, const char *internal)
{
	Oid			caller = GetUserId();
	Oid			fn = fcinfo->flinfo->fn_oid;
	Oid			rettype;
	Oid		   *argtypes;
	int			nargs;
	Oid		   *types;
	Datum	   *values;
	char	   *nulls;
	StringInfoData sql;
	ChurnPrivilegeSwitch sw;
	Datum		result;
	bool		isnull;
	int16		typlen;
	bool		typbyval;

	rettype = get_func_signature(fn, &argtypes, &nargs);
	types = palloc((nargs + 1) * sizeof(Oid));
	values = palloc((nargs + 1) * sizeof(Datum));
	nulls = palloc((nargs + 1) * sizeof(char));
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT churn.%s(", quote_identifier(internal));
	for (int i = 0; i < nargs; i++)
	{
		types[i] = argtypes[i];
		values[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
		appendStringInfo(&sql, "$%d, ", i + 1);
	}
	types[nargs] = OIDOID;
	values[nargs] = ObjectIdGetDatum(caller);
	nulls[nargs] = ' ';
	appendStringInfo(&sql, "$%d)", nargs + 1);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ChurnBecomeExtensionOwner(&sw);
	if (SPI_execute_with_args(sql.data, nargs + 1, types, values, nulls, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "churn.%s returned no row", internal);
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	get_typlenbyval(rettype, &typlen, &typbyval);
	if (!isnull)
		result = SPI_datumTransfer(result, typbyval, typlen);
	ChurnRestorePrivileges(&sw);
	SPI_finish();
	if (isnull)
		PG_RETURN_NULL();
	return result;
}

/*
 * Run a manual refresh (churn.pipeline_refresh_internal); when it fails,
 * hand the failure to a run recorder (runlog.c), which keeps it on record
 * outside the caller's transaction, and re-throw it.
 */
static void
DispatchRefresh(const char *sql, Oid *argtypes, Datum *args, char *argnulls, int32 pipeline_id)
{
	MemoryContext cxt = CurrentMemoryContext;
	TimestampTz started_at = GetCurrentTimestamp();

	PG_TRY();
	{
		if (SPI_execute_with_args(sql, 3, argtypes, args, argnulls, false, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "churn.pipeline_refresh_internal returned no row");
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		ChurnRecordManualFailure(pipeline_id, started_at, edata);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * Check that the caller may act on a pipeline, then run the internal
 * function churn.pipeline_<op>_internal(name, args, caller) as the
 * extension's owner.
 */
Datum
pipeline_dispatch(PG_FUNCTION_ARGS)
{
	static const char *const ops[] = {"create", "alter", "pause", "resume", "drop", "refresh", "reject_limit"};
	char	   *op;
	text	   *name;
	Oid			caller = GetUserId();
	Oid			runner;
	Oid			save_userid;
	int			save_sec;
	int			nest;
	bool		known = false;
	Oid			argtypes[3] = {TEXTOID, JSONBOID, OIDOID};
	Datum		args[3];
	char		argnulls[3] = {' ', ' ', ' '};
	Datum		result = (Datum) 0;
	bool		isnull = true;
	char		sql[128];
	int32		pipeline_id = 0;

	if (PG_ARGISNULL(0))
		elog(ERROR, "pipeline_dispatch called without an operation");
	op = text_to_cstring(PG_GETARG_TEXT_PP(0));
	for (int i = 0; i < lengthof(ops); i++)
		known |= (strcmp(op, ops[i]) == 0);
	if (!known)
		elog(ERROR, "unknown pipeline operation \"%s\"", op);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pipeline name must not be NULL")));
	name = PG_GETARG_TEXT_PP(1);

	args[0] = PointerGetDatum(name);
	args[1] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	argnulls[1] = PG_ARGISNULL(2) ? 'n' : ' ';
	args[2] = ObjectIdGetDatum(caller);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	runner = ChurnExtensionOwner();
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(runner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	nest = ChurnLockSearchPath();

	if (strcmp(op, "create") != 0)
	{
		Oid			owner;

		if (SPI_execute_with_args("SELECT owner::pg_catalog.oid, pipeline_id FROM churn.pipeline WHERE name = $1",
								  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "pipeline look-up failed");
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("pipeline \"%s\" does not exist", text_to_cstring(name)),
					 errhint("Pipelines are listed in churn.pipeline_status.")));
		owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));
		pipeline_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
												  SPI_tuptable->tupdesc, 2, &isnull));
		if (!has_privs_of_role(caller, owner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("must be owner of pipeline \"%s\"", text_to_cstring(name)),
					 errdetail("Only the role that owns a pipeline (or a member of it) may change, refresh or drop it.")));
	}

	snprintf(sql, sizeof(sql), "SELECT churn.pipeline_%s_internal($1, $2, $3)", op);
	if (strcmp(op, "refresh") == 0)
		DispatchRefresh(sql, argtypes, args, argnulls, pipeline_id);
	else if (SPI_execute_with_args(sql, 3, argtypes, args, argnulls, false, 1) != SPI_OK_SELECT ||
			 SPI_processed != 1)
		elog(ERROR, "churn.pipeline_%s_internal returned no row", op);
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		result = SPI_datumTransfer(result, false, -1);

	AtEOXact_GUC(true, nest);
	SetUserIdAndSecContext(save_userid, save_sec);
	SPI_finish();

	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}

/*
 * The SQL expression of the purchase (or event) day of the source: a
 * timestamptz is converted in the pipeline's time zone by name, so that
 * the day is the same wherever the expression runs (on a Citus worker the
 * coordinator's TimeZone setting is not in effect).  The 0.2.0 read
 * (legacy) names only functions of the 0.2.0 scripts.
 */
static char *
SourceDayExpression(const char *ts_col, const char *ts_kind, const char *time_zone, bool legacy)
{
	if (strcmp(ts_kind, "timestamp") == 0)
		return psprintf("(%s)::pg_catalog.date", quote_identifier(ts_col));
	if (strcmp(ts_kind, "timestamptz") == 0 && legacy)
		return psprintf("(pg_catalog.timezone(%s, %s))::pg_catalog.date",
						quote_literal_cstr(time_zone), quote_identifier(ts_col));
	if (strcmp(ts_kind, "timestamptz") == 0)
		return psprintf("churn.pipeline_day(%s, %s)",
						quote_identifier(ts_col), quote_literal_cstr(time_zone));
	if (strcmp(ts_kind, "date") == 0)
		return pstrdup(quote_identifier(ts_col));
	elog(ERROR, "unknown timestamp kind \"%s\"", ts_kind);
	return NULL;				/* keep the compiler quiet */
}

/* What reading one relation of a pipeline needs. */
typedef struct PipelineReadSpec
{
	const char *name;			/* the pipeline's */
	Oid			owner;
	Oid			relid;
	const char *what;			/* "source" or "events relation", for messages */
	const char *hint;			/* when that relation is gone */
	const char *time_zone;
	bool		count_kept;		/* count the rows kept (only a share limit needs them) */
	char	   *query;			/* run with the owner's rights; set after the checks */
} PipelineReadSpec;

/*
 * The count of a customer's rows kept, or NULL when the pipeline has no
 * limit on the share of rejected rows: the count travelled through the
 * read's parallel plan as one more partial state, a tenth of a full read.
 */
static const char *
PipelineKeptCount(const PipelineReadSpec *spec)
{
	return spec->count_kept ? "pg_catalog.count(*) FILTER (WHERE s.w IS NULL)" : "NULL::pg_catalog.int8";
}

/* Check that the pipeline's owner and the relation to read still exist. */
static void
PipelineReadCheck(PipelineReadSpec *spec)
{
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(spec->owner)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the role that owned pipeline \"%s\" no longer exists", spec->name),
				 errhint("A superuser can give the pipeline to another role with churn.alter_pipeline(name, owner => ...).")));
	if (get_rel_name(spec->relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the %s of pipeline \"%s\" no longer exists", spec->what, spec->name),
				 errhint("%s", spec->hint)));
}

/* The relation to read, schema-qualified and quoted. */
static char *
PipelineReadRelation(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
}

/*
 * Where a read's rows go: straight into the result set, each with a NULL
 * snapshot column after the query's columns.
 */
typedef struct PipelineReadReceiver
{
	DestReceiver pub;
	ReturnSetInfo *rsinfo;
	Datum	   *values;
	bool	   *nulls;
} PipelineReadReceiver;

/* One row of the read into the result set. */
static bool
PipelineReadReceive(TupleTableSlot *slot, DestReceiver *self)
{
	PipelineReadReceiver *r = (PipelineReadReceiver *) self;
	int			natts = r->rsinfo->setDesc->natts;

	slot_getallattrs(slot);
	memcpy(r->values, slot->tts_values, (natts - 1) * sizeof(Datum));
	memcpy(r->nulls, slot->tts_isnull, (natts - 1) * sizeof(bool));
	r->nulls[natts - 1] = true;
	tuplestore_putvalues(r->rsinfo->setResult, r->rsinfo->setDesc, r->values, r->nulls);
	return true;
}

/* Check that the read returns the result's columns but the snapshot. */
static void
PipelineReadStartup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	PipelineReadReceiver *r = (PipelineReadReceiver *) self;

	if (typeinfo->natts != r->rsinfo->setDesc->natts - 1)
		elog(ERROR, "a pipeline read returned %d columns, not %d",
			 typeinfo->natts, r->rsinfo->setDesc->natts - 1);
}

/* Nothing to release: the receiver lives in the caller's memory. */
static void
PipelineReadNoOp(DestReceiver *self)
{
}

/*
 * Run spec->query with the owner's rights, inside a security-restricted
 * operation with a fixed search_path and the pipeline's time zone, into the
 * result set: first a row with only the snapshot the relation is read with
 * (the last result column), then one row per query row (the other
 * columns).  The query runs to completion into the result set, not through
 * a cursor, so that the planner may read a large relation in parallel (a
 * cursor never is).  Needs SPI.
 */
static void
PipelineReadRun(FunctionCallInfo fcinfo, PipelineReadSpec *spec)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			natts = rsinfo->setDesc->natts;
	PipelineReadReceiver receiver;
	SPIExecuteOptions options;
	Oid			save_userid;
	int			save_sec;
	int			nest;

	receiver.pub.receiveSlot = PipelineReadReceive;
	receiver.pub.rStartup = PipelineReadStartup;
	receiver.pub.rShutdown = PipelineReadNoOp;
	receiver.pub.rDestroy = PipelineReadNoOp;
	receiver.pub.mydest = DestTuplestore;	/* (DestNone would make SPI discard the result) */
	receiver.rsinfo = rsinfo;
	receiver.values = palloc(natts * sizeof(Datum));
	receiver.nulls = palloc(natts * sizeof(bool));

	/* from here on, the pipeline owner's rights and nothing more */
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(spec->owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	nest = ChurnLockSearchPath();
	(void) set_config_option("TimeZone", spec->time_zone, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	PushActiveSnapshot(GetTransactionSnapshot());

	if (SPI_execute("SELECT pg_catalog.pg_current_snapshot()", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read the current snapshot");
	memset(receiver.nulls, true, natts * sizeof(bool));
	receiver.values[natts - 1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
											   &receiver.nulls[natts - 1]);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, receiver.values, receiver.nulls);

	memset(&options, 0, sizeof(options));
	options.read_only = true;
	options.dest = &receiver.pub;
	if (SPI_execute_extended(spec->query, &options) != SPI_OK_SELECT)
		elog(ERROR, "the read of pipeline \"%s\" failed", spec->name);

	PopActiveSnapshot();
	AtEOXact_GUC(true, nest);
	SetUserIdAndSecContext(save_userid, save_sec);
}

/* Look up a pipeline's row as the caller (the extension's owner); the tuple is SPI_tuptable->vals[0]. */
static void
PipelineReadLookUp(int32 pipeline_id, const char *columns)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(pipeline_id)};
	char	   *sql = psprintf("SELECT %s FROM churn.pipeline WHERE pipeline_id OPERATOR(pg_catalog.=) $1",
							   columns);

	if (SPI_execute_with_args(sql, 1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "pipeline look-up failed");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("pipeline %d does not exist", pipeline_id)));
}

/* The source columns of a pipeline, as its row names them. */
typedef struct PipelineSourceColumns
{
	char	   *customer;
	char	   *ts;
	char	   *amount;
	char	   *ts_kind;
	char	   *store;			/* NULL: no store column */
} PipelineSourceColumns;

/*
 * Look up a pipeline's source and check it before any read; fills spec
 * (but its query) and cols.  The 0.2.0 read (legacy) asks only for the
 * columns a 0.2.0 churn.pipeline has.  Needs SPI.
 */
static void
PipelineSourceSetUp(int32 pipeline_id, PipelineReadSpec *spec, PipelineSourceColumns *cols, bool legacy)
{
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	PipelineReadLookUp(pipeline_id,
					   legacy ?
					   "name, owner::pg_catalog.oid, source::pg_catalog.oid, customer_col::pg_catalog.text, "
					   "ts_col::pg_catalog.text, amount_col::pg_catalog.text, ts_kind, time_zone, "
					   "NULL::pg_catalog.text, false" :
					   "name, owner::pg_catalog.oid, source::pg_catalog.oid, customer_col::pg_catalog.text, "
					   "ts_col::pg_catalog.text, amount_col::pg_catalog.text, ts_kind, time_zone, "
					   "store_col::pg_catalog.text, max_rejected_share IS NOT NULL");
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	spec->name = SPI_getvalue(tup, desc, 1);
	spec->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
	spec->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
	spec->what = "source";
	spec->hint = "Drop the pipeline, or point it at another relation with churn.alter_pipeline(name, source => ...).";
	cols->customer = SPI_getvalue(tup, desc, 4);
	cols->ts = SPI_getvalue(tup, desc, 5);
	cols->amount = SPI_getvalue(tup, desc, 6);
	cols->ts_kind = SPI_getvalue(tup, desc, 7);
	spec->time_zone = SPI_getvalue(tup, desc, 8);
	cols->store = SPI_getvalue(tup, desc, 9);
	spec->count_kept = DatumGetBool(SPI_getbinval(tup, desc, 10, &isnull));

	PipelineReadCheck(spec);
	/* a column retyped since the pipeline was set up fails here, before any read */
	(void) PipelineCheckColumns(spec->relid, cols->customer, cols->ts, cols->amount, cols->ts_kind);
	if (cols->store != NULL)
		PipelineCheckStoreColumn(spec->relid, cols->store);
}

/* The store count of each customer's purchase rows (those the filter keeps), or NULL jsonb. */
static char *
PipelineStoreCounts(const char *store_col, const char *filter)
{
	if (store_col == NULL)
		return pstrdup("NULL::pg_catalog.jsonb");
	return psprintf("churn.store_counts(pg_catalog.array_agg((%s)::pg_catalog.text)%s)",
					quote_identifier(store_col), filter);
}

/*
 * Read a pipeline's whole source with the owner's rights (PipelineReadRun):
 * checked, with the columns of pipeline_read_purchases, else those of
 * pipeline_read.
 */
static Datum
PipelineReadSource(FunctionCallInfo fcinfo, bool checked)
{
	PipelineReadSpec spec;
	PipelineSourceColumns cols;
	const char *keep = " FILTER (WHERE s.w IS NULL)";
	char	   *customer;
	char	   *day;
	char	   *amount;

	ChurnMaterializeSRF(fcinfo);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PipelineSourceSetUp(PG_GETARG_INT32(0), &spec, &cols, !checked);
	customer = psprintf("(%s)::pg_catalog.text", quote_identifier(cols.customer));
	day = SourceDayExpression(cols.ts, cols.ts_kind, spec.time_zone, !checked);
	/* numeric amounts stay numeric: history_agg converts them without text */
	if (checked && get_atttype(spec.relid, get_attnum(spec.relid, cols.amount)) == NUMERICOID)
		amount = psprintf("(%s)::pg_catalog.numeric", quote_identifier(cols.amount));
	else
		amount = psprintf("(%s)::pg_catalog.float8", quote_identifier(cols.amount));
	if (!checked)
		/* the purchase rows per store of each customer, for the store of most of them */
		spec.query = psprintf("SELECT %s, churn.history_agg(%s, %s), %s FROM %s "
							  "WHERE %s IS NOT NULL AND %s IS NOT NULL GROUP BY 1",
							  customer, day, amount, PipelineStoreCounts(cols.store, ""),
							  PipelineReadRelation(spec.relid),
							  quote_identifier(cols.customer), quote_identifier(cols.ts));
	else
		/* the day of a rejected row is only computed for rejected rows */
		spec.query = psprintf("SELECT s.c, churn.history_agg(s.d, s.a)%s, %s, %s, "
							  "churn.pipeline_reject_agg(ROW((s.t)::pg_catalog.date, (s.a)::pg_catalog.float8, NULL, NULL, s.w)"
							  "::churn.pipeline_reject_row) FILTER (WHERE s.w IS NOT NULL) "
							  "FROM (SELECT %s AS c, %s AS d, %s AS t, %s AS a, %s AS st, "
							  "churn.pipeline_purchase_reject(%s, %s, %s) AS w FROM %s) s GROUP BY 1",
							  keep, PipelineStoreCounts(cols.store == NULL ? NULL : "st", keep), PipelineKeptCount(&spec),
							  customer, day, quote_identifier(cols.ts), amount,
							  cols.store == NULL ? "NULL" : quote_identifier(cols.store),
							  customer, day, amount, PipelineReadRelation(spec.relid));
	PipelineReadRun(fcinfo, &spec);
	SPI_finish();
	return (Datum) 0;
}

/*
 * Read a pipeline's whole source as one history per customer, with the
 * owner's rights (0.2.0, used by the 0.2.0 refresh; 0.3.0 reads with
 * pipeline_read_purchases).  The first row carries only the snapshot the
 * source was read with (customer_id NULL), so that purchases captured by
 * the trigger and already visible to it are not counted twice.
 */
Datum
pipeline_read(PG_FUNCTION_ARGS)
{
	return PipelineReadSource(fcinfo, false);
}

/*
 * Read a pipeline's whole source with the owner's rights, splitting in the
 * same pass the rows it keeps from those it rejects
 * (churn.pipeline_purchase_reject): per customer the history and store
 * count of the kept rows, their number (NULL unless the pipeline limits the
 * share of rows rejected), and the rejected rows (day, amount, reason);
 * rows without a customer form one group of rejects with customer_id
 * NULL.  The first row carries only the snapshot, as in pipeline_read.
 */
Datum
pipeline_read_purchases(PG_FUNCTION_ARGS)
{
	return PipelineReadSource(fcinfo, true);
}

/*
 * Read a pipeline's whole events relation as one churn.engagement per
 * customer, with the owner's rights, splitting in the same pass the rows
 * it keeps from those it rejects (churn.pipeline_event_reject): per
 * customer the engagement of the kept rows, their number (as for
 * purchases) and the rejected rows (day, kind, rating, reason); rows
 * without a customer form one group of rejects with customer_id NULL.  The
 * first row carries only the snapshot, as in pipeline_read.
 */
Datum
pipeline_read_events(PG_FUNCTION_ARGS)
{
	PipelineReadSpec spec;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		events;
	char	   *customer_col;
	char	   *ts_col;
	char	   *kind_col;
	char	   *rating_col;
	char	   *ts_kind;

	ChurnMaterializeSRF(fcinfo);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PipelineReadLookUp(PG_GETARG_INT32(0),
					   "name, owner::pg_catalog.oid, events::pg_catalog.oid, "
					   "event_customer_col::pg_catalog.text, event_ts_col::pg_catalog.text, "
					   "event_kind_col::pg_catalog.text, event_rating_col::pg_catalog.text, event_ts_kind, "
					   "time_zone, max_rejected_share IS NOT NULL");
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	spec.name = SPI_getvalue(tup, desc, 1);
	spec.owner = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
	events = SPI_getbinval(tup, desc, 3, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pipeline \"%s\" has no events relation", spec.name)));
	spec.relid = DatumGetObjectId(events);
	spec.what = "events relation";
	spec.hint = "Point the pipeline at another relation with churn.alter_pipeline(name, events => ...), or stop reading events with events => NULL.";
	customer_col = SPI_getvalue(tup, desc, 4);
	ts_col = SPI_getvalue(tup, desc, 5);
	kind_col = SPI_getvalue(tup, desc, 6);
	rating_col = SPI_getvalue(tup, desc, 7);
	ts_kind = SPI_getvalue(tup, desc, 8);
	spec.time_zone = SPI_getvalue(tup, desc, 9);
	spec.count_kept = DatumGetBool(SPI_getbinval(tup, desc, 10, &isnull));

	PipelineReadCheck(&spec);
	(void) PipelineCheckEventColumns(spec.relid, customer_col, ts_col, kind_col, rating_col, ts_kind);
	/* the local day in the pipeline's time zone (TimeZone is set for the read) */
	spec.query = psprintf("SELECT s.c, churn.engagement_agg((s.d)::pg_catalog.timestamptz, s.k, s.r) "
						  "FILTER (WHERE s.w IS NULL), %s, "
						  "churn.pipeline_reject_agg(ROW(s.d, NULL, s.k, s.r, s.w)::churn.pipeline_reject_row) "
						  "FILTER (WHERE s.w IS NOT NULL) "
						  "FROM (SELECT e.c, e.d, e.k, e.r, churn.pipeline_event_reject(e.c, e.d, e.k, e.r) AS w "
						  "FROM (SELECT (%s)::pg_catalog.text AS c, (%s)::pg_catalog.date AS d, "
						  "(%s)::pg_catalog.text AS k, (%s)::pg_catalog.float8 AS r FROM %s) e) s GROUP BY 1",
						  PipelineKeptCount(&spec),
						  quote_identifier(customer_col), SourceDayExpression(ts_col, ts_kind, spec.time_zone, false),
						  quote_identifier(kind_col), quote_identifier(rating_col),
						  PipelineReadRelation(spec.relid));
	PipelineReadRun(fcinfo, &spec);
	SPI_finish();
	return (Datum) 0;
}
