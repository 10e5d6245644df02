/*
 * permission.h
 *		The set of entities a role may act on, computed once per statement.
 */
#ifndef CLOUDCONN_PERMISSION_H
#define CLOUDCONN_PERMISSION_H

#include "fmgr.h"

extern bool PermissionConnectorReadable(Oid role, int64 connector_id);

extern Datum cloudconn_permitted_entities(PG_FUNCTION_ARGS);
extern Datum cloudconn_entity_permitted(PG_FUNCTION_ARGS);
extern Datum cloudconn_connector_permitted(PG_FUNCTION_ARGS);
extern Datum cloudconn_permitted_support(PG_FUNCTION_ARGS);

#endif							/* CLOUDCONN_PERMISSION_H */
