/*-------------------------------------------------------------------------
 *
 * snapcache.c
 *	  Is a cache of a configuration table still valid under the active
 *	  snapshot?  (See snapcache.h.)
 *
 *-------------------------------------------------------------------------
 */
#include "churn_warning.h"

#include "storage/proc.h"
#include "utils/snapmgr.h"

#include "snapcache.h"

/* Compare the active snapshot with the one a cache was filled under. */
bool
SnapCacheStillValid(SnapCacheKey *key)
{
	SnapCacheKey now;

	memset(&now, 0, sizeof(now));
	if (ActiveSnapshotSet())
	{
		Snapshot	snap = GetActiveSnapshot();

		now.xmin = snap->xmin;
		now.xmax = snap->xmax;
		now.curcid = snap->curcid;
#if PG_VERSION_NUM >= 140000
		now.completions = snap->snapXactCompletionCount;
#endif
		now.valid = true;
	}
#if PG_VERSION_NUM >= 170000
	now.lxid = MyProc->vxid.lxid;
#else
	now.lxid = MyProc->lxid;
#endif
	if (key->valid && now.valid && memcmp(key, &now, sizeof(now)) == 0)
		return true;
	memcpy(key, &now, sizeof(now));
	return false;
}
