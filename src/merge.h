/*
 * merge.h
 *		The merge engine shared by every provider (merge.c; README: Runs and
 *		the merge).
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

/* One per-resource error of a page. */
typedef struct MergeError
{
	char	   *external_id;	/* or NULL when the resource had no id */
	char	   *message;
} MergeError;

/* A listing that ended: complete (message NULL), or failed, and why. */
typedef struct MergeListing
{
	const char *ci_type;
	const char *scope;
	const char *message;
} MergeListing;

/* the pages of one run's listings, kept until the merge */
typedef struct MergeState MergeState;

/* Start a run that lists types (a List of const ResourceType *). */
extern MergeState *MergeBegin(List *types);

/*
 * Keep one page of a listing: its mapped resources (known[i]: the
 * connector had rows[i]'s CI when the run began) and its errors.
 */
extern void MergeStagePage(MergeState *state, const char *ci_type, const char *scope,
						   MappedResource *rows, const bool *known, int nrows,
						   MergeError *errors, int nerrors);

/*
 * Merge everything kept into the CMDB, in the caller's transaction (SPI
 * connected, a snapshot pushed): listings is the List of MergeListing of
 * the run; unchanged[i] counts the resources of types[i] (a List of const
 * ResourceType *) found unchanged and not kept; missing_ids are the CIs
 * no complete listing found.  Fills the run's counts and, per type,
 * type_counts[i].
 */
extern void MergeFinish(MergeState *state, int64 connector_id, int64 entity_id, int64 run_id,
						List *listings, List *types, const int64 *unchanged,
						const int64 *missing_ids, int nmissing,
						MergeCounts *counts, MergeCounts *type_counts);

#endif							/* CLOUDCONN_MERGE_H */
