/*
 * scheduler.c
 *		The nightly scheduler, without pg_cron.  A launcher background worker
 *		(registered when cloudconn is preloaded) connects to
 *		cloudconn.database and, at each fire time (cloudconn.daily_run_at in
 *		cloudconn.timezone), starts a run of every daily connector that is
 *		due, through the same RunStart() as connector_run(), at most
 *		cloudconn.max_parallel_runs at a time, queueing the rest.
 *
 * Due: a daily connector, not deleted, created before the latest fire time,
 * with no scheduled run started since then.  So a fire time missed while the
 * server or the launcher was down is caught up once after start (not once
 * per missed night), a connector that failed is not retried until the next
 * night, and a launcher restarted mid-queue carries on with what is left.
 * scheduler_fire_now() (superuser) makes "now" the latest fire time, through
 * the same logic, for tests and operators.
 *
 * Once a day (first soon after it starts) the launcher also deletes the
 * change history older than cloudconn.history_retention (history.c);
 * history_retention_now() (superuser) asks for it at once.
 *
 * The launcher holds no transaction, snapshot or lock while it sleeps.  On
 * start it marks failed the runs that a crash, shutdown or dead worker left
 * 'running'.
 *
 * The launcher is started by a supervisor, the background worker registered
 * at preload ("cloudconn scheduler supervisor"), which connects to no
 * database (the shared catalogs only): it waits quietly until
 * cloudconn.database exists (saying so once in the log), then starts the
 * launcher as a dynamic background worker and waits for it to exit, and
 * starts it again SCHEDULER_RESTART_MS later (after a
 * pg_terminate_backend(), or the database dropped).  Connecting the launcher
 * to a missing database would be a FATAL error every restart.  Both start
 * once recovery has finished: on a hot standby neither runs, and after a
 * promotion they start at once.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "guc.h"
#include "history.h"
#include "permission.h"
#include "run_slots.h"
#include "run_worker.h"
#include "scheduler.h"

PG_FUNCTION_INFO_V1(cloudconn_scheduler_status);
PG_FUNCTION_INFO_V1(cloudconn_scheduler_fire_now);
PG_FUNCTION_INFO_V1(cloudconn_history_retention_now);

/* The scheduler's state in shared memory, under its spinlock. */
typedef struct SchedulerShared
{
	slock_t		mutex;
	pid_t		launcher_pid;
	TimestampTz next_fire_at;	/* 0 when paused or not yet known */
	TimestampTz fire_requested_at;	/* scheduler_fire_now(); 0 if none */
	int			queued;			/* due connectors not started yet */
	bool		retention_requested;	/* history_retention_now() */
} SchedulerShared;

static SchedulerShared *scheduler_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* How often the launcher looks again while runs are queued or idle. */
#define SCHEDULER_QUEUE_POLL_MS 1000
#define SCHEDULER_IDLE_POLL_MS 60000
#define SCHEDULER_NO_EXTENSION_POLL_MS 10000
#define SCHEDULER_NO_DATABASE_POLL_MS 10000
/* How long the supervisor waits before starting an exited launcher again. */
#define SCHEDULER_RESTART_MS 5000

static void
SchedulerShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(SchedulerShared)));
}

static void
SchedulerShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	scheduler_shared = ShmemInitStruct("cloudconn scheduler", sizeof(SchedulerShared), &found);
	if (!found)
	{
		memset(scheduler_shared, 0, sizeof(SchedulerShared));
		SpinLockInit(&scheduler_shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* From _PG_init while preloading: the shared state and the supervisor. */
void
SchedulerInit(void)
{
	BackgroundWorker worker;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = SchedulerShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = SchedulerShmemStartup;
	if (IsBinaryUpgrade)
		return;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = SCHEDULER_RESTART_MS / 1000;	/* after a crash or termination */
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "cloudconn");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "cloudconn_scheduler_supervisor_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "cloudconn scheduler supervisor");
	snprintf(worker.bgw_type, BGW_MAXLEN, "cloudconn scheduler supervisor");
	RegisterBackgroundWorker(&worker);
}

/*
 * Does cloudconn.database exist?  A scan of pg_database, as the autovacuum
 * launcher makes: connected to no database, only the shared catalogs'
 * nailed relations can be opened, not their indexes.
 */
static bool
SchedulerDatabaseExists(void)
{
	bool		exists = false;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;

	if (cloudconn_database == NULL)
		return false;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (!exists && HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection)))
		exists = strcmp(NameStr(((Form_pg_database) GETSTRUCT(tuple))->datname), cloudconn_database) == 0;
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return exists;
}

