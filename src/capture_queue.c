/*-------------------------------------------------------------------------
 *
 * capture_queue.c
 *	  What the capture trigger keeps during a transaction, and how it reaches
 *	  the pipeline queues when the transaction commits.
 *
 * The capture trigger (capture.c) runs in the transaction of whoever writes
 * a pipeline source, so it must cost that writer little and run nothing
 * the writer could steer.  Since 0.3.0 it runs no SQL at all:
 *
 *	- the pipeline row is read directly through its primary key
 *	  (CaptureLoadConfig);
 *	- the rows it captures are kept in memory for the transaction
 *	  (CaptureBufferRow, CaptureBufferRebuild), each savepoint's share
 *	  dropped when that savepoint is rolled back;
 *	- just before the transaction commits (or is prepared), they are
 *	  written to churn.pipeline_queue and churn.pipeline_event_queue in
 *	  batches, one queue row per pipeline and CAPTURE_BATCH_ROWS captured
 *	  rows held in arrays (part 932; the refresh unnests them with
 *	  churn.pipeline_queue_take), the queues' indexes maintained, in the
 *	  same transaction, under its own transaction id: a refresh sees them
 *	  exactly when it sees the source rows, and never those of a
 *	  transaction that rolled back.  Whether the pipeline still captures
 *	  the relation is checked again first (churn.pipeline_config_changed
 *	  keeps the cache current), so rows of a pipeline dropped or no longer
 *	  capturing that relation in the same transaction are not written.
 *
 * A transaction that captures more than CAPTURE_FLUSH_ROWS rows in one
 * (sub)transaction writes them early, under that (sub)transaction, to bound
 * the memory it holds.  The queues' column defaults are not evaluated: the
 * writer fills every column a batch row needs in this version.
 *
 *-------------------------------------------------------------------------
 */
#include "capture.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/xid8.h"

/* Rows one (sub)transaction keeps in memory before writing them early. */
#define CAPTURE_FLUSH_ROWS 100000

/* Captured rows per batch row of a queue. */
#define CAPTURE_BATCH_ROWS 1000

/* One buffered queue row: a captured row or a re-read request. */
typedef struct CaptureEntry
{
	int32		pipeline_id;
	Oid			relid;			/* the relation it was captured from */
	uint8		stream;			/* CaptureStream */
	bool		rebuild;
	bool		value_null;
	bool		day_null;		/* no time: the refresh rejects the row */
	DateADT		day;
	float8		value;
	char	   *customer;		/* NULL: no customer, rejected likewise */
	char	   *kind;
} CaptureEntry;

/* Where the rows of an open subtransaction start in the buffer. */
typedef struct CaptureMark
{
	int			level;			/* transaction nest level */
	SubTransactionId subid;
	int64		start;
} CaptureMark;

/* The transaction's buffer; BufferCxt NULL when nothing was captured. */
static MemoryContext BufferCxt = NULL;
static MemoryContext StringCxt = NULL;
static CaptureEntry *Entries = NULL;
static int64 NEntries = 0;
static int64 MaxEntries = 0;
static CaptureMark *Marks = NULL;
static int	NMarks = 0;
static int	MaxMarks = 0;
static bool CallbacksRegistered = false;
static MemoryContext WriteCxt = NULL;	/* CaptureWrite's, reset after each */

/* Columns of churn.pipeline the trigger reads, in CaptureConfig order. */
static const char *const PipelineColumns[] = {
	"pipeline_id", "source", "customer_col", "ts_col", "amount_col", "ts_kind", "time_zone", "capture",
	"events", "event_customer_col", "event_ts_col", "event_kind_col", "event_rating_col",
	"event_ts_kind", "event_capture", "store_col"
};
#define NPIPELINE_COLUMNS lengthof(PipelineColumns)

/* The queue columns the writer fills, per stream (part 932 added the arrays). */
#define QUEUE_NCOLUMNS 7
#define QUEUE_PIPELINE 0
#define QUEUE_XID 1
#define QUEUE_REBUILD 2
#define QUEUE_CUSTOMERS 3		/* then the days, values and kinds */
static const char *const QueueColumns[2][QUEUE_NCOLUMNS] = {
	{"pipeline_id", "xid", "rebuild", "customer_ids", "days", "amounts", "stores"},
	{"pipeline_id", "xid", "rebuild", "customer_ids", "days", "ratings", "kinds"}
};

