/*
 * discovery.h
 *		The discovery engine (discovery.c): one run of a connector, from
 *		loading it to the merge.  Providers report their listings to it
 *		through the Discovery* functions of provider.h.
 */
#ifndef CLOUDCONN_DISCOVERY_H
#define CLOUDCONN_DISCOVERY_H

#include "merge.h"

/* What a run's LOG line tells besides its counts. */
typedef struct DiscoveryFigures
{
	Size		peak_memory;	/* most memory held by the worker's contexts */
	long		peak_private_kb;	/* most private resident memory seen */
	double		listing_secs;	/* listing, from the connector's load */
	double		merge_secs;		/* staging, merge and the run's record */
	char		note[128];		/* a sentence of the provider's (DiscoveryNote), or "" */
} DiscoveryFigures;

/*
 * Discover and merge run_id of connector_id, and record its outcome in its
 * run row, in the caller's transaction (SPI connected, a snapshot pushed);
 * returns the run's status.  Raises when nothing could be listed.
 */
extern const char *DiscoveryRun(int64 run_id, int64 connector_id, MergeCounts *counts,
								DiscoveryFigures *figures);

#endif							/* CLOUDCONN_DISCOVERY_H */
