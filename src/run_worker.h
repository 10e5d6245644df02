/*
 * run_worker.h
 *		Starting a run in its own background worker, and the worker itself
 *		(run_worker.c).
 */
#ifndef CLOUDCONN_RUN_WORKER_H
#define CLOUDCONN_RUN_WORKER_H

#include "fmgr.h"
#include "postmaster/bgworker.h"

/*
 * Claim the connector's run slot and start its run worker (trigger
 * "manual" or "scheduled"), the one path by which every run starts.
 * Returns the slot; *already if a run of the connector holds it (nothing
 * is started then).  With soft, a start that cannot happen now (no slot or
 * worker free) returns -1 instead of raising, for the scheduler to retry.
 */
extern int	RunStart(int64 connector_id, const char *trigger, bool soft,
					 BackgroundWorkerHandle **handle, bool *already);

/* The owner of cloudconn's tables: the role runs and the scheduler act as. */
extern Oid	RunTableOwner(void);

extern PGDLLEXPORT void cloudconn_run_worker_main(Datum main_arg);

#endif							/* CLOUDCONN_RUN_WORKER_H */
