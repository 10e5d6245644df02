/*
 * permission.h
 *		The set of entities a role may act on, cached per backend and never
 *		stale (permission.c's header says how).
 */
#ifndef CLOUDCONN_PERMISSION_H
#define CLOUDCONN_PERMISSION_H

#include "fmgr.h"

extern void PermissionShmemInit(void);
extern bool PermissionConnectorReadable(Oid role, int64 connector_id);
extern bool PermissionCoversTree(Oid role);

extern Datum cloudconn_permitted_entities(PG_FUNCTION_ARGS);
extern Datum cloudconn_entity_permitted(PG_FUNCTION_ARGS);
extern Datum cloudconn_connector_permitted(PG_FUNCTION_ARGS);
extern Datum cloudconn_permitted_support(PG_FUNCTION_ARGS);
extern Datum cloudconn_permission_data_changed(PG_FUNCTION_ARGS);
extern Datum cloudconn_permission_cache_stats(PG_FUNCTION_ARGS);
extern Datum cloudconn_entity_restriction(PG_FUNCTION_ARGS);
extern Datum cloudconn_connector_restriction(PG_FUNCTION_ARGS);

#endif							/* CLOUDCONN_PERMISSION_H */