/* Relations and columns looked up once per backend, until a relcache invalidation. */
typedef struct CaptureCatalog
{
	bool		valid;
	Oid			pipeline;
	Oid			signal;			/* churn.pipeline_capture_signal */
	Oid			queues[2];		/* by CaptureStream */
	AttrNumber	pipeline_atts[NPIPELINE_COLUMNS];
	AttrNumber	queue_atts[2][QUEUE_NCOLUMNS];	/* by CaptureStream, QueueColumns order */
} CaptureCatalog;

static CaptureCatalog Catalog;
static bool CatalogCallbackRegistered = false;

/* The per-backend cache of capture triggers (CaptureCacheEntry). */
static MemoryContext CacheCxt = NULL;
static CaptureCacheEntry *CacheEntries = NULL;
static int	NCacheEntries = 0;
static int	MaxCacheEntries = 0;
static bool CacheValid = false;

/*
 * Relcache callback: forget the looked-up relations when one of them (or
 * everything) changes, and the trigger cache when churn.pipeline or a
 * captured relation does.  Only flags change here: the memory goes at the
 * next trigger's start, never while a trigger uses it.
 */
static void
CaptureCatalogInvalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == Catalog.pipeline || relid == Catalog.signal ||
		relid == Catalog.queues[0] || relid == Catalog.queues[1])
	{
		Catalog.valid = false;
		CacheValid = false;
	}
	for (int i = 0; i < NCacheEntries && CacheValid; i++)
		if (CacheEntries[i].relid == relid)
			CacheValid = false;
}

/* A relation of schema churn, or an error when the extension is not installed. */
static Oid
CaptureRelation(Oid nsp, const char *name)
{
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("relation churn.%s does not exist", name),
				 errhint("The capture trigger needs the churn_warning extension in this database.")));
	return relid;
}

/* Are the extension's schema and queues there (not dropped in this transaction, say)? */
static bool
CaptureCatalogExists(void)
{
	Oid			nsp = get_namespace_oid("churn", true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid("pipeline", nsp)) &&
		OidIsValid(get_relname_relid("pipeline_queue", nsp)) &&
		OidIsValid(get_relname_relid("pipeline_event_queue", nsp));
}

/* Look up the relations and columns the capture needs. */
static void
CaptureCatalogLoad(void)
{
	Oid			nsp;

	if (Catalog.valid)
		return;
	if (!CatalogCallbackRegistered)
	{
		CacheRegisterRelcacheCallback(CaptureCatalogInvalidate, (Datum) 0);
		CatalogCallbackRegistered = true;
	}
	nsp = get_namespace_oid("churn", false);
	Catalog.pipeline = CaptureRelation(nsp, "pipeline");
	Catalog.signal = CaptureRelation(nsp, "pipeline_capture_signal");
	Catalog.queues[CAPTURE_PURCHASES] = CaptureRelation(nsp, "pipeline_queue");
	Catalog.queues[CAPTURE_EVENTS] = CaptureRelation(nsp, "pipeline_event_queue");
	for (int i = 0; i < NPIPELINE_COLUMNS; i++)
		Catalog.pipeline_atts[i] = get_attnum(Catalog.pipeline, PipelineColumns[i]);
	for (int q = 0; q < 2; q++)
		for (int i = 0; i < QUEUE_NCOLUMNS; i++)
			Catalog.queue_atts[q][i] = get_attnum(Catalog.queues[q], QueueColumns[q][i]);
	if (Catalog.pipeline_atts[0] == InvalidAttrNumber)
		elog(ERROR, "churn.pipeline has no column pipeline_id");
	Catalog.valid = true;
}

/* A column of a pipeline row; false when it is NULL or the table has no such column. */
static bool
ConfigDatum(HeapTuple tup, TupleDesc desc, int col, Datum *d)
{
	AttrNumber	att = Catalog.pipeline_atts[col];
	bool		isnull = true;

	if (att != InvalidAttrNumber)
		*d = heap_getattr(tup, att, desc, &isnull);
	return !isnull;
}

