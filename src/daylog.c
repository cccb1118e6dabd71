/*-------------------------------------------------------------------------
 *
 * daylog.c
 *	  The sorted, per-day record log behind churn.history and
 *	  churn.engagement, in flat (varlena) and expanded (appendable) form.
 *
 * An aggregate appends one record per input row.  Rows usually arrive in
 * time order per customer, so the common append either extends the sorted
 * prefix or folds into its last record; out-of-order rows go to an unsorted
 * tail that is sorted and merged in once it outgrows the sorted part, which
 * keeps memory within about twice the number of distinct keys.
 *
 * Memory: an expanded object normally owns a memory context, but a hash
 * aggregate measures its memory by walking every child context of its
 * table context once per new group, so a context per customer makes a
 * GROUP BY over a million customers quadratic.  Inside an aggregate every
 * day log of that aggregate context therefore shares one child context
 * ("churn day logs").  That is safe because nodeAgg and WindowAgg only
 * delete an expanded state when the transition function returns a
 * different object than it was given, and ours always returns the same one;
 * the shared context goes away with the aggregate context's reset.
 *
 *-------------------------------------------------------------------------
 */
#include "daylog.h"
#include "numeric.h"

#include "port/pg_bitutils.h"
#include "utils/memutils.h"

static Size DayLogGetFlatSize(ExpandedObjectHeader *eohptr);
static void DayLogFlattenInto(ExpandedObjectHeader *eohptr, void *result, Size allocated_size);

static const ExpandedObjectMethods DayLogMethods = {
	DayLogGetFlatSize,
	DayLogFlattenInto
};

#define DAYLOG_MAX_RECS(spec)	((int) Min((MaxAllocSize - DAYLOG_HDRSZ) / (spec)->rec_size, INT_MAX / 2))

#define SHARED_CONTEXT_NAME "churn day logs"

/* the largest request an AllocSet with default sizes rounds to a power of 2 */
#define DAYLOG_CHUNK_LIMIT	8192

/* The last shared context handed out, and its parent (the aggregate context). */
static MemoryContext shared_parent = NULL;
static MemoryContext shared_cxt = NULL;

/* Reset callback: the shared context is going away with its parent. */
static void
SharedContextGone(void *arg)
{
	if (shared_cxt == (MemoryContext) arg)
	{
		shared_cxt = NULL;
		shared_parent = NULL;
	}
}

/* The one context under aggcxt that holds all of its day logs. */
static MemoryContext
DayLogSharedContext(MemoryContext aggcxt)
{
	MemoryContext child;
	MemoryContextCallback *cb;

	if (shared_parent == aggcxt && shared_cxt != NULL)
		return shared_cxt;
	for (child = aggcxt->firstchild; child != NULL; child = child->nextchild)
	{
		if (strcmp(child->name, SHARED_CONTEXT_NAME) == 0)
			break;
	}
	if (child == NULL)
	{
		child = AllocSetContextCreate(aggcxt, SHARED_CONTEXT_NAME, ALLOCSET_DEFAULT_SIZES);
		cb = MemoryContextAlloc(child, sizeof(MemoryContextCallback));
		cb->func = SharedContextGone;
		cb->arg = child;
		MemoryContextRegisterResetCallback(child, cb);
	}
	shared_parent = aggcxt;
	shared_cxt = child;
	return child;
}

/*
 * Bytes to allocate for at least need bytes: the power of two an AllocSet
 * chunk of that size takes anyway (below its chunk limit), so that records
 * fill what is allocated instead of leaving it unused.
 */
static Size
DayLogAllocSize(Size need)
{
	if (need > DAYLOG_CHUNK_LIMIT)
		return need;
	return Max(pg_nextpower2_size_t(need), 8);
}

/*
 * Make an empty expanded day log: in the aggregate's shared context when
 * aggcxt is given, else in a context of its own under parent.  The header
 * and the inline records share one allocation, filled to its chunk size:
 * for a day log of the typical customer (up to 11 days) that is the only
 * allocation, 256 bytes (an AllocSet chunk), against 400 to 650 bytes in
 * three when the inline buffer held 4 records and then grew.
 */
