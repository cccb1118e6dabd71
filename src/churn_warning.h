/*-------------------------------------------------------------------------
 *
 * churn_warning.h
 *	  Declarations shared by every subsystem of the churn_warning extension.
 *
 * Each subsystem has its own header (daylog.h, history.h, engagement.h,
 * days.h, probmodels.h, mlmodels.h, eval.h, ...), numeric.h holds the
 * numeric helpers several of them share; this one holds only what all of
 * them use.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_WARNING_H
#define CHURN_WARNING_H

#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"

#if PG_VERSION_NUM < 130000
#error "churn_warning needs PostgreSQL 13 or later"
#endif

/* Build the composite result row of a function declared RETURNS composite. */
extern Datum ChurnMakeComposite(FunctionCallInfo fcinfo, Datum *values, bool *nulls);

/* Point tuple at a composite datum's tuple, for heap_deform_tuple or heap_getattr. */
extern void ChurnCompositeTuple(HeapTupleHeader th, HeapTupleData *tuple);

/* Raise a user error unless v is a finite number; what names the argument. */
extern void ChurnCheckFinite(double v, const char *what);

/* Raise a user error unless v is finite and >= 0. */
extern void ChurnCheckNonNegative(double v, const char *what);

/* Set up a set-returning function that fills rsinfo->setResult directly. */
extern void ChurnMaterializeSRF(FunctionCallInfo fcinfo);

#endif							/* CHURN_WARNING_H */