/* A name or text column of a pipeline row as a C string (NULL when NULL or absent). */
static char *
ConfigString(HeapTuple tup, TupleDesc desc, int col, bool is_name)
{
	Datum		d;

	if (!ConfigDatum(tup, desc, col, &d))
		return NULL;
	return is_name ? pstrdup(NameStr(*DatumGetName(d))) : TextDatumGetCString(d);
}

/* A regclass column of a pipeline row (InvalidOid when NULL or absent). */
static Oid
ConfigOid(HeapTuple tup, TupleDesc desc, int col)
{
	Datum		d;

	return ConfigDatum(tup, desc, col, &d) ? DatumGetObjectId(d) : InvalidOid;
}

/* Is a capture column 'trigger'? */
static bool
ConfigIsTrigger(HeapTuple tup, TupleDesc desc, int col)
{
	char	   *s = ConfigString(tup, desc, col, false);

	return s != NULL && strcmp(s, "trigger") == 0;
}

/*
 * Read a pipeline's row through its primary key, with the active snapshot
 * (at commit: the latest); no SQL runs, so no role switch is needed.
 */
CaptureConfig
CaptureLoadConfig(int32 pipeline_id)
{
	CaptureConfig cfg;
	Relation	rel;
	Oid			pk;
	Snapshot	snap;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	memset(&cfg, 0, sizeof(cfg));
	CaptureCatalogLoad();
	rel = table_open(Catalog.pipeline, AccessShareLock);
	pk = RelationGetPrimaryKeyIndex(rel);
	snap = RegisterSnapshot(ActiveSnapshotSet() ? GetActiveSnapshot() : GetLatestSnapshot());
	ScanKeyInit(&key, Catalog.pipeline_atts[0], BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(pipeline_id));
	scan = systable_beginscan(rel, pk, OidIsValid(pk), snap, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		TupleDesc	desc = RelationGetDescr(rel);

		cfg.found = true;
		cfg.source = ConfigOid(tup, desc, 1);
		cfg.customer_col = ConfigString(tup, desc, 2, true);
		cfg.ts_col = ConfigString(tup, desc, 3, true);
		cfg.amount_col = ConfigString(tup, desc, 4, true);
		cfg.ts_kind = ConfigString(tup, desc, 5, false);
		cfg.time_zone = ConfigString(tup, desc, 6, false);
		cfg.trigger_capture = ConfigIsTrigger(tup, desc, 7);
		cfg.events = ConfigOid(tup, desc, 8);
		cfg.event_customer_col = ConfigString(tup, desc, 9, true);
		cfg.event_ts_col = ConfigString(tup, desc, 10, true);
		cfg.event_kind_col = ConfigString(tup, desc, 11, true);
		cfg.event_rating_col = ConfigString(tup, desc, 12, true);
		cfg.event_ts_kind = ConfigString(tup, desc, 13, false);
		cfg.event_trigger_capture = ConfigIsTrigger(tup, desc, 14);
		cfg.store_col = ConfigString(tup, desc, 15, true);
	}
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return cfg;
}

/* Tell every session's capture triggers that churn.pipeline changed (at commit; this session's at the next command). */
void
CaptureSignalConfigChange(void)
{
	CaptureCatalogLoad();
	CacheInvalidateRelcacheByRelid(Catalog.signal);
}

/* The memory context of the cache (for readers). */
MemoryContext
CaptureCacheContext(void)
{
	if (CacheCxt == NULL)
		CacheCxt = AllocSetContextCreate(TopMemoryContext, "churn capture cache", ALLOCSET_SMALL_SIZES);
	return CacheCxt;
}

