/*-------------------------------------------------------------------------
 *
 * engagement.h
 *	  The churn.engagement type (engagement.c): a day log with one record
 *	  per (day, kind) of customer engagement event.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_ENGAGEMENT_H
#define CHURN_ENGAGEMENT_H

#include "daylog.h"

/* churn.engagement: one record per (day, kind). */
typedef struct EngagementDay
{
	int32		day;			/* DateADT */
	int16		kind;			/* ENGAGEMENT_* */
	int16		reserved;
	int32		events;
	int32		negatives;		/* reviews rated <= 2, and every complaint */
	int32		ratings;		/* events that carried a rating */
	int32		reserved2;
	float8		rating_sum;
} EngagementDay;

#define ENGAGEMENT_VISIT		0
#define ENGAGEMENT_LOGIN		1
#define ENGAGEMENT_REVIEW		2
#define ENGAGEMENT_COMPLAINT	3
#define ENGAGEMENT_INTERACTION	4
#define ENGAGEMENT_NKINDS		5

extern const DayLogSpec EngagementSpec;
extern const char *const EngagementKindNames[ENGAGEMENT_NKINDS];

extern int	EngagementKindCode(const char *name, int len);

/* Kind code of an event pipelines and backtests keep, or -1 (unknown kind, bad rating). */
extern int	EngagementEventCode(const char *kind, int len, bool has_rating, float8 rating);

static inline const EngagementDay *
EngagementDays(const DayLog *log)
{
	return (const EngagementDay *) DAYLOG_RECS(log);
}

#endif							/* CHURN_ENGAGEMENT_H */
