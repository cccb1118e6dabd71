/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  Background worker: a launcher that never connects to a database and
 *	  short-lived per-database workers that run due pipeline refreshes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_WORKER_H
#define CHURN_WORKER_H

#include "postgres.h"

/* Define the GUCs; when preloaded, also reserve shared memory and register the launcher. */
extern void ChurnWorkerInit(void);

/* Entry points named in the background worker registrations. */
extern PGDLLEXPORT void churn_warning_launcher_main(Datum main_arg) pg_attribute_noreturn();
extern PGDLLEXPORT void churn_warning_db_main(Datum main_arg) pg_attribute_noreturn();

#endif							/* CHURN_WORKER_H */