/* The cache entry of a trigger, read from churn.pipeline when missing; at a trigger's start only. */
CaptureCacheEntry *
CaptureCacheLookup(int32 pipeline_id, CaptureStream stream, Oid relid)
{
	MemoryContext oldcxt;
	CaptureCacheEntry *e;

	CaptureCatalogLoad();
	if (!CacheValid)
	{
		MemoryContextReset(CaptureCacheContext());
		CacheEntries = NULL;
		NCacheEntries = MaxCacheEntries = 0;
		CacheValid = true;
	}
	for (int i = 0; i < NCacheEntries; i++)
		if (CacheEntries[i].pipeline_id == pipeline_id && CacheEntries[i].stream == stream &&
			CacheEntries[i].relid == relid)
			return &CacheEntries[i];
	oldcxt = MemoryContextSwitchTo(CaptureCacheContext());
	if (NCacheEntries == MaxCacheEntries)
	{
		MaxCacheEntries = Max(8, MaxCacheEntries * 2);
		CacheEntries = CacheEntries == NULL ? palloc(MaxCacheEntries * sizeof(CaptureCacheEntry)) :
			repalloc(CacheEntries, MaxCacheEntries * sizeof(CaptureCacheEntry));
	}
	e = &CacheEntries[NCacheEntries];
	memset(e, 0, sizeof(*e));
	e->pipeline_id = pipeline_id;
	e->stream = stream;
	e->relid = relid;
	e->cfg = CaptureLoadConfig(pipeline_id);
	e->serves = CaptureServes(&e->cfg, stream, relid);
	MemoryContextSwitchTo(oldcxt);
	/* counted only now: an error above leaves no half-made entry */
	NCacheEntries++;
	return e;
}

/* Is the trigger still the pipeline's capture of this relation (not one left on another table, nor of a pipeline that re-reads it anyway)? */
bool
CaptureServes(CaptureConfig *cfg, CaptureStream stream, Oid relid)
{
	if (!cfg->found)
		return false;
	if (stream == CAPTURE_PURCHASES)
		return OidIsValid(cfg->source) && cfg->source == relid && cfg->trigger_capture;
	return OidIsValid(cfg->events) && cfg->events == relid && cfg->event_trigger_capture;
}

/* The rows of one pipeline gathered for one batch row of a queue. */
typedef struct QueueBatch
{
	int32		pipeline_id;
	int			n;
	ArrayBuildState *customers;
	ArrayBuildState *days;
	ArrayBuildState *values;	/* amounts or ratings */
	ArrayBuildState *kinds;		/* stores or kinds */
} QueueBatch;

/* One queue's writer: the relation, its indexes and the open batches. */
typedef struct QueueWriter
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	CommandId	cid;
	TupleTableSlot *slot;
	const AttrNumber *atts;		/* Catalog.queue_atts of the stream */
	Datum		xid;
	QueueBatch *batches;
	int			nbatches;
	int			maxbatches;
} QueueWriter;

/* Open a queue for writing; every column it has must be one the writer fills, or nullable. */
static void
QueueWriterOpen(QueueWriter *w, CaptureStream stream)
{
	TupleDesc	desc;

	memset(w, 0, sizeof(*w));
	w->rel = table_open(Catalog.queues[stream], RowExclusiveLock);
	w->atts = Catalog.queue_atts[stream];
	desc = RelationGetDescr(w->rel);
	for (int a = 0; a < desc->natts; a++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, a);
		bool		known = false;

		for (int i = 0; i < QUEUE_NCOLUMNS; i++)
			known |= (w->atts[i] == attr->attnum);
		if (!attr->attisdropped && attr->attnotnull && !known)
			elog(ERROR, "column \"%s\" of %s is not filled by the capture",
				 NameStr(attr->attname), RelationGetRelationName(w->rel));
	}
	for (int i = 0; i < QUEUE_NCOLUMNS; i++)
		if (w->atts[i] == InvalidAttrNumber)
			elog(ERROR, "%s has no column \"%s\"", RelationGetRelationName(w->rel), QueueColumns[stream][i]);
	w->estate = CreateExecutorState();
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, w->rel, 1, NULL, 0);
	ExecOpenIndices(w->rri, false);
#if PG_VERSION_NUM < 140000
	w->estate->es_result_relation_info = w->rri;
#endif
	w->cid = GetCurrentCommandId(true);
	w->xid = FullTransactionIdGetDatum(GetTopFullTransactionId());
	w->slot = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	w->maxbatches = 4;
	w->batches = palloc(w->maxbatches * sizeof(QueueBatch));
}

