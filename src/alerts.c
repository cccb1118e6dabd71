/*-------------------------------------------------------------------------
 *
 * alerts.c
 *	  The alert functions that act for their caller.
 *
 * Raising or moving an alert of a pipeline requires owning that pipeline
 * (being a member of its owner).  SQL cannot tell a SECURITY DEFINER
 * function who called it, so these functions are plain C functions (their
 * EXECUTE privilege is the gate, granted to the roles that handle alerts):
 * each passes its arguments and the calling role to an internal SQL
 * function that runs as the extension's owner and checks ownership.
 *
 *-------------------------------------------------------------------------
 */
#include "pipeline.h"

PG_FUNCTION_INFO_V1(raise_alert);
PG_FUNCTION_INFO_V1(alert_move);
PG_FUNCTION_INFO_V1(alert_contact);
PG_FUNCTION_INFO_V1(alert_close);
PG_FUNCTION_INFO_V1(alert_assign);

/* churn.raise_alert(customer_id, tier or code, ...): open or escalate an alert. */
Datum
raise_alert(PG_FUNCTION_ARGS)
{
	return ChurnCallInternal(fcinfo, "raise_alert_internal");
}

/* churn.alert_move(alert_id, to_status, actor, ...): move an alert. */
Datum
alert_move(PG_FUNCTION_ARGS)
{
	return ChurnCallInternal(fcinfo, "alert_move_internal");
}

/* churn.alert_contact(alert_id, actor, ...): record a contact. */
Datum
alert_contact(PG_FUNCTION_ARGS)
{
	return ChurnCallInternal(fcinfo, "alert_contact_internal");
}

/* churn.alert_close(alert_id, outcome, actor, ...): close an alert. */
Datum
alert_close(PG_FUNCTION_ARGS)
{
	return ChurnCallInternal(fcinfo, "alert_close_internal");
}

/* churn.alert_assign(alert_id, assignee, actor, ...): assign an alert. */
Datum
alert_assign(PG_FUNCTION_ARGS)
{
	return ChurnCallInternal(fcinfo, "alert_assign_internal");
}