static DayLogExpanded *
DayLogNew(const DayLogSpec *spec, MemoryContext parent, MemoryContext aggcxt)
{
	MemoryContext objcxt;
	DayLogExpanded *elog;
	Size		hdr = MAXALIGN(sizeof(DayLogExpanded));
	Size		bytes = DayLogAllocSize(hdr + DAYLOG_INLINE_RECS * spec->rec_size);

	if (aggcxt != NULL)
		objcxt = DayLogSharedContext(aggcxt);
	else
		objcxt = AllocSetContextCreate(parent, "churn day log", ALLOCSET_SMALL_SIZES);
	elog = MemoryContextAllocZero(objcxt, bytes);
	EOH_init_header(&elog->hdr, &DayLogMethods, objcxt);
	elog->spec = spec;
	elog->cap = (bytes - hdr) / spec->rec_size;
	elog->recs = (char *) elog + MAXALIGN(sizeof(DayLogExpanded));
	elog->recs_inline = true;
	return elog;
}

/* Grow the record buffer to hold at least need records. */
static void
DayLogReserve(DayLogExpanded *elog, int need)
{
	int			newcap;

	if (need <= elog->cap)
		return;
	if (need > DAYLOG_MAX_RECS(elog->spec))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too large", elog->spec->type_name),
				 errdetail("A value can hold at most %d distinct days.",
						   DAYLOG_MAX_RECS(elog->spec))));
	newcap = Max(need, elog->cap * 2);
	/* whole records in the chunk the allocator would round up to anyway */
	newcap = Max(newcap, DayLogAllocSize((Size) newcap * elog->spec->rec_size) / elog->spec->rec_size);
	newcap = Min(newcap, DAYLOG_MAX_RECS(elog->spec));
	if (elog->recs_inline)
	{
		char	   *recs = MemoryContextAlloc(elog->hdr.eoh_context,
											  (Size) newcap * elog->spec->rec_size);

		memcpy(recs, elog->recs, (Size) elog->nrec * elog->spec->rec_size);
		elog->recs = recs;
		elog->recs_inline = false;
	}
	else
		elog->recs = repalloc(elog->recs, (Size) newcap * elog->spec->rec_size);
	elog->cap = newcap;
}

/* Sort recs[0, n) and fold equal keys in place; returns the new count. */
static int
DayLogSortFold(const DayLogSpec *spec, char *recs, int n)
{
	Size		sz = spec->rec_size;
	int			out = 0;

	if (n <= 1)
		return n;
	qsort(recs, n, sz, spec->cmp);
	for (int i = 1; i < n; i++)
	{
		char	   *cur = recs + (Size) i * sz;
		char	   *last = recs + (Size) out * sz;

		if (spec->cmp(last, cur) == 0)
			spec->absorb(last, cur);
		else
		{
			out++;
			if (out != i)
				memcpy(recs + (Size) out * sz, cur, sz);
		}
	}
	return out + 1;
}

/*
 * Merge two sorted, key-unique runs into dst (which must hold na + nb
 * records and not overlap either run); returns the merged count.
 */
static int
DayLogMergeRuns(const DayLogSpec *spec, char *dst,
				const char *a, int na, const char *b, int nb)
{
	Size		sz = spec->rec_size;
	int			i = 0,
				j = 0,
				n = 0;

	while (i < na || j < nb)
	{
		const char *ra = a + (Size) i * sz;
		const char *rb = b + (Size) j * sz;
		char	   *d = dst + (Size) n * sz;
		int			c;

		if (i >= na)
			c = 1;
		else if (j >= nb)
			c = -1;
		else
			c = spec->cmp(ra, rb);

		if (c < 0)
		{
			memcpy(d, ra, sz);
			i++;
		}
		else if (c > 0)
		{
			memcpy(d, rb, sz);
			j++;
		}
		else
		{
			memcpy(d, ra, sz);
			spec->absorb(d, rb);
			i++;
			j++;
		}
		n++;
	}
	return n;
}

/*
 * Bring the whole buffer into sorted, key-unique order, in place: the runs
 * are merged into a scratch buffer that is copied back and freed, so that a
 * day log keeps its one buffer (every customer's state is normalized when a
 * hash aggregate finalizes it, while all states are still in memory).
 */
