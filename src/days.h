/*-------------------------------------------------------------------------
 *
 * days.h
 *	  Calendar-day helpers (days.c): purchase timestamps to days in the
 *	  session TimeZone, day validation, and the text form of a day.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_DAYS_H
#define CHURN_DAYS_H

#include "churn_warning.h"

#include "pgtime.h"
#include "utils/date.h"
#include "utils/timestamp.h"

/* Convert a purchase timestamp to its calendar day in the session TimeZone. */
extern DateADT ChurnTimestampToDay(TimestampTz ts);
extern DateADT ChurnTimestampToDayIn(TimestampTz ts, pg_tz *tz);
extern void ChurnDaysInit(void);
extern DateADT ChurnCheckDay(DateADT day, const char *what);
extern int	ChurnFormatDay(char *buf, DateADT day);
extern DateADT ChurnParseDay(const char *str);

#endif							/* CHURN_DAYS_H */
