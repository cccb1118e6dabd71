/*-------------------------------------------------------------------------
 *
 * capture.h
 *	  The capture trigger (capture.c) and the transaction buffer that writes
 *	  what it captured to the pipeline queues at commit (capture_queue.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_CAPTURE_H
#define CHURN_CAPTURE_H

#include "postgres.h"

#include "utils/date.h"

/* The relation of a pipeline a capture trigger serves. */
typedef enum CaptureStream
{
	CAPTURE_PURCHASES,			/* the source: churn.pipeline_queue */
	CAPTURE_EVENTS				/* the events relation: churn.pipeline_event_queue */
} CaptureStream;

/* The pipeline row as the trigger needs it. */
typedef struct CaptureConfig
{
	bool		found;
	Oid			source;
	char	   *customer_col;
	char	   *ts_col;
	char	   *amount_col;
	char	   *ts_kind;
	char	   *time_zone;
	bool		trigger_capture;
	Oid			events;			/* InvalidOid: no events relation */
	char	   *event_customer_col;
	char	   *event_ts_col;
	char	   *event_kind_col;
	char	   *event_rating_col;
	char	   *event_ts_kind;
	bool		event_trigger_capture;
	char	   *store_col;		/* NULL: the pipeline has no store column */
} CaptureConfig;

/* One source row reduced to what a pipeline keeps. */
typedef struct CaptureRow
{
	char	   *customer;		/* NULL when the customer is NULL */
	bool		day_null;
	DateADT		day;
	char	   *kind;			/* events: the kind; purchases: the store (NULL when NULL or none) */
	bool		value_null;
	float8		value;			/* the amount, or the event's rating */
} CaptureRow;

/*
 * What a capture trigger knows about its pipeline and relation, kept per
 * backend until churn.pipeline or the relation changes (relcache
 * invalidations: churn.pipeline_config_changed sends one of the empty
 * table churn.pipeline_capture_signal for every change of churn.pipeline,
 * so that no plan that reads churn.pipeline is invalidated).
 */
typedef struct CaptureCacheEntry
{
	int32		pipeline_id;
	CaptureStream stream;
	Oid			relid;
	bool		serves;			/* CaptureServes */
	CaptureConfig cfg;
	void	   *reader;			/* capture.c's column reader, NULL until set up */
} CaptureCacheEntry;

/* The cache entry of a trigger, read from churn.pipeline when missing; at a trigger's start only. */
extern CaptureCacheEntry *CaptureCacheLookup(int32 pipeline_id, CaptureStream stream, Oid relid);

/* Tell every session's capture triggers that churn.pipeline changed. */
extern void CaptureSignalConfigChange(void);

/* The memory context of the cache (for readers). */
extern MemoryContext CaptureCacheContext(void);

/* Read a pipeline's row directly (no SQL); found is false when there is none. */
extern CaptureConfig CaptureLoadConfig(int32 pipeline_id);

/* Is the trigger still the pipeline's capture of this relation? */
extern bool CaptureServes(CaptureConfig *cfg, CaptureStream stream, Oid relid);

/* Keep a captured row (strings copied) for the queue, written when the transaction commits. */
extern void CaptureBufferRow(int32 pipeline_id, CaptureStream stream, Oid relid, const CaptureRow *row);

/* Keep a request to re-read the relation, written when the transaction commits. */
extern void CaptureBufferRebuild(int32 pipeline_id, CaptureStream stream, Oid relid);

#endif							/* CHURN_CAPTURE_H */
