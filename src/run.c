/*
 * run.c
 *		Discovery runs.  connector_run() claims a slot in shared memory for
 *		the connector and starts a dynamic background worker; the worker
 *		records the run, lists the account through the provider, stages and
 *		merges in its own transaction, and records the outcome, so the run is
 *		recorded whatever the caller's transaction does.
 *
 * Run slots (shared memory, under RunShared->lock): one per run starting or
 * executing, keyed by (database, connector).  A slot held for a connector is
 * what makes a second connector_run() return the running run's id instead
 * of starting another, and what tells a live run from one whose worker died:
 * a run row still 'running' whose connector holds no slot was interrupted,
 * and is marked failed by the next run worker or waiter that sees it.  The
 * worker releases its slot on any exit (before_shmem_exit); a crash resets
 * shared memory, which releases them all.
 */
#include "postgres.h"

#include <unistd.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "postmaster/interrupt.h"
#include "storage/procarray.h"
#include "utils/memutils.h"
#include "utils/pg_rusage.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "guc.h"
#include "http.h"
#include "merge.h"
#include "permission.h"
#include "provider.h"
#include "run.h"

PG_FUNCTION_INFO_V1(cloudconn_connector_run);
PG_FUNCTION_INFO_V1(cloudconn_run_progress);

#define RUN_SLOTS 64
#define RUN_POLL_MS 200

typedef struct RunSlot
{
	bool		in_use;
	uint64		generation;		/* which claim this is: guards late releases */
	Oid			dbid;
	int64		connector_id;
	int64		run_id;			/* 0 until the worker has recorded the run */
	int			waiter_procno;	/* to wake when run_id is known; -1 if none */
	pid_t		worker_pid;
	bool		executing;		/* holds one of cloudconn.max_parallel_runs permits */
	pg_atomic_uint64 pages_fetched;
	pg_atomic_uint64 resources_seen;
} RunSlot;

typedef struct RunShared
{
	LWLock	   *lock;
	uint64		next_generation;
	RunSlot		slots[RUN_SLOTS];
	SchedulerShared scheduler;
} RunShared;

/* What connector_run() hands its worker (bgw_extra). */
typedef struct RunWorkerArgs
{
	Oid			dbid;
	Oid			userid;
	int64		connector_id;
	uint64		generation;		/* of the slot claimed for this worker */
	char		trigger[16];
} RunWorkerArgs;

/* In a run worker: the claim of the slot it holds. */
static uint64 my_slot_generation = 0;

static RunShared *run_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
RunShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(RunShared)));
	RequestNamedLWLockTranche("cloudconn", 1);
}