/* Insert one queue row: a batch of captured rows, or (batch NULL) a re-read request. */
static void
QueueWriterInsert(QueueWriter *w, int32 pipeline_id, QueueBatch *batch)
{
	TupleTableSlot *slot = w->slot;
	Datum	   *values = slot->tts_values;
	bool	   *nulls = slot->tts_isnull;
	Datum		arrays[4];

	ExecClearTuple(slot);
	memset(nulls, true, slot->tts_tupleDescriptor->natts * sizeof(bool));
	values[w->atts[QUEUE_PIPELINE] - 1] = Int32GetDatum(pipeline_id);
	nulls[w->atts[QUEUE_PIPELINE] - 1] = false;
	values[w->atts[QUEUE_XID] - 1] = w->xid;
	nulls[w->atts[QUEUE_XID] - 1] = false;
	values[w->atts[QUEUE_REBUILD] - 1] = BoolGetDatum(batch == NULL);
	nulls[w->atts[QUEUE_REBUILD] - 1] = false;
	if (batch != NULL)
	{
		arrays[0] = makeArrayResult(batch->customers, CurrentMemoryContext);
		arrays[1] = makeArrayResult(batch->days, CurrentMemoryContext);
		arrays[2] = makeArrayResult(batch->values, CurrentMemoryContext);
		arrays[3] = makeArrayResult(batch->kinds, CurrentMemoryContext);
		for (int i = 0; i < 4; i++)
		{
			values[w->atts[QUEUE_CUSTOMERS + i] - 1] = arrays[i];
			nulls[w->atts[QUEUE_CUSTOMERS + i] - 1] = false;
		}
	}
	ExecStoreVirtualTuple(slot);
	table_tuple_insert(w->rel, slot, w->cid, 0, NULL);
	if (w->rri->ri_NumIndices > 0)
	{
		List	   *recheck;

#if PG_VERSION_NUM >= 160000
		recheck = ExecInsertIndexTuples(w->rri, slot, w->estate, false, false, NULL, NIL, false);
#elif PG_VERSION_NUM >= 140000
		recheck = ExecInsertIndexTuples(w->rri, slot, w->estate, false, false, NULL, NIL);
#else
		recheck = ExecInsertIndexTuples(slot, w->estate, false, NULL, NIL);
#endif
		list_free(recheck);
	}
	ExecClearTuple(slot);
	ResetPerTupleExprContext(w->estate);
	if (batch != NULL)
	{
		for (int i = 0; i < 4; i++)
			pfree(DatumGetPointer(arrays[i]));
		batch->n = 0;
		batch->customers = batch->days = batch->values = batch->kinds = NULL;
	}
}

/* Add a value to a batch array, built in cxt itself (no context of its own: the write's context goes at once). */
static ArrayBuildState *
BatchAccum(ArrayBuildState *state, Datum value, bool isnull, Oid type, MemoryContext cxt)
{
	if (state == NULL)
		state = initArrayResult(type, cxt, false);
	return accumArrayResult(state, value, isnull, type, cxt);
}

/* Add one buffered entry: a re-read request is written at once, a row goes to its pipeline's batch. */
static void
QueueWriterAdd(QueueWriter *w, const CaptureEntry *e)
{
	MemoryContext cxt = CurrentMemoryContext;
	QueueBatch *b = NULL;

	if (e->rebuild)
	{
		QueueWriterInsert(w, e->pipeline_id, NULL);
		return;
	}
	for (int i = 0; i < w->nbatches && b == NULL; i++)
		if (w->batches[i].pipeline_id == e->pipeline_id)
			b = &w->batches[i];
	if (b == NULL)
	{
		if (w->nbatches == w->maxbatches)
		{
			w->maxbatches *= 2;
			w->batches = repalloc(w->batches, w->maxbatches * sizeof(QueueBatch));
		}
		b = &w->batches[w->nbatches++];
		memset(b, 0, sizeof(*b));
		b->pipeline_id = e->pipeline_id;
	}
	b->customers = BatchAccum(b->customers, e->customer ? CStringGetTextDatum(e->customer) : (Datum) 0,
							  e->customer == NULL, TEXTOID, cxt);
	b->days = BatchAccum(b->days, DateADTGetDatum(e->day), e->day_null, DATEOID, cxt);
	b->values = BatchAccum(b->values, Float8GetDatum(e->value), e->value_null, FLOAT8OID, cxt);
	b->kinds = BatchAccum(b->kinds, e->kind ? CStringGetTextDatum(e->kind) : (Datum) 0,
						  e->kind == NULL, TEXTOID, cxt);
	if (++b->n == CAPTURE_BATCH_ROWS)
		QueueWriterInsert(w, b->pipeline_id, b);
}

