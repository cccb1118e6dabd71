/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  Background worker that runs due pipeline refreshes.
 *
 * One launcher process is registered at server start when the library is in
 * shared_preload_libraries.  It connects to no database: every naptime (or
 * sooner, when a slot is due or a backend asks for it) it reads pg_database
 * and starts a short-lived worker for each database that is due, at most
 * churn_warning.max_workers at a time.  A database worker checks that the
 * extension is installed, runs the due pipelines one by one through the SQL
 * functions churn.pipeline_*, reports when its database should be looked at
 * next, and exits, so nothing stays connected to a database while idle
 * (DROP DATABASE and ALTER DATABASE RENAME are never blocked for long).
 *
 * Shared memory holds one slot per database: when it is due next, the pid of
 * its running worker and whether a backend asked for an early look
 * (churn.worker_wake(), called by the SQL side after a pipeline changes).
 *
 *-------------------------------------------------------------------------
 */
#include "churn_warning.h"
#include "worker.h"

#include <limits.h>
#include <signal.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
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
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(worker_wake);
PG_FUNCTION_INFO_V1(worker_status);

/* Most databases the launcher keeps track of at once. */
#define CHURN_WORKER_SLOTS 1024

/* pg_database.datconnlimit of a database left half-dropped. */
#define CHURN_DATCONNLIMIT_INVALID (-2)

/* Longest wait before retrying a database whose workers keep dying without reporting. */
#define CHURN_LOST_WORKER_MAX_RETRY_MS 300000
/* Longest a database goes unchecked while the extension is installed. */
#define CHURN_RECHECK_MS 60000
/* When to look again at a database without the extension. */
#define CHURN_NO_EXTENSION_RETRY_MS 300000
/* Shortest time between two workers for the same database. */
#define CHURN_MIN_RECHECK_MS 1000

#define CHURN_LIBRARY "churn_warning"
#define CHURN_TRANCHE "churn_warning"

/* What the launcher knows about one database. */
typedef struct ChurnDbSlot
{
	Oid			dboid;			/* InvalidOid: slot is free */
	TimestampTz next_check;		/* 0: never checked, due at once */
	int			worker_pid;		/* set by the worker while it runs, else 0 */
	bool		running;		/* launcher's view: a worker is registered */
	bool		wake_requested; /* a committed change asks for an early look */
	int			lost;			/* workers in a row that exited without reporting */
} ChurnDbSlot;

/* The worker's shared memory. */
typedef struct ChurnWorkerShared
{
	LWLock	   *lock;			/* protects everything below */
	int			launcher_pid;
	Latch	   *launcher_latch; /* NULL while no launcher runs */
	ChurnDbSlot slots[CHURN_WORKER_SLOTS];
} ChurnWorkerShared;

/* GUCs */
static int	ChurnNaptime = 10;
static bool ChurnEnabled = true;
static int	ChurnMaxWorkers = 2;

static ChurnWorkerShared *ChurnShared = NULL;

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif

/* Per-backend state of churn.worker_wake(). */
static bool WakeCallbackRegistered = false;
static bool WakePending = false;

/* True in a database worker, whose own pipeline changes need no wake-up. */
static bool IsChurnDbWorker = false;

/* Name of the worker's database, for log lines. */
static char *DbWorkerDatabase = NULL;

/* Launcher-local handles of the workers it started, by slot index. */
static BackgroundWorkerHandle *LauncherHandles[CHURN_WORKER_SLOTS];

/* Size of the shared state. */
static Size
ChurnWorkerShmemSize(void)
{
	return MAXALIGN(sizeof(ChurnWorkerShared));
}

/* Ask for the shared memory and the lock the worker needs. */
static void
ChurnWorkerRequestShmem(void)
{
	RequestAddinShmemSpace(ChurnWorkerShmemSize());
	RequestNamedLWLockTranche(CHURN_TRANCHE, 1);
}

#if PG_VERSION_NUM >= 150000
/* shmem_request_hook: reserve our shared memory. */
static void
ChurnWorkerShmemRequestHook(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	ChurnWorkerRequestShmem();
}
#endif

