/*-------------------------------------------------------------------------
 *
 * dbworker.c
 *	  The per-database worker of the background worker.
 *
 * The launcher (launcher.c) starts one for a database that is due.  It
 * checks that the extension is installed, runs the due pipelines one by one
 * through the SQL functions churn.pipeline_*, reports when its database
 * should be looked at next, and exits, so nothing stays connected to a
 * database while idle (DROP DATABASE and ALTER DATABASE RENAME are never
 * blocked for long).
 *
 * Each step is its own transaction.  A failed refresh is rolled back,
 * logged and recorded through churn.pipeline_run_failed; the worker then
 * goes on with the next pipeline.  Each pipeline runs at most once per pass,
 * so other databases get their turn.
 *
 * From 0.3.0 a database may have several workers at once
 * (churn_warning.max_workers_per_database).  Each registers in a shared
 * worker entry and claims the pipeline it runs there, so two workers never
 * pick the same one; before a refresh it tells the launcher when the next
 * pipeline nobody has claimed falls due, so that another worker can start
 * for it while this refresh goes on.
 *
 *-------------------------------------------------------------------------
 */
#include "churn_warning.h"
#include "worker.h"

#include <limits.h>
#include <signal.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "nodes/pg_list.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

/* Longest a database goes unchecked while the extension is installed. */
#define CHURN_RECHECK_MS 60000
/* When to look again at a database without the extension. */
#define CHURN_NO_EXTENSION_RETRY_MS 300000
/* Shortest time between two workers for the same database. */
#define CHURN_MIN_RECHECK_MS 1000

/* Name of the worker's database, for log lines. */
static char *DbWorkerDatabase = NULL;

/* This worker's shared entry, or NULL. */
static ChurnWorkerEntry *MyWorkerEntry = NULL;

/* Worker exit: free our entry; the slot shows another of the database's workers, if any. */
static void
DbWorkerExit(int code, Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	ChurnDbSlot *slot;

	LWLockAcquire(ChurnShared->lock, LW_EXCLUSIVE);
	if (MyWorkerEntry != NULL)
		memset(MyWorkerEntry, 0, sizeof(ChurnWorkerEntry));
	MyWorkerEntry = NULL;
	slot = FindSlot(dboid, false);
	if (slot != NULL && slot->worker_pid == MyProcPid)
	{
		slot->worker_pid = 0;
		for (int i = 0; i < CHURN_MAX_DB_WORKERS; i++)
			if (ChurnShared->workers[i].dboid == dboid && ChurnShared->workers[i].pid != 0)
				slot->worker_pid = ChurnShared->workers[i].pid;
	}
	LWLockRelease(ChurnShared->lock);
}

/* Take a free worker entry and show us in the database's slot; false when all entries are taken. */
static bool
DbWorkerRegister(Oid dboid)
{
	ChurnDbSlot *slot;

	LWLockAcquire(ChurnShared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < CHURN_MAX_DB_WORKERS && MyWorkerEntry == NULL; i++)
		if (ChurnShared->workers[i].dboid == InvalidOid)
		{
			MyWorkerEntry = &ChurnShared->workers[i];
			memset(MyWorkerEntry, 0, sizeof(ChurnWorkerEntry));
			MyWorkerEntry->dboid = dboid;
			MyWorkerEntry->pid = MyProcPid;
		}
	slot = FindSlot(dboid, true);
	if (slot != NULL && MyWorkerEntry != NULL)
		slot->worker_pid = MyProcPid;
	LWLockRelease(ChurnShared->lock);
	return MyWorkerEntry != NULL;
}

/* Claim a pipeline for this worker (0: release); false when another worker of the database holds it. */
static bool
ClaimPipeline(int32 pipeline_id)
{
	bool		ok = true;

	LWLockAcquire(ChurnShared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < CHURN_MAX_DB_WORKERS && pipeline_id != 0; i++)
	{
		ChurnWorkerEntry *other = &ChurnShared->workers[i];

		if (other != MyWorkerEntry && other->dboid == MyDatabaseId && other->pid != 0 &&
			other->pipeline_id == pipeline_id)
			ok = false;
	}
	if (ok)
		MyWorkerEntry->pipeline_id = pipeline_id;
	LWLockRelease(ChurnShared->lock);
	return ok;
}

