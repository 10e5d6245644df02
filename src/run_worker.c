/*
 * run_worker.c
 *		Discovery runs in their own background workers.  RunStart claims the
 *		connector's run slot and starts a dynamic background worker; the
 *		worker records the run, waits for a permit, discovers and merges in
 *		one transaction (discovery.c), records the outcome, and logs one
 *		line.  So a run is recorded whatever its caller's transaction does,
 *		and each run has its own worker, timeouts and transaction.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_rusage.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "discovery.h"
#include "run_slots.h"
#include "run_worker.h"

/* What RunStart hands its worker (bgw_extra). */
typedef struct RunWorkerArgs
{
	Oid			dbid;
	Oid			userid;
	int64		connector_id;
	uint64		generation;		/* of the slot claimed for this worker */
	char		trigger[16];
} RunWorkerArgs;

Oid
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

	RunSlotsRequire();
	*handle = NULL;
	owner = RunTableOwner();	/* before the claim: nothing may raise between claim and start */
	slotno = RunSlotsClaim(connector_id, already, &generation);
	if (slotno < 0)
	{
		if (soft)
			return -1;
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many discovery runs in progress")));
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
		RunSlotsFreeUnstarted(slotno, generation);
		if (soft)
			return -1;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not start a background worker for the run"),
				 errhint("Raise max_worker_processes, or wait for other runs to finish.")));
	}
	if (WaitForBackgroundWorkerStartup(*handle, &pid) != BGWH_STARTED)
	{
		RunSlotsFreeUnstarted(slotno, generation);
		if (soft)
			return -1;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("the background worker for the run could not start")));
	}
	return slotno;
}

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

/*
 * Step 1: record the run, or find the one already running (0 if the
 * connector was deleted).
 */
static int64
RunRecord(const RunWorkerArgs *args, bool *existing)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		a[2] = {Int64GetDatum(args->connector_id), CStringGetTextDatum(args->trigger)};
	bool		isnull;
	int64		run_id = 0;

	*existing = false;
	RunBeginTransaction();
	RunMarkInterrupted(args->connector_id, true);
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
		*existing = true;
	}
	RunCommitTransaction();
	return run_id;
}

/*
 * A run starts when it gets its permit: its started_at moves from when it
 * was queued to now, so that the runs' [started_at, finished_at] show the
 * cloudconn.max_parallel_runs bound (its finished_at is written before the
 * worker gives its permit back).
 */
static void
RunMarkExecuting(int64 run_id)
{
	Oid			types[1] = {INT8OID};
	Datum		a[1] = {Int64GetDatum(run_id)};

	RunBeginTransaction();
	if (SPI_execute_with_args("UPDATE cloudconn.run SET started_at = clock_timestamp()"
							  " WHERE id = $1 AND status = 'running'",
							  1, types, a, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the start of the run");
	RunCommitTransaction();
}

/*
 * Steps 2 and 3 of a run: discover and merge in one transaction; if that
 * fails, record why in another.  Then the run's LOG line.
 */
static void
RunDiscoverAndRecord(int64 run_id, const RunWorkerArgs *args, TimestampTz started,
					 const PGRUsage *usage_start)
{
	MergeCounts counts;
	const char *volatile status = "failed";
	char	   *volatile error = NULL;
	char	   *volatile error_log_detail = NULL;	/* what the error told the server log only */
	MemoryContext workcxt = CurrentMemoryContext;
	volatile DiscoveryFigures figures;

	memset(&counts, 0, sizeof(counts));
	memset((DiscoveryFigures *) &figures, 0, sizeof(figures));
	PG_TRY();
	{
		RunBeginTransaction();
		status = DiscoveryRun(run_id, args->connector_id, &counts, (DiscoveryFigures *) &figures);
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
		error_log_detail = edata->detail_log;
		status = "failed";
	}
	PG_END_TRY();

	/* 3: a failed run records why, in a transaction of its own */
	if (error != NULL)
	{
		Oid			types[3] = {INT8OID, TEXTOID, INT8OID};
		Datum		a[3] = {Int64GetDatum(run_id), CStringGetTextDatum(error),
		Int64GetDatum(RunSlotsPagesFetched())};

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
					", errors " INT64_FORMAT ", " INT64_FORMAT " pages in %.1f s%s%s",
					run_id, args->connector_id, status, counts.discovered, counts.created, counts.updated,
					counts.unchanged, counts.errors, RunSlotsPagesFetched(),
					(double) (GetCurrentTimestamp() - started) / 1000000.0,
					error ? ": " : "", error ? error : ""),
			 errdetail_log("Listing took %.2f s, the merge %.2f s. Peak memory: %zu kB in memory contexts, %ld kB private resident. %s.%s%s%s%s",
						   figures.listing_secs, figures.merge_secs,
						   figures.peak_memory / 1024, figures.peak_private_kb, pg_rusage_show(usage_start),
						   figures.note[0] ? " " : "", (const char *) figures.note,
						   error_log_detail ? " " : "", error_log_detail ? error_log_detail : "")));
}

void
cloudconn_run_worker_main(Datum main_arg)
{
	RunWorkerArgs args;
	int64		run_id;
	bool		existing;
	TimestampTz started = GetCurrentTimestamp();
	PGRUsage	usage_start;

	pg_rusage_init(&usage_start);
	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	if (!RunSlotsAttach(DatumGetInt32(main_arg), args.generation))
		proc_exit(0);			/* connector_run() gave up on this claim */

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

	run_id = RunRecord(&args, &existing);
	RunSlotsSetRunId(run_id);
	if (run_id == 0 || existing)
		proc_exit(0);			/* deleted connector, or a run already going */

	/* 2: discover and merge, all in one transaction, once a permit is free */
	RunSlotsWaitForPermit();
	RunMarkExecuting(run_id);
	RunDiscoverAndRecord(run_id, &args, started, &usage_start);
	proc_exit(0);
}