static void
DayLogNormalize(DayLogExpanded *elog)
{
	const DayLogSpec *spec = elog->spec;
	Size		sz = spec->rec_size;
	int			ntail = elog->nrec - elog->nsorted;
	char	   *tail;
	char	   *merged;

	if (ntail == 0)
		return;
	tail = elog->recs + (Size) elog->nsorted * sz;
	ntail = DayLogSortFold(spec, tail, ntail);
	if (elog->nsorted == 0)
	{
		elog->nrec = elog->nsorted = ntail;
		return;
	}
	merged = MemoryContextAlloc(elog->hdr.eoh_context, (Size) (elog->nsorted + ntail) * sz);
	elog->nrec = DayLogMergeRuns(spec, merged, elog->recs, elog->nsorted, tail, ntail);
	elog->nsorted = elog->nrec;
	memcpy(elog->recs, merged, (Size) elog->nrec * sz);
	pfree(merged);
}

/* Append one record; keeps the sorted prefix when rows come in key order. */
void
DayLogAppend(DayLogExpanded *elog, const void *rec)
{
	const DayLogSpec *spec = elog->spec;
	Size		sz = spec->rec_size;

	if (elog->nsorted == elog->nrec && elog->nrec > 0)
	{
		char	   *last = elog->recs + (Size) (elog->nrec - 1) * sz;
		int			c = spec->cmp(last, rec);

		if (c == 0)
		{
			spec->absorb(last, rec);
			return;
		}
		DayLogReserve(elog, elog->nrec + 1);
		memcpy(elog->recs + (Size) elog->nrec * sz, rec, sz);
		elog->nrec++;
		if (c < 0)
			elog->nsorted++;
		return;
	}

	DayLogReserve(elog, elog->nrec + 1);
	memcpy(elog->recs + (Size) elog->nrec * sz, rec, sz);
	if (elog->nrec == 0)
		elog->nsorted = 1;
	elog->nrec++;

	/* Fold the unsorted tail in once it outgrows the sorted part. */
	if (elog->nrec - elog->nsorted > Max(elog->nsorted, 256))
		DayLogNormalize(elog);
}

/* Append every record of a flat day log. */
void
DayLogAppendFlat(DayLogExpanded *elog, const DayLog *log)
{
	Size		sz = elog->spec->rec_size;
	const char *recs = DAYLOG_RECS(log);

	for (int i = 0; i < log->nrec; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		DayLogAppend(elog, recs + (Size) i * sz);
	}
}

/* Expanded-object method: size of the flat form (normalizes first). */
static Size
DayLogGetFlatSize(ExpandedObjectHeader *eohptr)
{
	DayLogExpanded *elog = (DayLogExpanded *) eohptr;

	DayLogNormalize(elog);
	return DAYLOG_HDRSZ + (Size) elog->nrec * elog->spec->rec_size;
}

/* Expanded-object method: write the flat form into result. */
static void
DayLogFlattenInto(ExpandedObjectHeader *eohptr, void *result, Size allocated_size)
{
	DayLogExpanded *elog = (DayLogExpanded *) eohptr;
	DayLog	   *log = (DayLog *) result;
	Size		size = DAYLOG_HDRSZ + (Size) elog->nrec * elog->spec->rec_size;

	Assert(elog->nsorted == elog->nrec);
	if (allocated_size != size)
		elog(ERROR, "day log flat size changed between size and flatten calls");
	memset(log, 0, DAYLOG_HDRSZ);
	SET_VARSIZE(log, size);
	log->version = DAYLOG_VERSION;
	log->kind = elog->spec->kind;
	log->nrec = elog->nrec;
	memcpy(DAYLOG_RECS(log), elog->recs, (Size) elog->nrec * elog->spec->rec_size);
}

/* Detoast a day log datum (flattening an expanded one) and check its header. */
DayLog *
DayLogFromDatum(const DayLogSpec *spec, Datum d)
{
	DayLog	   *log = (DayLog *) PG_DETOAST_DATUM(d);

	if (VARSIZE(log) < DAYLOG_HDRSZ || log->version != DAYLOG_VERSION ||
		log->kind != spec->kind || log->nrec < 0 ||
		VARSIZE(log) != DAYLOG_HDRSZ + (Size) log->nrec * spec->rec_size)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("invalid %s value", spec->type_name),
				 errdetail("The stored header does not match a version %d %s.",
						   DAYLOG_VERSION, spec->type_name)));
	return log;
}

