/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  Background worker: a launcher that never connects to a database and
 *	  short-lived per-database workers that run due pipeline refreshes.
 *
 * Declarations shared by worker.c (shared memory, GUCs, SQL functions),
 * launcher.c (the launcher) and dbworker.c (the database worker).
 * Everything in ChurnShared behind its lock pointer, the slots included, is
 * read under ChurnShared->lock (shared or exclusive) and written only under
 * it held exclusively.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_WORKER_H
#define CHURN_WORKER_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

/* Most databases the launcher keeps track of at once. */
#define CHURN_WORKER_SLOTS 1024

#define CHURN_LIBRARY "churn_warning"

/* Most database workers at once (the maximum of churn_warning.max_workers). */
#define CHURN_MAX_DB_WORKERS 64

/* What the launcher knows about one database. */
typedef struct ChurnDbSlot
{
	Oid			dboid;			/* InvalidOid: slot is free */
	TimestampTz next_check;		/* 0: never checked, due at once */
	int			worker_pid;		/* the latest of its workers still running, else 0 */
	bool		running;		/* launcher's view: a worker is registered */
	int			nworkers;		/* launcher's view: how many (0.3.0) */
	bool		wake_requested; /* a committed change asks for an early look */
	int			lost;			/* workers in a row that exited without reporting */
	int64		overrun_run_id; /* a run the launcher ended for overstaying, to record */
} ChurnDbSlot;

/* One running database worker (0.3.0: a database may have several). */
typedef struct ChurnWorkerEntry
{
	Oid			dboid;			/* InvalidOid: entry is free */
	int			pid;
	int32		pipeline_id;	/* the pipeline it claimed, else 0 */
	int64		run_id;			/* the refresh it runs now under a time limit, else 0 */
	TimestampTz run_deadline;	/* when that refresh's time limit ends */
} ChurnWorkerEntry;

/* How long past its time limit a refresh may run before the launcher ends it. */
#define CHURN_TIME_LIMIT_GRACE_MS 2000

/* The worker's shared memory. */
typedef struct ChurnWorkerShared
{
	LWLock	   *lock;			/* protects everything below */
	int			launcher_pid;
	Latch	   *launcher_latch; /* NULL while no launcher runs */
	ChurnDbSlot slots[CHURN_WORKER_SLOTS];
	ChurnWorkerEntry workers[CHURN_MAX_DB_WORKERS];
} ChurnWorkerShared;

/* GUCs (worker.c defines them) */
extern int	ChurnNaptime;
extern bool ChurnEnabled;
extern int	ChurnMaxWorkers;
extern int	ChurnMaxWorkersPerDatabase;
extern int	ChurnMaxPipelinesPerRole;
extern int	ChurnMinSchedule;
extern int	ChurnMaxTimeLimit;

/* The shared state; NULL when the library is not preloaded. */
extern ChurnWorkerShared *ChurnShared;

/* True in a database worker, whose own pipeline changes need no wake-up. */
extern bool IsChurnDbWorker;

/* Define the GUCs; when preloaded, also reserve shared memory and register the launcher. */
extern void ChurnWorkerInit(void);

/* Find the slot of a database, optionally taking a free one; caller holds the lock exclusively to create. */
extern ChurnDbSlot *FindSlot(Oid dboid, bool create);

/* Most database workers at once: churn_warning.max_workers within max_worker_processes. */
extern int	ChurnWorkerCap(void);

/* Fill in a dynamic background worker of the library that connects to dboid and runs function. */
struct BackgroundWorker;
extern void ChurnBgWorkerInit(struct BackgroundWorker *worker, const char *function, const char *type, Oid dboid);

/* SQL: churn.pipeline_limits() */
extern Datum pipeline_limits(PG_FUNCTION_ARGS);

/* Entry points named in the background worker registrations. */
extern PGDLLEXPORT void churn_warning_launcher_main(Datum main_arg) pg_attribute_noreturn();
extern PGDLLEXPORT void churn_warning_db_main(Datum main_arg) pg_attribute_noreturn();
extern PGDLLEXPORT void churn_warning_run_recorder_main(Datum main_arg) pg_attribute_noreturn();

/* Keep the failure of a manual refresh on record (runlog.c); never throws. */
extern void ChurnRecordManualFailure(int32 pipeline_id, TimestampTz started_at, ErrorData *edata);

#endif							/* CHURN_WORKER_H */