/* The pipelines the workers of this database have claimed (with_mine: ours too), as an int[]. */
static Datum
ClaimedPipelines(bool with_mine)
{
	Datum		ids[CHURN_MAX_DB_WORKERS];
	int			n = 0;

	LWLockAcquire(ChurnShared->lock, LW_SHARED);
	for (int i = 0; i < CHURN_MAX_DB_WORKERS; i++)
	{
		ChurnWorkerEntry *other = &ChurnShared->workers[i];

		if ((with_mine || other != MyWorkerEntry) && other->dboid == MyDatabaseId && other->pid != 0 &&
			other->pipeline_id != 0)
			ids[n++] = Int32GetDatum(other->pipeline_id);
	}
	LWLockRelease(ChurnShared->lock);
	return PointerGetDatum(construct_array(ids, n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
}

/* Record when the launcher should look at this database again. */
static void
ReportNextCheck(Oid dboid, TimestampTz when)
{
	ChurnDbSlot *slot;

	LWLockAcquire(ChurnShared->lock, LW_EXCLUSIVE);
	slot = FindSlot(dboid, true);
	if (slot != NULL)
	{
		slot->next_check = when;
		slot->lost = 0;
	}
	LWLockRelease(ChurnShared->lock);
}

/* Open a transaction with SPI and a snapshot for one step. */
static void
StepBegin(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

/* Commit the step's transaction. */
static void
StepEnd(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* After an error inside a step: copy it into cxt and roll the step back. */
static ErrorData *
StepCatch(MemoryContext cxt)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	disable_timeout(STATEMENT_TIMEOUT, false);
	/* a late timer signal must not cancel the next step */
	QueryCancelPending = false;
	AbortCurrentTransaction();
	MemoryContextSwitchTo(cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
	return edata;
}

/* Run a query expected to return one row of one column; the value is left in SPI memory. */
static Datum
QueryValue(const char *sql, int nargs, Oid *argtypes, Datum *values, bool *isnull)
{
	int			ret;

	ret = SPI_execute_with_args(sql, nargs, argtypes, values, NULL, false, 0);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "unexpected result from \"%s\": %d, %llu rows",
			 sql, ret, (unsigned long long) SPI_processed);
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);
}

/* Is the extension, with its pipeline functions, installed in this database? */
static bool
PipelinesInstalled(void)
{
	bool		installed = false;
	bool		isnull;

	StepBegin("churn_warning: checking the extension");
	DbWorkerDatabase = MemoryContextStrdup(TopMemoryContext, get_database_name(MyDatabaseId));
	if (OidIsValid(get_extension_oid("churn_warning", true)))
	{
		installed = DatumGetBool(QueryValue("SELECT to_regprocedure('churn.pipeline_worker_start(bigint)') IS NOT NULL",
											0, NULL, NULL, &isnull));
		if (!installed)
			ereport(LOG,
					(errmsg("churn_warning in database \"%s\" is older than its library: no pipeline runs there",
							DbWorkerDatabase),
					 errhint("Run ALTER EXTENSION churn_warning UPDATE in that database.")));
	}
	StepEnd();
	return installed;
}

/* Publish the run this worker executes and its deadline (limit_ms 0: none), for the launcher. */
static void
PublishRun(int64 run_id, int64 limit_ms)
{
	LWLockAcquire(ChurnShared->lock, LW_EXCLUSIVE);
	MyWorkerEntry->run_id = limit_ms > 0 ? run_id : 0;
	MyWorkerEntry->run_deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), limit_ms);
	LWLockRelease(ChurnShared->lock);
}

/* The run the launcher ended for overstaying its time limit in this database, or 0. */
static int64
OverrunRun(void)
{
	ChurnDbSlot *slot;
	int64		run_id = 0;

	LWLockAcquire(ChurnShared->lock, LW_SHARED);
	slot = FindSlot(MyDatabaseId, false);
	if (slot != NULL)
		run_id = slot->overrun_run_id;
	LWLockRelease(ChurnShared->lock);
	return run_id;
}

