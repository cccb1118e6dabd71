/*-------------------------------------------------------------------------
 *
 * history.c
 *	  The churn.history type: one customer's purchases compressed to distinct
 *	  calendar days with the day's net spend; its I/O, aggregate, merge and
 *	  inspection functions.
 *
 * How rows count (documented in the README):
 *	- a row with a NULL timestamp is skipped;
 *	- a row with amount >= 0 (zero included) or NULL is a purchase on its
 *	  day; a NULL amount adds nothing to spend;
 *	- a row with amount < 0 is a return: it lowers the day's net spend but is
 *	  not a purchase, so a day with only returns is kept (its spend counts in
 *	  total_spend) but is not a purchase day;
 *	- NaN or infinite amounts, and infinite timestamps, are errors.
 *
 *-------------------------------------------------------------------------
 */
#include "history.h"

#include <math.h>

#include "common/shortest_dec.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

PG_FUNCTION_INFO_V1(history_in);
PG_FUNCTION_INFO_V1(history_out);
PG_FUNCTION_INFO_V1(history_recv);
PG_FUNCTION_INFO_V1(history_send);
PG_FUNCTION_INFO_V1(history_trans_tstz_float8);
PG_FUNCTION_INFO_V1(history_trans_date_float8);
PG_FUNCTION_INFO_V1(history_trans_tstz_numeric);
PG_FUNCTION_INFO_V1(history_trans_date_numeric);
PG_FUNCTION_INFO_V1(history_combine);
PG_FUNCTION_INFO_V1(history_merge);
PG_FUNCTION_INFO_V1(history_days);
PG_FUNCTION_INFO_V1(history_churned);
PG_FUNCTION_INFO_V1(history_spend);

/* Order history records by day. */
static int
HistoryCmp(const void *a, const void *b)
{
	int32		da = ((const HistoryDay *) a)->day;
	int32		db = ((const HistoryDay *) b)->day;

	return (da > db) - (da < db);
}

/* Add the amount with an overflow check. */
static float8
AddSpend(float8 a, float8 b)
{
	float8		r = a + b;

	if (unlikely(isinf(r)))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("spend of one day is out of range for float8")));
	return r;
}

/* Fold a record of the same day: counts add (saturating), spend adds. */
static void
HistoryAbsorb(void *into, const void *from)
{
	HistoryDay *a = (HistoryDay *) into;
	const HistoryDay *b = (const HistoryDay *) from;

	a->purchases = (int32) Min((int64) a->purchases + b->purchases, (int64) PG_INT32_MAX);
	a->amount = AddSpend(a->amount, b->amount);
}

const DayLogSpec HistorySpec = {
	"churn.history", DAYLOG_KIND_HISTORY, sizeof(HistoryDay), HistoryCmp, HistoryAbsorb
};

/* Check one day record read from outside (text or binary input). */
static void
HistoryCheckDay(const HistoryDay *rec)
{
	ChurnCheckDay(rec->day, "a history day");
	if (!IS_VALID_DATE(rec->day))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("history day out of range")));
	if (!isfinite(rec->amount))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("history amount must be a finite number")));
	if (rec->purchases < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("history purchase count must not be negative")));
}

/* Raise the syntax error of history_in, pointing at the bad spot. */
static void
HistorySyntaxError(const char *input, const char *at, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type churn.history: \"%s\"", input),
			 errdetail("%s at character %d.", what, (int) (at - input) + 1),
			 errhint("Write {YYYY-MM-DD:amount[:purchases], ...}, e.g. {2024-01-05:12.5,2024-02-01:30:2}.")));
}

