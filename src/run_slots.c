/*
 * run_slots.c
 *		Run slots in shared memory, under the "cloudconn" LWLock: one per run
 *		starting or executing, keyed by (database, connector).  A slot held
 *		for a connector is what makes a second connector_run() return the
 *		running run's id instead of starting another, and what tells a live
 *		run from one whose worker died: a run row still 'running' whose
 *		connector holds no slot was interrupted, and is marked failed by the
 *		next run worker, waiter or launcher that sees it.  The worker
 *		releases its slot on any exit (before_shmem_exit); a crash resets
 *		shared memory, which releases them all.  A slot that holds one of
 *		the cloudconn.max_parallel_runs permits is executing.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/wait_event.h"

#include "guc.h"
#include "permission.h"
#include "run_slots.h"

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

typedef struct RunSlots
{
	LWLock	   *lock;
	uint64		next_generation;
	RunSlot		slots[RUN_SLOTS];
} RunSlots;

static RunSlots *run_slots = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* In a run worker: the slot it holds, and which claim of it. */
static RunSlot *my_slot = NULL;
static uint64 my_generation = 0;

static void
RunSlotsShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(RunSlots)));
	RequestNamedLWLockTranche("cloudconn", 1);
}

static void
RunSlotsShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	run_slots = ShmemInitStruct("cloudconn run slots", sizeof(RunSlots), &found);
	if (!found)
	{
		memset(run_slots, 0, sizeof(RunSlots));
		run_slots->lock = &(GetNamedLWLockTranche("cloudconn"))->lock;
		for (int i = 0; i < RUN_SLOTS; i++)
		{
			pg_atomic_init_u64(&run_slots->slots[i].pages_fetched, 0);
			pg_atomic_init_u64(&run_slots->slots[i].resources_seen, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

void
RunSlotsShmemInit(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = RunSlotsShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = RunSlotsShmemStartup;
}

void
RunSlotsRequire(void)
{
	if (run_slots == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cloudconn must be loaded through shared_preload_libraries to run connectors"),
				 errhint("Add cloudconn to shared_preload_libraries in postgresql.conf and restart the server.")));
}

int
RunSlotsClaim(int64 connector_id, bool *already, uint64 *generation)
{
	int			free_slot = -1;

	*already = false;
	LWLockAcquire(run_slots->lock, LW_EXCLUSIVE);
	for (int i = 0; i < RUN_SLOTS; i++)
	{
		RunSlot    *slot = &run_slots->slots[i];

		if (slot->in_use && slot->dbid == MyDatabaseId && slot->connector_id == connector_id)
		{
			*already = true;
			if (slot->run_id == 0)
				slot->waiter_procno = MyProc->pgprocno;
			LWLockRelease(run_slots->lock);
			return i;
		}
		if (!slot->in_use && free_slot < 0)
			free_slot = i;
	}
	if (free_slot >= 0)
	{
		RunSlot    *slot = &run_slots->slots[free_slot];

		slot->in_use = true;
		slot->generation = ++run_slots->next_generation;
		*generation = slot->generation;
		slot->dbid = MyDatabaseId;
		slot->connector_id = connector_id;
		slot->run_id = 0;
		slot->worker_pid = 0;
		slot->executing = false;
		slot->waiter_procno = MyProc->pgprocno;
		pg_atomic_write_u64(&slot->pages_fetched, 0);
		pg_atomic_write_u64(&slot->resources_seen, 0);
	}
	LWLockRelease(run_slots->lock);
	return free_slot;
}

void
RunSlotsFreeUnstarted(int slotno, uint64 generation)
{
	RunSlot    *slot = &run_slots->slots[slotno];

	LWLockAcquire(run_slots->lock, LW_EXCLUSIVE);
	if (slot->in_use && slot->generation == generation && slot->worker_pid == 0)
		slot->in_use = false;
	LWLockRelease(run_slots->lock);
}

int64
RunSlotsRunId(int slotno, int64 connector_id)
{
	RunSlot    *slot = &run_slots->slots[slotno];
	int64		run_id;

	LWLockAcquire(run_slots->lock, LW_SHARED);
	if (slot->in_use && slot->dbid == MyDatabaseId && slot->connector_id == connector_id)
		run_id = slot->run_id;
	else
		run_id = -1;
	LWLockRelease(run_slots->lock);
	return run_id;
}

int
RunSlotsCountActive(void)
{
	int			n = 0;

	if (run_slots == NULL)
		return 0;
	LWLockAcquire(run_slots->lock, LW_SHARED);
	for (int i = 0; i < RUN_SLOTS; i++)
		n += run_slots->slots[i].in_use ? 1 : 0;
	LWLockRelease(run_slots->lock);
	return n;
}

/* Wake every run worker (one may be waiting for the permit just freed). */
static void
RunSlotsWakeWorkers(void)
{
	int			procnos[RUN_SLOTS];
	int			n = 0;

	LWLockAcquire(run_slots->lock, LW_SHARED);
	for (int i = 0; i < RUN_SLOTS; i++)
	{
		if (run_slots->slots[i].in_use && run_slots->slots[i].worker_pid != 0)
		{
			PGPROC	   *proc = BackendPidGetProc(run_slots->slots[i].worker_pid);

			if (proc != NULL)
				procnos[n++] = proc->pgprocno;
		}
	}
	LWLockRelease(run_slots->lock);
	for (int i = 0; i < n; i++)
		SetLatch(&ProcGlobal->allProcs[procnos[i]].procLatch);
}

/* before_shmem_exit: the worker gives its slot back, however it exits. */
static void
RunSlotsRelease(int code, Datum arg)
{
	RunSlot    *slot = my_slot;
	int			procno;

	LWLockAcquire(run_slots->lock, LW_EXCLUSIVE);
	if (slot->generation != my_generation)
	{
		/* the slot was freed and claimed again: not ours to release */
		LWLockRelease(run_slots->lock);
		return;
	}
	procno = slot->waiter_procno;
	slot->in_use = false;
	slot->executing = false;
	slot->worker_pid = 0;
	slot->waiter_procno = -1;
	LWLockRelease(run_slots->lock);
	if (procno >= 0)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
	RunSlotsWakeWorkers();		/* a permit is free */
}

bool
RunSlotsAttach(int slotno, uint64 generation)
{
	RunSlot    *slot;

	if (run_slots == NULL)
		elog(FATAL, "cloudconn run worker started without shared memory");
	slot = &run_slots->slots[slotno];
	LWLockAcquire(run_slots->lock, LW_EXCLUSIVE);
	if (!slot->in_use || slot->generation != generation)
	{
		/* connector_run() gave up on this claim before the worker started */
		LWLockRelease(run_slots->lock);
		return false;
	}
	slot->worker_pid = MyProcPid;
	my_slot = slot;
	my_generation = generation;
	LWLockRelease(run_slots->lock);
	before_shmem_exit(RunSlotsRelease, (Datum) 0);
	return true;
}

void
RunSlotsSetRunId(int64 run_id)
{
	int			procno;

	LWLockAcquire(run_slots->lock, LW_EXCLUSIVE);
	my_slot->run_id = run_id;
	procno = my_slot->waiter_procno;
	LWLockRelease(run_slots->lock);
	if (procno >= 0)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

/*
 * Wait until this run may execute: at most cloudconn.max_parallel_runs runs
 * execute at once, scheduled and manual together.  A queued run is already
 * recorded (status running, no pages yet).
 */
void
RunSlotsWaitForPermit(void)
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
		LWLockAcquire(run_slots->lock, LW_EXCLUSIVE);
		for (int i = 0; i < RUN_SLOTS; i++)
			executing += run_slots->slots[i].executing ? 1 : 0;
		if (executing < cloudconn_max_parallel_runs)
		{
			my_slot->executing = true;
			LWLockRelease(run_slots->lock);
			return;
		}
		LWLockRelease(run_slots->lock);
		if (!logged)
			elog(DEBUG1, "cloudconn: run queued behind %d running runs", executing);
		logged = true;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 RUN_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

void
RunSlotsAddProgress(int64 pages, int64 resources)
{
	pg_atomic_fetch_add_u64(&my_slot->pages_fetched, pages);
	pg_atomic_fetch_add_u64(&my_slot->resources_seen, resources);
}

int64
RunSlotsPagesFetched(void)
{
	return (int64) pg_atomic_read_u64(&my_slot->pages_fetched);
}

/* Connectors of this database that hold a slot: their runs are alive. */
static Datum
RunSlotsLiveConnectors(void)
{
	Datum		ids[RUN_SLOTS];
	int			n = 0;

	LWLockAcquire(run_slots->lock, LW_SHARED);
	for (int i = 0; i < RUN_SLOTS; i++)
	{
		RunSlot    *slot = &run_slots->slots[i];

		if (slot->in_use && slot->dbid == MyDatabaseId)
			ids[n++] = Int64GetDatum(slot->connector_id);
	}
	LWLockRelease(run_slots->lock);
	return PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * connector_id limits the sweep to one connector (0: all).  With own_slot,
 * the caller is the run worker holding connector_id's slot: a run of that
 * connector still 'running' cannot be its own yet, so it is dead too, and
 * every other connector is swept as well.
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
	args[0] = RunSlotsLiveConnectors();

	if (SPI_execute_with_args("UPDATE cloudconn.run SET status = 'failed', finished_at = clock_timestamp(),"
							  "  error = 'the run was interrupted: its worker exited before finishing (server crash, shutdown or termination)'"
							  " WHERE id = ANY ($4) AND status = 'running'"
							  "   AND CASE WHEN $3 THEN connector_id = $2 OR connector_id <> ALL ($1)"
							  "            ELSE connector_id <> ALL ($1) AND ($2 = 0 OR connector_id = $2) END",
							  4, types, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not mark interrupted runs");
}

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
	if (run_slots == NULL)
		PG_RETURN_VOID();
	for (int i = 0; i < RUN_SLOTS; i++)
	{
		RunSlot    *slot = &run_slots->slots[i];
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		bool		live;

		LWLockAcquire(run_slots->lock, LW_SHARED);
		live = slot->in_use && slot->dbid == MyDatabaseId && slot->run_id > 0;
		values[0] = Int64GetDatum(slot->run_id);
		values[1] = Int64GetDatum(slot->connector_id);
		LWLockRelease(run_slots->lock);
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
