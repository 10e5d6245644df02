/*
 * merge.h
 *		The merge engine shared by every provider (SPEC §6).
 */
#ifndef CLOUDCONN_MERGE_H
#define CLOUDCONN_MERGE_H

#include "provider.h"

typedef struct MergeCounts
{
	int64		discovered;
	int64		created;
	int64		updated;
	int64		unchanged;
	int64		errors;
} MergeCounts;

/* the pages of one listing, kept until the merge */
typedef struct MergeState MergeState;

extern MergeState *MergeBegin(void);
extern void MergeStagePage(MergeState *state, MappedResource *rows, int nrows,
						   char **error_ids, char **error_messages, int nerrors);
extern void MergeFinish(MergeState *state, int64 connector_id, int64 entity_id, int64 run_id,
						List *failed_scopes, MergeCounts *counts);

#endif							/* CLOUDCONN_MERGE_H */
