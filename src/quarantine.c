/*-------------------------------------------------------------------------
 *
 * quarantine.c
 *	  Why a pipeline cannot use a source row (0.3.0).
 *
 * A refresh splits the rows it reads, from the source or the events
 * relation, into those it merges and those it rejects, in the same pass
 * (the checks are part of the read or of the merge of the capture queue).
 * A rejected row goes to churn.pipeline_reject with the reason these
 * functions give, instead of failing the refresh: one bad value costs one
 * row, not the pipeline's warnings.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "datatype/timestamp.h"
#include "engagement.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(pipeline_purchase_reject);
PG_FUNCTION_INFO_V1(pipeline_purchase_reject_tstz);
PG_FUNCTION_INFO_V1(pipeline_purchase_reject_numeric);
PG_FUNCTION_INFO_V1(pipeline_event_reject);

/* Why a day cannot be used: infinite, or beyond what a timestamp holds in any time zone; NULL when fine. */
static const char *
QuarantineDay(DateADT day)
{
	if (DATE_NOT_FINITE(day))
		return "time is infinite";
	if (day <= DATETIME_MIN_JULIAN - POSTGRES_EPOCH_JDATE ||
		day >= TIMESTAMP_END_JULIAN - POSTGRES_EPOCH_JDATE - 1)
		return "time out of range";
	return NULL;
}

/*
 * Why the purchase amount in argument arg cannot be used (NaN or infinite);
 * NULL amounts are purchases without spend.  A numeric amount is checked
 * as numeric, so that a source of numeric amounts is not converted to
 * float8 (through text) for the check.
 */
static const char *
QuarantineAmount(FunctionCallInfo fcinfo, int arg, bool numeric)
{
	bool		is_nan;
	bool		is_inf;

	if (PG_ARGISNULL(arg))
		return NULL;
	if (numeric)
	{
		Numeric		amount = PG_GETARG_NUMERIC(arg);

		is_nan = numeric_is_nan(amount);
		is_inf = numeric_is_inf(amount);
	}
	else
	{
		float8		amount = PG_GETARG_FLOAT8(arg);

		is_nan = isnan(amount);
		is_inf = isinf(amount);
	}
	if (is_nan)
		return "amount is NaN";
	if (is_inf)
		return "amount is infinite";
	return NULL;
}

/* The reason as the function's text result, or NULL for a row the pipeline keeps. */
static Datum
QuarantineResult(FunctionCallInfo fcinfo, const char *reason)
{
	if (reason == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(reason));
}

/*
 * Why a pipeline rejects the purchase row of the arguments (customer, time,
 * amount), given why its time cannot be used (NULL: it can, or it is NULL).
 */
static Datum
QuarantinePurchase(FunctionCallInfo fcinfo, const char *time_reason, bool numeric)
{
	if (PG_ARGISNULL(0))
		return QuarantineResult(fcinfo, "customer is NULL");
	if (PG_ARGISNULL(1))
		return QuarantineResult(fcinfo, "time is NULL");
	if (time_reason != NULL)
		return QuarantineResult(fcinfo, time_reason);
	return QuarantineResult(fcinfo, QuarantineAmount(fcinfo, 2, numeric));
}

/*
 * churn.pipeline_purchase_reject(customer, day, amount): why a pipeline
 * rejects a purchase row (customer or time NULL, time infinite or out of
 * range, amount NaN or infinite), NULL when it keeps it.
 */
Datum
pipeline_purchase_reject(PG_FUNCTION_ARGS)
{
	return QuarantinePurchase(fcinfo, PG_ARGISNULL(1) ? NULL : QuarantineDay(PG_GETARG_DATEADT(1)), false);
}

/*
 * churn.pipeline_purchase_reject(customer, day, amount numeric): the same
 * for a numeric amount column.
 */
Datum
pipeline_purchase_reject_numeric(PG_FUNCTION_ARGS)
{
	return QuarantinePurchase(fcinfo, PG_ARGISNULL(1) ? NULL : QuarantineDay(PG_GETARG_DATEADT(1)), true);
}

/*
 * churn.pipeline_purchase_reject(customer, ts timestamptz, amount): the
 * same for a timestamptz time column, without converting it to a day (a
 * finite timestamptz always has one).
 */
Datum
pipeline_purchase_reject_tstz(PG_FUNCTION_ARGS)
{
	return QuarantinePurchase(fcinfo, !PG_ARGISNULL(1) && TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(1)) ?
							  "time is infinite" : NULL, false);
}

/* Why an event of a known day cannot be used (kind and rating); NULL when fine. */
static const char *
QuarantineEvent(FunctionCallInfo fcinfo)
{
	text	   *kind;
	int			code;
	float8		rating;

	if (PG_ARGISNULL(2))
		return "kind is NULL";
	kind = PG_GETARG_TEXT_PP(2);
	code = EngagementKindCode(VARDATA_ANY(kind), VARSIZE_ANY_EXHDR(kind));
	if (code < 0)
		return "unknown kind";
	if (PG_ARGISNULL(3))
		return NULL;
	rating = PG_GETARG_FLOAT8(3);
	if (code != ENGAGEMENT_REVIEW)
		return "rating on a kind other than review";
	if (isnan(rating))
		return "rating is NaN";
	if (rating < 1.0 || rating > 5.0)
		return "rating outside 1-5";
	return NULL;
}

/*
 * churn.pipeline_event_reject(customer, day, kind, rating): why a pipeline
 * rejects an event row, NULL when it keeps it: the rule of
 * churn.pipeline_event_check with its reason, and rows without customer
 * or time rejected too.
 */
Datum
pipeline_event_reject(PG_FUNCTION_ARGS)
{
	const char *reason;

	if (PG_ARGISNULL(0))
		reason = "customer is NULL";
	else if (PG_ARGISNULL(1))
		reason = "time is NULL";
	else if ((reason = QuarantineDay(PG_GETARG_DATEADT(1))) == NULL)
		reason = QuarantineEvent(fcinfo);
	return QuarantineResult(fcinfo, reason);
}