/* Expand a flat day log into a new expanded object (see DayLogNew). */
DayLogExpanded *
DayLogExpand(const DayLogSpec *spec, Datum flat, MemoryContext parent, MemoryContext aggcxt)
{
	DayLogExpanded *elog = DayLogNew(spec, parent, aggcxt);
	DayLog	   *log = DayLogFromDatum(spec, flat);
	Size		bytes = (Size) log->nrec * spec->rec_size;

	DayLogReserve(elog, log->nrec);
	memcpy(elog->recs, DAYLOG_RECS(log), bytes);
	elog->nrec = elog->nsorted = log->nrec;
	return elog;
}

/*
 * The transition state in argument argno as a read-write expanded object
 * that lives under the aggregate context: made empty for a NULL state,
 * reused when it already is ours, expanded from a flat value otherwise.
 */
DayLogExpanded *
DayLogTransState(FunctionCallInfo fcinfo, int argno, const DayLogSpec *spec)
{
	MemoryContext aggcxt;
	MemoryContext parent;
	Datum		state;

	aggcxt = ChurnAggContextIfAny(fcinfo);
	parent = aggcxt != NULL ? aggcxt : CurrentMemoryContext;
	if (PG_ARGISNULL(argno))
		return DayLogNew(spec, parent, aggcxt);
	state = PG_GETARG_DATUM(argno);
	if (VARATT_IS_EXTERNAL_EXPANDED_RW(DatumGetPointer(state)))
	{
		ExpandedObjectHeader *eoh = DatumGetEOHP(state);

		/* ours when it lives in this aggregate's shared context (or under parent) */
		if (eoh->eoh_methods == &DayLogMethods &&
			((DayLogExpanded *) eoh)->spec == spec &&
			((aggcxt != NULL && eoh->eoh_context == shared_cxt && shared_parent == aggcxt) ||
			 MemoryContextGetParent(eoh->eoh_context) == parent))
			return (DayLogExpanded *) eoh;
	}
	return DayLogExpand(spec, state, parent, aggcxt);
}

/* Shared combine function: fold the second state into the first. */
Datum
DayLogCombine(FunctionCallInfo fcinfo, const DayLogSpec *spec)
{
	DayLogExpanded *elog;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		elog = DayLogTransState(fcinfo, 0, spec);
		PG_RETURN_DATUM(EOHPGetRWDatum(&elog->hdr));
	}
	elog = DayLogTransState(fcinfo, 0, spec);
	DayLogAppendFlat(elog, DayLogFromDatum(spec, PG_GETARG_DATUM(1)));
	PG_RETURN_DATUM(EOHPGetRWDatum(&elog->hdr));
}

/* Build a flat day log from records (sorted and folded here). */
DayLog *
DayLogBuild(const DayLogSpec *spec, char *recs, int nrec)
{
	Size		size;
	DayLog	   *log;

	nrec = DayLogSortFold(spec, recs, nrec);
	size = DAYLOG_HDRSZ + (Size) nrec * spec->rec_size;
	log = palloc0(size);
	SET_VARSIZE(log, size);
	log->version = DAYLOG_VERSION;
	log->kind = spec->kind;
	log->nrec = nrec;
	memcpy(DAYLOG_RECS(log), recs, (Size) nrec * spec->rec_size);
	return log;
}

/* Merge two flat day logs into a new one. */
DayLog *
DayLogMergeFlat(const DayLogSpec *spec, const DayLog *a, const DayLog *b)
{
	Size		maxsize = DAYLOG_HDRSZ + (Size) (a->nrec + b->nrec) * spec->rec_size;
	DayLog	   *log;

	if ((int64) a->nrec + b->nrec > DAYLOG_MAX_RECS(spec))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too large", spec->type_name)));
	log = palloc0(maxsize);
	log->version = DAYLOG_VERSION;
	log->kind = spec->kind;
	log->nrec = DayLogMergeRuns(spec, DAYLOG_RECS(log),
								DAYLOG_RECS(a), a->nrec, DAYLOG_RECS(b), b->nrec);
	SET_VARSIZE(log, DAYLOG_HDRSZ + (Size) log->nrec * spec->rec_size);
	return log;
}

/* Index of the first record whose day is after day (records start with int32 day). */
int
DayLogUpperBound(const DayLog *log, Size rec_size, DateADT day)
{
	const char *recs = DAYLOG_RECS(log);
	int			lo = 0,
				hi = log->nrec;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (*(const int32 *) (recs + (Size) mid * rec_size) <= day)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}
