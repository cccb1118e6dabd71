/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  Background worker that runs due pipeline refreshes: shared memory,
 *	  GUCs and the SQL-callable functions.
 *
 * One launcher process (launcher.c) is registered at server start when the
 * library is in shared_preload_libraries; it starts short-lived database
 * workers (dbworker.c) for the databases that are due.  This file holds
 * what the three have in common and what ordinary backends call.
 *
 * Shared memory holds one slot per database: when it is due next, the pid of
 * its running worker and whether a backend asked for an early look
 * (churn.worker_wake(), called by the SQL side after a pipeline changes).
 * The wake-up is delivered only when the calling transaction commits, and
 * never from a database worker, whose own changes need none.  Without
 * shared_preload_libraries there is no shared state: worker_wake does
 * nothing and worker_status returns no rows.
 *
 *-------------------------------------------------------------------------
 */
#include "churn_warning.h"
#include "worker.h"

#include <limits.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(worker_wake);
PG_FUNCTION_INFO_V1(worker_status);
PG_FUNCTION_INFO_V1(pipeline_limits);

#define CHURN_TRANCHE "churn_warning"

/* GUCs */
int			ChurnNaptime = 10;
bool		ChurnEnabled = true;
int			ChurnMaxWorkers = 2;
int			ChurnMaxWorkersPerDatabase = 1;
int			ChurnMaxPipelinesPerRole = 20;
int			ChurnMinSchedule = 1;
int			ChurnMaxTimeLimit = 21600;

ChurnWorkerShared *ChurnShared = NULL;

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif

/* Per-backend state of churn.worker_wake(). */
static bool WakeCallbackRegistered = false;
static bool WakePending = false;

/* True in a database worker, whose own pipeline changes need no wake-up. */
bool		IsChurnDbWorker = false;

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
							2, 1, CHURN_MAX_DB_WORKERS,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("churn_warning.max_workers_per_database",
							"Most churn_warning workers running at once for one database.",
							"Each refreshes other pipelines, so one long refresh does not hold back the rest.",
							&ChurnMaxWorkersPerDatabase,
							1, 1, CHURN_MAX_DB_WORKERS,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("churn_warning.max_pipelines_per_role",
							"Most pipelines one role may own.",
							"Checked when a pipeline is created or given to another role.",
							&ChurnMaxPipelinesPerRole,
							20, 1, 100000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("churn_warning.min_schedule",
							"Shortest schedule a pipeline may have.",
							NULL,
							&ChurnMinSchedule,
							1, 1, 86400,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("churn_warning.max_time_limit",
							"Longest time limit a pipeline refresh may have.",
							"Scheduled runs are held to the smaller of this and the pipeline's own time_limit.",
							&ChurnMaxTimeLimit,
							21600, 1, INT_MAX / 1000,
							PGC_SUSET,
							GUC_UNIT_S,
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

/* A dynamic background worker of the library, connected to dboid, running function. */
void
ChurnBgWorkerInit(BackgroundWorker *worker, const char *function, const char *type, Oid dboid)
{
	memset(worker, 0, sizeof(*worker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker->bgw_library_name, CHURN_LIBRARY, sizeof(worker->bgw_library_name));
	strlcpy(worker->bgw_function_name, function, sizeof(worker->bgw_function_name));
	snprintf(worker->bgw_name, sizeof(worker->bgw_name), "%s for database %u", type, dboid);
	strlcpy(worker->bgw_type, type, sizeof(worker->bgw_type));
	worker->bgw_main_arg = ObjectIdGetDatum(dboid);
	worker->bgw_notify_pid = MyProcPid;
}

/* Most database workers at once: churn_warning.max_workers, and never more than max_worker_processes leaves beside the launcher. */
int
ChurnWorkerCap(void)
{
	return Max(1, Min(ChurnMaxWorkers, max_worker_processes - 1));
}

/* An interval of whole seconds. */
static Interval *
ChurnSecondsInterval(int seconds)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = (int64) seconds * USECS_PER_SEC;
	return iv;
}

/* Find the slot of a database, optionally taking a free one; caller holds the lock exclusively to create. */
ChurnDbSlot *
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

/* churn.pipeline_limits(): the limits on pipelines in force for this session. */
Datum
pipeline_limits(PG_FUNCTION_ARGS)
{
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	values[0] = Int32GetDatum(ChurnMaxPipelinesPerRole);
	values[1] = IntervalPGetDatum(ChurnSecondsInterval(ChurnMinSchedule));
	values[2] = IntervalPGetDatum(ChurnSecondsInterval(ChurnMaxTimeLimit));
	return ChurnMakeComposite(fcinfo, values, nulls);
}
