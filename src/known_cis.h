/*
 * known_cis.h
 *		The CIs a connector had when its run began (known_cis.c): what the
 *		run compares each listed resource with, and what it marks missing.
 */
#ifndef CLOUDCONN_KNOWN_CIS_H
#define CLOUDCONN_KNOWN_CIS_H

#include "nodes/pg_list.h"

#include "ci_digest.h"

typedef struct KnownCis KnownCis;

/* Load them (SPI connected, a snapshot pushed), in the current memory context. */
extern KnownCis *KnownCisLoad(int64 connector_id);

/*
 * A resource was listed: its CI, if it has one, is seen.  Returns true if
 * that CI is there, not missing, and its provider fields have digest, or
 * if the resource was already listed by this run without a CI: either way
 * it need not be merged.  *found (if not NULL) says whether the connector
 * had its CI at all.  digest NULL: seen only (a resource that failed to
 * map, with an id).
 */
extern bool KnownCisSee(KnownCis *known, const char *external_id, const uint8 *digest,
						bool *found);

/*
 * The ids of the CIs to mark missing: not missing yet, not seen, of a
 * listing that completed (ci_type, scope pairs in complete_types and
 * complete_scopes) and in which no resource failed without an id
 * (blocked_types, blocked_scopes).
 */
extern int64 *KnownCisMissing(KnownCis *known, List *complete_types, List *complete_scopes,
							  List *blocked_types, List *blocked_scopes, int *nmissing);

#endif							/* CLOUDCONN_KNOWN_CIS_H */