/* Forget an overrun run once it is on record. */
static void
ClearOverrunRun(int64 run_id)
{
	ChurnDbSlot *slot;

	LWLockAcquire(ChurnShared->lock, LW_EXCLUSIVE);
	slot = FindSlot(MyDatabaseId, false);
	if (slot != NULL && slot->overrun_run_id == run_id)
		slot->overrun_run_id = 0;
	LWLockRelease(ChurnShared->lock);
}

/*
 * Find and claim the first due pipeline not yet handled in this pass nor
 * claimed by another worker of the database; its name is copied into cxt.
 */
static bool
NextDuePipeline(List *handled, MemoryContext cxt, int32 *pipeline_id, char **name, int64 *limit_ms)
{
	bool		found = false;
	uint64		i;
	int			ret;

	StepBegin("churn_warning: looking for due pipelines");
	ret = SPI_execute("SELECT pipeline_id, name, time_limit_ms FROM churn.pipeline_due()", false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "churn.pipeline_due() failed: %d", ret);
	for (i = 0; i < SPI_processed && !found; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int32		id;
		Datum		d;

		id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		if (isnull || list_member_int(handled, id) || !ClaimPipeline(id))
			continue;
		found = true;
		*pipeline_id = id;
		d = SPI_getbinval(tup, desc, 2, &isnull);
		*name = isnull ? MemoryContextStrdup(cxt, "?") :
			MemoryContextStrdup(cxt, TextDatumGetCString(d));
		d = SPI_getbinval(tup, desc, 3, &isnull);
		*limit_ms = isnull ? 0 : DatumGetInt64(d);
	}
	StepEnd();
	return found;
}

/* Open a run of the pipeline; false when the SQL side says to skip it. */
static bool
StartRun(int32 pipeline_id, const char *name, MemoryContext cxt, int64 *run_id)
{
	volatile bool started = false;

	PG_TRY();
	{
		Oid			argtypes[1] = {INT4OID};
		Datum		values[1];
		bool		isnull;
		Datum		d;

		values[0] = Int32GetDatum(pipeline_id);
		StepBegin("churn_warning: starting a pipeline run");
		d = QueryValue("SELECT churn.pipeline_run_start($1)", 1, argtypes, values, &isnull);
		if (!isnull)
		{
			*run_id = DatumGetInt64(d);
			started = true;
		}
		StepEnd();
	}
	PG_CATCH();
	{
		ErrorData  *edata = StepCatch(cxt);

		ereport(LOG,
				(errmsg("churn_warning could not start a run of pipeline \"%s\": %s",
						name, edata->message)));
		FreeErrorData(edata);
		started = false;
	}
	PG_END_TRY();
	return started;
}

/* Record a failed run through the SQL side; a failure here is only logged. */
static void
RecordFailure(int64 run_id, const char *name, ErrorData *edata, MemoryContext cxt)
{
	PG_TRY();
	{
		Oid			argtypes[4] = {INT8OID, TEXTOID, TEXTOID, TEXTOID};
		Datum		values[4];
		char		nulls[4] = {' ', ' ', ' ', ' '};
		int			ret;

		values[0] = Int64GetDatum(run_id);
		values[1] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
		values[2] = CStringGetTextDatum(edata->message ? edata->message : "");
		if (edata->detail != NULL)
			values[3] = CStringGetTextDatum(edata->detail);
		else
		{
			values[3] = (Datum) 0;
			nulls[3] = 'n';
		}
		StepBegin("churn_warning: recording a failed run");
		ret = SPI_execute_with_args("SELECT churn.pipeline_run_failed($1, $2, $3, $4)",
									4, argtypes, values, nulls, false, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "churn.pipeline_run_failed() failed: %d", ret);
		StepEnd();
	}
	PG_CATCH();
	{
		ErrorData  *e2 = StepCatch(cxt);

		ereport(LOG,
				(errmsg("churn_warning could not record the failure of pipeline \"%s\" run %lld: %s",
						name, (long long) run_id, e2->message)));
		FreeErrorData(e2);
	}
	PG_END_TRY();
}