static const char *
SkipSpace(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/*
 * Text input: {day:amount[:purchases], ...}.  purchases defaults to 1, or 0
 * for a negative amount.  Days may come in any order; repeats are folded.
 */
Datum
history_in(PG_FUNCTION_ARGS)
{
	const char *input = PG_GETARG_CSTRING(0);
	const char *p = SkipSpace(input);
	HistoryDay *recs;
	int			n = 0,
				cap = 16;

	if (*p != '{')
		HistorySyntaxError(input, p, "Expected \"{\"");
	p = SkipSpace(p + 1);
	recs = palloc(cap * sizeof(HistoryDay));
	if (*p == '}')
		p++;
	else
	{
		for (;;)
		{
			HistoryDay	rec;
			char		daybuf[32];
			const char *start = p;
			char	   *end;
			double		amount;

			while (*p && *p != ':' && *p != ',' && *p != '}')
				p++;
			if (*p != ':' || p - start == 0 || p - start >= (int) sizeof(daybuf))
				HistorySyntaxError(input, start, "Expected a date followed by \":\"");
			memcpy(daybuf, start, p - start);
			daybuf[p - start] = '\0';
			rec.day = ChurnParseDay(daybuf);

			p = SkipSpace(p + 1);
			errno = 0;
			amount = strtod(p, &end);
			/* like float8in: ERANGE is only an error for overflow or underflow to 0 */
			if (end == p ||
				(errno == ERANGE && (amount == 0.0 || isinf(amount))))
				HistorySyntaxError(input, p, "Expected a finite amount");
			rec.amount = amount;
			p = SkipSpace(end);
			if (*p == ':')
			{
				long		cnt;

				p = SkipSpace(p + 1);
				errno = 0;
				cnt = strtol(p, &end, 10);
				if (end == p || errno == ERANGE || cnt < 0 || cnt > PG_INT32_MAX)
					HistorySyntaxError(input, p, "Expected a purchase count from 0 to 2147483647");
				rec.purchases = (int32) cnt;
				p = SkipSpace(end);
			}
			else
				rec.purchases = amount < 0 ? 0 : 1;
			HistoryCheckDay(&rec);

			if (n == cap)
			{
				if (cap >= (int) (MaxAllocSize / sizeof(HistoryDay) / 2))
					HistorySyntaxError(input, p, "Too many days");
				cap *= 2;
				recs = repalloc(recs, cap * sizeof(HistoryDay));
			}
			recs[n++] = rec;

			if (*p == ',')
			{
				p = SkipSpace(p + 1);
				continue;
			}
			if (*p != '}')
				HistorySyntaxError(input, p, "Expected \",\" or \"}\"");
			p++;
			break;
		}
	}
	p = SkipSpace(p);
	if (*p != '\0')
		HistorySyntaxError(input, p, "Unexpected text after \"}\"");
	PG_RETURN_POINTER(DayLogBuild(&HistorySpec, (char *) recs, n));
}

/* Text output, canonical: days ascending, shortest exact amounts. */
Datum
history_out(PG_FUNCTION_ARGS)
{
	DayLog	   *log = DayLogFromDatum(&HistorySpec, PG_GETARG_DATUM(0));
	const HistoryDay *days = HistoryDays(log);
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < log->nrec; i++)
	{
		char		num[DOUBLE_SHORTEST_DECIMAL_LEN];
		char		day[32];

		if (i > 0)
			appendStringInfoChar(&buf, ',');
		ChurnFormatDay(day, days[i].day);
		double_to_shortest_decimal_buf(days[i].amount, num);
		appendStringInfo(&buf, "%s:%s", day, num);
		if (days[i].purchases != (days[i].amount < 0 ? 0 : 1))
			appendStringInfo(&buf, ":%d", days[i].purchases);
	}
	appendStringInfoChar(&buf, '}');
	PG_RETURN_CSTRING(buf.data);
}

