/*-------------------------------------------------------------------------
 *
 * engagement.c
 *	  The churn.engagement type: a customer's non-purchase interactions
 *	  (visits, logins, reviews, complaints, member interactions) folded to
 *	  one record per (day, kind); its I/O, aggregate, merge and features.
 *
 * Ratings are on a 1-5 scale; a review rated 2 or lower is negative
 * feedback, and so is every complaint.
 *
 *-------------------------------------------------------------------------
 */
#include "engagement.h"
#include "days.h"

#include <math.h>

#include "common/shortest_dec.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"

#define NEGATIVE_RATING		2.0
#define MAX_WINDOW_DAYS		36525

PG_FUNCTION_INFO_V1(engagement_in);
PG_FUNCTION_INFO_V1(event_valid);
PG_FUNCTION_INFO_V1(engagement_out);
PG_FUNCTION_INFO_V1(engagement_recv);
PG_FUNCTION_INFO_V1(engagement_send);
PG_FUNCTION_INFO_V1(engagement_trans);
PG_FUNCTION_INFO_V1(engagement_combine);
PG_FUNCTION_INFO_V1(engagement_merge);
PG_FUNCTION_INFO_V1(engagement_features);

const char *const EngagementKindNames[ENGAGEMENT_NKINDS] = {
	"visit", "login", "review", "complaint", "interaction"
};

/* Order records by day, then kind. */
static int
EngagementCmp(const void *a, const void *b)
{
	const EngagementDay *x = (const EngagementDay *) a;
	const EngagementDay *y = (const EngagementDay *) b;

	if (x->day != y->day)
		return (x->day > y->day) - (x->day < y->day);
	return (x->kind > y->kind) - (x->kind < y->kind);
}

/* Saturating int32 addition for event counters. */
static inline int32
AddCount(int32 a, int32 b)
{
	return (int32) Min((int64) a + b, (int64) PG_INT32_MAX);
}

/* Fold a record of the same (day, kind). */
static void
EngagementAbsorb(void *into, const void *from)
{
	EngagementDay *a = (EngagementDay *) into;
	const EngagementDay *b = (const EngagementDay *) from;

	a->events = AddCount(a->events, b->events);
	a->negatives = AddCount(a->negatives, b->negatives);
	a->ratings = AddCount(a->ratings, b->ratings);
	a->rating_sum += b->rating_sum;
}

const DayLogSpec EngagementSpec = {
	"churn.engagement", DAYLOG_KIND_ENGAGEMENT, sizeof(EngagementDay),
	EngagementCmp, EngagementAbsorb
};

/* Kind name to code (ASCII case-insensitive), or -1. */
int
EngagementKindCode(const char *name, int len)
{
	for (int k = 0; k < ENGAGEMENT_NKINDS; k++)
	{
		if ((int) strlen(EngagementKindNames[k]) == len &&
			pg_strncasecmp(name, EngagementKindNames[k], len) == 0)
			return k;
	}
	return -1;
}

/* Raise the error for an unknown interaction kind. */
static void
UnknownKind(const char *name, int len)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown interaction kind \"%.*s\"", len, name),
			 errhint("Kinds are visit, login, review, complaint and interaction.")));
}

/* Check a record read from outside (text or binary input). */
static void
EngagementCheck(const EngagementDay *rec)
{
	ChurnCheckDay(rec->day, "an engagement day");
	if (!IS_VALID_DATE(rec->day))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("engagement day out of range")));
	if (rec->kind < 0 || rec->kind >= ENGAGEMENT_NKINDS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid interaction kind code %d", rec->kind)));
	if (rec->events < 1 || rec->negatives < 0 || rec->ratings < 0 ||
		rec->negatives > rec->events || rec->ratings > rec->events)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("engagement counts are inconsistent"),
				 errdetail("events must be at least 1, and negatives and ratings between 0 and events.")));
	if (!isfinite(rec->rating_sum) || rec->rating_sum < 1.0 * rec->ratings ||
		rec->rating_sum > 5.0 * rec->ratings)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("engagement rating sum is out of range")));
}

