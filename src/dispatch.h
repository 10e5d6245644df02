/*
 * dispatch.h
 *		Public SQL entry points that pass the calling role to their private
 *		SECURITY DEFINER implementations.
 */
#ifndef CLOUDCONN_DISPATCH_H
#define CLOUDCONN_DISPATCH_H

#include "fmgr.h"

extern Datum cloudconn_dispatch(PG_FUNCTION_ARGS);

#endif							/* CLOUDCONN_DISPATCH_H */