static void
RunShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	run_shared = ShmemInitStruct("cloudconn runs", sizeof(RunShared), &found);
	if (!found)
	{
		memset(run_shared, 0, sizeof(RunShared));
		run_shared->lock = &(GetNamedLWLockTranche("cloudconn"))->lock;
		for (int i = 0; i < RUN_SLOTS; i++)
		{
			pg_atomic_init_u64(&run_shared->slots[i].pages_fetched, 0);
			pg_atomic_init_u64(&run_shared->slots[i].resources_seen, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init while preloading. */
void
RunShmemInit(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = RunShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = RunShmemStartup;
}

/* The owner of cloudconn's tables: the role run workers act as. */
static Oid
RunTableOwner(void)
{
	Oid			relid = get_relname_relid("run", get_namespace_oid("cloudconn", false));
	HeapTuple	tuple;
	Oid			owner;

	if (!OidIsValid(relid))
		elog(ERROR, "cloudconn.run does not exist");
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

static void
RunRequireShmem(void)
{
	if (run_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cloudconn must be loaded through shared_preload_libraries to run connectors"),
				 errhint("Add cloudconn to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* Connectors of this database that hold a slot: their runs are alive. */
static Datum
RunLiveConnectors(void)
{
	Datum		ids[RUN_SLOTS];
	int			n = 0;

	LWLockAcquire(run_shared->lock, LW_SHARED);
	for (int i = 0; i < RUN_SLOTS; i++)
	{
		RunSlot    *slot = &run_shared->slots[i];

		if (slot->in_use && slot->dbid == MyDatabaseId)
			ids[n++] = Int64GetDatum(slot->connector_id);
	}
	LWLockRelease(run_shared->lock);
	return PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * Mark failed every run left 'running' whose connector holds no slot: its
 * worker died (crash, kill, shutdown).  connector_id limits it to one
 * connector (0: all).  With own_slot, the caller is the run worker holding
 * connector_id's slot: a run of that connector still 'running' cannot be
 * its own yet, so it is dead too, and every other connector is swept as
 * well.  Needs SPI and the rights of the tables' owner.
 *
 * The candidate rows are read before the slots, and only they can be
 * marked: a run whose row that read can see was claimed (its slot taken)
 * before the row was written, so reading the slots afterwards cannot miss
 * it; a run that ends meanwhile is no longer 'running' when the UPDATE
 * looks at its row again.  Nothing is locked but the rows marked: callers
 * include connector_run() in the user's transaction, which must not hold
 * a live run's row.
 */
void
RunMarkInterrupted(int64 connector_id, bool own_slot)
{
	Oid			types[4] = {INT8ARRAYOID, INT8OID, BOOLOID, INT8ARRAYOID};
	Datum		args[4];
	Datum	   *ids;
	int			n = 0;

	args[1] = Int64GetDatum(connector_id);
	args[2] = BoolGetDatum(own_slot);
	if (SPI_execute_with_args("SELECT id FROM cloudconn.run"
							  " WHERE status = 'running' AND ($1 = 0 OR $2 OR connector_id = $1)"
							  " ORDER BY id",
							  2, types + 1, args + 1, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read running runs");
	if (SPI_processed == 0)
		return;
	ids = palloc(sizeof(Datum) * SPI_processed);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		ids[n++] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
	}
	args[3] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[0] = RunLiveConnectors();

	if (SPI_execute_with_args("UPDATE cloudconn.run SET status = 'failed', finished_at = clock_timestamp(),"
							  "  error = 'the run was interrupted: its worker exited before finishing (server crash, shutdown or termination)'"
							  " WHERE id = ANY ($4) AND status = 'running'"
							  "   AND CASE WHEN $3 THEN connector_id = $2 OR connector_id <> ALL ($1)"
							  "            ELSE connector_id <> ALL ($1) AND ($2 = 0 OR connector_id = $2) END",
							  4, types, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not mark interrupted runs");
}

static void
RunWakeWaiter(RunSlot *slot)
{
	int			procno;

	LWLockAcquire(run_shared->lock, LW_SHARED);
	procno = slot->waiter_procno;
	LWLockRelease(run_shared->lock);
	if (procno >= 0)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

static void RunWakeAll(void);

/* before_shmem_exit: the worker gives its slot back, however it exits. */
static void
RunSlotRelease(int code, Datum arg)
{
	RunSlot    *slot = &run_shared->slots[DatumGetInt32(arg)];
	int			procno;

	LWLockAcquire(run_shared->lock, LW_EXCLUSIVE);
	if (slot->generation != my_slot_generation)
	{
		/* the slot was freed and claimed again: not ours to release */
		LWLockRelease(run_shared->lock);
		return;
	}
	procno = slot->waiter_procno;
	slot->in_use = false;
	slot->executing = false;
	slot->worker_pid = 0;
	slot->waiter_procno = -1;
	LWLockRelease(run_shared->lock);
	if (procno >= 0)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
	RunWakeAll();				/* a permit is free */
}

/* The scheduler's part of shared memory (NULL unless preloaded). */
SchedulerShared *
RunSchedulerShared(void)
{
	return run_shared ? &run_shared->scheduler : NULL;
}

LWLock *
RunSharedLock(void)
{
	return run_shared->lock;
}

/* Runs holding a slot, all databases: starting, queued or executing. */
int
RunCountActive(void)
{
	int			n = 0;

	LWLockAcquire(run_shared->lock, LW_SHARED);
	for (int i = 0; i < RUN_SLOTS; i++)
		n += run_shared->slots[i].in_use ? 1 : 0;
	LWLockRelease(run_shared->lock);
	return n;
}

/*
 * Wait until this run may execute: at most cloudconn.max_parallel_runs runs
 * execute at once, scheduled and manual together.  A queued run is already
 * recorded (status running, no pages yet).
 */
static void
RunWaitForPermit(RunSlot *slot)
{
	bool		logged = false;

	for (;;)
	{
		int			executing = 0;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		LWLockAcquire(run_shared->lock, LW_EXCLUSIVE);
		for (int i = 0; i < RUN_SLOTS; i++)
			executing += run_shared->slots[i].executing ? 1 : 0;
		if (executing < cloudconn_max_parallel_runs)
		{
			slot->executing = true;
			LWLockRelease(run_shared->lock);
			return;
		}
		LWLockRelease(run_shared->lock);
		if (!logged)
			elog(DEBUG1, "cloudconn: run queued behind %d running runs", executing);
		logged = true;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 RUN_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Wake every backend waiting for a permit or a run (a run just ended). */
static void
RunWakeAll(void)
{
	int			procnos[RUN_SLOTS + 1];
	int			n = 0;

	LWLockAcquire(run_shared->lock, LW_SHARED);
	for (int i = 0; i < RUN_SLOTS; i++)
	{
		if (run_shared->slots[i].in_use && run_shared->slots[i].worker_pid != 0)
		{
			PGPROC	   *proc = BackendPidGetProc(run_shared->slots[i].worker_pid);

			if (proc != NULL)
				procnos[n++] = proc->pgprocno;
		}
	}
	LWLockRelease(run_shared->lock);
	for (int i = 0; i < n; i++)
		SetLatch(&ProcGlobal->allProcs[procnos[i]].procLatch);
}

/* ------------------------------------------------------------------------
 * The worker
 * ------------------------------------------------------------------------ */

/* What a run's LOG line tells besides its counts. */
typedef struct RunFigures
{
	Size		peak_memory;	/* most memory held by the worker's contexts */
	long		peak_private_kb;	/* most private resident memory seen */
	double		listing_secs;	/* listing, from the connector's load */
	double		merge_secs;		/* staging, merge and the run's record */
} RunFigures;

typedef struct RunEngine
{
	const Provider *provider;
	RunSlot    *slot;
	MergeState *merge;			/* the pages listed so far */
	RunFigures *figures;
} RunEngine;

/*
 * The worker's private resident memory (RssAnon on Linux): what it holds
 * itself, unlike the resident size, which also counts the shared buffers
 * it touched.  0 where /proc does not tell.
 */
static long
RunPrivateMemoryKb(void)
{
	FILE	   *f = AllocateFile("/proc/self/status", "r");
	char		line[256];
	long		kb = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
	{
		if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
			break;
	}
	FreeFile(f);
	return kb;
}

/* Map, validate and stage one page; report progress. */
static void
RunPageDone(DiscoveryContext *ctx, List *raw_resources)
{
	RunEngine  *engine = (RunEngine *) ctx->engine_state;
	int			n = list_length(raw_resources);
	MappedResource *rows = palloc(sizeof(MappedResource) * Max(n, 1));
	char	  **error_ids = palloc(sizeof(char *) * Max(n, 1));
	char	  **error_messages = palloc(sizeof(char *) * Max(n, 1));
	int			nrows = 0,
				nerrors = 0;
	ListCell   *lc;

	CHECK_FOR_INTERRUPTS();
	foreach(lc, raw_resources)
	{
		char	   *error = NULL;
		MappedResource *row = &rows[nrows];

		if (engine->provider->map(ctx->connector, (JsonbContainer *) lfirst(lc), row, &error))
		{
			if (row->external_id != NULL)
				nrows++;
		}
		else
		{
			error_ids[nerrors] = row->external_id;
			error_messages[nerrors] = error;
			nerrors++;
		}
	}
	MergeStagePage(engine->merge, rows, nrows, error_ids, error_messages, nerrors);
	/* whatever catalog lookups mapping made, no snapshot is held while we wait */
	InvalidateCatalogSnapshot();

	engine->figures->peak_memory = Max(engine->figures->peak_memory,
									   MemoryContextMemAllocated(TopMemoryContext, true));
	engine->figures->peak_private_kb = Max(engine->figures->peak_private_kb, RunPrivateMemoryKb());
	pg_atomic_fetch_add_u64(&engine->slot->pages_fetched, 1);
	pg_atomic_fetch_add_u64(&engine->slot->resources_seen, nrows + nerrors);
}

/* Discover and merge; the caller's transaction commits or aborts it all. */
static const char *
RunExecute(int64 run_id, int64 connector_id, RunSlot *slot, MergeCounts *counts, RunFigures *figures)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(connector_id)};
	ProviderConnector conn;
	DiscoveryContext ctx;
	RunEngine	engine;
	int64		entity_id;
	const char *status;
	TimestampTz listing_start = GetCurrentTimestamp();
	TimestampTz merge_start;

	if (SPI_execute_with_args("SELECT id, name, provider, settings, token, external_id, entity_id"
							  "  FROM cloudconn.connector WHERE id = $1 AND deleted_at IS NULL",
							  1, types, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not load connector");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("connector " INT64_FORMAT " was deleted", connector_id)));
	entity_id = ProviderConnectorFromSpi(&conn, CurrentMemoryContext);

	memset(&engine, 0, sizeof(engine));
	engine.provider = ProviderLookup(conn.provider);
	engine.slot = slot;
	engine.figures = figures;
	memset(&ctx, 0, sizeof(ctx));
	ctx.connector = &conn;
	ctx.http = HttpClientCreate();
	ctx.page_done = RunPageDone;
	ctx.engine_state = &engine;

	/*
	 * List without a snapshot: the transaction has no xid until the merge,
	 * so however long the cloud takes, VACUUM is not held back.
	 */
	engine.merge = MergeBegin();
	PopActiveSnapshot();
	InvalidateCatalogSnapshot();
	engine.provider->discover(&ctx);
	merge_start = GetCurrentTimestamp();
	figures->listing_secs = (double) (merge_start - listing_start) / USECS_PER_SEC;
	PushActiveSnapshot(GetTransactionSnapshot());
	MergeFinish(engine.merge, connector_id, entity_id, run_id, ctx.failed_scopes, counts);
	figures->peak_memory = Max(figures->peak_memory, MemoryContextMemAllocated(TopMemoryContext, true));
	figures->peak_private_kb = Max(figures->peak_private_kb, RunPrivateMemoryKb());

	status = (counts->errors > 0 || ctx.failed_scopes != NIL) ? "partial" : "succeeded";
	{
		Oid			rtypes[8] = {INT8OID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID};
		Datum		rargs[8] = {Int64GetDatum(run_id), CStringGetTextDatum(status),
			Int64GetDatum(counts->discovered), Int64GetDatum(counts->created),
			Int64GetDatum(counts->updated), Int64GetDatum(counts->unchanged),
			Int64GetDatum(counts->errors + list_length(ctx.failed_scopes)),
		Int64GetDatum(pg_atomic_read_u64(&slot->pages_fetched))};

		if (ctx.failed_scopes != NIL)
		{
			ListCell   *lc1,
					   *lc2;

			forboth(lc1, ctx.failed_scopes, lc2, ctx.scope_errors)
			{
				Oid			etypes[3] = {INT8OID, TEXTOID, TEXTOID};
				Datum		eargs[3] = {Int64GetDatum(run_id), CStringGetTextDatum((char *) lfirst(lc1)),
				CStringGetTextDatum((char *) lfirst(lc2))};

				if (SPI_execute_with_args("INSERT INTO cloudconn.run_error (run_id, external_id, message)"
										  " VALUES ($1, 'scope:' || $2, $3)",
										  3, etypes, eargs, NULL, false, 0) != SPI_OK_INSERT)
					elog(ERROR, "could not record a failed scope");
			}
		}
		if (SPI_execute_with_args("UPDATE cloudconn.run SET status = $2, finished_at = clock_timestamp(),"
								  "  discovered = $3, created = $4, updated = $5, unchanged = $6,"
								  "  error_count = $7, pages_fetched = $8"
								  " WHERE id = $1",
								  8, rtypes, rargs, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not record the run");
	}
	figures->merge_secs = (double) (GetCurrentTimestamp() - merge_start) / USECS_PER_SEC;
	return status;
}

static void RunDiscoverAndRecord(int64 run_id, RunWorkerArgs *args, RunSlot *slot, TimestampTz started,
								 const PGRUsage *usage_start);

/* Begin a worker transaction with SPI and a snapshot, as worker_spi does. */
static void
RunBeginTransaction(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
}

static void
RunCommitTransaction(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

void
cloudconn_run_worker_main(Datum main_arg)
{
	int			slotno = DatumGetInt32(main_arg);
	RunSlot    *slot;
	RunWorkerArgs args;
	int64		run_id = 0;
	bool		existing = false;
	TimestampTz started = GetCurrentTimestamp();
	PGRUsage	usage_start;

	pg_rusage_init(&usage_start);
	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	if (run_shared == NULL)
		elog(FATAL, "cloudconn run worker started without shared memory");
	slot = &run_shared->slots[slotno];
	LWLockAcquire(run_shared->lock, LW_EXCLUSIVE);
	if (!slot->in_use || slot->generation != args.generation)
	{
		/* connector_run() gave up on this claim before the worker started */
		LWLockRelease(run_shared->lock);
		proc_exit(0);
	}
	slot->worker_pid = MyProcPid;
	my_slot_generation = args.generation;
	LWLockRelease(run_shared->lock);
	before_shmem_exit(RunSlotRelease, Int32GetDatum(slotno));

	BackgroundWorkerInitializeConnectionByOid(args.dbid, args.userid, 0);

	/*
	 * The worker acts as the tables' owner, a superuser: no search_path set
	 * on the database or role may reach its queries.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * READ COMMITTED whatever the database or role says: a run lists
	 * without holding a snapshot (a REPEATABLE READ transaction keeps its
	 * first one), and merges against what is committed when it merges.
	 */
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_OVERRIDE);
	pgstat_report_appname("cloudconn run");
	MemoryContextSwitchTo(AllocSetContextCreate(TopMemoryContext, "cloudconn run", ALLOCSET_DEFAULT_SIZES));

	/* 1: record the run (or find the one already running) */
	RunBeginTransaction();
	{
		Oid			types[2] = {INT8OID, TEXTOID};
		Datum		a[2] = {Int64GetDatum(args.connector_id), CStringGetTextDatum(args.trigger)};
		bool		isnull;

		RunMarkInterrupted(args.connector_id, true);
		if (SPI_execute_with_args("INSERT INTO cloudconn.run (connector_id, trigger)"
								  " SELECT id, $2 FROM cloudconn.connector WHERE id = $1 AND deleted_at IS NULL"
								  " ON CONFLICT (connector_id) WHERE status = 'running' DO NOTHING RETURNING id",
								  2, types, a, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not record the run");
		if (SPI_processed == 1)
			run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		else if (SPI_execute_with_args("SELECT id FROM cloudconn.run WHERE connector_id = $1 AND status = 'running'",
									   1, types, a, NULL, false, 1) == SPI_OK_SELECT && SPI_processed == 1)
		{
			run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			existing = true;
		}
	}
	RunCommitTransaction();

	LWLockAcquire(run_shared->lock, LW_EXCLUSIVE);
	slot->run_id = run_id;
	LWLockRelease(run_shared->lock);
	RunWakeWaiter(slot);
	if (run_id == 0 || existing)
		proc_exit(0);			/* deleted connector, or a run already going */

	/* 2: discover and merge, all in one transaction, once a permit is free */
	RunWaitForPermit(slot);
	RunDiscoverAndRecord(run_id, &args, slot, started, &usage_start);
	proc_exit(0);
}

/*
 * Steps 2 and 3 of a run: discover and merge in one transaction; if that
 * fails, record why in another.  Then the run's LOG line.
 */
static void
RunDiscoverAndRecord(int64 run_id, RunWorkerArgs *args, RunSlot *slot, TimestampTz started,
					 const PGRUsage *usage_start)
{
	MergeCounts counts;
	const char *volatile status = "failed";
	char	   *volatile error = NULL;
	MemoryContext workcxt = CurrentMemoryContext;
	volatile RunFigures figures;

	memset(&counts, 0, sizeof(counts));
	memset((RunFigures *) &figures, 0, sizeof(figures));
	PG_TRY();
	{
		RunBeginTransaction();
		status = RunExecute(run_id, args->connector_id, slot, &counts, (RunFigures *) &figures);
		RunCommitTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(workcxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		error = edata->message;
		status = "failed";
	}
	PG_END_TRY();

	/* 3: a failed run records why, in a transaction of its own */
	if (error != NULL)
	{
		Oid			types[3] = {INT8OID, TEXTOID, INT8OID};
		Datum		a[3] = {Int64GetDatum(run_id), CStringGetTextDatum(error),
		Int64GetDatum(pg_atomic_read_u64(&slot->pages_fetched))};

		RunBeginTransaction();
		if (SPI_execute_with_args("UPDATE cloudconn.run SET status = 'failed', finished_at = clock_timestamp(), error = $2,"
								  "  pages_fetched = $3 WHERE id = $1",
								  3, types, a, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not record the failed run");
		RunCommitTransaction();
	}

	ereport(LOG,
			(errmsg("cloudconn: run " INT64_FORMAT " of connector " INT64_FORMAT " %s: discovered " INT64_FORMAT
					", created " INT64_FORMAT ", updated " INT64_FORMAT ", unchanged " INT64_FORMAT
					", errors " INT64_FORMAT ", " UINT64_FORMAT " pages in %.1f s%s%s",
					run_id, args->connector_id, status, counts.discovered, counts.created, counts.updated,
					counts.unchanged, counts.errors, pg_atomic_read_u64(&slot->pages_fetched),
					(double) (GetCurrentTimestamp() - started) / 1000000.0,
					error ? ": " : "", error ? error : ""),
			 errdetail_log("Listing took %.2f s, the merge %.2f s. Peak memory: %zu kB in memory contexts, %ld kB private resident. %s.",
						   figures.listing_secs, figures.merge_secs,
						   figures.peak_memory / 1024, figures.peak_private_kb, pg_rusage_show(usage_start))));
}

/* ------------------------------------------------------------------------
 * connector_run()
 * ------------------------------------------------------------------------ */

/* Claim the connector's slot, or find the one a run already holds. */
static int
RunClaimSlot(int64 connector_id, bool *already, uint64 *generation)
{
	int			free_slot = -1;

	*already = false;
	LWLockAcquire(run_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < RUN_SLOTS; i++)
	{
		RunSlot    *slot = &run_shared->slots[i];

		if (slot->in_use && slot->dbid == MyDatabaseId && slot->connector_id == connector_id)
		{
			*already = true;
			if (slot->run_id == 0)
				slot->waiter_procno = MyProc->pgprocno;
			LWLockRelease(run_shared->lock);
			return i;
		}
		if (!slot->in_use && free_slot < 0)
			free_slot = i;
	}
	if (free_slot >= 0)
	{
		RunSlot    *slot = &run_shared->slots[free_slot];

		slot->in_use = true;
		slot->generation = ++run_shared->next_generation;
		*generation = slot->generation;
		slot->dbid = MyDatabaseId;
		slot->connector_id = connector_id;
		slot->run_id = 0;
		slot->worker_pid = 0;
		slot->waiter_procno = MyProc->pgprocno;
		pg_atomic_write_u64(&slot->pages_fetched, 0);
		pg_atomic_write_u64(&slot->resources_seen, 0);
	}
	LWLockRelease(run_shared->lock);
	return free_slot;
}

/* Give back a claim whose worker never started (only that very claim). */
static void
RunFreeUnstartedSlot(int slotno, uint64 generation)
{
	RunSlot    *slot = &run_shared->slots[slotno];

	LWLockAcquire(run_shared->lock, LW_EXCLUSIVE);
	if (slot->in_use && slot->generation == generation && slot->worker_pid == 0)
		slot->in_use = false;
	LWLockRelease(run_shared->lock);
}

/*
 * Claim the connector's slot and start its run worker (trigger "manual" or
 * "scheduled"), the one path by which every run starts.  Returns the slot;
 * *already if a run of the connector holds it (nothing is started then).
 * With soft, a start that cannot happen now (no slot or worker free)
 * returns -1 instead of raising, for the scheduler to retry.
 */
int
RunStart(int64 connector_id, const char *trigger, bool soft, BackgroundWorkerHandle **handle,
		 bool *already)
{
	int			slotno;
	BackgroundWorker worker;
	RunWorkerArgs wargs;
	pid_t		pid;
	uint64		generation = 0;
	Oid			owner;

	RunRequireShmem();
	*handle = NULL;
	owner = RunTableOwner();	/* before the claim: nothing may raise between claim and start */
	slotno = RunClaimSlot(connector_id, already, &generation);
	if (slotno < 0)
	{
		if (soft)
			return -1;
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many discovery runs in progress"),
				 errdetail("At most %d runs can be in progress at once.", RUN_SLOTS)));
	}
	if (*already)
		return slotno;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "cloudconn");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "cloudconn_run_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "cloudconn run of connector " INT64_FORMAT, connector_id);
	snprintf(worker.bgw_type, BGW_MAXLEN, "cloudconn run");
	worker.bgw_main_arg = Int32GetDatum(slotno);
	worker.bgw_notify_pid = MyProcPid;
	memset(&wargs, 0, sizeof(wargs));
	wargs.dbid = MyDatabaseId;
	wargs.userid = owner;
	wargs.connector_id = connector_id;
	wargs.generation = generation;
	strlcpy(wargs.trigger, trigger, sizeof(wargs.trigger));
	memcpy(worker.bgw_extra, &wargs, sizeof(wargs));

	if (!RegisterDynamicBackgroundWorker(&worker, handle))
	{
		RunFreeUnstartedSlot(slotno, generation);
		if (soft)
			return -1;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not start a background worker for the run"),
				 errhint("Raise max_worker_processes, or wait for other runs to finish.")));
	}
	if (WaitForBackgroundWorkerStartup(*handle, &pid) != BGWH_STARTED)
	{
		RunFreeUnstartedSlot(slotno, generation);
		if (soft)
			return -1;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("the background worker for the run could not start")));
	}
	return slotno;
}

/* run_id of the slot once known, 0 meanwhile, -1 if the slot moved on. */
static int64
RunSlotRunId(int slotno, int64 connector_id)
{
	RunSlot    *slot = &run_shared->slots[slotno];
	int64		run_id;

	LWLockAcquire(run_shared->lock, LW_SHARED);
	if (slot->in_use && slot->dbid == MyDatabaseId && slot->connector_id == connector_id)
		run_id = slot->run_id;
	else
		run_id = -1;
	LWLockRelease(run_shared->lock);
	return run_id;
}

static void
RunWaitTick(void)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 RUN_POLL_MS, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

static const char *
RunStatus(int64 run_id)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(run_id)};

	char	   *status = NULL;

	if (SPI_execute_with_args("SELECT status FROM cloudconn.run WHERE id = $1", 1, types, args,
							  NULL, false, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		char	   *value = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		/* a wait can poll for hours: keep nothing per poll */
		if (value != NULL && strcmp(value, "running") == 0)
			status = "running";
		else
			status = value ? "ended" : NULL;
		if (value != NULL)
			pfree(value);
	}
	SPI_freetuptable(SPI_tuptable);
	return status;
}

/*
 * cloudconn._connector_run(caller oid, connector_id bigint, wait boolean)
 * RETURNS bigint, SECURITY DEFINER, reached through cloudconn_dispatch.
 * Cancelling a waiting call stops the wait, not the run.
 */
Datum
cloudconn_connector_run(PG_FUNCTION_ARGS)
{
	Oid			types[2] = {OIDOID, INT8OID};
	Datum		args[2];
	bool		wait = PG_ARGISNULL(2) ? true : PG_GETARG_BOOL(2);
	int64		connector_id;
	bool		already;
	int			slotno;
	int64		run_id = 0;
	bool		isnull;
	BackgroundWorkerHandle *handle = NULL;
	pid_t		pid;

	RunRequireShmem();
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("connector_id must not be null")));
	/* the run commits in its own transaction, which this snapshot cannot see */
	if (wait && IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("connector_run(wait => true) cannot wait inside a REPEATABLE READ or SERIALIZABLE transaction"),
				 errhint("Use wait => false and read cloudconn.runs from a later transaction, or call it in READ COMMITTED.")));
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_GETARG_DATUM(1);

	SPI_connect();
	if (SPI_execute_with_args("SELECT c.id FROM cloudconn._connector_for_action($1, $2, false) c",
							  2, types, args, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not load connector");
	connector_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	slotno = RunStart(connector_id, "manual", false, &handle, &already);

	/* the run id, once the worker has recorded the run */
	for (;;)
	{
		run_id = RunSlotRunId(slotno, connector_id);
		if (run_id > 0)
			break;
		if (run_id < 0 || (handle != NULL && GetBackgroundWorkerPid(handle, &pid) == BGWH_STOPPED))
		{
			/* the worker is gone: it may still have recorded the run */
			if (SPI_execute_with_args("SELECT max(id) FROM cloudconn.run WHERE connector_id = $2",
									  2, types, args, NULL, false, 1) == SPI_OK_SELECT && SPI_processed == 1)
			{
				Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

				run_id = isnull ? 0 : DatumGetInt64(d);
			}
			if (run_id <= 0)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("the run of connector " INT64_FORMAT " ended before it started", connector_id)));
			break;
		}
		RunWaitTick();
	}

	if (wait)
	{
		for (;;)
		{
			const char *status = RunStatus(run_id);

			if (status == NULL || strcmp(status, "running") != 0)
				break;
			if (RunSlotRunId(slotno, connector_id) != run_id)
			{
				/* slot released while the row still says running: it died */
				RunMarkInterrupted(connector_id, false);
				break;
			}
			RunWaitTick();
		}
	}

	SPI_finish();
	PG_RETURN_INT64(run_id);
}

/* ------------------------------------------------------------------------
 * Live progress
 * ------------------------------------------------------------------------ */

/*
 * cloudconn.run_progress() RETURNS TABLE (run_id, connector_id,
 * pages_fetched, resources_seen): runs in progress in this database, of the
 * connectors whose runs the current role may read.
 */
Datum
cloudconn_run_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (run_shared == NULL)
		PG_RETURN_VOID();
	for (int i = 0; i < RUN_SLOTS; i++)
	{
		RunSlot    *slot = &run_shared->slots[i];
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		bool		live;

		LWLockAcquire(run_shared->lock, LW_SHARED);
		live = slot->in_use && slot->dbid == MyDatabaseId && slot->run_id > 0;
		values[0] = Int64GetDatum(slot->run_id);
		values[1] = Int64GetDatum(slot->connector_id);
		LWLockRelease(run_shared->lock);
		if (!live)
			continue;
		if (!superuser() && !PermissionConnectorReadable(GetUserId(), DatumGetInt64(values[1])))
			continue;
		values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&slot->pages_fetched));
		values[3] = Int64GetDatum((int64) pg_atomic_read_u64(&slot->resources_seen));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