/* Raise the syntax error of engagement_in. */
static void
EngagementSyntaxError(const char *input, const char *at, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type churn.engagement: \"%s\"", input),
			 errdetail("%s at character %d.", what, (int) (at - input) + 1),
			 errhint("Write {YYYY-MM-DD:kind:events[:negatives:ratings:rating_sum], ...}, e.g. {2024-01-05:visit:2,2024-01-06:review:1:1:1:2}.")));
}

/* Parse a non-negative int32 field; returns the position after it. */
static const char *
ParseCount(const char *input, const char *p, int32 *out)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(p, &end, 10);
	if (end == p || errno == ERANGE || v < 0 || v > PG_INT32_MAX)
		EngagementSyntaxError(input, p, "Expected a count from 0 to 2147483647");
	*out = (int32) v;
	return end;
}

/* Text input: {day:kind:events[:negatives:ratings:rating_sum], ...}. */
Datum
engagement_in(PG_FUNCTION_ARGS)
{
	const char *input = PG_GETARG_CSTRING(0);
	const char *p = input;
	EngagementDay *recs;
	int			n = 0,
				cap = 16;

	while (isspace((unsigned char) *p))
		p++;
	if (*p != '{')
		EngagementSyntaxError(input, p, "Expected \"{\"");
	p++;
	recs = palloc(cap * sizeof(EngagementDay));
	while (isspace((unsigned char) *p))
		p++;
	if (*p == '}')
		p++;
	else
	{
		for (;;)
		{
			EngagementDay rec;
			char		daybuf[32];
			const char *start = p;
			int			kind;

			memset(&rec, 0, sizeof(rec));
			while (*p && *p != ':' && *p != ',' && *p != '}')
				p++;
			if (*p != ':' || p - start == 0 || p - start >= (int) sizeof(daybuf))
				EngagementSyntaxError(input, start, "Expected a date followed by \":\"");
			memcpy(daybuf, start, p - start);
			daybuf[p - start] = '\0';
			rec.day = ChurnParseDay(daybuf);
			start = ++p;
			while (isalpha((unsigned char) *p))
				p++;
			kind = EngagementKindCode(start, (int) (p - start));
			if (kind < 0)
				UnknownKind(start, (int) (p - start));
			rec.kind = (int16) kind;
			if (*p != ':')
				EngagementSyntaxError(input, p, "Expected \":\" after the kind");
			p = ParseCount(input, p + 1, &rec.events);
			if (*p == ':')
			{
				char	   *end;

				p = ParseCount(input, p + 1, &rec.negatives);
				if (*p != ':')
					EngagementSyntaxError(input, p, "Expected \":ratings\"");
				p = ParseCount(input, p + 1, &rec.ratings);
				if (*p != ':')
					EngagementSyntaxError(input, p, "Expected \":rating_sum\"");
				p++;
				rec.rating_sum = strtod(p, &end);
				if (end == p)
					EngagementSyntaxError(input, p, "Expected a rating sum");
				p = end;
			}
			else if (kind == ENGAGEMENT_COMPLAINT)
				rec.negatives = rec.events;
			EngagementCheck(&rec);
			if (n == cap)
			{
				if (cap >= (int) (MaxAllocSize / sizeof(EngagementDay) / 2))
					EngagementSyntaxError(input, p, "Too many days");
				cap *= 2;
				recs = repalloc(recs, cap * sizeof(EngagementDay));
			}
			recs[n++] = rec;
			while (isspace((unsigned char) *p))
				p++;
			if (*p == ',')
			{
				p++;
				while (isspace((unsigned char) *p))
					p++;
				continue;
			}
			if (*p != '}')
				EngagementSyntaxError(input, p, "Expected \",\" or \"}\"");
			p++;
			break;
		}
	}
	while (isspace((unsigned char) *p))
		p++;
	if (*p != '\0')
		EngagementSyntaxError(input, p, "Unexpected text after \"}\"");
	PG_RETURN_POINTER(DayLogBuild(&EngagementSpec, (char *) recs, n));
}

