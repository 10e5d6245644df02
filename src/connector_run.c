/*
 * connector_run.c
 *		connector_run(): start a run of a connector in its background worker
 *		(run_worker.c) and, unless asked not to, wait for it to end.
 *		Cancelling a waiting call stops the wait, not the run.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/wait_event.h"

#include "run_slots.h"
#include "run_worker.h"

PG_FUNCTION_INFO_V1(cloudconn_connector_run);

/* How often a waiting call looks at its run (a latch usually wakes it first). */
#define CONNECTOR_RUN_POLL_MS 200

/* One tick of a wait: a latch or the poll interval, then interrupts. */
static void
RunWaitTick(void)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 CONNECTOR_RUN_POLL_MS, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/* "running", "ended", or NULL if the run row is not there. */
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

	RunSlotsRequire();
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
		run_id = RunSlotsRunId(slotno, connector_id);
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
			if (RunSlotsRunId(slotno, connector_id) != run_id)
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
