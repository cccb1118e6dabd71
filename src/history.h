/*-------------------------------------------------------------------------
 *
 * history.h
 *	  The churn.history type (history.c): a day log with one record per
 *	  calendar day with any purchase or return.
 *
 * The day log itself is declared in daylog.h, the churn.engagement records
 * in engagement.h and the calendar helpers in days.h; this header includes
 * all three, so a file that works with customer histories needs only it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_HISTORY_H
#define CHURN_HISTORY_H

#include "daylog.h"
#include "days.h"
#include "engagement.h"

/* churn.history: one record per calendar day with any purchase or return. */
typedef struct HistoryDay
{
	int32		day;			/* DateADT */
	int32		purchases;		/* rows with amount >= 0 or NULL; 0 = returns only */
	float8		amount;			/* net spend of the day */
} HistoryDay;

extern const DayLogSpec HistorySpec;

static inline const HistoryDay *
HistoryDays(const DayLog *log)
{
	return (const HistoryDay *) DAYLOG_RECS(log);
}

#endif							/* CHURN_HISTORY_H */
