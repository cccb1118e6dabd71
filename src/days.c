/*-------------------------------------------------------------------------
 *
 * days.c
 *	  Calendar days: timestamp to day in the session TimeZone (or in
 *	  churn_warning.day_time_zone), parsing and
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
#include "fmgr.h"
#include "parser/scansup.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/guc.h"

PG_FUNCTION_INFO_V1(pipeline_day);

#define DAY_CACHE_SLOTS 4096

typedef struct DayCacheSlot
{
	TimestampTz lo;
	TimestampTz hi;
	DateADT		day;
} DayCacheSlot;

static DayCacheSlot day_cache[DAY_CACHE_SLOTS];
static pg_tz *day_cache_tz = NULL;

/* Uncached conversion: the calendar day of ts in zone tz (timestamptz_date's arithmetic). */
static DateADT
TimestampToDaySlow(TimestampTz ts, pg_tz *tz)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tzoff;

	if (timestamp2tm(ts, &tzoff, &tm, &fsec, NULL, tz) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) - POSTGRES_EPOCH_JDATE;
}

/* Midnight in zone tz at the start of day, or false if it is out of range. */
static bool
DayStart(DateADT day, pg_tz *tz, TimestampTz *result)
{
	struct pg_tm tm;
	int			offset;

	if (DATE_NOT_FINITE(day) || !IS_VALID_DATE(day))
		return false;
	j2date(day + POSTGRES_EPOCH_JDATE, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
	tm.tm_hour = 0;
	tm.tm_min = 0;
	tm.tm_sec = 0;
	offset = DetermineTimeZoneOffset(&tm, tz);
	*result = (TimestampTz) day * USECS_PER_DAY + (TimestampTz) offset * USECS_PER_SEC;
	return IS_VALID_TIMESTAMP(*result);
}

/*
 * churn_warning.day_time_zone: when set, purchase and event days are
 * computed in this zone instead of the session TimeZone (so that they are
 * the same on every node of a Citus cluster).
 */
static char *day_time_zone_setting = NULL;
static pg_tz *day_time_zone = NULL;

/* GUC check hook: empty, or a time zone the server knows. */
static bool
DayTimeZoneCheck(char **newval, void **extra, GucSource source)
{
	pg_tz	   *tz;

	if (*newval == NULL || (*newval)[0] == '\0')
	{
		*extra = NULL;
		return true;
	}
	tz = pg_tzset(*newval);
	if (tz == NULL || !pg_tz_acceptable(tz))
	{
		GUC_check_errdetail("\"%s\" is not a time zone the server accepts.", *newval);
		return false;
	}
	*extra = malloc(sizeof(pg_tz *));
	if (*extra == NULL)
		return false;
	*(pg_tz **) *extra = tz;
	return true;
}

/* GUC assign hook: the zone checked by DayTimeZoneCheck, or none. */
static void
DayTimeZoneAssign(const char *newval, void *extra)
{
	day_time_zone = extra != NULL ? *(pg_tz **) extra : NULL;
}

/* Define churn_warning.day_time_zone (called from _PG_init). */
void
ChurnDaysInit(void)
{
	DefineCustomStringVariable("churn_warning.day_time_zone",
							   "Time zone of the calendar day of a timestamptz purchase or event; empty: the session TimeZone.",
							   "Set it in postgresql.conf of every node of a Citus cluster: a session's TimeZone does not reach the workers.",
							   &day_time_zone_setting,
							   "",
							   PGC_SIGHUP,
							   0,
							   DayTimeZoneCheck,
							   DayTimeZoneAssign,
							   NULL);
}

/* The calendar day of a purchase timestamp: in churn_warning.day_time_zone, else the session TimeZone. */
DateADT
ChurnTimestampToDay(TimestampTz ts)
{
	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp must be finite"),
				 errdetail("The value was %s.", TIMESTAMP_IS_NOBEGIN(ts) ? "-infinity" : "infinity")));
	return ChurnTimestampToDayIn(ts, day_time_zone != NULL ? day_time_zone : session_timezone);
}