/* Binary input: version, count, then (day, purchases, amount) per day. */
Datum
history_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			version = pq_getmsgint(buf, 2);
	int			n = pq_getmsgint(buf, 4);
	DayLog	   *log;
	HistoryDay *recs;

	if (version != DAYLOG_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unsupported binary churn.history version %d", version)));
	if (n < 0 || (Size) n > (Size) (buf->len - buf->cursor) / 16)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid day count %d in binary churn.history", n)));
	log = palloc0(DAYLOG_HDRSZ + (Size) n * sizeof(HistoryDay));
	SET_VARSIZE(log, DAYLOG_HDRSZ + (Size) n * sizeof(HistoryDay));
	log->version = DAYLOG_VERSION;
	log->kind = DAYLOG_KIND_HISTORY;
	log->nrec = n;
	recs = (HistoryDay *) DAYLOG_RECS(log);
	for (int i = 0; i < n; i++)
	{
		recs[i].day = pq_getmsgint(buf, 4);
		recs[i].purchases = pq_getmsgint(buf, 4);
		recs[i].amount = pq_getmsgfloat8(buf);
		HistoryCheckDay(&recs[i]);
		if (i > 0 && recs[i].day <= recs[i - 1].day)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("binary churn.history days are not strictly ascending")));
	}
	PG_RETURN_POINTER(log);
}

/* Binary output, the mirror of history_recv. */
Datum
history_send(PG_FUNCTION_ARGS)
{
	DayLog	   *log = DayLogFromDatum(&HistorySpec, PG_GETARG_DATUM(0));
	const HistoryDay *days = HistoryDays(log);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint16(&buf, DAYLOG_VERSION);
	pq_sendint32(&buf, log->nrec);
	for (int i = 0; i < log->nrec; i++)
	{
		pq_sendint32(&buf, days[i].day);
		pq_sendint32(&buf, days[i].purchases);
		pq_sendfloat8(&buf, days[i].amount);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* Add one purchase row to the aggregate state (shared by every input type). */
static Datum
HistoryTransRow(FunctionCallInfo fcinfo, DateADT day, bool amount_null, float8 amount)
{
	DayLogExpanded *elog = DayLogTransState(fcinfo, 0, &HistorySpec);
	HistoryDay	rec;

	if (amount_null)
		amount = 0.0;
	else if (unlikely(!isfinite(amount)))
		ChurnCheckFinite(amount, "purchase amount");
	rec.day = day;
	rec.purchases = (amount_null || amount >= 0) ? 1 : 0;
	rec.amount = amount;
	DayLogAppend(elog, &rec);
	PG_RETURN_DATUM(EOHPGetRWDatum(&elog->hdr));
}

/* NULL timestamp: keep the state as it is. */
#define HISTORY_SKIP_NULL_TS() \
	do { \
		if (PG_ARGISNULL(1)) \
		{ \
			if (PG_ARGISNULL(0)) \
				PG_RETURN_NULL(); \
			PG_RETURN_DATUM(PG_GETARG_DATUM(0)); \
		} \
	} while (0)

/*
 * The numeric storage format (numeric.c keeps its macros private; the
 * format is on disk, so it does not change): a uint16 header, then for the
 * long form an int16 weight, then base-10000 int16 digits.  Header bits
 * 0xC000: 0x0000 positive, 0x4000 negative (long form), 0x8000 short form,
 * 0xC000 special (NaN, infinities).
 */
#define AMOUNT_NBASE		10000
#define AMOUNT_SIGN_MASK	0xC000
#define AMOUNT_NEG			0x4000
#define AMOUNT_SHORT		0x8000
#define AMOUNT_SHORT_SIGN	0x2000
#define AMOUNT_SHORT_WEIGHT_SIGN 0x0040
#define AMOUNT_SHORT_WEIGHT_MASK 0x003F

/*
 * A numeric amount as float8 without numeric_float8's text round trip,
 * when that is exact: the digits make an integer below 2^53 and the power
 * of ten that scales it is at most 10^22, so both are exact doubles and the
 * one multiplication or division rounds correctly, as strtod does (the
 * classic fast path).  Returns false otherwise (the caller converts the
 * slow way).  Profiled: the text round trip was a fifth of history_agg
 * over numeric amounts.
 */
static bool
NumericAmountFast(Numeric num, float8 *result)
{
	const char *p = VARDATA_ANY(num);
	Size		len = VARSIZE_ANY_EXHDR(num);
	uint16		header;
	int			weight;
	bool		neg;
	const int16 *digits;
	int			ndigits;
	uint64		mant = 0;
	int			exp10;
	static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

	if (len < sizeof(uint16))
		return false;
	memcpy(&header, p, sizeof(uint16));
	if ((header & AMOUNT_SIGN_MASK) == AMOUNT_SHORT)
	{
		neg = (header & AMOUNT_SHORT_SIGN) != 0;
		weight = (header & AMOUNT_SHORT_WEIGHT_MASK);
		if (header & AMOUNT_SHORT_WEIGHT_SIGN)
			weight |= ~AMOUNT_SHORT_WEIGHT_MASK;
		digits = (const int16 *) (p + sizeof(uint16));
		ndigits = (len - sizeof(uint16)) / sizeof(int16);
	}
	else if ((header & AMOUNT_SIGN_MASK) == 0 || (header & AMOUNT_SIGN_MASK) == AMOUNT_NEG)
	{
		int16		w;

		if (len < 2 * sizeof(uint16))
			return false;
		neg = (header & AMOUNT_SIGN_MASK) == AMOUNT_NEG;
		memcpy(&w, p + sizeof(uint16), sizeof(int16));
		weight = w;
		digits = (const int16 *) (p + 2 * sizeof(uint16));
		ndigits = (len - 2 * sizeof(uint16)) / sizeof(int16);
	}
	else
		return false;			/* NaN or an infinity */
	if (ndigits == 0)
	{
		*result = 0.0;
		return true;
	}
	if (ndigits > 4)
		return false;			/* up to 16 decimal digits: below 2^53 */
	for (int i = 0; i < ndigits; i++)
	{
		int16		d;

		memcpy(&d, digits + i, sizeof(int16));
		mant = mant * AMOUNT_NBASE + d;
	}
	if (mant >= (UINT64CONST(1) << 53))
		return false;
	exp10 = 4 * (weight - ndigits + 1);
	if (exp10 < -22 || exp10 > 22)
		return false;
	*result = exp10 >= 0 ? (double) mant * pow10[exp10] : (double) mant / pow10[-exp10];
	if (neg)
		*result = -*result;
	return true;
}

/* Numeric amount as float8; NaN and infinities are errors. */
static float8
NumericAmount(Numeric num)
{
	float8		v;

	if (NumericAmountFast(num, &v))
		return v;
	v = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(num)));

	ChurnCheckFinite(v, "purchase amount");
	return v;
}