/* Text output: every field, days ascending. */
Datum
engagement_out(PG_FUNCTION_ARGS)
{
	DayLog	   *log = DayLogFromDatum(&EngagementSpec, PG_GETARG_DATUM(0));
	const EngagementDay *recs = EngagementDays(log);
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < log->nrec; i++)
	{
		char		day[32];
		char		num[DOUBLE_SHORTEST_DECIMAL_LEN];

		ChurnFormatDay(day, recs[i].day);
		appendStringInfo(&buf, "%s%s:%s:%d", i > 0 ? "," : "", day,
						 EngagementKindNames[recs[i].kind], recs[i].events);
		if (recs[i].ratings > 0 ||
			recs[i].negatives != (recs[i].kind == ENGAGEMENT_COMPLAINT ? recs[i].events : 0))
		{
			double_to_shortest_decimal_buf(recs[i].rating_sum, num);
			appendStringInfo(&buf, ":%d:%d:%s", recs[i].negatives, recs[i].ratings, num);
		}
	}
	appendStringInfoChar(&buf, '}');
	PG_RETURN_CSTRING(buf.data);
}

/* Binary input: version, count, then the record fields. */
Datum
engagement_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			version = pq_getmsgint(buf, 2);
	int			n = pq_getmsgint(buf, 4);
	Size		size;
	DayLog	   *log;
	EngagementDay *recs;

	if (version != DAYLOG_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unsupported binary churn.engagement version %d", version)));
	if (n < 0 || (Size) n > (Size) (buf->len - buf->cursor) / 26)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid record count %d in binary churn.engagement", n)));
	size = DAYLOG_HDRSZ + (Size) n * sizeof(EngagementDay);
	log = palloc0(size);
	SET_VARSIZE(log, size);
	log->version = DAYLOG_VERSION;
	log->kind = DAYLOG_KIND_ENGAGEMENT;
	log->nrec = n;
	recs = (EngagementDay *) DAYLOG_RECS(log);
	for (int i = 0; i < n; i++)
	{
		recs[i].day = pq_getmsgint(buf, 4);
		recs[i].kind = (int16) pq_getmsgint(buf, 2);
		recs[i].events = pq_getmsgint(buf, 4);
		recs[i].negatives = pq_getmsgint(buf, 4);
		recs[i].ratings = pq_getmsgint(buf, 4);
		recs[i].rating_sum = pq_getmsgfloat8(buf);
		EngagementCheck(&recs[i]);
		if (i > 0 && EngagementCmp(&recs[i - 1], &recs[i]) >= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("binary churn.engagement records are not strictly ascending")));
	}
	PG_RETURN_POINTER(log);
}

