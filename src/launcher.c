/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher process of the background worker.
 *
 * One launcher process is registered at server start when the library is in
 * shared_preload_libraries.  It connects to no database: every naptime (or
 * sooner, when a slot is due or a backend asks for it) it reads pg_database
 * and starts a short-lived worker (dbworker.c) for each database that is
 * due, at most churn_warning.max_workers at a time (and within
 * max_worker_processes), earliest due first.  From 0.3.0 a database may
 * have up to churn_warning.max_workers_per_database workers: a worker that
 * claims a pipeline moves its database's next_check to when the next
 * unclaimed pipeline falls due, and the launcher starts another worker for
 * it then if the database has fewer than that many.
 *
 * The launcher owns the slots' running flag and the handles of the workers
 * it started; a worker that exits without reporting when its database is due
 * next leaves the launcher's provisional next_check in place, so a database
 * whose workers keep dying is retried with a growing delay.  Workers left by
 * an earlier launcher are known only by the pid they put in their slot.
 *
 *-------------------------------------------------------------------------
 */
#include "churn_warning.h"
#include "worker.h"

#include <signal.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "nodes/pg_list.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* pg_database.datconnlimit of a database left half-dropped. */
#define CHURN_DATCONNLIMIT_INVALID (-2)

/* Longest wait before retrying a database whose workers keep dying without reporting. */
#define CHURN_LOST_WORKER_MAX_RETRY_MS 300000

/* Launcher-local handles of the workers it started, and the index of their database's slot. */
static BackgroundWorkerHandle *LauncherHandles[CHURN_MAX_DB_WORKERS];
static int	LauncherHandleSlot[CHURN_MAX_DB_WORKERS];

/* Launcher exit: stop advertising our latch. */
static void
LauncherExit(int code, Datum arg)
{
	if (ChurnShared == NULL)
		return;
	LWLockAcquire(ChurnShared->lock, LW_EXCLUSIVE);
	if (ChurnShared->launcher_pid == MyProcPid)
	{
		ChurnShared->launcher_pid = 0;
		ChurnShared->launcher_latch = NULL;
	}
	LWLockRelease(ChurnShared->lock);
}

/* Read the connectable, non-template databases from pg_database, into cxt. */
static List *
ListDatabases(MemoryContext cxt)
{
	List	   *dbs = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();

	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		MemoryContext oldcxt;

		if (!db->datallowconn || db->datistemplate ||
			db->datconnlimit == CHURN_DATCONNLIMIT_INVALID)
			continue;
		oldcxt = MemoryContextSwitchTo(cxt);
		dbs = lappend_oid(dbs, db->oid);
		MemoryContextSwitchTo(oldcxt);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);

	CommitTransactionCommand();
	return dbs;
}

/* Forget databases that are gone and add slots for new ones. */
static void
SyncSlots(List *dbs, bool *full_warned)
{
	ListCell   *lc;
	bool		full = false;
	int			i;

	LWLockAcquire(ChurnShared->lock, LW_EXCLUSIVE);
	for (i = 0; i < CHURN_WORKER_SLOTS; i++)
	{
		ChurnDbSlot *slot = &ChurnShared->slots[i];

		if (slot->dboid != InvalidOid && !slot->running &&
			!list_member_oid(dbs, slot->dboid))
			memset(slot, 0, sizeof(ChurnDbSlot));
	}
	foreach(lc, dbs)
	{
		if (FindSlot(lfirst_oid(lc), true) == NULL)
			full = true;
	}
	LWLockRelease(ChurnShared->lock);

	if (full && !*full_warned)
		ereport(LOG,
				(errmsg("churn_warning launcher serves only the first %d databases",
						CHURN_WORKER_SLOTS)));
	*full_warned = full;
}

/*
 * Notice which of our workers have exited and count each database's
 * workers: those we started and have not seen exit, or those registered in
 * the shared worker entries (which covers workers of an earlier launcher),
 * whichever is more; log those that exited before reporting their pass.
 * Returns how many run in all.
 */