/* Write the open batches and close the queue. */
static void
QueueWriterClose(QueueWriter *w)
{
	for (int i = 0; i < w->nbatches; i++)
		if (w->batches[i].n > 0)
			QueueWriterInsert(w, w->batches[i].pipeline_id, &w->batches[i]);
	ExecDropSingleTupleTableSlot(w->slot);
	ExecCloseIndices(w->rri);
	FreeExecutorState(w->estate);
	table_close(w->rel, NoLock);
}

/* A pipeline, stream and relation checked at write time. */
typedef struct CaptureCheck
{
	int32		pipeline_id;
	uint8		stream;
	Oid			relid;
	bool		serves;
} CaptureCheck;

/* Does the pipeline still capture the entry's relation?  Each triple is read once per write. */
static bool
CaptureStillServes(const CaptureEntry *e, CaptureCheck **checks, int *nchecks, int *maxchecks)
{
	CaptureConfig cfg;

	for (int i = 0; i < *nchecks; i++)
		if ((*checks)[i].pipeline_id == e->pipeline_id && (*checks)[i].stream == e->stream &&
			(*checks)[i].relid == e->relid)
			return (*checks)[i].serves;
	if (*nchecks == *maxchecks)
	{
		*maxchecks *= 2;
		*checks = repalloc(*checks, *maxchecks * sizeof(CaptureCheck));
	}
	(*checks)[*nchecks].pipeline_id = e->pipeline_id;
	(*checks)[*nchecks].stream = e->stream;
	(*checks)[*nchecks].relid = e->relid;
	/* the cache holds every committed change and this transaction's own (its invalidations came first) */
	AcceptInvalidationMessages();
	for (int i = 0; i < NCacheEntries && CacheValid; i++)
		if (CacheEntries[i].pipeline_id == e->pipeline_id && CacheEntries[i].stream == e->stream &&
			CacheEntries[i].relid == e->relid)
			return (*checks)[(*nchecks)++].serves = CacheEntries[i].serves;
	cfg = CaptureLoadConfig(e->pipeline_id);
	(*checks)[*nchecks].serves = CaptureServes(&cfg, (CaptureStream) e->stream, e->relid);
	return (*checks)[(*nchecks)++].serves;
}

/* Write the buffered entries from start on to the queues, in the current (sub)transaction. */
static void
CaptureWrite(int64 start)
{
	MemoryContext cxt;
	MemoryContext oldcxt;
	int			maxchecks = 8;
	int			nchecks = 0;
	CaptureCheck *checks;

	/* one context for every write of the session, emptied after each */
	if (WriteCxt == NULL)
		WriteCxt = AllocSetContextCreate(TopMemoryContext, "churn capture write", ALLOCSET_DEFAULT_SIZES);
	cxt = WriteCxt;
	oldcxt = MemoryContextSwitchTo(cxt);
	checks = palloc(maxchecks * sizeof(CaptureCheck));

	/* the extension dropped after the capture, in the same transaction: nothing to write to */
	AcceptInvalidationMessages();
	if (!Catalog.valid && !CaptureCatalogExists())
	{
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(cxt);
		NEntries = start;
		return;
	}
	CaptureCatalogLoad();
	for (int stream = CAPTURE_PURCHASES; stream <= CAPTURE_EVENTS; stream++)
	{
		QueueWriter w;
		bool		open = false;

		for (int64 i = start; i < NEntries; i++)
		{
			CaptureEntry *e = &Entries[i];

			if (e->stream != stream)
				continue;
			CHECK_FOR_INTERRUPTS();
			if (!CaptureStillServes(e, &checks, &nchecks, &maxchecks))
				continue;
			if (!open)
			{
				QueueWriterOpen(&w, (CaptureStream) stream);
				open = true;
			}
			QueueWriterAdd(&w, e);
		}
		if (open)
			QueueWriterClose(&w);
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(cxt);
	NEntries = start;
	if (start == 0)
		MemoryContextReset(StringCxt);
}

/* Forget the buffer (its memory goes with the transaction's). */
static void
CaptureForget(void)
{
	BufferCxt = NULL;
	StringCxt = NULL;
	Entries = NULL;
	NEntries = MaxEntries = 0;
	Marks = NULL;
	NMarks = MaxMarks = 0;
}

/* Transaction callback: write the buffer just before commit or prepare; forget it at the end. */
static void
CaptureXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			if (BufferCxt != NULL && NEntries > 0)
				CaptureWrite(0);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			CaptureForget();
			break;
		default:
			break;
	}
}