/* Binary output, the mirror of engagement_recv. */
Datum
engagement_send(PG_FUNCTION_ARGS)
{
	DayLog	   *log = DayLogFromDatum(&EngagementSpec, PG_GETARG_DATUM(0));
	const EngagementDay *recs = EngagementDays(log);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint16(&buf, DAYLOG_VERSION);
	pq_sendint32(&buf, log->nrec);
	for (int i = 0; i < log->nrec; i++)
	{
		pq_sendint32(&buf, recs[i].day);
		pq_sendint16(&buf, recs[i].kind);
		pq_sendint32(&buf, recs[i].events);
		pq_sendint32(&buf, recs[i].negatives);
		pq_sendint32(&buf, recs[i].ratings);
		pq_sendfloat8(&buf, recs[i].rating_sum);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/*
 * engagement_agg(ts, kind[, rating]) transition.  Rows with a NULL
 * timestamp or kind are skipped; a NULL rating means "not rated".
 */
Datum
engagement_trans(PG_FUNCTION_ARGS)
{
	DayLogExpanded *elog;
	EngagementDay rec;
	text	   *kind;
	int			code;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	kind = PG_GETARG_TEXT_PP(2);
	code = EngagementKindCode(VARDATA_ANY(kind), VARSIZE_ANY_EXHDR(kind));
	if (code < 0)
		UnknownKind(VARDATA_ANY(kind), VARSIZE_ANY_EXHDR(kind));

	memset(&rec, 0, sizeof(rec));
	rec.day = ChurnTimestampToDay(PG_GETARG_TIMESTAMPTZ(1));
	rec.kind = (int16) code;
	rec.events = 1;
	if (PG_NARGS() > 3 && !PG_ARGISNULL(3))
	{
		float8		rating = PG_GETARG_FLOAT8(3);

		if (isnan(rating) || rating < 1.0 || rating > 5.0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("rating must be between 1 and 5"),
					 errdetail("The value was %g.", rating),
					 errhint("Rescale ratings to the 1-5 scale; NULL means not rated.")));
		rec.ratings = 1;
		rec.rating_sum = rating;
		if (code == ENGAGEMENT_REVIEW && rating <= NEGATIVE_RATING)
			rec.negatives = 1;
	}
	if (code == ENGAGEMENT_COMPLAINT)
		rec.negatives = 1;

	elog = DayLogTransState(fcinfo, 0, &EngagementSpec);
	DayLogAppend(elog, &rec);
	PG_RETURN_DATUM(EOHPGetRWDatum(&elog->hdr));
}

/* Combine two partial engagement_agg states. */
Datum
engagement_combine(PG_FUNCTION_ARGS)
{
	return DayLogCombine(fcinfo, &EngagementSpec);
}

/* merge(a, b) for engagement: union, counts added; NULL acts as empty. */
Datum
engagement_merge(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) && PG_ARGISNULL(1))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(0))
		PG_RETURN_POINTER(DayLogFromDatum(&EngagementSpec, PG_GETARG_DATUM(1)));
	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(DayLogFromDatum(&EngagementSpec, PG_GETARG_DATUM(0)));
	PG_RETURN_POINTER(DayLogMergeFlat(&EngagementSpec,
									  DayLogFromDatum(&EngagementSpec, PG_GETARG_DATUM(0)),
									  DayLogFromDatum(&EngagementSpec, PG_GETARG_DATUM(1))));
}

enum
{
	E_LAST_EVENT,
	E_DAYS_SINCE_EVENT,
	E_DAYS_SINCE_KIND,			/* ENGAGEMENT_NKINDS columns from here */
	E_EVENTS_RECENT = E_DAYS_SINCE_KIND + ENGAGEMENT_NKINDS,
	E_EVENTS_PRIOR,
	E_EVENT_CHANGE,
	E_RECENT_KIND,				/* ENGAGEMENT_NKINDS columns from here */
	E_NEGATIVE_REVIEWS_RECENT = E_RECENT_KIND + ENGAGEMENT_NKINDS,
	E_NEGATIVE_RECENT,
	E_AVG_RATING_RECENT,
	E_NATTS
};

