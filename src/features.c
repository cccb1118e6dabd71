/*-------------------------------------------------------------------------
 *
 * features.c
 *	  churn.features(history, as_of, window_days): the purchase features of
 *	  one customer as of a date, in one pass over the stored days.
 *
 * Purchases after as_of are ignored, so a stored history answers for any
 * past date.  Definitions (days are calendar days; see the README):
 *	x				repeat purchase days (first excluded)
 *	t_x, t			first to last purchase day, first purchase day to as_of
 *	recency_days	last purchase day to as_of
 *	windows			recent = (as_of - w, as_of], prior = (as_of - 2w, as_of - w]
 *	aov_decline_months
 *					30-day months counted back from as_of; the number of
 *					consecutive latest months whose average order value fell
 *					by AOV_DECLINE (15%) or more against the month before;
 *					a month without purchases ends the run.
 *
 *-------------------------------------------------------------------------
 */
#include "history.h"

#include <math.h>

#define AOV_MONTH_DAYS		30
#define AOV_MONTHS			13	/* compare up to 12 month-on-month steps */
#define AOV_DECLINE			0.15
#define MAX_WINDOW_DAYS		36525

PG_FUNCTION_INFO_V1(history_features);

enum
{
	F_FIRST_PURCHASE,
	F_LAST_PURCHASE,
	F_X,
	F_T_X,
	F_T,
	F_RECENCY_DAYS,
	F_PURCHASE_DAYS,
	F_TOTAL_SPEND,
	F_AVG_SPEND,
	F_REPEAT_AVG_SPEND,
	F_MEAN_GAP_DAYS,
	F_SD_GAP_DAYS,
	F_OVERDUE_RATIO,
	F_RECENT_DAYS,
	F_PRIOR_DAYS,
	F_FREQUENCY_CHANGE,
	F_RECENT_AVG_SPEND,
	F_PRIOR_AVG_SPEND,
	F_SPEND_CHANGE,
	F_AOV_DECLINE_MONTHS,
	F_RETURN_DAYS,
	F_NATTS
};

/* Relative change (now - before) / before, or NULL-worthy NaN. */
static inline double
RelChange(double now, double before)
{
	return before > 0 ? (now - before) / before : NAN;
}

/* What one pass over a customer's days up to as_of accumulates. */
typedef struct FeatureScan
{
	int			k;				/* purchase days */
	int			return_days;
	DateADT		first,
				prev;			/* first and last purchase day */
	double		total,
				purchase_spend,
				first_spend;
	double		gap_mean,
				gap_m2;			/* Welford over gaps */
	int			recent_n,
				prior_n;
	double		recent_sum,
				prior_sum;
	int			month_n[AOV_MONTHS];
	double		month_sum[AOV_MONTHS];
} FeatureScan;

/* Accumulate the days of a history up to as_of, with windows of window days. */
static void
FeatureScanDays(const DayLog *log, DateADT as_of, int32 window, FeatureScan *sc)
{
	const HistoryDay *days = HistoryDays(log);
	int			end = DayLogUpperBound(log, sizeof(HistoryDay), as_of);

	memset(sc, 0, sizeof(FeatureScan));
	for (int i = 0; i < end; i++)
	{
		const HistoryDay *d = &days[i];
		int64		age = (int64) as_of - d->day;	/* 0 = on as_of */

		if ((i & 0xFFFF) == 0xFFFF)
			CHECK_FOR_INTERRUPTS();
		sc->total += d->amount;
		if (d->purchases == 0)
		{
			sc->return_days++;
			continue;
		}
		if (sc->k == 0)
		{
			sc->first = d->day;
			sc->first_spend = d->amount;
		}
		else
		{
			double		gap = (double) (d->day - sc->prev);
			double		delta = gap - sc->gap_mean;

			sc->gap_mean += delta / sc->k;
			sc->gap_m2 += delta * (gap - sc->gap_mean);
		}
		sc->k++;
		sc->prev = d->day;
		sc->purchase_spend += d->amount;
		if (age < window)
		{
			sc->recent_n++;
			sc->recent_sum += d->amount;
		}
		else if (age < 2 * (int64) window)
		{
			sc->prior_n++;
			sc->prior_sum += d->amount;
		}
		if (age < (int64) AOV_MONTH_DAYS * AOV_MONTHS)
		{
			sc->month_n[age / AOV_MONTH_DAYS]++;
			sc->month_sum[age / AOV_MONTH_DAYS] += d->amount;
		}
	}
}