/* history_agg(timestamptz, float8) transition. */
Datum
history_trans_tstz_float8(PG_FUNCTION_ARGS)
{
	HISTORY_SKIP_NULL_TS();
	return HistoryTransRow(fcinfo, ChurnTimestampToDay(PG_GETARG_TIMESTAMPTZ(1)),
						   PG_ARGISNULL(2), PG_ARGISNULL(2) ? 0.0 : PG_GETARG_FLOAT8(2));
}

/* history_agg(date, float8) transition. */
Datum
history_trans_date_float8(PG_FUNCTION_ARGS)
{
	HISTORY_SKIP_NULL_TS();
	return HistoryTransRow(fcinfo, ChurnCheckDay(PG_GETARG_DATEADT(1), "purchase date"),
						   PG_ARGISNULL(2), PG_ARGISNULL(2) ? 0.0 : PG_GETARG_FLOAT8(2));
}

/* history_agg(timestamptz, numeric) transition. */
Datum
history_trans_tstz_numeric(PG_FUNCTION_ARGS)
{
	HISTORY_SKIP_NULL_TS();
	return HistoryTransRow(fcinfo, ChurnTimestampToDay(PG_GETARG_TIMESTAMPTZ(1)),
						   PG_ARGISNULL(2), PG_ARGISNULL(2) ? 0.0 : NumericAmount(PG_GETARG_NUMERIC(2)));
}

