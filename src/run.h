/*
 * run.h
 *		Discovery runs: the shared-memory run table, the per-run background
 *		worker, connector_run(), and live progress.
 */
#ifndef CLOUDCONN_RUN_H
#define CLOUDCONN_RUN_H

#include "fmgr.h"

extern void RunShmemInit(void);

extern PGDLLEXPORT void cloudconn_run_worker_main(Datum main_arg);
extern Datum cloudconn_connector_run(PG_FUNCTION_ARGS);
extern Datum cloudconn_run_progress(PG_FUNCTION_ARGS);

#endif							/* CLOUDCONN_RUN_H */
