/*
 * history.h
 *		The change history of CIs outside the merge: user edits and retention
 *		(history.c; README: Change history).
 */
#ifndef CLOUDCONN_HISTORY_H
#define CLOUDCONN_HISTORY_H

#include "fmgr.h"

/* Delete what is older than cloudconn.history_retention; outside a transaction. */
extern int64 HistoryApplyRetention(void);

extern Datum cloudconn_ci_edit_recorded(PG_FUNCTION_ARGS);

#endif							/* CLOUDCONN_HISTORY_H */
