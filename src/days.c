/*-------------------------------------------------------------------------
 *
 * days.c
 *	  Calendar days: timestamp to day in the session TimeZone, parsing and
 *	  printing days independent of DateStyle.
 *
 * Converting a timestamptz to a local date costs a time zone lookup.  A
 * purchase log has many rows per day, so we cache, per slot of UTC time, the
 * exact UTC interval [lo, hi) that one local day covers and answer from it.
 * An interval is only cached after checking that both of its ends map to the
 * day, and local dates never go backwards as UTC time advances, so a cache
 * hit is always the answer timestamptz_date would give.
 *
 *-------------------------------------------------------------------------
 */
#include "days.h"

#include "datatype/timestamp.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/datetime.h"

#define DAY_CACHE_SLOTS 4096

typedef struct DayCacheSlot
{
	TimestampTz lo;
	TimestampTz hi;
	DateADT		day;
} DayCacheSlot;

static DayCacheSlot day_cache[DAY_CACHE_SLOTS];
static pg_tz *day_cache_tz = NULL;

/* Uncached conversion through the server's own functions. */
static DateADT
TimestampToDaySlow(TimestampTz ts)
{
	return DatumGetDateADT(DirectFunctionCall1(timestamptz_date, TimestampTzGetDatum(ts)));
}

/* Local midnight at the start of day, or false if it is out of range. */
static bool
DayStart(DateADT day, TimestampTz *result)
{
	int			overflow = 0;

	if (DATE_NOT_FINITE(day) || !IS_VALID_DATE(day))
		return false;
	*result = date2timestamptz_opt_overflow(day, &overflow);
	return overflow == 0 && !TIMESTAMP_NOT_FINITE(*result);
}

/* The calendar day of a purchase timestamp in the session TimeZone. */
DateADT
ChurnTimestampToDay(TimestampTz ts)
{
	uint64		slot;
	DayCacheSlot *c;
	DateADT		day;
	TimestampTz lo,
				hi;

	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp must be finite"),
				 errdetail("The value was %s.", TIMESTAMP_IS_NOBEGIN(ts) ? "-infinity" : "infinity")));

	if (day_cache_tz != session_timezone)
	{
		memset(day_cache, 0, sizeof(day_cache));
		day_cache_tz = session_timezone;
	}
	/* slots of 2^36 us (about 19 hours) of UTC time */
	slot = ((uint64) ts >> 36) % DAY_CACHE_SLOTS;
	c = &day_cache[slot];
	if (c->lo < c->hi && c->lo <= ts && ts < c->hi)
		return c->day;

	day = TimestampToDaySlow(ts);
	if (day < DATEVAL_NOEND - 1 && DayStart(day, &lo) && DayStart(day + 1, &hi) &&
		lo <= ts && ts < hi &&
		TimestampToDaySlow(lo) == day && TimestampToDaySlow(hi - 1) == day)
	{
		c->lo = lo;
		c->hi = hi;
		c->day = day;
	}
	return day;
}

/* Reject infinite dates; what names the argument. */
DateADT
ChurnCheckDay(DateADT day, const char *what)
{
	if (DATE_NOT_FINITE(day))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("%s must be a finite date", what)));
	return day;
}

/* Print a day as ISO YYYY-MM-DD (with " BC" before year 1); returns length. */
int
ChurnFormatDay(char *buf, DateADT day)
{
	int			y,
				m,
				d;

	j2date(day + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	if (y > 0)
		return sprintf(buf, "%04d-%02d-%02d", y, m, d);
	return sprintf(buf, "%04d-%02d-%02d BC", 1 - y, m, d);
}

/* Parse a day written in ISO form (any DateStyle reads it the same way). */
DateADT
ChurnParseDay(const char *str)
{
	DateADT		day;

	day = DatumGetDateADT(DirectFunctionCall1(date_in, CStringGetDatum(str)));
	return ChurnCheckDay(day, "a history day");
}
