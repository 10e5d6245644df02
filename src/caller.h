/*
 * caller.h
 *		Public SQL entry points that pass the calling role to their private
 *		SECURITY DEFINER implementations.
 */
#ifndef CLOUDCONN_CALLER_H
#define CLOUDCONN_CALLER_H

#include "fmgr.h"

extern Datum cloudconn_dispatch(PG_FUNCTION_ARGS);

#endif							/* CLOUDCONN_CALLER_H */