/* The calendar day of a finite timestamp in zone tz, through the cache. */
DateADT
ChurnTimestampToDayIn(TimestampTz ts, pg_tz *tz)
{
	uint64		slot;
	DayCacheSlot *c;
	DateADT		day;
	TimestampTz lo,
				hi;

	if (day_cache_tz != tz)
	{
		memset(day_cache, 0, sizeof(day_cache));
		day_cache_tz = tz;
	}
	/* slots of 2^36 us (about 19 hours) of UTC time */
	slot = ((uint64) ts >> 36) % DAY_CACHE_SLOTS;
	c = &day_cache[slot];
	if (c->lo < c->hi && c->lo <= ts && ts < c->hi)
		return c->day;

	day = TimestampToDaySlow(ts, tz);
	if (day < DATEVAL_NOEND - 1 && DayStart(day, tz, &lo) && DayStart(day + 1, tz, &hi) &&
		lo <= ts && ts < hi &&
		TimestampToDaySlow(lo, tz) == day && TimestampToDaySlow(hi - 1, tz) == day)
	{
		c->lo = lo;
		c->hi = hi;
		c->day = day;
	}
	return day;
}

/* The zone a pipeline_day call names, looked up once per call site. */
typedef struct PipelineDayZone
{
	text	   *name;
	pg_tz	   *tz;				/* NULL: an abbreviation */
	bool		fixed;			/* a fixed-offset abbreviation (UTC, EST) */
	int			offset;			/* its offset from UTC, seconds east */
} PipelineDayZone;

/*
 * The calendar day of a finite ts at a fixed offset from UTC, as
 * (timezone(abbrev, ts))::date gives it: the local time must be a valid
 * timestamp, and the day is the floor of local time over whole days.
 */
static DateADT
FixedOffsetDay(TimestampTz ts, int offset)
{
	Timestamp	local = ts + (Timestamp) offset * USECS_PER_SEC;
	Timestamp	day;

	if (!IS_VALID_TIMESTAMP(local))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	day = local / USECS_PER_DAY;
	if (local % USECS_PER_DAY < 0)
		day--;
	return (DateADT) day;
}

/*
 * churn.pipeline_day(ts, zone): the calendar day of ts in the named zone,
 * as (timezone(zone, ts))::date gives it, infinities kept (the read's
 * quarantine rejects them).  A zone name is looked up once per call site,
 * not per row: timezone() parses it on every call, which cost a tenth of a
 * full read.  A fixed-offset abbreviation (which timezone() tries first;
 * UTC is one) is plain arithmetic; a dynamic one is left to timezone().
 */
Datum
pipeline_day(PG_FUNCTION_ARGS)
{
	TimestampTz ts = PG_GETARG_TIMESTAMPTZ(0);
	text	   *zone = PG_GETARG_TEXT_PP(1);
	PipelineDayZone *cache = (PipelineDayZone *) fcinfo->flinfo->fn_extra;

	if (TIMESTAMP_IS_NOBEGIN(ts))
		PG_RETURN_DATEADT(DATEVAL_NOBEGIN);
	if (TIMESTAMP_IS_NOEND(ts))
		PG_RETURN_DATEADT(DATEVAL_NOEND);
	if (cache == NULL || VARSIZE_ANY_EXHDR(cache->name) != VARSIZE_ANY_EXHDR(zone) ||
		memcmp(VARDATA_ANY(cache->name), VARDATA_ANY(zone), VARSIZE_ANY_EXHDR(zone)) != 0)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		char	   *name = text_to_cstring(zone);
		char	   *lower = downcase_truncate_identifier(name, strlen(name), false);
		int			offset;
		pg_tz	   *abbrev_tz;
		int			type;

		if (cache == NULL)
			cache = palloc0(sizeof(PipelineDayZone));
		cache->name = DatumGetTextPP(datumCopy(PointerGetDatum(zone), false, -1));
		cache->tz = NULL;
		type = DecodeTimezoneAbbrev(0, lower, &offset, &abbrev_tz);
		cache->fixed = (type == TZ || type == DTZ);
		cache->offset = offset;
		if (type == UNKNOWN_FIELD)
		{
			cache->tz = pg_tzset(name);
			if (cache->tz == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("time zone \"%s\" not recognized", name)));
		}
		pfree(lower);
		pfree(name);
		fcinfo->flinfo->fn_extra = cache;
		MemoryContextSwitchTo(old);
	}
	if (cache->fixed)
		PG_RETURN_DATEADT(FixedOffsetDay(ts, cache->offset));
	if (cache->tz == NULL)
		return DirectFunctionCall1(timestamp_date,
								   DirectFunctionCall2(timestamptz_zone, PointerGetDatum(zone),
													   TimestampTzGetDatum(ts)));
	PG_RETURN_DATEADT(ChurnTimestampToDayIn(ts, cache->tz));
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