/* shmem_startup_hook: create or attach to the shared state. */
static void
ChurnWorkerShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ChurnShared = ShmemInitStruct("churn_warning worker", ChurnWorkerShmemSize(), &found);
	if (!found)
	{
		memset(ChurnShared, 0, ChurnWorkerShmemSize());
		ChurnShared->lock = &(GetNamedLWLockTranche(CHURN_TRANCHE))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Define the GUCs; when preloaded, also reserve shared memory and register the launcher. */
void
ChurnWorkerInit(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("churn_warning.naptime",
							"How often the churn_warning launcher looks for due pipeline refreshes.",
							NULL,
							&ChurnNaptime,
							10, 1, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("churn_warning.enabled",
							 "Whether the churn_warning background worker starts scheduled refreshes.",
							 NULL,
							 &ChurnEnabled,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("churn_warning.max_workers",
							"Most churn_warning database workers running at once.",
							NULL,
							&ChurnMaxWorkers,
							2, 1, 64,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("churn_warning");
#else
	EmitWarningsOnPlaceholders("churn_warning");
#endif

	if (!process_shared_preload_libraries_in_progress)
		return;

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ChurnWorkerShmemRequestHook;
#else
	ChurnWorkerRequestShmem();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ChurnWorkerShmemStartup;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	strlcpy(worker.bgw_library_name, CHURN_LIBRARY, sizeof(worker.bgw_library_name));
	strlcpy(worker.bgw_function_name, "churn_warning_launcher_main", sizeof(worker.bgw_function_name));
	strlcpy(worker.bgw_name, "churn_warning launcher", sizeof(worker.bgw_name));
	strlcpy(worker.bgw_type, "churn_warning launcher", sizeof(worker.bgw_type));
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}

/* Find the slot of a database, optionally taking a free one; caller holds the lock exclusively to create. */
static ChurnDbSlot *
FindSlot(Oid dboid, bool create)
{
	ChurnDbSlot *free_slot = NULL;
	int			i;

	for (i = 0; i < CHURN_WORKER_SLOTS; i++)
	{
		ChurnDbSlot *slot = &ChurnShared->slots[i];

		if (slot->dboid == dboid)
			return slot;
		if (free_slot == NULL && slot->dboid == InvalidOid)
			free_slot = slot;
	}
	if (!create || free_slot == NULL)
		return NULL;
	memset(free_slot, 0, sizeof(ChurnDbSlot));
	free_slot->dboid = dboid;
	return free_slot;
}

/* Mark a database as wanting an early look and wake the launcher. */
static void
RequestLauncherWake(Oid dboid)
{
	ChurnDbSlot *slot;
	Latch	   *latch;

	LWLockAcquire(ChurnShared->lock, LW_EXCLUSIVE);
	slot = FindSlot(dboid, true);
	if (slot != NULL)
		slot->wake_requested = true;
	latch = ChurnShared->launcher_latch;
	LWLockRelease(ChurnShared->lock);

	if (latch != NULL)
		SetLatch(latch);
}

/* Transaction callback: deliver a pending wake-up only when the transaction commits. */
static void
WakeXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			if (WakePending && ChurnShared != NULL && OidIsValid(MyDatabaseId))
				RequestLauncherWake(MyDatabaseId);
			WakePending = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_ABORT:
			WakePending = false;
			break;
		default:
			break;
	}
}

/* churn.worker_wake(): ask the launcher to look at this database soon after commit. */
Datum
worker_wake(PG_FUNCTION_ARGS)
{
	if (ChurnShared == NULL || IsChurnDbWorker)
		PG_RETURN_VOID();

	if (!WakeCallbackRegistered)
	{
		RegisterXactCallback(WakeXactCallback, NULL);
		WakeCallbackRegistered = true;
	}
	WakePending = true;
	PG_RETURN_VOID();
}

/* churn.worker_status(): the launcher's per-database slots, for operators and tests. */
Datum
worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ChurnDbSlot *copy;
	int			i;

	ChurnMaterializeSRF(fcinfo);
	if (ChurnShared == NULL)
		return (Datum) 0;

	copy = palloc(sizeof(ChurnDbSlot) * CHURN_WORKER_SLOTS);
	LWLockAcquire(ChurnShared->lock, LW_SHARED);
	memcpy(copy, ChurnShared->slots, sizeof(ChurnDbSlot) * CHURN_WORKER_SLOTS);
	LWLockRelease(ChurnShared->lock);

	for (i = 0; i < CHURN_WORKER_SLOTS; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		if (copy[i].dboid == InvalidOid)
			continue;
		values[0] = ObjectIdGetDatum(copy[i].dboid);
		values[1] = TimestampTzGetDatum(copy[i].next_check);
		nulls[1] = (copy[i].next_check == 0);
		values[2] = Int32GetDatum(copy[i].worker_pid);
		nulls[2] = (copy[i].worker_pid == 0);
		values[3] = BoolGetDatum(copy[i].wake_requested);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(copy);
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * Launcher
 * ---------------------------------------------------------------------
 */

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

/* Notice which of our workers have exited; returns how many still run. */
static int
ReapWorkers(void)
{
	bool		stopped[CHURN_WORKER_SLOTS];
	int			nrunning = 0;
	int			i;

	for (i = 0; i < CHURN_WORKER_SLOTS; i++)
	{
		pid_t		pid;

		stopped[i] = false;
		if (LauncherHandles[i] != NULL &&
			GetBackgroundWorkerPid(LauncherHandles[i], &pid) == BGWH_STOPPED)
		{
			pfree(LauncherHandles[i]);
			LauncherHandles[i] = NULL;
			stopped[i] = true;
		}
	}

	LWLockAcquire(ChurnShared->lock, LW_EXCLUSIVE);
	for (i = 0; i < CHURN_WORKER_SLOTS; i++)
	{
		ChurnDbSlot *slot = &ChurnShared->slots[i];

		if (!slot->running)
			continue;
		/* a worker started by an earlier launcher is known only by its pid */
		if (stopped[i] || (LauncherHandles[i] == NULL && slot->worker_pid == 0))
			slot->running = false;
		else
			nrunning++;
	}
	LWLockRelease(ChurnShared->lock);
	return nrunning;
}

/* Register a dynamic background worker for one database. */
static bool
LaunchDbWorker(Oid dboid, BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, CHURN_LIBRARY, sizeof(worker.bgw_library_name));
	strlcpy(worker.bgw_function_name, "churn_warning_db_main", sizeof(worker.bgw_function_name));
	snprintf(worker.bgw_name, sizeof(worker.bgw_name), "churn_warning worker for database %u", dboid);
	strlcpy(worker.bgw_type, "churn_warning worker", sizeof(worker.bgw_type));
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = MyProcPid;
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

	while (ChurnEnabled && nrunning < ChurnMaxWorkers)
	{
		int			best = -1;
		TimestampTz best_due = 0;
		Oid			dboid;
		BackgroundWorkerHandle *handle;
		ChurnDbSlot *slot;
		MemoryContext oldcxt;
		bool		ok;

		LWLockAcquire(ChurnShared->lock, LW_SHARED);
		for (i = 0; i < CHURN_WORKER_SLOTS; i++)
		{
			ChurnDbSlot *cand = &ChurnShared->slots[i];
			TimestampTz due;

			if (cand->dboid == InvalidOid || cand->running)
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
		slot->wake_requested = false;
		/* the worker overwrites this; if it dies first, retry with backoff */
		slot->next_check = TimestampTzPlusMilliseconds(now, LostWorkerRetryMs(slot->lost));
		slot->lost++;
		LWLockRelease(ChurnShared->lock);
		LauncherHandles[best] = handle;
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

		if (slot->dboid == InvalidOid || slot->running || slot->wake_requested)
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
	/* workers of a previous launcher still count until they exit */
	for (i = 0; i < CHURN_WORKER_SLOTS; i++)
		ChurnShared->slots[i].running = (ChurnShared->slots[i].worker_pid != 0);
	LWLockRelease(ChurnShared->lock);
	before_shmem_exit(LauncherExit, (Datum) 0);

	ereport(LOG,
			(errmsg("churn_warning launcher started"),
			 errdetail("naptime %d s, max_workers %d, enabled %s",
					   ChurnNaptime, ChurnMaxWorkers, ChurnEnabled ? "on" : "off")));
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

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}

	ereport(LOG, (errmsg("churn_warning launcher shutting down")));
	/* exit code 1: the postmaster starts us again unless it is shutting down */
	proc_exit(1);
}

/* ---------------------------------------------------------------------
 * Database worker
 * ---------------------------------------------------------------------
 */

/* Worker exit: clear our pid from the database's slot. */
static void
DbWorkerExit(int code, Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	ChurnDbSlot *slot;

	LWLockAcquire(ChurnShared->lock, LW_EXCLUSIVE);
	slot = FindSlot(dboid, false);
	if (slot != NULL && slot->worker_pid == MyProcPid)
		slot->worker_pid = 0;
	LWLockRelease(ChurnShared->lock);
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
		installed = DatumGetBool(QueryValue("SELECT to_regprocedure('churn.pipeline_due()') IS NOT NULL",
											0, NULL, NULL, &isnull));
	StepEnd();
	return installed;
}

/* Find the first due pipeline not yet handled in this pass; its name is copied into cxt. */
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
		if (isnull || list_member_int(handled, id))
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

	if (!PipelinesInstalled())
		return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), CHURN_NO_EXTENSION_RETRY_MS);

	StepBegin("churn_warning: starting");
	d = QueryValue("SELECT churn.pipeline_worker_start()", 0, NULL, NULL, &isnull);
	interrupted = isnull ? 0 : DatumGetInt32(d);
	StepEnd();
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
			skipped = true;
			continue;
		}
		ExecuteRun(pipeline_id, run_id, name, limit_ms, cxt);
	}

	MemoryContextSwitchTo(cxt);
	StepBegin("churn_warning: finishing");
	d = QueryValue("SELECT churn.pipeline_next_due()", 0, NULL, NULL, &isnull);
	if (!isnull)
	{
		next = DatumGetTimestampTz(d);
		have_next = true;
	}
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
	ChurnDbSlot *slot;
	TimestampTz next;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	IsChurnDbWorker = true;

	LWLockAcquire(ChurnShared->lock, LW_EXCLUSIVE);
	slot = FindSlot(dboid, true);
	if (slot != NULL)
		slot->worker_pid = MyProcPid;
	LWLockRelease(ChurnShared->lock);
	before_shmem_exit(DbWorkerExit, ObjectIdGetDatum(dboid));

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
