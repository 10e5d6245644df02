/*
 * run.h
 *		Discovery runs: the shared-memory run table, the per-run background
 *		worker, connector_run(), and live progress.
 */
#ifndef CLOUDCONN_RUN_H
#define CLOUDCONN_RUN_H

#include "fmgr.h"
#include "postmaster/bgworker.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

/* The scheduler's state, in run.c's shared memory (see scheduler.c). */
typedef struct SchedulerShared
{
	pid_t		launcher_pid;
	TimestampTz next_fire_at;	/* 0 when paused or not yet known */
	TimestampTz fire_requested_at;	/* scheduler_fire_now(); 0 if none */
	int			queued;			/* due connectors not started yet */
} SchedulerShared;

extern void RunShmemInit(void);
extern SchedulerShared *RunSchedulerShared(void);
extern LWLock *RunSharedLock(void);
extern int	RunCountActive(void);
extern int	RunStart(int64 connector_id, const char *trigger, bool soft,
					 BackgroundWorkerHandle **handle, bool *already);
extern void RunMarkInterrupted(int64 connector_id, bool own_slot);

extern PGDLLEXPORT void cloudconn_run_worker_main(Datum main_arg);
extern Datum cloudconn_connector_run(PG_FUNCTION_ARGS);
extern Datum cloudconn_run_progress(PG_FUNCTION_ARGS);

#endif							/* CLOUDCONN_RUN_H */
