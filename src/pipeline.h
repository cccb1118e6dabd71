/*-------------------------------------------------------------------------
 *
 * pipeline.h
 *	  Pipelines: the places where whose rights apply changes (owner checks
 *	  around the SQL internals, reading a source with its owner's rights,
 *	  the capture trigger, alert functions that need the caller).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_PIPELINE_H
#define CHURN_PIPELINE_H

#include "postgres.h"

#include "fmgr.h"

/* Rights saved by ChurnBecomeExtensionOwner, restored by ChurnRestorePrivileges. */
typedef struct ChurnPrivilegeSwitch
{
	Oid			userid;
	int			sec_context;
	int			nest;
} ChurnPrivilegeSwitch;

extern int	ChurnLockSearchPath(void);
extern Oid	ChurnExtensionOwner(void);
extern void ChurnBecomeExtensionOwner(ChurnPrivilegeSwitch *sw);
extern void ChurnRestorePrivileges(ChurnPrivilegeSwitch *sw);
extern Datum ChurnCallInternal(FunctionCallInfo fcinfo, const char *internal);

/* capture.c */
extern const char *PipelineCheckColumns(Oid relid, const char *customer_col, const char *ts_col,
										const char *amount_col, const char *ts_kind);
extern void PipelineCheckStoreColumn(Oid relid, const char *store_col);
extern const char *PipelineCheckEventColumns(Oid relid, const char *customer_col, const char *ts_col,
											 const char *kind_col, const char *rating_col,
											 const char *ts_kind);

extern Datum pipeline_dispatch(PG_FUNCTION_ARGS);
extern Datum pipeline_read(PG_FUNCTION_ARGS);
extern Datum pipeline_read_events(PG_FUNCTION_ARGS);
extern Datum pipeline_capture(PG_FUNCTION_ARGS);
extern Datum pipeline_check_columns(PG_FUNCTION_ARGS);
extern Datum pipeline_check_event_columns(PG_FUNCTION_ARGS);
extern Datum pipeline_event_check(PG_FUNCTION_ARGS);

#endif							/* CHURN_PIPELINE_H */