/* The supervisor's wait: interruptible, ends on postmaster death. */
static void
SchedulerSupervisorSleep(long ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/*
 * The supervisor: waits for cloudconn.database to exist, then runs the
 * launcher and waits for it to exit, for the life of the server.
 */
void
cloudconn_scheduler_supervisor_main(Datum main_arg)
{
	bool		logged_missing = false;
	bool		logged_no_slot = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	if (scheduler_shared == NULL)
		elog(FATAL, "cloudconn scheduler supervisor started without shared memory");
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("cloudconn scheduler supervisor");

	for (;;)
	{
		BackgroundWorker worker;
		BackgroundWorkerHandle *handle;
		pid_t		pid;

		CHECK_FOR_INTERRUPTS();

		/*
		 * A supervisor restarted after a pg_terminate_backend() may find
		 * the launcher of its predecessor still running: never a second.
		 */
		SpinLockAcquire(&scheduler_shared->mutex);
		pid = scheduler_shared->launcher_pid;
		SpinLockRelease(&scheduler_shared->mutex);
		if (pid != 0 && BackendPidGetProc(pid) != NULL)
		{
			SchedulerSupervisorSleep(1000);
			continue;
		}

		if (!SchedulerDatabaseExists())
		{
			if (!logged_missing)
				ereport(LOG,
						(errmsg("cloudconn scheduler: database \"%s\" does not exist; the scheduler starts once it is created",
								cloudconn_database ? cloudconn_database : ""),
						 errhint("Create the database, or set cloudconn.database to an existing one and restart the server.")));
			logged_missing = true;
			SchedulerSupervisorSleep(SCHEDULER_NO_DATABASE_POLL_MS);
			continue;
		}
		logged_missing = false;

		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		worker.bgw_restart_time = BGW_NEVER_RESTART;	/* the supervisor restarts it */
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "cloudconn");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "cloudconn_launcher_main");
		snprintf(worker.bgw_name, BGW_MAXLEN, "cloudconn scheduler");
		snprintf(worker.bgw_type, BGW_MAXLEN, "cloudconn scheduler");
		worker.bgw_notify_pid = MyProcPid;
		if (RegisterDynamicBackgroundWorker(&worker, &handle))
		{
			if (WaitForBackgroundWorkerStartup(handle, &pid) == BGWH_STARTED)
				(void) WaitForBackgroundWorkerShutdown(handle);
			pfree(handle);
			logged_no_slot = false;
		}
		else if (!logged_no_slot)
		{
			logged_no_slot = true;
			ereport(LOG,
					(errmsg("cloudconn scheduler: could not start the launcher: no background worker slot free"),
					 errhint("Raise max_worker_processes.")));
		}
		SchedulerSupervisorSleep(SCHEDULER_RESTART_MS);
	}
}

static void
SchedulerBegin(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
}

static void
SchedulerCommit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(true);
	pgstat_report_activity(STATE_IDLE, NULL);
}

static bool
SchedulerExtensionExists(void)
{
	bool		exists;

	SchedulerBegin();
	exists = SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'cloudconn'", true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1;
	SchedulerCommit();
	return exists;
}

/*
 * The latest fire time at or before now, and the next one after it, in
 * cloudconn.timezone (computed by SQL, so daylight saving is right).
 */