/* Run one refresh under its time limit; errors (a timeout included) are logged and recorded. */
static void
ExecuteRun(int32 pipeline_id, int64 run_id, const char *name, int64 limit_ms, MemoryContext cxt)
{
	ErrorData  *volatile edata = NULL;
	char	   *activity = MemoryContextStrdup(cxt, psprintf("churn_warning: refresh of pipeline \"%s\"", name));

	PG_TRY();
	{
		Oid			argtypes[2] = {INT4OID, INT8OID};
		Datum		values[2];
		int			ret;

		StepBegin(activity);
		if (limit_ms > 0)
		{
			Oid			ttype[1] = {TEXTOID};
			Datum		tval[1];
			bool		isnull;

			/* SPI does not arm statement_timeout itself: set it for show, arm the timer here */
			tval[0] = CStringGetTextDatum(psprintf(INT64_FORMAT, limit_ms));
			(void) QueryValue("SELECT set_config('statement_timeout', $1, true)",
							  1, ttype, tval, &isnull);
			enable_timeout_after(STATEMENT_TIMEOUT, (int) Min(limit_ms, (int64) INT_MAX));
		}
		values[0] = Int32GetDatum(pipeline_id);
		values[1] = Int64GetDatum(run_id);
		ret = SPI_execute_with_args("SELECT churn.pipeline_execute($1, $2)",
									2, argtypes, values, NULL, false, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "churn.pipeline_execute() failed: %d", ret);
		disable_timeout(STATEMENT_TIMEOUT, false);
		StepEnd();
	}
	PG_CATCH();
	{
		edata = StepCatch(cxt);
	}
	PG_END_TRY();
	QueryCancelPending = false;

	if (edata == NULL)
	{
		elog(DEBUG1, "churn_warning refreshed pipeline \"%s\" (run %lld)", name, (long long) run_id);
		return;
	}

	ereport(LOG,
			(errcode(edata->sqlerrcode),
			 errmsg("churn_warning refresh of pipeline \"%s\" failed: %s", name, edata->message),
			 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
			 errcontext("pipeline run %lld", (long long) run_id)));
	RecordFailure(run_id, name, edata, cxt);
	FreeErrorData(edata);
}

/*
 * When the next pipeline that no worker of the database has claimed falls
 * due (with_mine: ours counts as claimed); false when none is active.
 * Runs inside a step.
 */
static bool
NextDueUnclaimed(bool with_mine, TimestampTz *next)
{
	Oid			argtypes[1] = {INT4ARRAYOID};
	Datum		values[1];
	bool		isnull;
	Datum		d;

	values[0] = ClaimedPipelines(with_mine);
	d = QueryValue("SELECT churn.pipeline_next_due($1)", 1, argtypes, values, &isnull);
	if (!isnull)
		*next = DatumGetTimestampTz(d);
	return !isnull;
}

/*
 * Before a refresh: move the database's next look to when the next
 * unclaimed pipeline falls due, so the launcher can start another worker
 * for it meanwhile (churn_warning.max_workers_per_database > 1).
 */
