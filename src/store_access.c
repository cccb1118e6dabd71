/*-------------------------------------------------------------------------
 *
 * store_access.c
 *	  Granting store staff the stores they serve.
 *
 * Only the owner of a pipeline may grant or revoke its stores, and only the
 * extension's owner writes churn.store_grant.  As with the alert functions,
 * SQL cannot tell a SECURITY DEFINER function who called it, so these are
 * plain C functions that pass their arguments and the calling role to an
 * internal SQL function run as the extension's owner, which checks that the
 * caller owns the pipeline.
 *
 *-------------------------------------------------------------------------
 */
#include "pipeline.h"

PG_FUNCTION_INFO_V1(grant_store);
PG_FUNCTION_INFO_V1(revoke_store);

/* churn.grant_store(role, pipeline, store): grant a role a pipeline's store. */
Datum
grant_store(PG_FUNCTION_ARGS)
{
	return ChurnCallInternal(fcinfo, "grant_store_internal");
}

/* churn.revoke_store(role, pipeline, store): take back a store (NULL: all). */
Datum
revoke_store(PG_FUNCTION_ARGS)
{
	return ChurnCallInternal(fcinfo, "revoke_store_internal");
}