static int
ReapWorkers(void)
{
	int			started[CHURN_WORKER_SLOTS];
	int			stopped[CHURN_WORKER_SLOTS];
	int			nrunning = 0;
	int			i;

	memset(started, 0, sizeof(started));
	memset(stopped, 0, sizeof(stopped));
	for (i = 0; i < CHURN_MAX_DB_WORKERS; i++)
	{
		pid_t		pid;

		if (LauncherHandles[i] == NULL)
			continue;
		if (GetBackgroundWorkerPid(LauncherHandles[i], &pid) == BGWH_STOPPED)
		{
			stopped[LauncherHandleSlot[i]]++;
			pfree(LauncherHandles[i]);
			LauncherHandles[i] = NULL;
		}
		else
			started[LauncherHandleSlot[i]]++;
	}

	LWLockAcquire(ChurnShared->lock, LW_EXCLUSIVE);
	for (i = 0; i < CHURN_WORKER_SLOTS; i++)
	{
		ChurnDbSlot *slot = &ChurnShared->slots[i];
		int			registered = 0;

		if (slot->dboid == InvalidOid)
			continue;
		for (int w = 0; w < CHURN_MAX_DB_WORKERS; w++)
			if (ChurnShared->workers[w].dboid == slot->dboid && ChurnShared->workers[w].pid != 0)
				registered++;
		slot->nworkers = Max(started[i], registered);
		slot->running = slot->nworkers > 0;
		nrunning += slot->nworkers;
		/* one exited without reporting its pass: its own error is in the log */
		if (stopped[i] > 0 && slot->lost > 0)
			ereport(LOG,
					(errmsg("churn_warning worker for database %u exited before finishing its pass",
							slot->dboid),
					 errhint("The worker's own error (could not connect, out of memory, ...) is logged just before; a refresh it was running is recorded as interrupted by the next worker. The launcher retries with backoff.")));
	}
	LWLockRelease(ChurnShared->lock);
	return nrunning;
}

/* Register a dynamic background worker for one database. */
static bool
LaunchDbWorker(Oid dboid, BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	ChurnBgWorkerInit(&worker, "churn_warning_db_main", "churn_warning worker", dboid);
	return RegisterDynamicBackgroundWorker(&worker, handle);
}

/* Delay before retrying a database after lost workers: naptime, doubling, capped. */
static long
LostWorkerRetryMs(int lost)
{
	long		ms = ChurnNaptime * 1000L;
	int			k;

	for (k = 0; k < lost && ms < CHURN_LOST_WORKER_MAX_RETRY_MS; k++)
		ms *= 2;
	return Min(ms, CHURN_LOST_WORKER_MAX_RETRY_MS);
}

/* Start workers for due databases, earliest first; returns how long to sleep (ms). */
static long
StartDueWorkers(int nrunning, MemoryContext cxt, bool *register_warned)
{
	TimestampTz now = GetCurrentTimestamp();
	long		timeout = ChurnNaptime * 1000L;
	int			i;

	while (ChurnEnabled && nrunning < ChurnWorkerCap())
	{
		int			best = -1;
		TimestampTz best_due = 0;
		Oid			dboid;
		BackgroundWorkerHandle *handle;
		ChurnDbSlot *slot;
		MemoryContext oldcxt;
		bool		ok;
		int			h;

		LWLockAcquire(ChurnShared->lock, LW_SHARED);
		for (i = 0; i < CHURN_WORKER_SLOTS; i++)
		{
			ChurnDbSlot *cand = &ChurnShared->slots[i];
			TimestampTz due;

			if (cand->dboid == InvalidOid || cand->nworkers >= ChurnMaxWorkersPerDatabase)
				continue;
			due = cand->wake_requested ? 0 : cand->next_check;
			if (due <= now && (best < 0 || due < best_due))
			{
				best = i;
				best_due = due;
			}
		}
		dboid = best >= 0 ? ChurnShared->slots[best].dboid : InvalidOid;
		LWLockRelease(ChurnShared->lock);

		if (best < 0)
			break;

		for (h = 0; h < CHURN_MAX_DB_WORKERS && LauncherHandles[h] != NULL; h++)
			;
		if (h == CHURN_MAX_DB_WORKERS)
			break;
		oldcxt = MemoryContextSwitchTo(cxt);
		ok = LaunchDbWorker(dboid, &handle);
		MemoryContextSwitchTo(oldcxt);
		if (!ok)
		{
			if (!*register_warned)
				ereport(LOG,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("churn_warning launcher could not start a database worker"),
						 errhint("Raise max_worker_processes; the launcher retries every churn_warning.naptime.")));
			*register_warned = true;
			return timeout;
		}
		*register_warned = false;

		LWLockAcquire(ChurnShared->lock, LW_EXCLUSIVE);
		slot = &ChurnShared->slots[best];
		slot->running = true;
		slot->nworkers++;
		slot->wake_requested = false;
		/* the worker overwrites this; if it dies first, retry with backoff */
		slot->next_check = TimestampTzPlusMilliseconds(now, LostWorkerRetryMs(slot->lost));
		slot->lost++;
		LWLockRelease(ChurnShared->lock);
		LauncherHandles[h] = handle;
		LauncherHandleSlot[h] = best;
		nrunning++;
		elog(DEBUG1, "churn_warning launcher started a worker for database %u", dboid);
	}

	if (!ChurnEnabled)
		return timeout;

	/* sleep until the next database falls due, at most naptime */
	LWLockAcquire(ChurnShared->lock, LW_SHARED);
	for (i = 0; i < CHURN_WORKER_SLOTS; i++)
	{
		ChurnDbSlot *slot = &ChurnShared->slots[i];

		if (slot->dboid == InvalidOid || slot->nworkers >= ChurnMaxWorkersPerDatabase ||
			slot->wake_requested)
			continue;
		if (slot->next_check > now)
		{
			long		ms = (long) ((slot->next_check - now + 999) / 1000);

			timeout = Min(timeout, Max(ms, 1));
		}
	}
	LWLockRelease(ChurnShared->lock);
	return timeout;
}