static void
AnnounceNextDue(MemoryContext cxt)
{
	volatile TimestampTz next = 0;
	volatile bool have_next = false;

	PG_TRY();
	{
		TimestampTz found;

		StepBegin("churn_warning: looking for more due pipelines");
		have_next = NextDueUnclaimed(true, &found);
		next = found;
		StepEnd();
	}
	PG_CATCH();
	{
		ErrorData  *edata = StepCatch(cxt);

		ereport(LOG,
				(errmsg("churn_warning could not look for more due pipelines: %s", edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	if (have_next)
	{
		TimestampTz earliest = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), CHURN_MIN_RECHECK_MS);
		ChurnDbSlot *slot;
		Latch	   *latch;

		LWLockAcquire(ChurnShared->lock, LW_EXCLUSIVE);
		slot = FindSlot(MyDatabaseId, false);
		if (slot != NULL)
			slot->next_check = Max(next, earliest);
		latch = ChurnShared->launcher_latch;
		LWLockRelease(ChurnShared->lock);
		if (latch != NULL)
			SetLatch(latch);
	}
}

/* One pass over the database's due pipelines; returns when to look again. */
static TimestampTz
DbWorkerPass(MemoryContext cxt)
{
	List	   *handled = NIL;
	bool		skipped = false;
	bool		isnull;
	Datum		d;
	TimestampTz next = 0;
	bool		have_next = false;
	TimestampTz now;
	TimestampTz latest;
	TimestampTz earliest;
	int32		interrupted;
	int64		overrun;

	if (!PipelinesInstalled())
		return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), CHURN_NO_EXTENSION_RETRY_MS);

	overrun = OverrunRun();
	StepBegin("churn_warning: starting");
	{
		Oid			argtypes[1] = {INT8OID};
		Datum		values[1] = {Int64GetDatum(overrun)};

		d = QueryValue(overrun != 0 ? "SELECT churn.pipeline_worker_start($1)" :
					   "SELECT churn.pipeline_worker_start(NULL)",
					   overrun != 0 ? 1 : 0, argtypes, values, &isnull);
	}
	interrupted = isnull ? 0 : DatumGetInt32(d);
	StepEnd();
	if (overrun != 0)
		ClearOverrunRun(overrun);
	if (interrupted > 0)
		ereport(LOG,
				(errmsg("churn_warning marked %d pipeline runs of database \"%s\" as interrupted",
						interrupted, DbWorkerDatabase)));

	for (;;)
	{
		int32		pipeline_id;
		char	   *name;
		int64		limit_ms;
		int64		run_id;
		MemoryContext oldcxt;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!ChurnEnabled)
			break;

		MemoryContextSwitchTo(cxt);
		if (!NextDuePipeline(handled, cxt, &pipeline_id, &name, &limit_ms))
			break;
		/* each pipeline at most once per pass, so other databases get their turn */
		oldcxt = MemoryContextSwitchTo(cxt);
		handled = lappend_int(handled, pipeline_id);
		MemoryContextSwitchTo(oldcxt);

		if (!StartRun(pipeline_id, name, cxt, &run_id))
		{
			(void) ClaimPipeline(0);
			skipped = true;
			continue;
		}
		if (ChurnMaxWorkersPerDatabase > 1)
			AnnounceNextDue(cxt);
		PublishRun(run_id, limit_ms);
		ExecuteRun(pipeline_id, run_id, name, limit_ms, cxt);
		PublishRun(0, 0);
		(void) ClaimPipeline(0);
	}

	MemoryContextSwitchTo(cxt);
	StepBegin("churn_warning: finishing");
	have_next = NextDueUnclaimed(false, &next);
	StepEnd();
	MemoryContextSwitchTo(cxt);

	now = GetCurrentTimestamp();
	latest = TimestampTzPlusMilliseconds(now, CHURN_RECHECK_MS);
	/* a skipped pipeline is busy elsewhere: do not spin on it */
	earliest = TimestampTzPlusMilliseconds(now, skipped ? ChurnNaptime * 1000L : CHURN_MIN_RECHECK_MS);
	if (!have_next || next > latest)
		next = latest;
	if (next < earliest)
		next = earliest;
	return next;
}

/* Database worker: run the due pipelines of one database, then exit. */
void
churn_warning_db_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	MemoryContext cxt;
	TimestampTz next;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	IsChurnDbWorker = true;

	before_shmem_exit(DbWorkerExit, ObjectIdGetDatum(dboid));
	if (!DbWorkerRegister(dboid))
	{
		ereport(LOG,
				(errmsg("churn_warning worker for database %u found no free worker entry", dboid)));
		proc_exit(0);
	}

	/* bootstrap superuser; the SQL side runs each refresh as its pipeline's owner */
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	SetConfigOption("application_name", "churn_warning worker", PGC_USERSET, PGC_S_SESSION);

	cxt = AllocSetContextCreate(TopMemoryContext, "churn_warning worker",
								ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(cxt);

	next = DbWorkerPass(cxt);
	ReportNextCheck(dboid, next);
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
