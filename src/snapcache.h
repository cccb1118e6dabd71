/*-------------------------------------------------------------------------
 *
 * snapcache.h
 *	  Caches of configuration tables (tier policies, rulesets) kept in
 *	  fn_extra and tied to the snapshot they were read under (snapcache.c).
 *
 * A call site can outlive a statement (PL/pgSQL keeps simple expressions
 * for the whole transaction), so a cache is valid only while the active
 * snapshot (xmin, xmax, command id, completion count) and the local
 * transaction are the ones it was filled under.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHURN_SNAPCACHE_H
#define CHURN_SNAPCACHE_H

#include "churn_warning.h"

typedef struct SnapCacheKey
{
	TransactionId xmin;
	TransactionId xmax;
	CommandId	curcid;
	uint64		completions;
	LocalTransactionId lxid;
	bool		valid;
} SnapCacheKey;

/*
 * True when *key still describes the active snapshot; otherwise stores the
 * current one in *key and returns false (the caller drops its cache).
 */
extern bool SnapCacheStillValid(SnapCacheKey *key);

#endif							/* CHURN_SNAPCACHE_H */
