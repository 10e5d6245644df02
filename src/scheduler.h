/*
 * scheduler.h
 *		The nightly scheduler: a launcher background worker that runs daily
 *		connectors at cloudconn.daily_run_at.
 */
#ifndef CLOUDCONN_SCHEDULER_H
#define CLOUDCONN_SCHEDULER_H

#include "fmgr.h"

/* From _PG_init while preloading: shared state, and the launcher registered. */
extern void SchedulerInit(void);

extern PGDLLEXPORT void cloudconn_scheduler_supervisor_main(Datum main_arg);
extern PGDLLEXPORT void cloudconn_launcher_main(Datum main_arg);
extern Datum cloudconn_scheduler_status(PG_FUNCTION_ARGS);
extern Datum cloudconn_scheduler_fire_now(PG_FUNCTION_ARGS);

#endif							/* CLOUDCONN_SCHEDULER_H */