static void
SchedulerFireTimes(TimestampTz *latest, TimestampTz *next)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		args[2] = {CStringGetTextDatum(cloudconn_timezone), CStringGetTextDatum(cloudconn_daily_run_at)};
	bool		isnull;

	if (SPI_execute_with_args(
		"WITH t AS (SELECT (pg_catalog.date_trunc('day', pg_catalog.now() AT TIME ZONE $1)"
		"                   OPERATOR(pg_catalog.+) $2::pg_catalog.time) AS today)"
		"SELECT CASE WHEN (today AT TIME ZONE $1) OPERATOR(pg_catalog.<=) pg_catalog.now()"
		"            THEN today AT TIME ZONE $1"
		"            ELSE (today OPERATOR(pg_catalog.-) interval '1 day') AT TIME ZONE $1 END,"
		"       CASE WHEN (today AT TIME ZONE $1) OPERATOR(pg_catalog.>) pg_catalog.now()"
		"            THEN today AT TIME ZONE $1"
		"            ELSE (today OPERATOR(pg_catalog.+) interval '1 day') AT TIME ZONE $1 END"
		"  FROM t", 2, types, args, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not compute the fire times");
	*latest = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*next = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
}

/* The due connectors, in id order (at most limit of them). */
static List *
SchedulerDueConnectors(TimestampTz fire_at, int *ndue)
{
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		args[1] = {TimestampTzGetDatum(fire_at)};
	List	   *due = NIL;

	if (SPI_execute_with_args(
		"SELECT k.id FROM cloudconn.connector k"
		" WHERE k.schedule OPERATOR(pg_catalog.=) 'daily' AND k.deleted_at IS NULL"
		"   AND k.created_at OPERATOR(pg_catalog.<=) $1"
		"   AND NOT EXISTS (SELECT 1 FROM cloudconn.run r"
		"                    WHERE r.connector_id OPERATOR(pg_catalog.=) k.id"
		"                      AND r.trigger OPERATOR(pg_catalog.=) 'scheduled'"
		"                      AND r.started_at OPERATOR(pg_catalog.>=) $1)"
		" ORDER BY k.id", 1, types, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the due connectors");
	*ndue = (int) SPI_processed;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64	   *id = MemoryContextAlloc(TopTransactionContext, sizeof(int64));

		*id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		due = lappend(due, id);
	}
	return due;
}

/*
 * The history retention, when a day has passed since the last (or it was
 * asked for); last is 0 before the first.
 */
static void
SchedulerHistoryRetention(TimestampTz *last)
{
	SchedulerShared *shared = scheduler_shared;
	TimestampTz now = GetCurrentTimestamp();
	bool		requested;
	int64		deleted;

	SpinLockAcquire(&shared->mutex);
	requested = shared->retention_requested;
	shared->retention_requested = false;
	SpinLockRelease(&shared->mutex);
	if (!requested && *last != 0 && !TimestampDifferenceExceeds(*last, now, SECS_PER_DAY * 1000))
		return;
	*last = now;
	deleted = HistoryApplyRetention();
	if (deleted > 0)
		ereport(LOG,
				(errmsg("cloudconn scheduler: deleted " INT64_FORMAT " change%s of CIs older than cloudconn.history_retention",
						deleted, deleted == 1 ? "" : "s")));
}

/*
 * One pass: start as many due connectors as permits allow.  Returns how
 * long to sleep.
 */
static long
SchedulerPass(MemoryContext passcxt)
{
	SchedulerShared *shared = scheduler_shared;
	TimestampTz latest,
				next,
				requested,
				fire_at;
	List	   *due;
	ListCell   *lc;
	int			ndue = 0;
	int			started = 0;
	int			waiting = 0;
	long		sleep_ms;

	SchedulerBegin();
	SchedulerFireTimes(&latest, &next);

	SpinLockAcquire(&shared->mutex);
	requested = shared->fire_requested_at;
	SpinLockRelease(&shared->mutex);
	fire_at = Max(latest, requested);

	due = SchedulerDueConnectors(fire_at, &ndue);
	foreach(lc, due)
	{
		int64		connector_id = *(int64 *) lfirst(lc);
		BackgroundWorkerHandle *handle;
		bool		already;

		if (RunSlotsCountActive() >= cloudconn_max_parallel_runs)
		{
			waiting = ndue - started;
			break;
		}
		if (RunStart(connector_id, "scheduled", true, &handle, &already) < 0)
		{
			waiting = ndue - started;
			break;
		}
		if (!already)
			started++;
		else
			waiting++;			/* a manual run holds it: due again after */
	}
	SchedulerCommit();

	SpinLockAcquire(&shared->mutex);
	shared->next_fire_at = next;
	shared->queued = waiting;
	SpinLockRelease(&shared->mutex);

	if (started > 0)
		elog(LOG, "cloudconn scheduler: started %d scheduled run%s for the fire time of %s, %d queued",
			 started, started == 1 ? "" : "s", timestamptz_to_str(fire_at), waiting);

	if (waiting > 0)
		sleep_ms = SCHEDULER_QUEUE_POLL_MS;
	else
	{
		long		secs;
		int			usecs;

		TimestampDifference(GetCurrentTimestamp(), next, &secs, &usecs);
		sleep_ms = Min(secs * 1000L + usecs / 1000 + 1, SCHEDULER_IDLE_POLL_MS);
	}
	MemoryContextReset(passcxt);
	return Max(sleep_ms, 1);
}

void
cloudconn_launcher_main(Datum main_arg)
{
	SchedulerShared *shared;
	MemoryContext passcxt;
	bool		logged_missing = false;
	bool		recovered = false;
	TimestampTz last_retention = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	shared = scheduler_shared;
	if (shared == NULL)
		elog(FATAL, "cloudconn scheduler started without shared memory");

	BackgroundWorkerInitializeConnection(cloudconn_database, NULL, 0);
	/* it acts as a superuser: no database or role search_path reaches it */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	pgstat_report_appname("cloudconn scheduler");

	SpinLockAcquire(&shared->mutex);
	shared->launcher_pid = MyProcPid;
	shared->next_fire_at = 0;
	shared->queued = 0;
	SpinLockRelease(&shared->mutex);

	passcxt = AllocSetContextCreate(TopMemoryContext, "cloudconn scheduler pass", ALLOCSET_DEFAULT_SIZES);
	ereport(LOG,
			(errmsg("cloudconn scheduler started in database \"%s\"", cloudconn_database)));

	for (;;)
	{
		long		sleep_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (!SchedulerExtensionExists())
		{
			if (!logged_missing)
				ereport(LOG,
						(errmsg("cloudconn scheduler: extension \"cloudconn\" is not created in database \"%s\"; waiting for it",
								cloudconn_database)));
			logged_missing = true;
			recovered = false;
			sleep_ms = SCHEDULER_NO_EXTENSION_POLL_MS;
		}
		else
		{
			logged_missing = false;
			if (!recovered)
			{
				/* runs left 'running' by a crash, a shutdown or a dead worker */
				SchedulerBegin();
				RunMarkInterrupted(0, false);
				if (SPI_processed > 0)
					ereport(LOG,
							(errmsg("cloudconn scheduler: marked " UINT64_FORMAT " interrupted run%s as failed",
									SPI_processed, SPI_processed == 1 ? "" : "s")));
				SchedulerCommit();
				recovered = true;
			}
			SchedulerHistoryRetention(&last_retention);
			if (cloudconn_scheduler_enabled)
				sleep_ms = SchedulerPass(passcxt);
			else
			{
				SpinLockAcquire(&shared->mutex);
				shared->next_fire_at = 0;
				shared->queued = 0;
				SpinLockRelease(&shared->mutex);
				sleep_ms = SCHEDULER_IDLE_POLL_MS;
			}
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * cloudconn.scheduler_status(): what the scheduler is doing.  next_fire_at
 * is NULL while it is paused or has not looked yet.  The launcher's pid and
 * the counters, which count every tenant's runs, are NULL unless the caller
 * sees the whole entity tree (a superuser, or a permission on every root).
 */
Datum
cloudconn_scheduler_status(PG_FUNCTION_ARGS)
{
	SchedulerShared *shared = scheduler_shared;
	TupleDesc	tupdesc;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};
	pid_t		pid = 0;
	TimestampTz next = 0;
	int			queued = 0;
	bool		global;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	global = PermissionCoversTree(GetUserId());
	if (shared != NULL)
	{
		SpinLockAcquire(&shared->mutex);
		pid = shared->launcher_pid;
		next = shared->next_fire_at;
		queued = shared->queued;
		SpinLockRelease(&shared->mutex);
	}
	values[0] = BoolGetDatum(cloudconn_scheduler_enabled);
	values[1] = CStringGetTextDatum(cloudconn_database ? cloudconn_database : "");
	nulls[1] = (cloudconn_database == NULL);
	values[2] = Int32GetDatum(pid);
	nulls[2] = (pid == 0 || BackendPidGetProc(pid) == NULL || !global);
	values[3] = TimestampTzGetDatum(next);
	nulls[3] = (next == 0);
	values[4] = Int32GetDatum(queued);
	nulls[4] = !global;
	values[5] = Int32GetDatum(global ? RunSlotsCountActive() : 0);
	nulls[5] = !global;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * Ask the launcher for a fire now or for the history retention now: the
 * request is left in shared memory and the launcher's latch set.  False if
 * no launcher is running.
 */
static bool
SchedulerRequest(bool fire, bool retention)
{
	SchedulerShared *shared = scheduler_shared;
	PGPROC	   *proc;
	pid_t		pid;

	if (shared == NULL)
		return false;
	SpinLockAcquire(&shared->mutex);
	if (fire)
		shared->fire_requested_at = GetCurrentTimestamp();
	if (retention)
		shared->retention_requested = true;
	pid = shared->launcher_pid;
	SpinLockRelease(&shared->mutex);
	proc = pid ? BackendPidGetProc(pid) : NULL;
	if (proc == NULL)
		return false;
	SetLatch(&proc->procLatch);
	return true;
}

/*
 * cloudconn.scheduler_fire_now(): superuser only.  Makes now the latest
 * fire time; the launcher then starts the due connectors exactly as at a
 * fire time.  Returns false if no launcher is running.
 */
Datum
cloudconn_scheduler_fire_now(PG_FUNCTION_ARGS)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only superusers may fire the scheduler")));
	PG_RETURN_BOOL(SchedulerRequest(true, false));
}

/*
 * cloudconn.history_retention_now(): superuser only.  The launcher deletes
 * the changes older than cloudconn.history_retention at once, as it does
 * once a day.  Returns false if no launcher is running.
 */
Datum
cloudconn_history_retention_now(PG_FUNCTION_ARGS)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only superusers may apply the history retention")));
	PG_RETURN_BOOL(SchedulerRequest(false, true));
}
