/*
 * run_slots.h
 *		Run slots in shared memory (run_slots.c): which connectors have a
 *		run starting or going, the cloudconn.max_parallel_runs permits, and
 *		live progress.
 */
#ifndef CLOUDCONN_RUN_SLOTS_H
#define CLOUDCONN_RUN_SLOTS_H

#include "fmgr.h"

/* From _PG_init while preloading. */
extern void RunSlotsShmemInit(void);

/* ERROR unless cloudconn is preloaded (the slots exist). */
extern void RunSlotsRequire(void);

/*
 * Claim the connector's slot for a new run, or find the one a run of it
 * already holds (*already).  The caller's latch is set when the slot's run
 * id becomes known.  Returns the slot number, -1 if none is free.
 */
extern int	RunSlotsClaim(int64 connector_id, bool *already, uint64 *generation);

/* Give back a claim whose worker never started (only that very claim). */
extern void RunSlotsFreeUnstarted(int slotno, uint64 generation);

/* The slot's run id once known, 0 meanwhile, -1 if the slot moved on. */
extern int64 RunSlotsRunId(int slotno, int64 connector_id);

/* Runs holding a slot, all databases: starting, queued or executing. */
extern int	RunSlotsCountActive(void);

/*
 * In a run worker: take the slot connector_run() claimed for it (false if
 * that claim was given up meanwhile); it is released however the worker
 * exits.
 */
extern bool RunSlotsAttach(int slotno, uint64 generation);

/* In a run worker: the run is recorded (its waiter is woken). */
extern void RunSlotsSetRunId(int64 run_id);

/* In a run worker: wait for one of the cloudconn.max_parallel_runs permits. */
extern void RunSlotsWaitForPermit(void);

/* In a run worker: progress of its listing. */
extern void RunSlotsAddProgress(int64 pages, int64 resources);
extern int64 RunSlotsPagesFetched(void);

/*
 * Mark failed every run left 'running' whose connector holds no slot: its
 * worker died.  Needs SPI and the rights of the tables' owner.
 */
extern void RunMarkInterrupted(int64 connector_id, bool own_slot);

extern Datum cloudconn_run_progress(PG_FUNCTION_ARGS);

#endif							/* CLOUDCONN_RUN_SLOTS_H */