/*
 * Subtransaction callback: a rolled-back savepoint drops the rows captured
 * since it began; a released one hands them to its parent.
 */
static void
CaptureSubXactCallback(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid, void *arg)
{
	CaptureMark *top;

	if (BufferCxt == NULL || NMarks == 0)
		return;
	top = &Marks[NMarks - 1];
	if (top->subid != mySubid)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		NEntries = Min(NEntries, top->start);
		NMarks--;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		if (top->level - 1 <= 1 || (NMarks >= 2 && Marks[NMarks - 2].level == top->level - 1))
			NMarks--;
		else
		{
			top->level--;
			top->subid = parentSubid;
		}
	}
}

/* A new entry at the end of the buffer, in the current (sub)transaction's share. */
static CaptureEntry *
CaptureNewEntry(void)
{
	int			level = GetCurrentTransactionNestLevel();
	int64		start;

	if (!CallbacksRegistered)
	{
		RegisterXactCallback(CaptureXactCallback, NULL);
		RegisterSubXactCallback(CaptureSubXactCallback, NULL);
		CallbacksRegistered = true;
	}
	if (BufferCxt == NULL)
	{
		BufferCxt = AllocSetContextCreate(TopTransactionContext, "churn capture buffer",
										  ALLOCSET_DEFAULT_SIZES);
		StringCxt = AllocSetContextCreate(BufferCxt, "churn capture strings", ALLOCSET_DEFAULT_SIZES);
	}
	if (level > 1 && (NMarks == 0 || Marks[NMarks - 1].level < level))
	{
		if (NMarks == MaxMarks)
		{
			MaxMarks = Max(8, MaxMarks * 2);
			Marks = Marks == NULL ? MemoryContextAlloc(BufferCxt, MaxMarks * sizeof(CaptureMark)) :
				repalloc(Marks, MaxMarks * sizeof(CaptureMark));
		}
		Marks[NMarks].level = level;
		Marks[NMarks].subid = GetCurrentSubTransactionId();
		Marks[NMarks].start = NEntries;
		NMarks++;
	}
	start = NMarks > 0 ? Marks[NMarks - 1].start : 0;
	if (NEntries - start >= CAPTURE_FLUSH_ROWS)
		CaptureWrite(start);
	if (NEntries == MaxEntries)
	{
		MaxEntries = Max(64, MaxEntries * 2);
		Entries = Entries == NULL ?
			MemoryContextAllocHuge(BufferCxt, MaxEntries * sizeof(CaptureEntry)) :
			repalloc_huge(Entries, MaxEntries * sizeof(CaptureEntry));
	}
	return &Entries[NEntries++];
}

/* Keep a captured row (strings copied) for the queue, written when the transaction commits. */
void
CaptureBufferRow(int32 pipeline_id, CaptureStream stream, Oid relid, const CaptureRow *row)
{
	CaptureEntry *e = CaptureNewEntry();

	e->pipeline_id = pipeline_id;
	e->relid = relid;
	e->stream = (uint8) stream;
	e->rebuild = false;
	e->day = row->day;
	e->day_null = row->day_null;
	e->value_null = row->value_null;
	e->value = row->value;
	e->customer = row->customer == NULL ? NULL : MemoryContextStrdup(StringCxt, row->customer);
	e->kind = row->kind == NULL ? NULL : MemoryContextStrdup(StringCxt, row->kind);
}

/* Keep a request to re-read the relation, written when the transaction commits. */
void
CaptureBufferRebuild(int32 pipeline_id, CaptureStream stream, Oid relid)
{
	CaptureEntry *e = CaptureNewEntry();

	memset(e, 0, sizeof(*e));
	e->pipeline_id = pipeline_id;
	e->relid = relid;
	e->stream = (uint8) stream;
	e->rebuild = true;
}