/*
 * End the refreshes that overstay their time limit by more than the grace
 * period: a source may catch the statement timeout and go on, but not a
 * terminated backend.  The next worker of the database records the run as
 * timed_out.  Returns how long until the next deadline (ms), at most
 * timeout.
 */
static long
EndOverdueRuns(long timeout)
{
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	LWLockAcquire(ChurnShared->lock, LW_EXCLUSIVE);
	for (i = 0; i < CHURN_MAX_DB_WORKERS; i++)
	{
		ChurnWorkerEntry *worker = &ChurnShared->workers[i];
		ChurnDbSlot *slot;
		TimestampTz end;

		if (worker->dboid == InvalidOid || worker->pid == 0 || worker->run_id == 0)
			continue;
		end = TimestampTzPlusMilliseconds(worker->run_deadline, CHURN_TIME_LIMIT_GRACE_MS);
		if (end > now)
		{
			timeout = Min(timeout, Max((long) ((end - now + 999) / 1000), 1));
			continue;
		}
		ereport(LOG,
				(errmsg("churn_warning launcher is ending pipeline run %lld in database %u: it overstayed its time limit",
						(long long) worker->run_id, worker->dboid),
				 errhint("The run is recorded as timed_out and counts as a failure of its pipeline.")));
		slot = FindSlot(worker->dboid, false);
		if (kill(worker->pid, SIGTERM) == 0 && slot != NULL)
		{
			/* one run to record per database at a time; another is marked interrupted */
			if (slot->overrun_run_id == 0)
				slot->overrun_run_id = worker->run_id;
			/* a deliberate end: the next worker may start at once */
			slot->lost = 0;
			slot->next_check = now;
		}
		worker->run_id = 0;
	}
	LWLockRelease(ChurnShared->lock);
	return timeout;
}

/* Launcher main loop: find due databases and start their workers. */
void
churn_warning_launcher_main(Datum main_arg)
{
	MemoryContext launcher_cxt;
	MemoryContext loop_cxt;
	bool		register_warned = false;
	bool		full_warned = false;
	bool		was_enabled;
	int			was_naptime;
	int			was_max_workers;
	int			i;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	/* no database: pg_database is a shared catalog */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	SetConfigOption("application_name", "churn_warning launcher", PGC_USERSET, PGC_S_SESSION);

	launcher_cxt = AllocSetContextCreate(TopMemoryContext, "churn_warning launcher",
										 ALLOCSET_DEFAULT_SIZES);
	loop_cxt = AllocSetContextCreate(launcher_cxt, "churn_warning launcher loop",
									 ALLOCSET_DEFAULT_SIZES);

	LWLockAcquire(ChurnShared->lock, LW_EXCLUSIVE);
	ChurnShared->launcher_pid = MyProcPid;
	ChurnShared->launcher_latch = MyLatch;
	/* workers of a previous launcher still count until they exit (ReapWorkers counts them) */
	for (i = 0; i < CHURN_WORKER_SLOTS; i++)
		ChurnShared->slots[i].running = (ChurnShared->slots[i].worker_pid != 0);
	LWLockRelease(ChurnShared->lock);
	before_shmem_exit(LauncherExit, (Datum) 0);

	ereport(LOG,
			(errmsg("churn_warning launcher started"),
			 errdetail("naptime %d s, max_workers %d, max_workers_per_database %d, enabled %s",
					   ChurnNaptime, ChurnMaxWorkers, ChurnMaxWorkersPerDatabase,
					   ChurnEnabled ? "on" : "off")));
	was_enabled = ChurnEnabled;
	was_naptime = ChurnNaptime;
	was_max_workers = ChurnMaxWorkers;

	while (!ShutdownRequestPending)
	{
		int			nrunning;
		long		timeout;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			if (ChurnEnabled != was_enabled || ChurnNaptime != was_naptime ||
				ChurnMaxWorkers != was_max_workers)
				ereport(LOG,
						(errmsg("churn_warning launcher reloaded its settings"),
						 errdetail("naptime %d s, max_workers %d, enabled %s",
								   ChurnNaptime, ChurnMaxWorkers, ChurnEnabled ? "on" : "off")));
			was_enabled = ChurnEnabled;
			was_naptime = ChurnNaptime;
			was_max_workers = ChurnMaxWorkers;
		}

		MemoryContextReset(loop_cxt);
		nrunning = ReapWorkers();
		SyncSlots(ListDatabases(loop_cxt), &full_warned);
		timeout = StartDueWorkers(nrunning, launcher_cxt, &register_warned);
		timeout = EndOverdueRuns(timeout);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}

	ereport(LOG, (errmsg("churn_warning launcher shutting down")));
	/* exit code 1: the postmaster starts us again unless it is shutting down */
	proc_exit(1);
}
