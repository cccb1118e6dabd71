/*-------------------------------------------------------------------------
 *
 * pipeline.h
 *	  Pipelines: owner checks around the SQL internals, and reading a
 *	  pipeline's source with the owner's rights.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_PIPELINE_H
#define CHURN_PIPELINE_H

#include "postgres.h"

#include "fmgr.h"

extern Datum pipeline_dispatch(PG_FUNCTION_ARGS);
extern Datum pipeline_read(PG_FUNCTION_ARGS);

#endif							/* CHURN_PIPELINE_H */