/* The number of latest consecutive months whose average order value fell by AOV_DECLINE. */
static int
FeatureAovRun(const FeatureScan *sc)
{
	int			run = 0;

	for (int m = 0; m + 1 < AOV_MONTHS; m++)
	{
		double		now,
					before;

		if (sc->month_n[m] == 0 || sc->month_n[m + 1] == 0)
			break;
		now = sc->month_sum[m] / sc->month_n[m];
		before = sc->month_sum[m + 1] / sc->month_n[m + 1];
		if (!(before > 0 && now <= (1.0 - AOV_DECLINE) * before))
			break;
		run++;
	}
	return run;
}

/* Churn features of one history as of a date. */
Datum
history_features(PG_FUNCTION_ARGS)
{
	DayLog	   *log = DayLogFromDatum(&HistorySpec, PG_GETARG_DATUM(0));
	DateADT		as_of = ChurnCheckDay(PG_GETARG_DATEADT(1), "as_of");
	int32		window = PG_GETARG_INT32(2);
	FeatureScan sc;
	Datum		values[F_NATTS];
	bool		nulls[F_NATTS];
	int			x;

	if (window <= 0 || window > MAX_WINDOW_DAYS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window_days must be between 1 and %d", MAX_WINDOW_DAYS),
				 errdetail("The value was %d.", window)));
	FeatureScanDays(log, as_of, window, &sc);
	if (sc.k == 0)
		PG_RETURN_NULL();
	if (!isfinite(sc.total) || !isfinite(sc.purchase_spend))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("total spend is out of range for float8")));

	x = sc.k - 1;
	memset(nulls, 0, sizeof(nulls));
	values[F_FIRST_PURCHASE] = DateADTGetDatum(sc.first);
	values[F_LAST_PURCHASE] = DateADTGetDatum(sc.prev);
	values[F_X] = Int32GetDatum(x);
	values[F_T_X] = Float8GetDatum((double) (sc.prev - sc.first));
	values[F_T] = Float8GetDatum((double) (as_of - sc.first));
	values[F_RECENCY_DAYS] = Float8GetDatum((double) (as_of - sc.prev));
	values[F_PURCHASE_DAYS] = Int32GetDatum(sc.k);
	values[F_TOTAL_SPEND] = Float8GetDatum(sc.total);
	values[F_AVG_SPEND] = Float8GetDatum(sc.purchase_spend / sc.k);
	values[F_RECENT_DAYS] = Int32GetDatum(sc.recent_n);
	values[F_PRIOR_DAYS] = Int32GetDatum(sc.prior_n);
	values[F_AOV_DECLINE_MONTHS] = Int32GetDatum(FeatureAovRun(&sc));
	values[F_RETURN_DAYS] = Int32GetDatum(sc.return_days);

#define SET_OR_NULL(att, cond, val) \
	do { \
		if (cond) values[att] = Float8GetDatum(val); \
		else { values[att] = (Datum) 0; nulls[att] = true; } \
	} while (0)

	SET_OR_NULL(F_REPEAT_AVG_SPEND, x > 0, (sc.purchase_spend - sc.first_spend) / x);
	SET_OR_NULL(F_MEAN_GAP_DAYS, x > 0, (double) (sc.prev - sc.first) / x);
	SET_OR_NULL(F_SD_GAP_DAYS, x > 1, sqrt(sc.gap_m2 / (x - 1)));
	SET_OR_NULL(F_OVERDUE_RATIO, x > 0, (double) (as_of - sc.prev) * x / (double) (sc.prev - sc.first));
	SET_OR_NULL(F_FREQUENCY_CHANGE, sc.prior_n > 0, RelChange(sc.recent_n, sc.prior_n));
	SET_OR_NULL(F_RECENT_AVG_SPEND, sc.recent_n > 0, sc.recent_sum / sc.recent_n);
	SET_OR_NULL(F_PRIOR_AVG_SPEND, sc.prior_n > 0, sc.prior_sum / sc.prior_n);
	SET_OR_NULL(F_SPEND_CHANGE, sc.recent_n > 0 && sc.prior_n > 0 && sc.prior_sum > 0,
				RelChange(sc.recent_sum / sc.recent_n, sc.prior_sum / sc.prior_n));
#undef SET_OR_NULL

	PG_RETURN_DATUM(ChurnMakeComposite(fcinfo, values, nulls));
}