/* Engagement features as of a date over a recent and a prior window. */
Datum
engagement_features(PG_FUNCTION_ARGS)
{
	DayLog	   *log = DayLogFromDatum(&EngagementSpec, PG_GETARG_DATUM(0));
	DateADT		as_of = ChurnCheckDay(PG_GETARG_DATEADT(1), "as_of");
	int32		window = PG_GETARG_INT32(2);
	const EngagementDay *recs = EngagementDays(log);
	int			end;
	bool		seen_kind[ENGAGEMENT_NKINDS] = {false};
	DateADT		last_kind[ENGAGEMENT_NKINDS] = {0};
	int64		recent_kind[ENGAGEMENT_NKINDS] = {0};
	int64		recent = 0,
				prior = 0,
				neg_reviews = 0,
				negatives = 0,
				ratings = 0;
	double		rating_sum = 0;
	DateADT		last = 0;
	Datum		values[E_NATTS];
	bool		nulls[E_NATTS];

	if (window <= 0 || window > MAX_WINDOW_DAYS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window_days must be between 1 and %d", MAX_WINDOW_DAYS),
				 errdetail("The value was %d.", window)));
	end = DayLogUpperBound(log, sizeof(EngagementDay), as_of);
	if (end == 0)
		PG_RETURN_NULL();

	for (int i = 0; i < end; i++)
	{
		const EngagementDay *r = &recs[i];
		int64		age = (int64) as_of - r->day;

		if ((i & 0xFFFF) == 0xFFFF)
			CHECK_FOR_INTERRUPTS();
		last = r->day;
		seen_kind[r->kind] = true;
		last_kind[r->kind] = r->day;
		if (age < window)
		{
			recent += r->events;
			recent_kind[r->kind] += r->events;
			negatives += r->negatives;
			if (r->kind == ENGAGEMENT_REVIEW)
				neg_reviews += r->negatives;
			ratings += r->ratings;
			rating_sum += r->rating_sum;
		}
		else if (age < 2 * (int64) window)
			prior += r->events;
	}

	memset(nulls, 0, sizeof(nulls));
	values[E_LAST_EVENT] = DateADTGetDatum(last);
	values[E_DAYS_SINCE_EVENT] = Float8GetDatum((double) (as_of - last));
	for (int k = 0; k < ENGAGEMENT_NKINDS; k++)
	{
		nulls[E_DAYS_SINCE_KIND + k] = !seen_kind[k];
		values[E_DAYS_SINCE_KIND + k] = Float8GetDatum((double) (as_of - last_kind[k]));
		values[E_RECENT_KIND + k] = Int32GetDatum((int32) Min(recent_kind[k], PG_INT32_MAX));
	}
	values[E_EVENTS_RECENT] = Int32GetDatum((int32) Min(recent, PG_INT32_MAX));
	values[E_EVENTS_PRIOR] = Int32GetDatum((int32) Min(prior, PG_INT32_MAX));
	nulls[E_EVENT_CHANGE] = prior == 0;
	values[E_EVENT_CHANGE] = Float8GetDatum(prior > 0 ? (double) (recent - prior) / prior : 0);
	values[E_NEGATIVE_REVIEWS_RECENT] = Int32GetDatum((int32) Min(neg_reviews, PG_INT32_MAX));
	values[E_NEGATIVE_RECENT] = Int32GetDatum((int32) Min(negatives, PG_INT32_MAX));
	nulls[E_AVG_RATING_RECENT] = ratings == 0;
	values[E_AVG_RATING_RECENT] = Float8GetDatum(ratings > 0 ? rating_sum / ratings : 0);

	PG_RETURN_DATUM(ChurnMakeComposite(fcinfo, values, nulls));
}

/*
 * The kind code of an event that pipelines and backtests keep, or -1 for
 * one they skip (and count): no kind or an unknown one, a rating on a kind
 * other than review, a rating outside 1-5 or NaN.  has_rating false means
 * the rating is NULL.
 */
int
EngagementEventCode(const char *kind, int len, bool has_rating, float8 rating)
{
	int			code = EngagementKindCode(kind, len);

	if (code < 0)
		return -1;
	if (has_rating && (code != ENGAGEMENT_REVIEW || isnan(rating) || rating < 1.0 || rating > 5.0))
		return -1;
	return code;
}

/* event_valid(kind, rating): would a pipeline or a backtest keep this event (EngagementEventCode)? */
Datum
event_valid(PG_FUNCTION_ARGS)
{
	text	   *kind;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	kind = PG_GETARG_TEXT_PP(0);
	PG_RETURN_BOOL(EngagementEventCode(VARDATA_ANY(kind), VARSIZE_ANY_EXHDR(kind), !PG_ARGISNULL(1),
									   PG_ARGISNULL(1) ? 0 : PG_GETARG_FLOAT8(1)) >= 0);
}
