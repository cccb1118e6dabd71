/*-------------------------------------------------------------------------
 *
 * daylog.h
 *	  The day log: the storage shared by the churn.history and
 *	  churn.engagement types (daylog.c).
 *
 * A day log is a varlena holding fixed-size records sorted by a key that
 * starts with a day (DateADT), one record per key.  While an aggregate builds
 * one, it lives as an expanded object (see daylog.c) so that appending a row
 * is O(1) and the aggregate's state type can be the real SQL type rather than
 * internal (which lets PostgreSQL ship partial states between parallel
 * workers, and lets Citus push the aggregate down).
 *
 * Flat layout (8-byte aligned):
 *		int32	vl_len_
 *		uint16	version		DAYLOG_VERSION
 *		uint16	kind		DAYLOG_KIND_*
 *		int32	nrec
 *		int32	reserved	zero
 *		records[nrec]		sorted by key, keys unique
 *
 * The record types are declared by history.h and engagement.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_DAYLOG_H
#define CHURN_DAYLOG_H

#include "churn_warning.h"

#include "utils/date.h"
#include "utils/expandeddatum.h"

#define DAYLOG_VERSION		1
#define DAYLOG_KIND_HISTORY	1
#define DAYLOG_KIND_ENGAGEMENT 2

typedef struct DayLog
{
	int32		vl_len_;
	uint16		version;
	uint16		kind;
	int32		nrec;
	int32		reserved;
	/* records follow */
} DayLog;

#define DAYLOG_HDRSZ		((Size) sizeof(DayLog))
#define DAYLOG_RECS(log)	((char *) (log) + DAYLOG_HDRSZ)

/* How one kind of day log orders and folds its records. */
typedef struct DayLogSpec
{
	const char *type_name;		/* SQL name, for messages */
	uint16		kind;
	Size		rec_size;		/* multiple of 8 */
	int			(*cmp) (const void *a, const void *b);
	void		(*absorb) (void *into, const void *from);	/* fold equal keys */
} DayLogSpec;

/* The expanded (in-memory, appendable) form of a day log. */
typedef struct DayLogExpanded
{
	ExpandedObjectHeader hdr;
	const DayLogSpec *spec;
	char	   *recs;
	int			nrec;
	int			cap;
	int			nsorted;		/* recs[0, nsorted) sorted with unique keys */
	bool		recs_inline;	/* recs is the buffer allocated with the header */
} DayLogExpanded;

/* at least this many records share the header's allocation (as many as fill its chunk) */
#define DAYLOG_INLINE_RECS	4

extern DayLogExpanded *DayLogExpand(const DayLogSpec *spec, Datum flat,
									MemoryContext parent, MemoryContext aggcxt);
extern DayLogExpanded *DayLogTransState(FunctionCallInfo fcinfo, int argno,
										const DayLogSpec *spec);
extern void DayLogAppend(DayLogExpanded *elog, const void *rec);
extern void DayLogAppendFlat(DayLogExpanded *elog, const DayLog *log);
extern DayLog *DayLogFromDatum(const DayLogSpec *spec, Datum d);
extern DayLog *DayLogMergeFlat(const DayLogSpec *spec, const DayLog *a, const DayLog *b);
extern DayLog *DayLogBuild(const DayLogSpec *spec, char *recs, int nrec);
extern int	DayLogUpperBound(const DayLog *log, Size rec_size, DateADT day);
extern Datum DayLogCombine(FunctionCallInfo fcinfo, const DayLogSpec *spec);

#endif							/* CHURN_DAYLOG_H */
