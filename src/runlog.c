/*-------------------------------------------------------------------------
 *
 * runlog.c
 *	  A failed manual refresh stays on record (0.3.0).
 *
 * churn.refresh runs in the caller's transaction, so when it fails its run
 * row rolls back with everything else.  To keep the failure on record, the
 * refresh's error is caught in pipeline_dispatch and handed to a short-lived
 * dynamic background worker (the "run recorder"), which writes the run in
 * a transaction of its own (churn.pipeline_run_record) and exits; the
 * refresh waits for it (up to 5 s), then the error propagates to the
 * caller as before.  The recorder takes no lock the failed refresh holds.  A dynamic worker was
 * chosen over the launcher's per-database worker because it needs neither
 * shared_preload_libraries nor shared memory of our own: only a free
 * max_worker_processes slot.  Without one, the failure is only logged.
 *
 * The record travels in bgw_extra (128 bytes): the pipeline, the status
 * (failed, cancelled or timed_out), the SQLSTATE, when the run started and
 * the first bytes of the message; the whole error is in the server log.
 *
 *-------------------------------------------------------------------------
 */
#include "churn_warning.h"
#include "worker.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/wait_event.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* What the run recorder writes, as it travels in bgw_extra. */
typedef struct ChurnRunRecord
{
	TimestampTz started_at;
	int32		pipeline_id;
	char		status;			/* 'f' failed, 'c' cancelled, 't' timed_out, 's' skipped */
	char		sqlstate[6];
	char		message[BGW_EXTRALEN - sizeof(TimestampTz) - sizeof(int32) - 7];
} ChurnRunRecord;

StaticAssertDecl(sizeof(ChurnRunRecord) <= BGW_EXTRALEN, "ChurnRunRecord must fit in bgw_extra");

/* Longest a failed refresh waits for its record before its error goes on. */
#define RUN_RECORDER_WAIT_MS 5000

/*
 * The status of a refresh that failed with edata: a query cancel is
 * timed_out when the statement has run for its statement_timeout, else
 * cancelled (pg_cancel_backend, or a client's cancel); a refresh refused
 * because another one holds the pipeline (55P03) is skipped, as the
 * worker records it; anything else failed.
 */
static char
RunStatusOf(ErrorData *edata)
{
	long		secs;
	int			usecs;

	if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
		return 's';
	if (edata->sqlerrcode != ERRCODE_QUERY_CANCELED)
		return 'f';
	if (StatementTimeout <= 0)
		return 'c';
	TimestampDifference(GetCurrentStatementStartTimestamp(), GetCurrentTimestamp(), &secs, &usecs);
	return secs * 1000L + usecs / 1000 >= StatementTimeout ? 't' : 'c';
}

/*
 * Wait (interrupts held) until the run recorder has exited, at most
 * RUN_RECORDER_WAIT_MS, so that the failed run is on record, in its place
 * among the runs, before the error reaches the caller.
 */
static void
WaitForRecorder(BackgroundWorkerHandle *handle, int32 pipeline_id)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), RUN_RECORDER_WAIT_MS);
	pid_t		pid;

	HOLD_INTERRUPTS();
	while (GetBackgroundWorkerPid(handle, &pid) != BGWH_STOPPED)
	{
		if (GetCurrentTimestamp() >= deadline)
		{
			ereport(LOG,
					(errmsg("churn_warning stopped waiting for the record of the failed refresh of pipeline %d",
							pipeline_id),
					 errhint("The run recorder goes on; the run appears when it is done.")));
			break;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	RESUME_INTERRUPTS();
}

/*
 * Hand the failure of a manual refresh of a pipeline, started at
 * started_at, to a run recorder, and wait for it.  Called while the error
 * is being handled, before it is re-thrown: it must not throw itself.
 */
void
ChurnRecordManualFailure(int32 pipeline_id, TimestampTz started_at, ErrorData *edata)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	ChurnRunRecord rec;
	const char *msg = edata->message ? edata->message : "";

	memset(&rec, 0, sizeof(rec));
	rec.started_at = started_at;
	rec.pipeline_id = pipeline_id;
	rec.status = RunStatusOf(edata);
	strlcpy(rec.sqlstate, unpack_sql_state(edata->sqlerrcode), sizeof(rec.sqlstate));
	/* cut at a character boundary */
	memcpy(rec.message, msg, pg_mbcliplen(msg, strlen(msg), sizeof(rec.message) - 1));

	ChurnBgWorkerInit(&worker, "churn_warning_run_recorder_main", "churn_warning run recorder", MyDatabaseId);
	memcpy(worker.bgw_extra, &rec, sizeof(rec));
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		ereport(LOG,
				(errmsg("churn_warning could not record the failed refresh of pipeline %d: no background worker slot",
						pipeline_id),
				 errhint("Raise max_worker_processes; the error itself was: %s", msg)));
		return;
	}
	WaitForRecorder(handle, pipeline_id);
}

/* Run recorder: write one failed manual run in its own transaction, then exit. */
void
churn_warning_run_recorder_main(Datum main_arg)
{
	ChurnRunRecord rec;
	Oid			argtypes[5] = {INT4OID, TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID};
	Datum		values[5];
	const char *status;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	memcpy(&rec, MyBgworkerEntry->bgw_extra, sizeof(rec));
	rec.message[sizeof(rec.message) - 1] = '\0';
	rec.sqlstate[sizeof(rec.sqlstate) - 1] = '\0';
	status = rec.status == 't' ? "timed_out" : rec.status == 'c' ? "cancelled" :
		rec.status == 's' ? "skipped" : "failed";

	/* bootstrap superuser, as the database worker; the SQL side writes only the run */
	BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(main_arg), InvalidOid, 0);
	SetConfigOption("application_name", "churn_warning run recorder", PGC_USERSET, PGC_S_SESSION);

	values[0] = Int32GetDatum(rec.pipeline_id);
	values[1] = CStringGetTextDatum(status);
	values[2] = TimestampTzGetDatum(rec.started_at);
	values[3] = CStringGetTextDatum(rec.sqlstate);
	values[4] = CStringGetTextDatum(rec.message);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "churn_warning: recording a failed manual refresh");
	/* a database without (this version of) the extension has nothing to record */
	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n "
					"ON n.oid OPERATOR(pg_catalog.=) p.pronamespace "
					"WHERE n.nspname OPERATOR(pg_catalog.=) 'churn' "
					"AND p.proname OPERATOR(pg_catalog.=) 'pipeline_run_record'",
					true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		if (SPI_execute_with_args("SELECT churn.pipeline_run_record($1, $2, $3, $4, $5)",
								  5, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "churn.pipeline_run_record() failed");
	}
	else
		ereport(LOG,
				(errmsg("churn_warning could not record the failed refresh of pipeline %d: the extension is not up to date",
						rec.pipeline_id),
				 errhint("Run ALTER EXTENSION churn_warning UPDATE in that database.")));
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