/* history_agg(date, numeric) transition. */
Datum
history_trans_date_numeric(PG_FUNCTION_ARGS)
{
	HISTORY_SKIP_NULL_TS();
	return HistoryTransRow(fcinfo, ChurnCheckDay(PG_GETARG_DATEADT(1), "purchase date"),
						   PG_ARGISNULL(2), PG_ARGISNULL(2) ? 0.0 : NumericAmount(PG_GETARG_NUMERIC(2)));
}

/* Combine two partial history_agg states (parallel and distributed plans). */
Datum
history_combine(PG_FUNCTION_ARGS)
{
	return DayLogCombine(fcinfo, &HistorySpec);
}

/* merge(a, b): the union of two histories, same-day spend and counts added. */
Datum
history_merge(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) && PG_ARGISNULL(1))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(0))
		PG_RETURN_POINTER(DayLogFromDatum(&HistorySpec, PG_GETARG_DATUM(1)));
	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(DayLogFromDatum(&HistorySpec, PG_GETARG_DATUM(0)));
	PG_RETURN_POINTER(DayLogMergeFlat(&HistorySpec,
									  DayLogFromDatum(&HistorySpec, PG_GETARG_DATUM(0)),
									  DayLogFromDatum(&HistorySpec, PG_GETARG_DATUM(1))));
}

/* history_days(h): one row per stored day (day, amount, purchases). */
Datum
history_days(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	DayLog	   *log = DayLogFromDatum(&HistorySpec, PG_GETARG_DATUM(0));
	const HistoryDay *days = HistoryDays(log);

	ChurnMaterializeSRF(fcinfo);
	for (int i = 0; i < log->nrec; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = DateADTGetDatum(days[i].day);
		values[1] = Float8GetDatum(days[i].amount);
		values[2] = Int32GetDatum(days[i].purchases);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * churned(h, as_of, horizon_days): no purchase day in (as_of, as_of +
 * horizon]; NULL when the customer had not bought by as_of.
 */
Datum
history_churned(PG_FUNCTION_ARGS)
{
	DayLog	   *log = DayLogFromDatum(&HistorySpec, PG_GETARG_DATUM(0));
	DateADT		as_of = ChurnCheckDay(PG_GETARG_DATEADT(1), "as_of");
	int32		horizon = PG_GETARG_INT32(2);
	const HistoryDay *days = HistoryDays(log);
	int			split,
				i;
	bool		bought = false;

	if (horizon <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("horizon_days must be positive"),
				 errdetail("The value was %d.", horizon)));
	split = DayLogUpperBound(log, sizeof(HistoryDay), as_of);
	for (i = 0; i < split && !bought; i++)
		bought = days[i].purchases > 0;
	if (!bought)
		PG_RETURN_NULL();
	for (i = split; i < log->nrec && (int64) days[i].day <= (int64) as_of + horizon; i++)
	{
		if (days[i].purchases > 0)
			PG_RETURN_BOOL(false);
	}
	PG_RETURN_BOOL(true);
}

/* history_spend(h, as_of, days): net spend of the days in (as_of - days, as_of]. */
Datum
history_spend(PG_FUNCTION_ARGS)
{
	DayLog	   *log = DayLogFromDatum(&HistorySpec, PG_GETARG_DATUM(0));
	DateADT		as_of = ChurnCheckDay(PG_GETARG_DATEADT(1), "as_of");
	int32		ndays = PG_GETARG_INT32(2);
	const HistoryDay *days = HistoryDays(log);
	float8		sum = 0;

	if (ndays <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("days must be positive"),
				 errdetail("The value was %d.", ndays)));
	for (int i = DayLogUpperBound(log, sizeof(HistoryDay), as_of) - 1;
		 i >= 0 && (int64) days[i].day > (int64) as_of - ndays; i--)
		sum = AddSpend(sum, days[i].amount);
	PG_RETURN_FLOAT8(sum);
}
